"""Reader for generic tables (CSV, TSV, Parquet) given a column mapping."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from deepcuts.data.idmap import IdMap
from deepcuts.data.interactions import Interactions
from deepcuts.data.readers._common import check_file
from deepcuts.data.readers._stream import (
    DEFAULT_BLOCK_BYTES,
    PairAccumulator,
    Vocab,
    iter_blocks,
    parse_block,
    require_nonempty,
    to_count,
    to_unix_seconds,
)
from deepcuts.exceptions import DataError

__all__ = ["TABLE_ROLES", "parse_columns", "read_table", "resolve_columns"]

log = logging.getLogger(__name__)

#: roles a column can play; ``user`` and ``item`` are required
TABLE_ROLES = ("user", "item", "count", "time", "name")


def parse_columns(spec: str | dict | None) -> dict[str, str]:
    """Parse a column mapping ``"user=uid,item=artist,count=plays"`` into a dict.

    >>> parse_columns("user=uid,item=artist,count=plays")
    {'user': 'uid', 'item': 'artist', 'count': 'plays'}
    """
    if spec is None:
        return {}
    if isinstance(spec, dict):
        out = dict(spec)
    else:
        out = {}
        for part in filter(None, (s.strip() for s in spec.split(","))):
            role, eq, col = part.partition("=")
            if not eq or not col.strip():
                raise DataError(
                    f"column mapping {part!r} must look like role=column "
                    f"(roles: {', '.join(TABLE_ROLES)})",
                    field="columns",
                )
            out[role.strip()] = col.strip()
    bad = [r for r in out if r not in TABLE_ROLES]
    if bad:
        raise DataError(
            f"unknown column role(s) {bad}; roles are {', '.join(TABLE_ROLES)}", field="columns"
        )
    return out


def _kind(p: Path, format: str | None) -> str:
    if format is not None:
        if format not in ("csv", "tsv", "parquet"):
            raise DataError(
                f"table format must be csv, tsv or parquet, got {format!r}", field="format"
            )
        return format
    name = p.name.lower().removesuffix(".gz")
    for ext, kind in (
        (".parquet", "parquet"),
        (".pq", "parquet"),
        (".tsv", "tsv"),
        (".tab", "tsv"),
        (".csv", "csv"),
        (".txt", "tsv"),
    ):
        if name.endswith(ext):
            return kind
    raise DataError(
        "cannot tell the table format from the file name; pass format='csv', 'tsv' or 'parquet'",
        path=p,
    )


def resolve_columns(cols: dict[str, str], header: list, *, path, kind: str) -> dict[str, str]:
    """Complete a parsed column mapping against a table's ``header``: ``user`` and ``item``
    default to columns of those names, ``count``/``time``/``name`` are taken when a column of
    that name exists, and a mapped column that is missing is a :class:`DataError` naming it
    (line 1 for text tables, whose header is their first line).

    >>> resolve_columns({"item": "artist"}, ["user", "artist", "count"], path="t.csv", kind="csv")
    {'item': 'artist', 'user': 'user', 'count': 'count'}
    """
    explicit = dict(cols)
    cols = dict(cols)
    cols.setdefault("user", "user")
    cols.setdefault("item", "item")
    for role in ("count", "time", "name"):
        if role not in cols and role in header:
            cols[role] = role
    for role, col in cols.items():
        if col not in header:
            hint = "" if role in explicit else f" (map it with columns='{role}=YOUR_COLUMN')"
            raise DataError(
                f"column {col!r} for {role} not found; the table has {header}{hint}",
                path=path,
                line=1 if kind != "parquet" else None,
                field=col,
            )
    return cols


def read_table(
    path,
    *,
    columns: str | dict | None = None,
    format: str | None = None,
    encoding: str = "utf-8",
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    show_progress: bool = False,
) -> Interactions:
    """Read a CSV/TSV (with header) or Parquet table of interactions.

    Parameters
    ----------
    path : path
        The table. CSV/TSV need a header line; fields may be quoted (``"a, b"``) but may not
        contain newlines. For raw tab-separated dumps without a header use the dedicated
        readers (:func:`~deepcuts.data.read_lastfm1k`, :func:`~deepcuts.data.read_msd_taste_profile`).
    columns : str or dict, optional
        Which column plays which role: ``user``, ``item`` (required), ``count`` (play count;
        each row counts 1 without it), ``time`` (ISO-8601 or unix seconds; the latest time of a
        pair is kept in ``timestamps``), ``name`` (item display name). Given as a dict or as
        ``"user=uid,item=artist,count=plays"``. Default: the columns named ``user``, ``item``
        and, when present, ``count``, ``time``, ``name``.
    format : {"csv", "tsv", "parquet"}, optional
        Default: from the file extension.
    encoding : str, default="utf-8"
    block_bytes : int, default=16 MiB
        Bytes per block (CSV/TSV); Parquet is read in record batches.
    show_progress : bool, default=False

    Returns
    -------
    Interactions
        Counts summed per (user, item); ``timestamps`` when a time column is given.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "plays.csv"
    >>> _ = f.write_text("uid,artist,plays\\nann,Bach,3\\nbob,Bach,1\\nann,Bach,2\\n")
    >>> x = read_table(f, columns="user=uid,item=artist,count=plays")
    >>> x.matrix.toarray().tolist()
    [[5.0], [1.0]]
    """
    p = check_file(path)
    kind = _kind(p, format)
    cols = parse_columns(columns)
    if kind == "parquet":
        batches, header = _parquet_batches(p, block_bytes)
    else:
        batches, header = _text_batches(p, kind, encoding, block_bytes, show_progress)
    cols = resolve_columns(cols, header, path=p, kind=kind)
    with_time = "time" in cols
    users, items = Vocab(), Vocab()
    acc = PairAccumulator(with_time=with_time)
    names: dict = {}
    n_rows = 0
    for df in batches:
        n_rows += len(df)
        require_nonempty(df, cols["user"], p)
        require_nonempty(df, cols["item"], p)
        counts = to_count(df, cols["count"], p) if "count" in cols else np.ones(len(df))
        t = to_unix_seconds(df, cols["time"], p) if with_time else None
        u = users.encode(df[cols["user"]].to_numpy(dtype=object))
        before = len(items)
        i = items.encode(df[cols["item"]].to_numpy(dtype=object))
        if "name" in cols:
            new = i >= before
            if new.any():
                first = np.unique(i[new], return_index=True)[1]
                sel = np.flatnonzero(new)[first]
                names.update(zip(i[sel].tolist(), df[cols["name"]].to_numpy(dtype=object)[sel]))
        acc.add(u, i, counts, t)
    if n_rows == 0:
        raise DataError("table has a header but no rows; pass a file with data", path=p)
    matrix, ts = acc.result((len(users), len(items)))
    ids = items.ids()
    frame = pd.DataFrame({"item": ids})
    frame["name"] = (
        [names.get(k) or str(v) for k, v in enumerate(ids)] if names else ids.astype(str)
    )
    frame["tags"] = [[] for _ in range(len(frame))]
    x = Interactions(
        matrix,
        IdMap(users.ids(), name="user"),
        IdMap(ids, name="item"),
        items=frame,
        timestamps=ts,
    )
    x.meta.update({"source": "table", "path": str(p), "rows": n_rows, "columns": cols})
    log.info("read %s from %d rows", x, n_rows)
    return x


def _text_batches(p: Path, kind: str, encoding: str, block_bytes: int, show_progress: bool):
    sep = "," if kind == "csv" else "\t"
    blocks = iter_blocks(
        p, encoding=encoding, block_bytes=block_bytes, show_progress=show_progress, desc=p.name
    )
    first = next(blocks)
    head = first.line(0)
    try:
        head_text = head.decode(encoding)
    except UnicodeDecodeError as e:
        from deepcuts.data.readers._stream import _decode_error

        raise _decode_error(first, e) from None
    try:
        header = [c.strip() for c in next(csv.reader([head_text], delimiter=sep))]
    except (csv.Error, StopIteration) as e:
        raise DataError(
            f"the header line cannot be read ({e}); a file with old Mac line endings (CR "
            "only) must be converted to LF or CRLF first",
            path=p,
            line=1,
        ) from None
    if not any(header):
        raise DataError(
            "header line is empty; the first line must name the columns", path=p, line=1
        )
    quoting = csv.QUOTE_MINIMAL  # as pandas/Excel write both CSV and TSV

    def gen():
        yield parse_block(first, header, sep=sep, quoting=quoting, header_lines=1)
        for b in blocks:
            yield parse_block(b, header, sep=sep, quoting=quoting)

    return gen(), header


def _parquet_batches(p: Path, block_bytes: int):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(
            "reading Parquet needs pyarrow, in the 'parquet' extra: pip install "
            "'deepcuts[parquet]' (or convert the file to CSV)",
            path=p,
        ) from None

    try:
        f = pq.ParquetFile(p)
    except Exception as e:  # pyarrow raises several types for a non-Parquet file
        raise DataError(f"not a Parquet file ({e})", path=p) from None
    header = list(f.schema_arrow.names)
    rows_per_batch = max(1024, block_bytes // 64)

    def gen():
        start = 1
        for batch in f.iter_batches(batch_size=rows_per_batch):
            df = batch.to_pandas()
            # Parquet has no lines: "line" counts data rows from 1
            df = df.astype({c: str for c in df.columns if df[c].dtype == object}).fillna("")
            df["_line"] = np.arange(len(df), dtype=np.int64) + start
            start += len(df)
            yield df

    return gen(), header
