"""Read big listening logs into Spark and aggregate them to (user, artist) play counts.

The same files as :mod:`deepcuts.data.readers`, read by Spark executors instead of one process:
Last.fm 1K listen logs, generic tables (CSV/TSV/Parquet) and the MSD Taste Profile triplets.
Artist credits go through the very same :func:`deepcuts.data.artists.normalize_artists`
(run in the executors, one pandas batch at a time, each distinct name once per batch), so the
item ids are exactly the artist keys the single-machine readers produce, and a model trained
by Spark and one trained locally share item ids. Users and items are numbered in order of
first appearance, as the local readers do, so for one input file both give the same matrix.

Bad input raises :class:`~deepcuts.exceptions.DataError` naming the file, the problem and,
for local text files, the line (executors report the bad line; the driver finds its number).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from deepcuts.data.artists import normalize_artists
from deepcuts.data.idmap import IdMap
from deepcuts.data.interactions import Interactions
from deepcuts.data.readers import parse_columns, read_msd_mapping
from deepcuts.data.readers._stream import require_nonempty, to_count, to_unix_seconds
from deepcuts.data.readers.listens import LASTFM1K_COLUMNS
from deepcuts.data.readers.table import _kind as _table_kind
from deepcuts.data.readers.table import resolve_columns
from deepcuts.distributed._session import (
    _END,
    _MARK,
    active_session,
    bad_input,
    checked,
    local_path,
)
from deepcuts.exceptions import DataError

__all__ = ["SparkInteractions", "read_lastfm1k", "read_msd_taste_profile", "read_table"]

log = logging.getLogger(__name__)

#: rows emitted by the parsers before aggregation (one per listen and credited artist)
_ROWS_SCHEMA = (
    "user string, item string, name string, count double, time long, _urow long, _irow long"
)
#: spacing of the per-line order numbers, leaving room for the artists of one credit
_PARTS = 16


@dataclass(eq=False)
class SparkInteractions:
    """Play counts per (user, item) as Spark DataFrames, with first-appearance numbering.

    Attributes
    ----------
    pairs : pyspark.sql.DataFrame
        Columns ``user`` (string), ``item`` (string), ``count`` (double, summed plays or credit
        shares) and ``timestamp`` (long unix seconds of the last listen, null without times);
        one row per pair. Persisted (memory and disk): call :meth:`unpersist` when done.
    users : pyspark.sql.DataFrame
        Columns ``user``, ``uidx`` (int, 0-based, order of first appearance).
    items : pyspark.sql.DataFrame
        Columns ``item``, ``name`` (display name), ``iidx`` (int, 0-based).
    meta : dict
        Source, path, counts (``n_users``, ``n_items``, ``nnz``) and reader options.
    """

    pairs: object
    users: object
    items: object
    meta: dict = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return int(self.meta["n_users"])

    @property
    def n_items(self) -> int:
        return int(self.meta["n_items"])

    @property
    def nnz(self) -> int:
        return int(self.meta["nnz"])

    def __repr__(self) -> str:
        return (
            f"SparkInteractions(n_users={self.n_users}, n_items={self.n_items}, nnz={self.nnz}, "
            f"source={self.meta.get('source')!r})"
        )

    def indexed(self):
        """The pairs with integer ids: columns ``uidx``, ``iidx``, ``count``, ``timestamp``."""
        from pyspark.sql import functions as F

        p = self.pairs.alias("p")
        return (
            p.join(self.users.alias("u"), F.col("p.user") == F.col("u.user"))
            .join(self.items.alias("i"), F.col("p.item") == F.col("i.item"))
            .select("u.uidx", "i.iidx", "p.count", "p.timestamp")
        )

    def to_interactions(self) -> Interactions:
        """Collect to a local :class:`~deepcuts.data.Interactions` (it must fit on the driver).

        Users and items keep the first-appearance numbering, so for one file this equals the
        single-machine reader's result (same ids, same order, same counts).
        """
        pdf = self.indexed().toPandas()
        users = self.users.orderBy("uidx").toPandas()
        items = self.items.orderBy("iidx").toPandas()
        return build_interactions(
            pdf["uidx"].to_numpy(np.int64),
            pdf["iidx"].to_numpy(np.int64),
            pdf["count"].to_numpy(np.float64),
            pdf["timestamp"].to_numpy() if self.meta.get("with_time") else None,
            users["user"].to_numpy(dtype=object),
            items["item"].to_numpy(dtype=object),
            items["name"].to_numpy(dtype=object),
            meta=self.meta,
        )

    def unpersist(self) -> None:
        """Release the cached DataFrames."""
        for df in (self.pairs, self.users, self.items):
            df.unpersist()


def build_interactions(
    uidx, iidx, counts, timestamps, user_ids, item_ids, item_names, *, meta=None
) -> Interactions:
    """A local :class:`Interactions` from collected pairs (any order) and ordered id arrays.

    >>> import numpy as np
    >>> x = build_interactions(np.array([1, 0]), np.array([0, 1]), np.array([2.0, 3.0]), None,
    ...                        np.array(["u0", "u1"], dtype=object), np.array(["a", "b"], dtype=object),
    ...                        np.array(["A", None], dtype=object))
    >>> x.matrix.toarray().tolist(), x.items["name"].tolist()
    ([[0.0, 3.0], [2.0, 0.0]], ['A', 'b'])
    """
    order = np.lexsort((iidx, uidx))
    uidx, iidx = uidx[order], iidx[order]
    n_users, n_items = len(user_ids), len(item_ids)
    indptr = np.zeros(n_users + 1, np.int64)
    np.cumsum(np.bincount(uidx, minlength=n_users), out=indptr[1:])
    m = sp.csr_matrix(
        (np.asarray(counts, np.float64)[order].astype(np.float32), iidx.astype(np.int32), indptr),
        shape=(n_users, n_items),
    )
    ts = None
    if timestamps is not None:
        ts = np.asarray(pd.to_numeric(pd.Series(timestamps)).fillna(0), np.int64)[order]
    items = pd.DataFrame(
        {
            "item": item_ids,
            "name": [str(n) if n is not None else str(i) for n, i in zip(item_names, item_ids)],
        }
    )
    items["tags"] = [[] for _ in range(len(items))]
    x = Interactions(
        m, IdMap(user_ids, name="user"), IdMap(item_ids, name="item"), items=items, timestamps=ts
    )
    x.meta.update({k: v for k, v in (meta or {}).items() if k not in ("n_users", "n_items", "nnz")})
    return x


# ---------------------------------------------------------------------- executor-side parsing
def _split_lines(b: pd.DataFrame, columns: list[str], sep: str = "\t"):
    """Parse a batch of raw lines (``value``, ``_file``, ``_row``) into string columns.

    Mirrors :func:`deepcuts.data.readers._stream.parse_block`: blank lines are skipped, every
    other line needs exactly ``len(columns)`` fields. The ``_line`` column holds each row's
    position in the batch (the driver finds the real line number of a bad line).
    """
    lines = b["value"].astype(object).str.removeprefix("\ufeff")
    keep = (lines.str.strip() != "").to_numpy()
    lines = lines[keep].reset_index(drop=True)
    files = b["_file"].to_numpy(dtype=object)[keep]
    rows = b["_row"].to_numpy(np.int64)[keep]
    bad = lines.str.contains("\ufffd", regex=False).to_numpy()
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise bad_input(
            "this line is not valid UTF-8 (Spark reads text files as UTF-8); re-save the file "
            "as UTF-8",
            path=files[k],
            text=lines[k],
        )
    ncol = len(columns)
    got = (lines.str.count(sep) + 1).to_numpy()
    bad = got != ncol
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise bad_input(
            f"expected {ncol} {sep!r}-separated fields ({', '.join(columns)}), got {got[k]}; "
            f"fix or remove this line",
            path=files[k],
            text=lines[k],
        )
    if len(lines):
        df = lines.str.split(sep, n=ncol - 1, expand=True, regex=False)
        df.columns = columns
    else:
        df = pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})
    df["_line"] = np.arange(len(df), dtype=np.int64)
    return df, files, lines.to_numpy(dtype=object), rows


def _local_check(fn, df, files, lines, *args, **kw):
    """Run a local reader's validator; its DataError becomes an executor report of the line."""
    try:
        return fn(df, *args, **kw)
    except DataError as e:
        k = int(e.line)
        prefix = str(DataError("", line=e.line, field=e.field))
        raise bad_input(
            str(e)[len(prefix) :], path=files[k], field=e.field, text=lines[k]
        ) from None


