"""Shared helpers for readers: opening (compressed) text files and validated columns."""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

from deepcuts.exceptions import DataError

__all__ = ["open_text", "read_delimited", "numeric_column", "check_file"]


def check_file(path) -> Path:
    """Return ``path`` as a Path, raising :class:`DataError` if it is missing or empty."""
    p = Path(path)
    if not p.exists():
        raise DataError("file not found; check the path", path=p)
    if p.is_dir():
        raise DataError("is a directory, expected a file", path=p)
    if os.path.getsize(p) == 0:
        raise DataError(
            "file is empty; pass a file with data (was the download or export complete?)", path=p
        )
    return p


def open_text(path, encoding: str = "utf-8") -> io.TextIOBase:
    """Open a text file, transparently decompressing ``.gz``; newlines are normalised."""
    p = check_file(path)
    if p.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(p, "rb"), encoding=encoding, newline=None)
    return open(p, encoding=encoding, newline=None)  # noqa: SIM115


def read_delimited(
    path,
    columns: list[str],
    *,
    sep: str = "\t",
    header: bool = True,
    encoding: str = "utf-8",
) -> pd.DataFrame:
    """Read a small delimited file as strings, checking the column count of every line.

    Mixed CRLF/LF line endings are handled. A line with the wrong number of fields raises
    :class:`DataError` naming the file and 1-based line number.
    """
    p = check_file(path)
    try:
        if p.suffix == ".gz":
            with gzip.open(p, "rb") as fh:
                raw = fh.read()
        else:
            raw = p.read_bytes()
    except (OSError, EOFError) as e:
        raise DataError(
            f"cannot read compressed data ({e}); is the file complete?", path=p
        ) from None
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as e:
        before = raw[: e.start]
        line_start = max(before.rfind(b"\n"), before.rfind(b"\r")) + 1
        k = before.count(b"\n") + before.replace(b"\r\n", b"").count(b"\r")
        field_no = raw[line_start : e.start].count(sep.encode())
        raise DataError(
            f"byte 0x{raw[e.start]:02x} cannot be decoded as {encoding} ({e.reason}); re-save the "
            f"file as UTF-8 or pass the file's encoding (e.g. encoding='latin-1', "
            f"CLI: --encoding latin-1)",
            path=p,
            line=k + 1,
            field=columns[field_no] if field_no < len(columns) else None,
        ) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise DataError(
            "file is empty; pass a file with data (was the download or export complete?)", path=p
        )
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    start = 1 if header else 0
    rows = [ln.split(sep) for ln in lines[start:]]
    ncol = len(columns)
    for k, r in enumerate(rows):
        if len(r) != ncol:
            raise DataError(
                f"expected {ncol} {sep!r}-separated fields ({', '.join(columns)}), got {len(r)}; "
                f"fix or remove this line",
                path=p,
                line=k + start + 1,
            )
    if not rows:
        raise DataError("file has a header but no data rows; pass a file with data", path=p)
    return pd.DataFrame(rows, columns=columns)


def numeric_column(
    df: pd.DataFrame,
    col: str,
    *,
    path=None,
    first_line: int = 2,
    integer: bool = False,
    min_value: float | None = None,
) -> np.ndarray:
    """Convert a string column to numbers, naming the first bad line and field on failure."""
    vals = pd.to_numeric(df[col], errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(vals)
    if integer:
        bad |= np.isfinite(vals) & (vals != np.round(vals))
    if min_value is not None:
        bad |= vals < min_value
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        kind = "an integer" if integer else "a number"
        extra = f" >= {min_value:g}" if min_value is not None else ""
        raise DataError(
            f"value {df[col].iloc[k]!r} is not {kind}{extra}; correct or remove this line",
            path=path,
            line=k + first_line,
            field=col,
        )
    return vals.astype(np.int64) if integer else vals
