"""IdMap: external ids <-> contiguous int32, explicit policy for unknown ids (issue 2)."""

import numpy as np
import pytest

from deepcuts.data import IdMap
from deepcuts.exceptions import UnknownIdError


def test_round_trip_and_dtypes():
    m = IdMap(["b", "a", "c"], name="user")
    idx = m.index(["c", "b", "a", "c"])
    assert idx.dtype == np.int32 and idx.tolist() == [2, 0, 1, 2]
    assert m.external(idx).tolist() == ["c", "b", "a", "c"]
    assert len(m) == 3 and "a" in m and "z" not in m
    ints = IdMap.from_values([7, 3, 7, 9, 3])  # first-appearance order
    assert ints.ids.tolist() == [7, 3, 9] and ints.index(9).tolist() == [2]
    assert ints.to_array().dtype.kind == "i" and m.to_array().dtype.kind == "U"


def test_unknown_ids_policy():
    m = IdMap(["a", "b"], name="user")
    with pytest.raises(UnknownIdError, match=r"unknown user id\(s\) \['zz'\].*missing='ignore'"):
        m.index(["a", "zz"])
    assert m.index(["a", "zz"], missing="ignore").tolist() == [0, -1]
    with pytest.raises(ValueError, match="missing must be"):
        m.index(["a"], missing="drop")
    with pytest.raises(IndexError, match="out of range"):
        m.external([2])


def test_extend_keeps_existing_indices_and_rejects_duplicates():
    m = IdMap(["a", "b"], name="item")
    e = m.extend(["c", "a", "d", "c"])
    assert e.ids.tolist() == ["a", "b", "c", "d"]
    assert e.index(["a", "b"]).tolist() == m.index(["a", "b"]).tolist()
    assert m == IdMap(["a", "b"]) and m != e
    with pytest.raises(ValueError, match="unique"):
        IdMap(["a", "b", "a"])
