"""Bounded-memory streaming for readers: line blocks, validated parsing, incremental aggregation.

A file is read in blocks of whole lines (``block_bytes`` each, default 16 MiB), so memory holds
one block plus the aggregated result, never the whole file. Every block knows the 1-based
number of its first line, which makes every error exact: decoding errors, wrong field counts
and bad values all name the file, line and field.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from deepcuts.data.readers._common import check_file
from deepcuts.exceptions import DataError

__all__ = [
    "Block",
    "PairAccumulator",
    "Vocab",
    "iter_blocks",
    "iter_blocks_from",
    "parse_block",
    "require_nonempty",
    "to_count",
    "to_unix_seconds",
]

DEFAULT_BLOCK_BYTES = 16 << 20


@dataclass(frozen=True)
class Block:
    """Whole lines of a file: raw bytes (ending in a newline) and the number of the first."""

    first_line: int
    data: bytes
    path: Path
    encoding: str

    @property
    def n_lines(self) -> int:
        return self.data.count(b"\n")

    def text(self, columns=None, sep: str = "\t") -> str:
        """Decoded text; a decoding error names the line (and the field, given ``columns``)."""
        try:
            return self.data.decode(self.encoding)
        except UnicodeDecodeError as e:
            raise _decode_error(self, e, columns, sep) from None

    def line(self, k: int) -> bytes:
        """Line ``k`` (0-based within the block), without its newline."""
        return self.data.split(b"\n", k + 1)[k].rstrip(b"\r")


def _decode_error(block: Block, e: UnicodeDecodeError, columns=None, sep: str = "\t") -> DataError:
    before = block.data[: e.start]
    k = before.count(b"\n")
    line_start = before.rfind(b"\n") + 1
    field_no = block.data[line_start : e.start].count(sep.encode())
    field = None
    if columns is not None and field_no < len(columns):
        field = columns[field_no]
    return DataError(
        f"byte 0x{block.data[e.start]:02x} cannot be decoded as {block.encoding} ({e.reason}); "
        f"re-save the file as UTF-8 or pass the file's encoding (e.g. encoding='latin-1', "
        f"CLI: --encoding latin-1)",
        path=block.path,
        line=block.first_line + k,
        field=field,
    )


class _Progress:
    def __init__(self, total: int, desc: str, show: bool):
        self.bar = None
        if show:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, unit="B", unit_scale=True, desc=desc, leave=False)
        self.pos = 0

    def update(self, pos: int) -> None:
        if self.bar is not None and pos > self.pos:
            self.bar.update(pos - self.pos)
        self.pos = max(self.pos, pos)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def iter_blocks(
    path,
    *,
    encoding: str = "utf-8",
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    show_progress: bool = False,
    desc: str | None = None,
    allow_empty: bool = False,
) -> Iterator[Block]:
    """Yield a file's lines in blocks of about ``block_bytes`` bytes (``.gz`` is decompressed).

    A UTF-8 byte-order mark is removed. The last line gets a newline if it lacks one. An empty
    file raises :class:`DataError` unless ``allow_empty``.
    """
    p = check_file(path) if not allow_empty else Path(path)
    if block_bytes < 1:
        raise ValueError(f"block_bytes must be >= 1, got {block_bytes}")
    raw = open(p, "rb")  # noqa: SIM115
    fh = gzip.GzipFile(fileobj=raw, mode="rb") if p.suffix == ".gz" else raw
    progress = _Progress(os.path.getsize(p), desc or p.name, show_progress)
    try:
        yield from iter_blocks_from(
            fh,
            p,
            encoding=encoding,
            block_bytes=block_bytes,
            allow_empty=allow_empty,
            on_read=lambda: progress.update(raw.tell()),
        )
    finally:
        progress.close()
        fh.close()
        raw.close()


def iter_blocks_from(
    fh,
    label: Path,
    *,
    encoding: str = "utf-8",
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    allow_empty: bool = False,
    on_read=None,
) -> Iterator[Block]:
    """Like :func:`iter_blocks` for an open binary file object; ``label`` names it in errors."""
    line = 1
    carry = b""
    first = True
    while True:
        try:
            chunk = fh.read(block_bytes)
        except (OSError, EOFError) as e:
            raise DataError(f"cannot read compressed data ({e})", path=label) from None
        if on_read is not None:
            on_read()
        if first:
            first = False
            if chunk.startswith(b"\xef\xbb\xbf"):
                chunk = chunk[3:]
            if not chunk.strip() and not allow_empty:
                raise DataError(
                    "file is empty (no lines); pass a file with data (was the download or "
                    "export complete?)",
                    path=label,
                )
        if not chunk:
            if carry:
                yield Block(line, carry + b"\n", label, encoding)
            return
        data = carry + chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            carry = data
            continue
        carry = data[cut + 1 :]
        block = Block(line, data[: cut + 1], label, encoding)
        line += block.n_lines
        yield block


_PANDAS_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_PANDAS_EOF = re.compile(r"EOF inside string starting at row (\d+)")


def parse_block(
    block: Block,
    columns: list[str],
    *,
    sep: str = "\t",
    quoting: int = csv.QUOTE_NONE,
    header_lines: int = 0,
) -> pd.DataFrame:
    """Parse a block of delimited lines into a DataFrame of strings, checking field counts.

    With ``quoting=csv.QUOTE_NONE`` (tab-separated dumps) every line must have exactly
    ``len(columns)`` fields; blank lines are skipped. ``header_lines`` lines at the start of the
    block are skipped (the header). Returns string columns (empty fields are ``""``) and a
    ``_line`` column with each row's 1-based line number.
    """
    ncol = len(columns)
    text = block.text(columns, sep)
    sep_b = sep.encode()
    n_lines = block.n_lines - header_lines
    if n_lines <= 0:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in [*columns, "_line"]})
    blank = False
    if quoting == csv.QUOTE_NONE:
        body = block.data
        if header_lines:
            body = body.split(b"\n", header_lines)[header_lines]
        n_sep = body.count(sep_b)
        if n_sep != (ncol - 1) * n_lines:
            blank = _check_fields(block, body, columns, sep, header_lines)
    try:
        df = pd.read_csv(
            io.StringIO(text),
            sep=sep,
            header=None,
            names=columns,
            dtype=str,
            na_filter=quoting != csv.QUOTE_NONE,
            keep_default_na=False,
            na_values=[""],
            quoting=quoting,
            skip_blank_lines=False,
            skiprows=header_lines,
            engine="c",
        )
    except pd.errors.ParserError as e:
        # pandas counts "line N" from 1 including skipped header lines, "row R" from 0
        m = _PANDAS_FIELDS.search(str(e))
        if m is not None:
            raise DataError(
                f"expected {ncol} {sep!r}-separated fields ({', '.join(columns)}), got "
                f"{m.group(3)}; fix or remove this line",
                path=block.path,
                line=block.first_line + int(m.group(2)) - 1,
            ) from None
        m = _PANDAS_EOF.search(str(e))
        if m is not None:
            raise DataError(
                "a quoted field is never closed (unbalanced '\"'); close the quote or remove it",
                path=block.path,
                line=block.first_line + int(m.group(1)),
            ) from None
        raise DataError(f"cannot parse ({e})", path=block.path, line=block.first_line) from None
    df["_line"] = np.arange(len(df), dtype=np.int64) + block.first_line + header_lines
    if quoting == csv.QUOTE_NONE:
        if blank:
            keep = ~(df[columns] == "").all(axis=1).to_numpy()
            df = df[keep]
    else:
        df = df[~df[list(df.columns[:-1])].isna().all(axis=1).to_numpy()]
        df = df.fillna("")
    return df


def _check_fields(block: Block, body: bytes, columns, sep: str, header_lines: int) -> bool:
    """Find the first line with a wrong field count (slow path); return True if only blanks."""
    sep_b = sep.encode()
    ncol = len(columns)
    has_blank = False
    for k, ln in enumerate(body.split(b"\n")[:-1]):
        ln = ln.rstrip(b"\r")
        if not ln.strip():
            has_blank = True
            continue
        got = ln.count(sep_b) + 1
        if got != ncol:
            raise DataError(
                f"expected {ncol} {sep!r}-separated fields ({', '.join(columns)}), got {got}; "
                f"fix or remove this line",
                path=block.path,
                line=block.first_line + header_lines + k,
            )
    return has_blank


def require_nonempty(df: pd.DataFrame, col: str, path, what: str | None = None) -> None:
    """Raise naming the first line where ``col`` is empty."""
    bad = (df[col] == "").to_numpy()
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{what or col} is empty; every line needs a value here",
            path=path,
            line=int(df["_line"].iloc[k]),
            field=col,
        )


#: largest play count stored (counts are float32)
FLOAT32_MAX = float(np.finfo(np.float32).max)


def _plain(v):
    """A NumPy scalar as the Python value (so messages show -3, not np.int64(-3))."""
    return v.item() if isinstance(v, np.generic) else v


def to_count(df: pd.DataFrame, col: str, path) -> np.ndarray:
    """Parse a count column (float64, finite, >= 0), naming the first bad line."""
    s = df[col]
    vals = pd.to_numeric(s, errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(vals) | (vals < 0) | (vals > FLOAT32_MAX)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        v = s.iloc[k]
        if vals[k] > FLOAT32_MAX and np.isfinite(vals[k]):
            why = f"is larger than a float32 play count can hold ({FLOAT32_MAX:.4g})"
        elif np.isfinite(vals[k]):
            why = "is negative"
        elif str(v).strip() == "":
            why = "is empty (does the line have too few fields?)"
        else:
            why = "is not a number"
        raise DataError(
            f"count {v if isinstance(v, str) else _plain(v)!r} {why}; play counts must be "
            f"non-negative numbers",
            path=path,
            line=int(df["_line"].iloc[k]),
            field=col,
        )
    return vals


def to_unix_seconds(df: pd.DataFrame, col: str, path, fmt: str | None = None) -> np.ndarray:
    """Parse ISO-8601 date-times or unix seconds to int64 unix seconds, naming bad lines."""
    s = df[col]
    if pd.api.types.is_datetime64_any_dtype(s):
        t = pd.to_datetime(s, utc=True)
        if t.isna().any():
            k = int(np.flatnonzero(t.isna().to_numpy())[0])
            raise DataError("time is missing", path=path, line=int(df["_line"].iloc[k]), field=col)
        return ((t - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(np.int64)
    num = pd.to_numeric(s, errors="coerce")
    if len(s) and num.notna().all():
        return num.to_numpy(np.float64).astype(np.int64)
    t = pd.to_datetime(s, utc=True, errors="coerce", format=fmt or "ISO8601")
    bad = t.isna().to_numpy()
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"time {s.iloc[k]!r} is not an ISO-8601 date-time or unix seconds; write it like "
            f"2009-05-04T23:08:57Z or 1241478537",
            path=path,
            line=int(df["_line"].iloc[k]),
            field=col,
        )
    return ((t - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(np.int64)


class Vocab:
    """Incremental external id -> contiguous index map (first appearance order).

    Lookups are done once per distinct value of a batch, so cost grows with the vocabulary,
    not with the number of lines.
    """

    def __init__(self):
        self._d: dict = {}

    def __len__(self) -> int:
        return len(self._d)

    def encode(self, values) -> np.ndarray:
        """Indices (int64) of ``values``, adding unseen ones."""
        codes, uniques = pd.factorize(pd.Series(values, dtype=object), sort=False)
        d = self._d
        lut = np.empty(len(uniques), dtype=np.int64)
        for j, v in enumerate(uniques):
            k = d.get(v)
            if k is None:
                k = d[v] = len(d)
            lut[j] = k
        return lut[codes]

    def ids(self) -> np.ndarray:
        """Ids in index order, shape (n,), object dtype."""
        out = np.empty(len(self._d), dtype=object)
        out[:] = list(self._d)
        return out


class PairAccumulator:
    """Sum values (and keep the latest time) per (row, col) pair, in bounded memory.

    Batches are aggregated on arrival (sort-based, NumPy) and merged geometrically, so memory
    stays within a small multiple of the number of distinct pairs, whatever the number of lines.
    Each pair costs 12 bytes (int64 key, float32 sum; +8 with times) between merges and about
    twice that during a merge; values are summed in float64 within a batch.
    """

    def __init__(self, *, with_time: bool = False):
        self.with_time = with_time
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] = []
        self._buffered = 0
        self._merged = 0

    def add(self, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, times=None) -> None:
        if len(rows) == 0:
            return
        key = (np.asarray(rows, np.int64) << 32) | np.asarray(cols, np.int64)
        t = np.asarray(times, np.int64) if self.with_time else None
        part = self._reduce([key, np.asarray(vals, np.float64), t])
        self._parts.append(part)
        self._buffered += len(part[0])
        if self._buffered > max(self._merged, 1 << 20):
            self._merge()

    @staticmethod
    def _reduce(arrays: list):
        """Unique sorted keys, summed values (float32) and the latest time per key (or None).

        Takes ``[key, vals, times]`` in a list and empties it, so that each temporary is freed
        as soon as it is used (the caller holds no reference): this keeps the peak of a merge
        near three arrays of the pairs' length.
        """
        key, vals, times = arrays
        arrays.clear()
        order = np.argsort(key, kind="stable") if times is None else np.lexsort((times, key))
        key = key[order]
        vals = vals[order]
        if times is not None:
            times = times[order]
        del order
        if len(key) == 0:
            return key, vals.astype(np.float32), times
        first = np.empty(len(key), dtype=bool)
        first[0] = True
        np.not_equal(key[1:], key[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        del first
        with np.errstate(over="ignore"):  # a sum past float32 becomes inf: Interactions refuses it
            summed = np.add.reduceat(vals, starts, dtype=np.float64).astype(np.float32)
        del vals
        latest = None
        if times is not None:  # sorted by time within a key: the last one is the latest
            ends = np.empty_like(starts)
            ends[:-1] = starts[1:] - 1
            ends[-1] = len(key) - 1
            latest = times[ends]
        return key[starts], summed, latest

    def _merge(self) -> None:
        if len(self._parts) > 1:
            parts, self._parts = self._parts, []
            arrays = [np.concatenate([p[0] for p in parts])]
            arrays.append(np.concatenate([p[1] for p in parts]).astype(np.float64))
            arrays.append(np.concatenate([p[2] for p in parts]) if self.with_time else None)
            del parts
            self._parts = [self._reduce(arrays)]
        self._merged = len(self._parts[0][0]) if self._parts else 0
        self._buffered = 0

    def result(self, shape: tuple[int, int]) -> tuple[sp.csr_matrix, np.ndarray | None]:
        """CSR matrix (float32) and timestamps aligned with its data (or None)."""
        self._merge()
        if not self._parts:
            m = sp.csr_matrix(shape, dtype=np.float32)
            return m, (np.zeros(0, np.int64) if self.with_time else None)
        key, vals, times = self._parts[0]  # sorted by key = (row, col)
        self._parts = []
        keep = vals != 0
        if not keep.all():
            key, vals = key[keep], vals[keep]
            times = times[keep] if times is not None else None
        del keep
        indptr = np.zeros(shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(key >> 32, minlength=shape[0]), out=indptr[1:])
        cols = (key & 0xFFFFFFFF).astype(np.int32)
        del key
        m = sp.csr_matrix((vals, cols, indptr), shape=shape)
        return m, times
