"""Per-track or per-artist content feature tables, standardised and aligned to an item map.

:func:`tag_matrix` turns per-item tag lists into an items x tags matrix.

Readers: :func:`read_feature_table` (any CSV / Parquet with numeric columns, including the output
of ``deepcuts features``), :func:`read_gtzan_features` (GTZAN ``features_30_sec.csv``) and
:func:`read_spotify_artists` (Spotify ``data_by_artist.csv``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from deepcuts.data.artists import artist_key
from deepcuts.data.idmap import IdMap
from deepcuts.data.readers._common import check_file
from deepcuts.exceptions import DataError, DeepcutsError

__all__ = [
    "FeatureTable",
    "normalize_name",
    "read_feature_table",
    "read_gtzan_features",
    "read_spotify_artists",
    "tag_matrix",
]


def normalize_name(name) -> str:
    """Key used to match artist names across sources: :func:`deepcuts.data.artists.artist_key`
    (Unicode compatibility folding, accents dropped from Latin / Greek / Cyrillic letters, curly
    quotes straightened, case folded, whitespace collapsed, a leading "the " or trailing ", the"
    dropped), the same key the listening-data readers use for artist ids.

    Examples
    --------
    >>> normalize_name("  The  Beatles ")
    'beatles'
    >>> normalize_name("BJÖRK") == normalize_name("björk") == normalize_name("Bjork")
    True
    """
    return artist_key(str(name))


@dataclass(frozen=True, eq=False)
class FeatureTable:
    """Numeric content features, one row per track or artist, standardised column-wise.

    Build one with a reader or :meth:`from_frame`.

    Attributes
    ----------
    ids : ndarray of shape (n,)
        Row ids (file names, artist names).
    names : ndarray of shape (n,) of str
        Display names, used for matching by name.
    columns : list of str
        Feature names, length d.
    raw : ndarray of shape (n, d) float64
        Values as read.
    values : ndarray of shape (n, d) float32
        Standardised values: ``(raw - mean_) / scale_`` (scikit-learn ``StandardScaler`` fitted
        on this table; a constant column gets scale 1).
    mean_, scale_ : ndarray of shape (d,)
        The fitted scaler's parameters.
    labels : ndarray of shape (n,), optional
        A class per row when the source has one (GTZAN genre).
    meta : DataFrame
        Non-feature columns kept from the source, one row per table row.

    Examples
    --------
    >>> df = pd.DataFrame({"artist": ["A", "B", "C"], "tempo": [90.0, 120.0, 150.0]})
    >>> t = FeatureTable.from_frame(df, id_col="artist")
    >>> t.values[:, 0].astype(float).round(4).tolist()
    [-1.2247, 0.0, 1.2247]
    """

    ids: np.ndarray
    names: np.ndarray
    columns: list[str]
    raw: np.ndarray
    values: np.ndarray
    mean_: np.ndarray
    scale_: np.ndarray
    labels: np.ndarray | None = None
    meta: pd.DataFrame | None = None
    source: str = ""

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return f"FeatureTable(n={len(self)}, d={len(self.columns)}, source={self.source!r})"

    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        *,
        id_col: str,
        name_col: str | None = None,
        label_col: str | None = None,
        columns: Sequence[str] | None = None,
        exclude: Iterable[str] = (),
        source: str = "",
    ) -> FeatureTable:
        """Build a table from a frame; features are ``columns`` or every numeric column.

        Parameters
        ----------
        df : DataFrame
            One row per track or artist.
        id_col : str
            Column of unique row ids.
        name_col : str, optional
            Column of display names used for matching by name; default ``id_col``.
        label_col : str, optional
            Column of class labels (kept, not a feature).
        columns : sequence of str, optional
            Feature columns; default every numeric column except the id, name, label and
            ``exclude`` columns.
        exclude : iterable of str
            Numeric columns that are not features.

        Raises
        ------
        DataError
            Missing columns, duplicate ids, non-numeric or non-finite feature values (naming the
            row and column), or no feature column at all.
        """
        where = source or None
        for c in (id_col, name_col, label_col, *(columns or ())):
            if c is not None and c not in df.columns:
                raise DataError(
                    f"column {c!r} not found; available columns: {list(df.columns)}",
                    path=where,
                    field=c,
                )
        name_col = name_col or id_col
        if df[id_col].duplicated().any():
            dup = df.loc[df[id_col].duplicated(), id_col].head(3).tolist()
            raise DataError(f"ids must be unique, found duplicates {dup}", path=where, field=id_col)
        skip = {id_col, name_col, label_col, *exclude}
        if columns is None:
            columns = [
                c for c in df.columns if c not in skip and pd.api.types.is_numeric_dtype(df[c])
            ]
        columns = list(columns)
        if not columns:
            raise DataError(
                "no numeric feature columns; pass columns=[...] naming them", path=where
            )
        raw = np.empty((len(df), len(columns)), np.float64)
        for k, c in enumerate(columns):
            v = pd.to_numeric(df[c], errors="coerce").to_numpy(np.float64)
            bad = ~np.isfinite(v)
            if bad.any():
                r = int(np.flatnonzero(bad)[0])
                raise DataError(
                    f"value {df[c].iloc[r]!r} in data row {r + 1} is not a finite number; "
                    "fix or drop that row",
                    path=where,
                    field=c,
                )
            raw[:, k] = v
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(raw)
        values = scaler.transform(raw).astype(np.float32)
        meta_cols = [c for c in df.columns if c not in columns and c not in (id_col,)]
        return cls(
            ids=df[id_col].to_numpy(),
            names=df[name_col].astype(str).to_numpy(),
            columns=columns,
            raw=raw,
            values=values,
            mean_=scaler.mean_.astype(np.float64),
            scale_=scaler.scale_.astype(np.float64),
            labels=None if label_col is None else df[label_col].to_numpy(),
            meta=df[meta_cols].reset_index(drop=True),
            source=source,
        )

    def transform(self, raw) -> np.ndarray:
        """Standardise new rows with this table's scaler: (m, d) raw -> (m, d) float32."""
        raw = np.asarray(raw, np.float64)
        if raw.ndim != 2 or raw.shape[1] != len(self.columns):
            raise DeepcutsError(
                f"expected shape (m, {len(self.columns)}) in column order {self.columns}, "
                f"got {raw.shape}"
            )
        return ((raw - self.mean_) / self.scale_).astype(np.float32)

    def align(self, item_map: IdMap, *, by: str = "name", item_names=None) -> np.ndarray:
        """Row of this table for each item of ``item_map``; -1 where an item has no features.

        Parameters
        ----------
        item_map : IdMap
            The items to align to (``interactions.item_map``).
        by : {"name", "id"}, default="name"
            Match normalised names (:func:`normalize_name`) or exact ids.
        item_names : array-like of shape (n_items,), optional
            Names of the items in index order, needed for ``by="name"``
            (``interactions.item_names()``).

        Returns
        -------
        ndarray of shape (n_items,) int64
            Table row per item or -1. When several table rows share a normalised name, the first
            one wins (the Spotify reader orders rows so that the artist with most tracks comes
            first).
        """
        if by == "id":
            pos = pd.Index(self.ids).get_indexer(item_map.ids)
            return pos.astype(np.int64)
        if by != "name":
            raise DeepcutsError(f"by must be 'name' or 'id', got {by!r}")
        if item_names is None:
            raise DeepcutsError("align(by='name') needs item_names=interactions.item_names()")
        if len(item_names) != len(item_map):
            raise DeepcutsError(
                f"item_names has {len(item_names)} entries, the item map {len(item_map)}"
            )
        keys = pd.Series([normalize_name(n) for n in self.names])
        first = ~keys.duplicated()
        index = pd.Index(keys[first].to_numpy())
        rows = np.flatnonzero(first.to_numpy())
        pos = index.get_indexer([normalize_name(n) for n in item_names])
        return np.where(pos >= 0, rows[np.maximum(pos, 0)], -1).astype(np.int64)

    def aligned_values(self, interactions, *, by: str = "name") -> tuple[np.ndarray, np.ndarray]:
        """Standardised features in item order: (n_items, d) float32 (zeros where missing) and
        the (n_items,) bool mask of items that have features."""
        rows = self.align(interactions.item_map, by=by, item_names=interactions.item_names())
        has = rows >= 0
        out = np.zeros((len(rows), len(self.columns)), np.float32)
        out[has] = self.values[rows[has]]
        return out, has