def _credit_rows(users, artists, counts, times, rows, *, credit: str, normalize: bool):
    """One output row per credited artist of each input row (see ``_ROWS_SCHEMA``)."""
    artists = np.asarray(artists, dtype=object)
    if normalize:
        norm = normalize_artists(artists, credit=credit)
        r = norm["row"].to_numpy(np.int64)
        keys = norm["key"].to_numpy(dtype=object)
        disp = norm["display"].to_numpy(dtype=object)
        share = norm["share"].to_numpy(np.float64)
    else:
        r = np.arange(len(artists), dtype=np.int64)
        keys = disp = artists
        share = np.ones(len(artists))
    part = np.zeros(len(r), np.int64)
    if len(r):
        starts = np.r_[0, np.flatnonzero(np.diff(r)) + 1]
        part = np.arange(len(r)) - np.repeat(starts, np.diff(np.r_[starts, len(r)]))
    order = np.asarray(rows, np.int64)[r] * _PARTS
    return pd.DataFrame(
        {
            "user": np.asarray(users, dtype=object)[r],
            "item": keys,
            "name": disp,
            "count": share * np.asarray(counts, np.float64)[r],
            "time": None if times is None else np.asarray(times, np.int64)[r],
            "_urow": order,
            "_irow": order + np.minimum(part, _PARTS - 1),
        }
    )


