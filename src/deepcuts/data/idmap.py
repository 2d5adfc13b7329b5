"""Mapping between external ids (any hashable: str, int) and contiguous int32 indices."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import numpy as np
import pandas as pd

from deepcuts.exceptions import UnknownIdError

__all__ = ["IdMap"]

Missing = Literal["raise", "ignore"]


class IdMap:
    """Bidirectional map external id <-> contiguous int32 index.

    Id policy (the same in Python and over HTTP): external ids keep the type the data gives
    them (HetRec's integer user and artist ids stay integers, artist keys stay strings), and
    a lookup matches by value *across* ``int`` and ``str``: when the map holds integers, the
    string ``"2"`` finds ``2`` (an HTTP path or a command-line argument arrives as a string);
    when it holds strings, ``2`` finds ``"2"``. Results always carry the map's own ids.

    Parameters
    ----------
    ids : array-like of shape (n,)
        Unique external ids; position ``k`` gets index ``k``.
    name : str, default="id"
        What the ids are ("user", "item"); used in error messages.

    Examples
    --------
    >>> m = IdMap(["a", "b", "c"], name="user")
    >>> m.index(["c", "a"]).tolist()
    [2, 0]
    >>> m.external([1]).tolist()
    ['b']
    >>> m.index(["zz"], missing="ignore").tolist()
    [-1]
    >>> IdMap([2, 3]).index(["3", 2]).tolist()  # "3" matches the integer id 3
    [1, 0]
    """

    def __init__(self, ids: Iterable, *, name: str = "id"):
        index = pd.Index(list(ids) if not isinstance(ids, np.ndarray | pd.Index) else ids)
        if not index.is_unique:
            dup = index[index.duplicated()][:3].tolist()
            raise ValueError(f"IdMap({name!r}): ids must be unique, found duplicates {dup}")
        self._index = index
        self.name = name

    @classmethod
    def from_values(cls, values: Iterable, *, name: str = "id") -> IdMap:
        """Build a map from (possibly repeated) values, in order of first appearance."""
        return cls(pd.unique(pd.Series(np.asarray(values))), name=name)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, item) -> bool:
        return item in self._index

    def __repr__(self) -> str:
        return f"IdMap(name={self.name!r}, n={len(self)})"

    def __eq__(self, other) -> bool:
        return isinstance(other, IdMap) and self._index.equals(other._index)

    @property
    def ids(self) -> np.ndarray:
        """External ids as an array of shape (n,), ordered by index."""
        return self._index.to_numpy()

    def index(self, ids, *, missing: Missing = "raise") -> np.ndarray:
        """Internal int32 indices of external ``ids``.

        Parameters
        ----------
        ids : scalar or array-like
            External ids.
        missing : {"raise", "ignore"}, default="raise"
            Unknown ids raise :class:`UnknownIdError`, or map to -1 with ``"ignore"``.
        """
        if missing not in ("raise", "ignore"):
            raise ValueError(f"missing must be 'raise' or 'ignore', got {missing!r}")
        arr = np.atleast_1d(np.asarray(ids, dtype=object if _is_str_like(ids) else None))
        idx = self._index.get_indexer(arr)
        if (idx < 0).any():
            miss = np.flatnonzero(idx < 0)
            alt = _other_type(arr[miss], self._index)
            if alt is not None:
                idx[miss] = self._index.get_indexer(alt)
        if missing == "raise" and (idx < 0).any():
            bad = arr[idx < 0][:5].tolist()
            raise UnknownIdError(
                f"unknown {self.name} id(s) {bad}: they are not in the training data; "
                f"fold them in first or pass missing='ignore'"
            )
        return idx.astype(np.int32)

    def external(self, idx) -> np.ndarray:
        """External ids of internal indices ``idx``."""
        idx = np.asarray(idx)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"{self.name} index out of range [0, {len(self)})")
        return self._index.to_numpy()[idx]

    def extend(self, ids: Iterable) -> IdMap:
        """A new map with the unseen ``ids`` appended (existing indices unchanged)."""
        new = pd.Index(pd.unique(pd.Series(np.asarray(list(ids), dtype=object))))
        new = new[~new.isin(self._index)]
        return IdMap(self._index.append(new), name=self.name)

    def to_array(self) -> np.ndarray:
        """Ids as an array suitable for ``np.savez`` (unicode or integer, never object)."""
        ids = self.ids
        if ids.dtype == object:
            if all(isinstance(x, int | np.integer) for x in ids):
                return ids.astype(np.int64)
            return ids.astype(str)
        return ids


def _other_type(values: np.ndarray, index: pd.Index) -> np.ndarray | None:
    """``values`` converted to the id type of ``index`` (str <-> int), None if not applicable."""
    int_ids = index.dtype.kind in "iu" or (
        index.dtype == object and len(index) and isinstance(index[0], int | np.integer)
    )
    if int_ids:
        out = np.empty(len(values), dtype=object)
        for j, v in enumerate(values.tolist()):  # only the ids that missed: a handful
            s = v.strip() if isinstance(v, str) else None
            out[j] = int(s) if s and s.lstrip("-").isdigit() else None
        return out.astype(np.int64) if all(v is not None for v in out) else out
    if any(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in values.tolist()):
        return np.array([str(v) for v in values.tolist()], dtype=object)
    return None


def _is_str_like(ids) -> bool:
    if isinstance(ids, str):
        return True
    if isinstance(ids, np.ndarray | pd.Index | pd.Series):
        return ids.dtype == object
    return False