def _read_table(path) -> pd.DataFrame:
    p = check_file(path)
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(p)
        # a real CSV parser: quoted names may hold commas and doubled quotes
        if p.suffix.lower() in (".tsv", ".tab"):
            return pd.read_csv(p, sep="\t")
        return pd.read_csv(p)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
        raise DataError(f"cannot parse as a table ({e})", path=p) from None


def read_feature_table(
    path,
    *,
    id_col: str | None = None,
    name_col: str | None = None,
    label_col: str | None = None,
    columns: Sequence[str] | None = None,
    exclude: Iterable[str] = (),
) -> FeatureTable:
    """Read a CSV / TSV / Parquet feature table (one row per track or artist).

    With ``id_col=None`` the first column is the id. Output of ``deepcuts features`` is
    recognised: its id is ``file``, and its bookkeeping columns (path, size, mtime, duration),
    ``key`` (a pitch class, not a quantity) and ``moods`` are not used as features.

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> p = os.path.join(d, "t.csv")
    >>> _ = open(p, "w").write('name,energy\\n"Weird, Al",0.5\\nB,0.7\\n')
    >>> read_feature_table(p).ids.tolist()
    ['Weird, Al', 'B']
    """
    df = _read_table(path)
    exclude = set(exclude)
    if id_col is None and {"file", "mtime_ns", "moods"} <= set(df.columns):
        id_col = "file"
        exclude |= {"size", "mtime_ns", "duration_s", "key"}
        df = df.drop(columns=[c for c in ("path",) if c in df.columns])
    if id_col is None:
        id_col = str(df.columns[0])
    return FeatureTable.from_frame(
        df,
        id_col=id_col,
        name_col=name_col,
        label_col=label_col,
        columns=columns,
        exclude=exclude,
        source=str(path),
    )