def _lastfm1k_batches(batches, *, credit: str, normalize: bool):
    for b in batches:
        df, files, lines, rows = _split_lines(b, LASTFM1K_COLUMNS)
        _local_check(require_nonempty, df, files, lines, "user", None)
        t = _local_check(to_unix_seconds, df, files, lines, "time", None, fmt="%Y-%m-%dT%H:%M:%SZ")
        has = (df["artist"].str.strip() != "").to_numpy()
        out = _credit_rows(
            df["user"].to_numpy(dtype=object)[has],
            df["artist"].to_numpy(dtype=object)[has],
            np.ones(int(has.sum())),
            t[has],
            rows[has],
            credit=credit,
            normalize=normalize,
        )
        yield out
        skipped = int((~has).sum())
        if skipped:  # counted in a row without user and item
            none = np.array([None], dtype=object)
            yield pd.DataFrame(
                {
                    "user": none,
                    "item": none,
                    "name": none,
                    "count": np.array([float(skipped)]),
                    "time": pd.array([None], dtype="Int64"),
                    "_urow": np.zeros(1, np.int64),
                    "_irow": np.zeros(1, np.int64),
                }
            )


def _credit_batches(batches, *, credit: str):
    for b in batches:
        yield _credit_rows(
            b["user"].to_numpy(dtype=object),
            b["item"].to_numpy(dtype=object),
            b["count"].to_numpy(np.float64),
            b["time"].to_numpy() if b["time"].notna().all() else None,
            b["_row"].to_numpy(np.int64),
            credit=credit,
            normalize=True,
        )


def _triplet_batches(batches):
    for b in batches:
        df, files, lines, rows = _split_lines(b, ["user", "song", "count"])
        _local_check(require_nonempty, df, files, lines, "user", None)
        _local_check(require_nonempty, df, files, lines, "song", None)
        counts = _local_check(to_count, df, files, lines, "count", None)
        yield pd.DataFrame(
            {
                "user": df["user"].to_numpy(dtype=object),
                "song": df["song"].to_numpy(dtype=object),
                "count": counts,
                "_row": rows,
                "_text": lines,
                "_file": files,
            }
        )


# ---------------------------------------------------------------------- driver side
def _check_input(path) -> str:
    """Path as a string; local paths must exist and not be empty (as the local readers say)."""
    s = str(path)
    p = local_path(s)
    if p is not None:
        if not os.path.exists(p):
            raise DataError("file not found; check the path", path=p)
        if os.path.isfile(p) and os.path.getsize(p) == 0:
            raise DataError(
                "file is empty; pass a file with data (was the download or export complete?)",
                path=p,
            )
        return str(Path(p).resolve())
    return s


