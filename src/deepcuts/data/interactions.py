"""The users x items interaction matrix with its id maps and item metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from deepcuts.data.idmap import IdMap
from deepcuts.exceptions import DataError

__all__ = ["Interactions", "as_interactions"]


@dataclass(frozen=True, eq=False)
class Interactions:
    """Implicit feedback: a CSR matrix of play counts, users x items, plus ids and metadata.

    Parameters
    ----------
    matrix : scipy.sparse matrix of shape (n_users, n_items)
        Non-negative play counts (or listening-time fractions); stored as float32 CSR with
        sorted indices and summed duplicates. Rows are users, columns items.
    user_map, item_map : IdMap, optional
        External <-> internal ids. Default: the row and column indices themselves
        (``IdMap(range(n_users))``, ``IdMap(range(n_items))``), so ``Interactions(csr)`` works.
    items : pandas.DataFrame, optional
        One row per item in index order; column ``item`` holds the external id, ``name`` a display
        name and ``tags`` a list of tag strings, most-used first.
    timestamps : ndarray of shape (nnz,), optional
        Unix seconds of the *last* listen of each stored (user, item) pair, aligned with
        ``matrix.data``; used by time-based splits.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"user": ["u1", "u1", "u2"], "item": ["a", "b", "a"], "count": [3, 1, 5]})
    >>> x = Interactions.from_frame(df)
    >>> x.shape
    (2, 2)
    >>> x.matrix.toarray().tolist()
    [[3.0, 1.0], [5.0, 0.0]]
    >>> import scipy.sparse as sp
    >>> Interactions(sp.csr_matrix([[1.0, 0.0, 2.0]])).item_map.ids.tolist()  # ids = indices
    [0, 1, 2]
    """

    matrix: sp.csr_matrix
    user_map: IdMap | None = None
    item_map: IdMap | None = None
    items: pd.DataFrame | None = None
    timestamps: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        m = self.matrix
        if isinstance(m, pd.DataFrame):
            raise TypeError(
                "Interactions(matrix) takes a scipy.sparse matrix; build one from a long table "
                "with Interactions.from_frame(df, user_col='user', item_col='item', "
                "count_col='count')"
            )
        if not sp.issparse(m):
            raise TypeError(
                f"matrix must be a scipy.sparse matrix (rows users, columns items), got "
                f"{type(m).__name__}; convert with scipy.sparse.csr_matrix(matrix)"
            )
        m = sp.csr_matrix(m, dtype=np.float32)
        if self.user_map is None:
            object.__setattr__(self, "user_map", IdMap(np.arange(m.shape[0]), name="user"))
        if self.item_map is None:
            object.__setattr__(self, "item_map", IdMap(np.arange(m.shape[1]), name="item"))
        if m.shape != (len(self.user_map), len(self.item_map)):
            raise ValueError(
                f"matrix shape {m.shape} does not match id maps "
                f"({len(self.user_map)} users, {len(self.item_map)} items); pass one IdMap per "
                "row and one per column, or leave user_map/item_map out to use the indices"
            )
        if m.nnz and np.any(m.data < 0):
            raise DataError("play counts must be >= 0", field="count")
        m.sum_duplicates()
        if m.nnz and not np.isfinite(m.data).all():  # NaN, or sums past float32 (3.4e38)
            k = int(np.flatnonzero(~np.isfinite(m.data))[0])
            u = int(np.searchsorted(m.indptr, k, side="right") - 1)
            raise DataError(
                f"the play count of user {self.user_map.ids[u]!r}, item "
                f"{self.item_map.ids[m.indices[k]]!r} is {m.data[k]} (not a number, or a sum "
                f"past the float32 limit {np.finfo(np.float32).max:.4g}); scale the counts down",
                field="count",
            )
        m.sort_indices()
        object.__setattr__(self, "matrix", m)
        if self.timestamps is not None and len(self.timestamps) != m.nnz:
            raise ValueError("timestamps must align with matrix.data (length nnz)")
        if self.items is not None and len(self.items) != len(self.item_map):
            raise ValueError("items frame must have one row per item")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        *,
        user_col: str = "user",
        item_col: str = "item",
        count_col: str | None = "count",
        time_col: str | None = None,
        items: pd.DataFrame | None = None,
        item_key: str = "item",
    ) -> Interactions:
        """Aggregate a long table of (user, item[, count][, time]) rows.

        Repeated (user, item) rows are summed (counts) and keep their latest time. Without
        ``count_col`` every row counts as one listen. ``items`` (metadata) is aligned to the item
        map by its ``item_key`` column; items missing from it get their id as name.
        """
        for c in (user_col, item_col, count_col, time_col):
            if c is not None and c not in df.columns:
                raise DataError(
                    f"column {c!r} not found; available columns: {list(df.columns)}", field=c
                )
        counts = (
            np.ones(len(df), dtype=np.float64)
            if count_col is None
            else pd.to_numeric(df[count_col], errors="coerce").to_numpy(np.float64)
        )
        bad = ~np.isfinite(counts) | (counts < 0) | (counts > np.finfo(np.float32).max)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"count {df[count_col].iloc[row]!r} in row {row} is not a non-negative number "
                f"within the float32 range ({np.finfo(np.float32).max:.4g})",
                field=count_col,
            )
        user_map = IdMap.from_values(df[user_col].to_numpy(), name="user")
        item_map = IdMap.from_values(df[item_col].to_numpy(), name="item")
        rows = user_map.index(df[user_col].to_numpy())
        cols = item_map.index(df[item_col].to_numpy())
        shape = (len(user_map), len(item_map))
        m = sp.csr_matrix((counts.astype(np.float32), (rows, cols)), shape=shape)
        m.sum_duplicates()
        m.sort_indices()
        ts = None
        if time_col is not None:
            t = _to_unix_seconds(df[time_col])
            key = rows.astype(np.int64) * shape[1] + cols
            last = pd.Series(t).groupby(key).max()
            coo_key = np.repeat(np.arange(shape[0], dtype=np.int64), np.diff(m.indptr)) * shape[
                1
            ] + m.indices.astype(np.int64)
            ts = last.reindex(coo_key).to_numpy(np.int64)
        meta_frame = cls._align_items(items, item_map, item_key)
        return cls(m, user_map, item_map, items=meta_frame, timestamps=ts)

    @staticmethod
    def _align_items(items, item_map: IdMap, key: str) -> pd.DataFrame:
        base = pd.DataFrame({"item": item_map.ids})
        if items is None:
            base["name"] = base["item"].astype(str)
            base["tags"] = [[] for _ in range(len(base))]
            return base
        meta = items.drop_duplicates(key).set_index(key)
        out = base.join(meta, on="item")
        if "name" not in out:
            out["name"] = out["item"].astype(str)
        out["name"] = out["name"].where(out["name"].notna(), out["item"].astype(str))
        if "tags" not in out:
            out["tags"] = [[] for _ in range(len(out))]
        else:
            out["tags"] = [t if isinstance(t, list) else [] for t in out["tags"]]
        return out.reset_index(drop=True)

    # ------------------------------------------------------------------ views
    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    @property
    def n_users(self) -> int:
        return self.matrix.shape[0]

    @property
    def n_items(self) -> int:
        return self.matrix.shape[1]

    @property
    def nnz(self) -> int:
        return self.matrix.nnz

    def __repr__(self) -> str:
        return (
            f"Interactions(n_users={self.n_users}, n_items={self.n_items}, nnz={self.nnz}, "
            f"timestamps={'yes' if self.timestamps is not None else 'no'})"
        )

    def item_popularity(self) -> np.ndarray:
        """Number of distinct users per item, shape (n_items,), int64."""
        return np.bincount(self.matrix.indices, minlength=self.n_items).astype(np.int64)

    def item_plays(self) -> np.ndarray:
        """Total plays per item, shape (n_items,), float64."""
        return np.asarray(self.matrix.sum(axis=0), dtype=np.float64).ravel()

    def item_names(self, idx=None) -> np.ndarray:
        """Display names of items (all, or internal indices ``idx``)."""
        names = (
            self.items["name"].astype(str).to_numpy()
            if self.items is not None
            else self.item_map.ids.astype(str)
        )
        return names if idx is None else names[np.asarray(idx)]

    def user_items(self, user) -> pd.DataFrame:
        """One user's history (external id): item, name, count, sorted by count descending."""
        u = int(self.user_map.index([user])[0])
        row = self.matrix[u]
        df = pd.DataFrame(
            {
                "item": self.item_map.external(row.indices),
                "name": self.item_names(row.indices),
                "count": row.data,
            }
        )
        return df.sort_values("count", ascending=False, kind="stable").reset_index(drop=True)

    def to_frame(self) -> pd.DataFrame:
        """Long format: user, item, count[, timestamp] (external ids)."""
        coo = self.matrix.tocoo()
        df = pd.DataFrame(
            {
                "user": self.user_map.external(coo.row),
                "item": self.item_map.external(coo.col),
                "count": coo.data,
            }
        )
        if self.timestamps is not None:
            df["timestamp"] = self.timestamps
        return df

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> Path:
        """Save to ``<path>.npz`` (arrays) + ``<path>.json`` (manifest); no pickle.

        Both files are written atomically and together: an error leaves no partial output.
        The manifest records the format version, shapes, item metadata columns, ``meta`` and
        the SHA-256 of the ``.npz``.

        Parameters
        ----------
        path : path
            File stem; a trailing ``.npz`` or ``.json`` is ignored.

        Returns
        -------
        pathlib.Path
            The manifest path.

        Examples
        --------
        >>> import pandas as pd, tempfile, pathlib
        >>> df = pd.DataFrame({"user": ["u1", "u2"], "item": ["a", "b"], "count": [3, 1]})
        >>> stem = pathlib.Path(tempfile.mkdtemp()) / "plays"
        >>> Interactions.from_frame(df).save(stem).name
        'plays.json'
        >>> Interactions.load(stem).matrix.toarray().tolist()
        [[3.0, 0.0], [0.0, 1.0]]
        """
        from deepcuts.data._persist import save_interactions

        return save_interactions(self, path)

    @classmethod
    def load(cls, path) -> Interactions:
        """Load interactions saved with :meth:`save` (``path`` with or without suffix).

        Raises :class:`~deepcuts.exceptions.DataError` naming the file and the fix when a file
        is missing, corrupt (checksum mismatch) or written by an unsupported format version.
        """
        from deepcuts.data._persist import load_interactions

        return load_interactions(path, cls)

    # ------------------------------------------------------------------ derived
    def with_matrix(self, matrix: sp.csr_matrix, timestamps=None) -> Interactions:
        """Same users, items and metadata with another matrix (e.g. a train split)."""
        return Interactions(
            sp.csr_matrix(matrix, dtype=np.float32),
            self.user_map,
            self.item_map,
            items=self.items,
            timestamps=timestamps,
            meta=dict(self.meta),
        )

    def subset(self, users=None, items=None) -> Interactions:
        """Keep users / items given by boolean masks or internal index arrays (re-indexed)."""
        m = self.matrix
        uidx = np.arange(self.n_users) if users is None else _as_index(users, self.n_users)
        iidx = np.arange(self.n_items) if items is None else _as_index(items, self.n_items)
        ts = None
        if self.timestamps is not None:
            t = sp.csr_matrix(
                (self.timestamps.astype(np.float64) + 1.0, m.indices, m.indptr), m.shape
            )
            t = t[uidx][:, iidx]
            t.sort_indices()
        sub = m[uidx][:, iidx]
        sub.eliminate_zeros()
        sub.sort_indices()
        if self.timestamps is not None:
            t = t.multiply(sub != 0).tocsr()
            t.sort_indices()
            ts = (t.data - 1.0).astype(np.int64)
        items_df = None if self.items is None else self.items.iloc[iidx].reset_index(drop=True)
        return Interactions(
            sub,
            IdMap(self.user_map.ids[uidx], name="user"),
            IdMap(self.item_map.ids[iidx], name="item"),
            items=items_df,
            timestamps=ts,
            meta=dict(self.meta),
        )


