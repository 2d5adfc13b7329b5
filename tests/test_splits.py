import numpy as np
import pandas as pd
import pytest

from deepcuts.data import Interactions, load_lastfm2k
from deepcuts.evaluation import (
    leave_last_out_split,
    random_split,
    split,
    user_holdout_split,
)
from deepcuts.exceptions import DeepcutsError
from deepcuts.testing import planted_blocks


@pytest.fixture(scope="module")
def x():
    return planted_blocks(60, 30, 3, random_state=0)


def _pairs(inter):
    coo = inter.matrix.tocoo()
    return set(zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist()))


@pytest.mark.parametrize("fn", [random_split, user_holdout_split])
def test_partition_same_maps(x, fn):
    train, test = fn(x, random_state=3)
    assert train.user_map == x.user_map and test.item_map == x.item_map
    assert train.shape == test.shape == x.shape
    a, b = _pairs(train), _pairs(test)
    assert not a & b
    assert a | b == _pairs(x)


def test_random_split_fraction_and_seed(x):
    train, test = random_split(x, test_fraction=0.15, random_state=1)
    assert test.nnz == round(0.15 * x.nnz)
    again = random_split(x, test_fraction=0.15, random_state=1)[1]
    other = random_split(x, test_fraction=0.15, random_state=2)[1]
    assert _pairs(again) == _pairs(test)
    assert _pairs(other) != _pairs(test)


def test_user_holdout_counts():
    x = load_lastfm2k()
    train, test = user_holdout_split(x, test_fraction=0.2, random_state=0)
    n = x.matrix.getnnz(axis=1)
    nt = test.matrix.getnnz(axis=1)
    expected = np.clip(np.floor(0.2 * n + 0.5), 1, np.maximum(n - 1, 1))
    expected[n < 2] = 0
    assert np.array_equal(nt, expected)
    assert (train.matrix.getnnz(axis=1) >= 1).all()
    # a user with 50 artists holds out exactly 10
    assert nt[n == 50][0] == 10


def test_user_holdout_small_users_stay_in_train():
    df = pd.DataFrame({"user": ["a", "b", "b", "b"], "item": ["x", "x", "y", "z"], "count": 1})
    x = Interactions.from_frame(df)
    train, test = user_holdout_split(x, test_fraction=0.5, min_items=3)
    assert test.matrix.getnnz(axis=1).tolist() == [0, 2]  # round(1.5) = 2, half up
    assert train.matrix.getnnz(axis=1).tolist() == [1, 1]


def test_leave_last_out():
    df = pd.DataFrame(
        {
            "user": ["a", "a", "a", "b", "b", "c"],
            "item": ["x", "y", "z", "x", "y", "x"],
            "count": [1, 2, 3, 4, 5, 6],
            "time": [10, 30, 20, 7, 5, 1],
        }
    )
    x = Interactions.from_frame(df, time_col="time")
    train, test = leave_last_out_split(x)
    assert sorted(map(tuple, test.to_frame()[["user", "item"]].values.tolist())) == [
        ("a", "y"),
        ("b", "x"),
    ]
    # timestamps follow their entries
    ft = test.to_frame().set_index(["user", "item"])["timestamp"]
    assert ft[("a", "y")] == 30 and ft[("b", "x")] == 7
    assert train.to_frame().set_index(["user", "item"])["timestamp"][("a", "z")] == 20
    train2, test2 = leave_last_out_split(x, n_last=2)
    assert test2.to_frame()["user"].tolist() == ["a", "a"]  # b and c are too small


def test_leave_last_out_needs_timestamps(x):
    with pytest.raises(DeepcutsError, match="timestamps"):
        leave_last_out_split(x)


def test_bad_arguments(x):
    with pytest.raises(DeepcutsError, match="test_fraction"):
        random_split(x, test_fraction=1.5)
    with pytest.raises(DeepcutsError, match="unknown split"):
        split(x, "nope")
    train, test = split(x, "user-holdout", test_fraction=0.3, random_state=0)
    assert test.nnz > 0


def test_random_split_default_masks_15_percent(x):
    """The founding study masked 15% of all (user, item) pairs: that is the default (issue 2)."""
    train, test = random_split(x)
    assert test.nnz == round(0.15 * x.nnz) and train.nnz + test.nnz == x.nnz
    # masked pairs are spread over users, not taken from a few
    assert (test.matrix.getnnz(axis=1) > 0).sum() > x.n_users // 2