def _lines(spark, path: str):
    from pyspark.sql import functions as F

    return spark.read.text(path).select(
        F.col("value"),
        F.input_file_name().alias("_file"),
        F.monotonically_increasing_id().alias("_row"),
    )


def _with_index(spark, df, order: list[str], name: str):
    """``df`` plus a contiguous int column ``name`` numbering rows in ``order`` (distributed)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    s = (
        df.orderBy(*order)
        .withColumn("_pid", F.spark_partition_id())
        .withColumn("_mid", F.monotonically_increasing_id())
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    counts = sorted((r["_pid"], r["count"]) for r in s.groupBy("_pid").count().collect())
    offsets, total = [], 0
    for pid, c in counts:
        offsets.append((int(pid), total))
        total += int(c)
    off = spark.createDataFrame(offsets or [(0, 0)], "_opid int, _off long")
    out = (
        s.join(F.broadcast(off), s["_pid"] == off["_opid"])
        .withColumn(
            name,
            (F.col("_off") + F.col("_mid") - F.shiftleft(F.col("_pid").cast("long"), 33)).cast(
                "int"
            ),
        )
        .drop("_pid", "_mid", "_opid", "_off")
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    out.count()
    s.unpersist()
    return out, total


def _aggregate(spark, rows, meta: dict, *, with_time: bool) -> SparkInteractions:
    """Sum the emitted rows per (user, item), number users and items, cache and count."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    agg = (
        rows.groupBy("user", "item")
        .agg(
            F.sum("count").alias("count"),
            F.max("time").alias("timestamp"),
            F.min("_urow").alias("_urow"),
            F.min("_irow").alias("_irow"),
            F.min_by("name", "_irow").alias("name"),
        )
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    try:
        checked(agg.count)  # reads the input once; bad lines surface here
    except BaseException:
        agg.unpersist()
        raise
    skipped = agg.filter(F.col("item").isNull()).agg(F.sum("count")).first()[0]
    pairs_all = agg.filter(F.col("item").isNotNull())
    users, n_users = _with_index(
        spark,
        pairs_all.groupBy("user").agg(F.min("_urow").alias("_urow")),
        ["_urow", "user"],
        "uidx",
    )
    items, n_items = _with_index(
        spark,
        pairs_all.groupBy("item").agg(
            F.min_by("name", "_irow").alias("name"), F.min("_irow").alias("_irow")
        ),
        ["_irow", "item"],
        "iidx",
    )
    pairs = pairs_all.select("user", "item", "count", "timestamp").persist(
        StorageLevel.MEMORY_AND_DISK
    )
    nnz = pairs.count()
    agg.unpersist()
    if nnz == 0:
        raise DataError("no listens found", path=meta.get("path"))
    meta = {
        **meta,
        "n_users": n_users,
        "n_items": n_items,
        "nnz": int(nnz),
        "with_time": with_time,
    }
    if skipped:
        meta["skipped"] = int(skipped)
        log.warning("%s: skipped %d listens with an empty artist name", meta.get("path"), skipped)
    out = SparkInteractions(
        pairs, users.select("user", "uidx"), items.select("item", "name", "iidx"), meta
    )
    log.info("read %r", out)
    return out


def _check_options(credit: str) -> None:
    if credit not in ("primary", "split"):
        raise DataError(f"credit must be 'primary' or 'split', got {credit!r}", field="credit")


