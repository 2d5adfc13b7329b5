"""Atomic file writes shared by every layer (no half-written outputs after an error)."""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["atomic_write_bytes", "atomic_write_files", "json_default", "npz_bytes"]


def npz_bytes(arrays: dict, *, compresslevel: int = 1) -> bytes:
    """An ``.npz`` archive (readable by ``np.load``) of ``arrays``, deflate level ``compresslevel``.

    Level 1 is ~6x faster than ``np.savez_compressed`` (level 6) for ~10% larger files.
    Object arrays are refused: nothing is ever pickled.

    Examples
    --------
    >>> data = npz_bytes({"a": np.arange(3)})
    >>> np.load(io.BytesIO(data))["a"].tolist()
    [0, 1, 2]
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(
        buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=compresslevel
    ) as zf:
        for name, value in arrays.items():
            arr = np.asanyarray(value)
            if arr.dtype == object:
                raise TypeError(f"array {name!r} has dtype object; convert it before saving")
            with zf.open(f"{name}.npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, arr, allow_pickle=False)
    return buf.getvalue()


def json_default(o):
    """``json.dumps(default=...)`` for NumPy scalars and arrays; ``TypeError`` for anything else.

    >>> import json
    >>> json.dumps({"n": np.int32(3), "v": np.arange(2)}, default=json_default)
    '{"n": 3, "v": [0, 1]}'
    """
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"cannot store {type(o).__name__} in a JSON manifest")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_tmp(path: Path, data: bytes) -> str:
    """Write ``data`` to a new temporary sibling of ``path``; return its name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates 0600; give the final file the usual permissions (0666 & ~umask)
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return tmp


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, then rename).

    The parent folder is created if needed. On any error the temporary file is removed and
    ``path`` is left as it was.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> atomic_write_bytes(p, b"hello")
    >>> p.read_bytes()
    b'hello'
    """
    path = Path(path)
    tmp = _write_tmp(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_files(files: dict) -> None:
    """Write several files so that either all of them are replaced or none is.

    Every file is first written to a temporary sibling; only when all writes succeeded are they
    renamed into place (the renames themselves cannot fail half-way for lack of space).

    Parameters
    ----------
    files : dict {path: bytes}
    """
    tmps: list[tuple[str, Path]] = []
    try:
        for path, data in files.items():
            path = Path(path)
            tmps.append((_write_tmp(path, data), path))
        for tmp, path in tmps:
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in tmps:
            if os.path.exists(tmp):
                os.unlink(tmp)
        raise