def read_gtzan_features(path) -> FeatureTable:
    """GTZAN ``features_30_sec.csv``: 1,000 clips, 57 librosa features, genre ``label``.

    Ids are the file names (``blues.00000.au``); ``length`` (samples) is not a feature.
    """
    df = _read_table(path)
    needed = {"filename", "label", "tempo", "mfcc1_mean"}
    if not needed <= set(df.columns):
        raise DataError(
            f"not a GTZAN feature table: missing columns {sorted(needed - set(df.columns))}",
            path=path,
        )
    return FeatureTable.from_frame(
        df, id_col="filename", label_col="label", exclude=("length",), source=str(path)
    )


SPOTIFY_FEATURES = (
    "acousticness",
    "danceability",
    "duration_ms",
    "energy",
    "instrumentalness",
    "liveness",
    "loudness",
    "speechiness",
    "tempo",
    "valence",
    "mode",
)


def read_spotify_artists(path, *, columns: Sequence[str] = SPOTIFY_FEATURES) -> FeatureTable:
    """Spotify ``data_by_artist.csv``: per-artist means of Spotify audio features.

    Names are quoted CSV fields that may hold commas and doubled quotes
    (``\"\"\"Weird Al\"\" Yankovic\"``); a real CSV parser reads them. ``popularity`` and ``count``
    are not audio and ``key`` is a pitch class, so they are not features by default. Rows are
    ordered by ``count`` (tracks averaged) descending, so when two rows share a normalised name,
    the better-supported one is matched.
    """
    df = _read_table(path)
    if "artists" not in df.columns:
        raise DataError(
            f"not a Spotify per-artist table: no 'artists' column (found {list(df.columns)[:6]})",
            path=path,
        )
    df = df[df["artists"].notna()]
    if "count" in df.columns:
        df = df.sort_values("count", ascending=False, kind="stable")
    df = df.drop_duplicates("artists").reset_index(drop=True)
    return FeatureTable.from_frame(df, id_col="artists", columns=columns, source=str(path))


def tag_matrix(item_tags) -> sp.csr_matrix:
    """Items x tags 0/1 matrix from per-item tag lists (``None``/empty = untagged).

    Examples
    --------
    >>> tag_matrix([["rock", "indie"], [], ["rock"]]).toarray().tolist()
    [[1.0, 1.0], [0.0, 0.0], [1.0, 0.0]]
    """
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, tags in enumerate(item_tags):
        if not isinstance(tags, list | tuple | np.ndarray):
            continue
        for t in dict.fromkeys(str(t) for t in tags):
            rows.append(i)
            cols.append(vocab.setdefault(t, len(vocab)))
    return sp.csr_matrix(
        (np.ones(len(rows)), (rows, cols)), shape=(len(item_tags), max(len(vocab), 1))
    )