def read_lastfm1k(
    path, *, spark=None, credit: str = "primary", normalize: bool = True
) -> SparkInteractions:
    """Read a Last.fm 1K listen log with Spark, aggregated to (user, artist) play counts.

    The distributed counterpart of :func:`deepcuts.data.read_lastfm1k` (artist level): the
    same validation, artist keys, skipped empty-artist listens (``meta["skipped"]``), counts
    and last-listen times, and the same first-appearance numbering.

    Parameters
    ----------
    path : path or URI
        ``userid-timestamp-artid-artname-traid-traname.tsv`` (tab-separated, no header: user,
        ISO-8601 time, artist MBID, artist name, track MBID, track name; ``.gz`` allowed), a
        local path or any URI Spark reads (``hdfs://``, ``s3a://``...).
    spark : SparkSession, optional
        Default: the active session, else a :func:`~deepcuts.distributed.local_session`.
    credit : {"primary", "split"}, default="primary"
        See :func:`deepcuts.data.artists.artist_credits`.
    normalize : bool, default=True
        Normalise artist names (``False`` keeps them as written).

    Returns
    -------
    SparkInteractions

    Examples
    --------
    >>> x = read_lastfm1k("listens.tsv", spark=local_session())  # doctest: +SKIP
    >>> x.to_interactions().shape  # doctest: +SKIP
    (992, 107296)
    """
    _check_options(credit)
    spark = active_session(spark)
    p = _check_input(path)
    rows = _lines(spark, p).mapInPandas(
        partial(_lastfm1k_batches, credit=credit, normalize=normalize), _ROWS_SCHEMA
    )
    meta = {"source": "lastfm-1k", "path": p, "level": "artist", "credit": credit}
    meta["normalize"] = normalize
    out = _aggregate(spark, rows, meta, with_time=True)
    out.meta.setdefault("skipped", 0)
    return out