def as_interactions(
    data,
    *,
    user_col: str = "user",
    item_col: str = "item",
    count_col: str | None = None,
    what: str = "fit",
) -> Interactions:
    """``data`` as :class:`Interactions`: it, a scipy sparse matrix or a long DataFrame.

    Parameters
    ----------
    data : Interactions, scipy.sparse matrix of shape (n_users, n_items) or DataFrame
        A sparse matrix has users as rows and items as columns; its ids are the row and column
        indices. A DataFrame has one row per (user, item) with columns ``user_col``,
        ``item_col`` and, when present, ``count_col`` (default ``"count"`` if the frame has
        it, else every row counts as one play; repeated pairs are summed).
    user_col, item_col, count_col : str
        Column names of a DataFrame.
    what : str, default="fit"
        Name of the calling function, for error messages.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"uid": [1, 1, 2], "artist": ["a", "b", "a"]})
    >>> as_interactions(df, user_col="uid", item_col="artist").matrix.toarray().tolist()
    [[1.0, 1.0], [1.0, 0.0]]
    """
    if isinstance(data, Interactions):
        return data
    if sp.issparse(data):
        return Interactions(data)
    if isinstance(data, pd.DataFrame):
        if count_col is None and "count" in data.columns:
            count_col = "count"
        missing = [c for c in (user_col, item_col) if c not in data.columns]
        if missing:
            raise DataError(
                f"{what}: the DataFrame has no column(s) {missing} (columns: "
                f"{list(data.columns)}); name them with user_col=..., item_col=..., "
                f"count_col=...",
                field=missing[0],
            )
        return Interactions.from_frame(
            data, user_col=user_col, item_col=item_col, count_col=count_col
        )
    raise TypeError(
        f"{what} expects deepcuts.data.Interactions, a scipy.sparse matrix (rows users, "
        f"columns items) or a pandas DataFrame with columns user, item[, count]; got "
        f"{type(data).__name__}"
    )


def _as_index(sel, n: int) -> np.ndarray:
    sel = np.asarray(sel)
    if sel.dtype == bool:
        if sel.shape != (n,):
            raise ValueError(f"boolean mask must have shape ({n},)")
        return np.flatnonzero(sel)
    return sel.astype(np.int64)


def _to_unix_seconds(col: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(col):
        return col.to_numpy(np.int64)
    t = pd.to_datetime(col, utc=True, errors="coerce")
    if t.isna().any():
        row = int(np.flatnonzero(t.isna().to_numpy())[0])
        raise DataError(
            f"timestamp {col.iloc[row]!r} in row {row} is not a date/time (use ISO-8601 or unix seconds)",
            field=str(col.name),
        )
    return ((t - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(np.int64)