def _try_cast(col, type_: str):
    """``col`` cast to ``type_``, null where that fails (also under ANSI mode, Spark 4's default)."""
    from pyspark.sql import Column

    if hasattr(Column, "try_cast"):  # pyspark >= 4
        return col.try_cast(type_)
    from pyspark.sql import functions as F  # pragma: no cover - pyspark 3.5

    return F.when(
        col.cast("string").rlike(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"), col.cast(type_)
    )


def _fail_when(cond, problem, *, file_col, field: str, text=None):
    """A Spark SQL column that raises a bad-input report (for :func:`checked`) where ``cond``."""
    from pyspark.sql import functions as F

    payload = F.to_json(
        F.struct(
            problem.alias("problem"),
            file_col.alias("path"),
            F.lit(field).alias("field"),
            (text if text is not None else F.lit(None).cast("string")).alias("text"),
        )
    )
    return F.when(cond, F.raise_error(F.concat(F.lit(_MARK), payload, F.lit(_END))))


def read_table(
    path,
    *,
    spark=None,
    columns: str | dict | None = None,
    format: str | None = None,
    normalize: bool = False,
    credit: str = "primary",
) -> SparkInteractions:
    """Read a CSV/TSV (with header) or Parquet table of plays with Spark.

    The distributed counterpart of :func:`deepcuts.data.read_table`: the same column roles
    (``user``, ``item``, optional ``count``/``time``/``name``), counts summed per pair (1 per
    row without a count column), the same first-appearance numbering.

    Parameters
    ----------
    path : path or URI
        A file or a folder of files of one format (Spark reads them all).
    spark : SparkSession, optional
    columns : str or dict, optional
        ``"user=uid,item=artist,count=plays"``; default: columns named ``user``, ``item`` and,
        when present, ``count``, ``time``, ``name``.
    format : {"csv", "tsv", "parquet"}, optional
        Default: from the file extension.
    normalize : bool, default=False
        Treat ``item`` as a raw artist credit and map it to the artist key of
        :mod:`deepcuts.data.artists` (as the Last.fm 1K reader does); ``False`` keeps the
        item ids as written (as :func:`deepcuts.data.read_table` does).
    credit : {"primary", "split"}, default="primary"
        With ``normalize=True``: how a credit of several artists counts.

    Returns
    -------
    SparkInteractions
    """
    from pyspark.sql import functions as F

    _check_options(credit)
    spark = active_session(spark)
    p = _check_input(path)
    kind = _table_kind(Path(p), format) if format or not os.path.isdir(p) else format
    if kind is None:
        raise DataError(
            "cannot tell the table format of a folder; pass format='csv', 'tsv' or 'parquet'",
            path=p,
        )
    cols = parse_columns(columns)
    if kind == "parquet":
        df = checked(lambda: spark.read.parquet(p))
    else:
        sep = "," if kind == "csv" else "\t"
        df = spark.read.options(header=True, sep=sep, quote='"', escape='"').csv(p)
    header = list(df.columns)
    cols = resolve_columns(cols, header, path=p, kind=kind)
    file_col = F.input_file_name()
    text = (
        None
        if kind == "parquet"
        else F.concat_ws(sep, *[F.col(f"`{c}`").cast("string") for c in header])
    )
    df = df.withColumn("_file", file_col).withColumn(
        "_text", text if text is not None else F.lit(None).cast("string")
    )
    df = df.withColumn("_row", F.monotonically_increasing_id())
    fail = partial(_fail_when, file_col=F.col("_file"), text=F.col("_text"))

    def required(role):
        c = F.col(f"`{cols[role]}`").cast("string")
        empty = c.isNull() | (F.trim(c) == "")
        msg = F.lit(f"{cols[role]} is empty; every line needs a value here")
        return F.coalesce(fail(empty, msg, field=cols[role]), c)

    user, item = required("user"), required("item")
    if "count" in cols:
        raw = F.col(f"`{cols['count']}`").cast("string")
        num = _try_cast(raw, "double")
        bad_num = raw.isNull() | num.isNull() | F.isnan(num) | (F.abs(num) == float("inf"))
        why = (
            F.when(
                raw.isNull() | (F.trim(raw) == ""),
                F.lit("is empty (does the line have too few fields?)"),
            )
            .when(bad_num, F.lit("is not a number"))
            .otherwise(F.lit("is negative"))
        )
        msg = F.format_string("count '%s' %s; play counts must be non-negative numbers", raw, why)
        count = F.coalesce(fail(bad_num | (num < 0), msg, field=cols["count"]), num)
    else:
        count = F.lit(1.0)
    if "time" in cols:
        tc = F.col(f"`{cols['time']}`")
        dtype = dict(df.dtypes)[cols["time"]]
        if dtype.startswith("timestamp") or dtype == "date":
            t = F.unix_timestamp(tc.cast("timestamp"))
        else:
            s = tc.cast("string")
            t = F.coalesce(
                _try_cast(s, "double").cast("long"),
                F.unix_timestamp(F.try_to_timestamp(s)),
            )
        msg = F.format_string(
            "time '%s' is not an ISO-8601 date-time or unix seconds; write it like "
            "2009-05-04T23:08:57Z or 1241478537",
            tc.cast("string"),
        )
        time = F.coalesce(fail(t.isNull(), msg, field=cols["time"]), t)
    else:
        time = F.lit(None).cast("long")
    name = F.col(f"`{cols['name']}`").cast("string") if "name" in cols else item
    base = df.select(
        user.alias("user"),
        item.alias("item"),
        name.alias("name"),
        count.alias("count"),
        time.alias("time"),
        F.col("_row"),
    )
    if normalize:
        rows = base.mapInPandas(partial(_credit_batches, credit=credit), _ROWS_SCHEMA)
    else:
        order = F.col("_row") * _PARTS
        rows = base.select(
            "user", "item", "name", "count", "time", order.alias("_urow"), order.alias("_irow")
        )
    meta = {"source": "table", "path": p, "columns": cols, "normalize": normalize}
    return _aggregate(spark, rows, meta, with_time="time" in cols)


def read_msd_taste_profile(
    path,
    mapping,
    *,
    spark=None,
    credit: str = "primary",
    unknown_songs: str = "raise",
) -> SparkInteractions:
    """Read MSD Taste Profile triplets (``user \\t song \\t count``) with Spark, per artist.

    The distributed counterpart of :func:`deepcuts.data.read_msd_taste_profile` (artist
    level). The song -> artist mapping (about a million songs for the full dataset) is read and
    normalised on the driver with the local reader, then joined to the triplets in Spark.

    Parameters
    ----------
    path : path or URI
        ``train_triplets.txt`` (tab-separated, no header; ``.gz`` allowed).
    mapping : path or pandas.DataFrame
        MSD ``unique_tracks.txt``, a CSV with ``song_id, artist_name``, or
        :func:`deepcuts.data.read_msd_mapping`'s result.
    spark : SparkSession, optional
    credit : {"primary", "split"}, default="primary"
    unknown_songs : {"raise", "drop"}, default="raise"
        A song missing from the mapping raises :class:`DataError`, or its plays are dropped.

    Returns
    -------
    SparkInteractions
        Items numbered in mapping order (as the local reader does), users by first appearance.
    """
    from pyspark.sql import functions as F

    _check_options(credit)
    if unknown_songs not in ("raise", "drop"):
        raise DataError(
            f"unknown_songs must be 'raise' or 'drop', got {unknown_songs!r}", field="unknown_songs"
        )
    spark = active_session(spark)
    p = _check_input(path)
    mp = mapping if isinstance(mapping, pd.DataFrame) else read_msd_mapping(mapping)
    for c in ("song_id", "artist_name"):
        if c not in mp.columns:
            raise DataError(f"mapping frame lacks column {c!r}", field=c)
    mp = mp.drop_duplicates("song_id", keep="first").reset_index(drop=True)
    norm = normalize_artists(mp["artist_name"].to_numpy(dtype=object), credit=credit)
    codes, _ = pd.factorize(norm["key"], sort=False)
    display = norm.groupby(codes, sort=True)["display"].first().to_numpy(dtype=object)
    song_map = pd.DataFrame(
        {
            "song_id": mp["song_id"].to_numpy(dtype=object)[norm["row"].to_numpy()],
            "item": norm["key"].to_numpy(dtype=object),
            "name": display[codes],
            "share": norm["share"].to_numpy(np.float64),
            "_code": codes.astype(np.int64),
        }
    )
    songs = spark.createDataFrame(song_map)
    trip = _lines(spark, p).mapInPandas(
        _triplet_batches,
        "user string, song string, count double, _row long, _text string, _file string",
    )
    joined = trip.join(songs, trip["song"] == songs["song_id"], "left")
    if unknown_songs == "raise":
        msg = F.format_string(
            "song '%s' is not in the song -> artist mapping; use the matching unique_tracks.txt "
            "or pass unknown_songs='drop' (CLI: --drop-unknown-songs)",
            F.col("song"),
        )
        item = F.coalesce(
            _fail_when(
                F.col("item").isNull(),
                msg,
                file_col=F.col("_file"),
                field="song",
                text=F.col("_text"),
            ),
            F.col("item"),
        )
    else:
        joined = joined.filter(F.col("item").isNotNull())
        item = F.col("item")
    rows = joined.select(
        F.col("user"),
        item.alias("item"),
        F.col("name"),
        (F.col("count") * F.col("share")).alias("count"),
        F.lit(None).cast("long").alias("time"),
        (F.col("_row") * _PARTS).alias("_urow"),
        F.col("_code").alias("_irow"),
    )
    meta = {"source": "msd-taste-profile", "path": p, "level": "artist", "credit": credit}
    return _aggregate(spark, rows, meta, with_time=False)


def from_frame(
    df, *, spark=None, user: str = "user", item: str = "item", count: str | None = "count"
):
    """SparkInteractions from a Spark DataFrame of plays (summed per pair; 1 per row without
    a ``count`` column). Users and items are numbered in order of first appearance.

    Parameters
    ----------
    df : pyspark.sql.DataFrame
    spark : SparkSession, optional
    user, item, count : str
        Column names; ``count`` may be absent or None.
    """
    from pyspark.sql import functions as F

    spark = active_session(spark)
    missing = [c for c in (user, item) if c not in df.columns]
    if missing:
        raise DataError(
            f"column(s) {missing} not found; the DataFrame has {df.columns} (pass user=, item=)",
            field=missing[0],
        )
    cnt = F.col(count).cast("double") if count and count in df.columns else F.lit(1.0)
    order = F.monotonically_increasing_id() * _PARTS
    rows = df.select(
        F.col(user).cast("string").alias("user"),
        F.col(item).cast("string").alias("item"),
        F.col(item).cast("string").alias("name"),
        cnt.alias("count"),
        F.lit(None).cast("long").alias("time"),
        order.alias("_urow"),
    ).withColumn("_irow", F.col("_urow"))
    bad = rows.filter(
        F.col("user").isNull()
        | F.col("item").isNull()
        | F.col("count").isNull()
        | (F.col("count") < 0)
    )
    if checked(lambda: bad.limit(1).count()):
        raise DataError(
            "the DataFrame has rows with a null user or item or a null or negative count; "
            "drop or fix them first"
        )
    return _aggregate(spark, rows, {"source": "dataframe"}, with_time=False)
