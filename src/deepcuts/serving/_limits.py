"""Limits on the work one request may cause: uploads, retrain parameters, list offsets.

Compressed uploads
------------------
The upload limit (``deepcuts serve --max-upload-mb``) counts bytes on the wire, and a
``.gz`` or ``.zip`` of blank lines inflates ~1000-fold. :func:`check_upload` therefore
inflates a compressed upload once, in streaming fashion, discarding the output, and refuses
it (:class:`LimitError`, HTTP 413) as soon as the inflated bytes pass the same limit, or its
lines pass :func:`max_lines` (one line per :data:`BYTES_PER_LINE` bytes of the limit: a
listen line is longer than that, and a file of blank lines costs the reader per line). A zip
may hold at most :data:`MAX_ZIP_MEMBERS` members. So the work per upload is bounded by the
limit, whatever the ratio of compression.
"""

from __future__ import annotations

import gzip
import math
import zipfile
import zlib
from pathlib import Path

from deepcuts.exceptions import DeepcutsError

__all__ = [
    "BYTES_PER_LINE",
    "MAX_OFFSET",
    "MAX_ZIP_MEMBERS",
    "RETRAIN_BOUNDS",
    "LimitError",
    "check_retrain_params",
    "check_upload",
    "max_lines",
]

#: a listen line (TSV or JSON) is longer than this: an upload has at most limit / this lines
BYTES_PER_LINE = 32
#: most members of an uploaded zip
MAX_ZIP_MEMBERS = 1000
#: largest ``offset`` of a listing (``GET /users``; a 64-bit database offset beyond it fails)
MAX_OFFSET = 2**31 - 1
_CHUNK = 1 << 20


class LimitError(DeepcutsError):
    """A request would cost more than a limit allows (HTTP 413); the message names the limit."""

    http_status = 413


def max_lines(limit: int) -> int:
    """Most lines accepted in an upload of at most ``limit`` bytes (inflated).

    >>> max_lines(64 * 2**20)
    2097152
    """
    return max(1, int(limit) // BYTES_PER_LINE)


def _mib(n: int) -> str:
    return f"{n} bytes ({n / 2**20:.0f} MiB)"


class _Meter:
    """Counts inflated bytes and lines against the limits; raises :class:`LimitError`."""

    def __init__(self, limit: int, name: str):
        self.limit, self.lines_limit, self.name = int(limit), max_lines(limit), name
        self.bytes = self.lines = 0

    def add(self, data: bytes) -> None:
        self.bytes += len(data)
        self.lines += data.count(b"\n")
        if self.bytes > self.limit:
            raise LimitError(
                f"{self.name}: the upload inflates to more than {_mib(self.limit)}; the limit "
                "applies to the uncompressed data too (deepcuts serve --max-upload-mb); split "
                "the history or upload less"
            )
        if self.lines > self.lines_limit:
            raise LimitError(
                f"{self.name}: the upload has more than {self.lines_limit} lines; the limit is "
                f"one line per {BYTES_PER_LINE} bytes of the {_mib(self.limit)} upload limit "
                "(remove blank lines, or split the history)"
            )


def check_upload(path, limit: int, *, name: str = "upload") -> None:
    """Refuse an uploaded file whose (inflated) size or line count passes the limits.

    Parameters
    ----------
    path : path
        The uploaded file as stored; gzip and zip files are recognised by their first bytes.
    limit : int
        Most bytes of data, after decompression (the upload limit).
    name : str, default="upload"
        How the file is named in messages (the client's file name, never a server path).

    Raises
    ------
    LimitError
        Over a limit (HTTP 413).
    DeepcutsError
        A damaged gzip or zip file (HTTP 400).

    Examples
    --------
    >>> import gzip, os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "h.jsonl.gz")
    >>> with gzip.open(p, "wb") as fh:
    ...     _ = fh.write(b"\\n" * 5000)
    >>> check_upload(p, 4096, name="h.jsonl.gz")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    deepcuts.serving._limits.LimitError: h.jsonl.gz: the upload inflates to more than 4096 bytes...
    """
    p = Path(path)
    meter = _Meter(limit, name)
    with open(p, "rb") as fh:
        head = fh.read(4)
    try:
        if head[:2] == b"\x1f\x8b":
            with gzip.open(p, "rb") as fh:
                while chunk := fh.read(_CHUNK):
                    meter.add(chunk)
        elif head == b"PK\x03\x04" or zipfile.is_zipfile(p):
            with zipfile.ZipFile(p) as zf:
                infos = zf.infolist()
                if len(infos) > MAX_ZIP_MEMBERS:
                    raise LimitError(
                        f"{name}: the zip holds {len(infos)} files; the limit is {MAX_ZIP_MEMBERS}"
                    )
                for info in infos:
                    if info.is_dir():
                        continue
                    with zf.open(info) as fh:
                        while chunk := fh.read(_CHUNK):
                            meter.add(chunk)
        else:
            with open(p, "rb") as fh:
                while chunk := fh.read(_CHUNK):
                    meter.add(chunk)
    except LimitError:
        raise
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile, NotImplementedError) as e:
        raise DeepcutsError(
            f"{name}: cannot read the compressed upload ({type(e).__name__}: {e}); "
            "upload a complete .gz or .zip file, or the plain file"
        ) from None


# ---------------------------------------------------------------------- retrain parameters
#: bounds of the hyperparameters a retrain may ask for (name: (low, high), inclusive); the
#: product factors x iterations is capped too (:func:`check_retrain_params`)
RETRAIN_BOUNDS: dict[str, tuple[float, float]] = {
    "factors": (1, 512),
    "iterations": (1, 100),
    "cg_steps": (1, 20),
    "n_personas": (1, 16),
    "n_clusters": (1, 512),
    "init_iterations": (0, 50),
    "collapse_rounds": (0, 20),
    "min_items_per_persona": (0, 1_000_000),
    "k": (1, 5000),
    "random_state": (0, 2**32 - 1),
    "early_stopping_rounds": (1, 100),
}
#: largest factors x iterations of one retrain (512 factors x 100 iterations would take hours)
MAX_FACTOR_ITERATIONS = 64 * 100
#: any other number must be finite and within +-1e6
_MAX_ABS = 1e6


def check_retrain_params(params) -> dict:
    """Validate the hyperparameters of ``POST /retrain``; returns them unchanged.

    Every value must be a JSON scalar (number, string, boolean, null); the numbers of
    :data:`RETRAIN_BOUNDS` must be whole and within their bounds, every other number finite
    and within +-1e6, ``factors * iterations`` at most :data:`MAX_FACTOR_ITERATIONS`, and
    ``show_progress`` false (a server has no terminal).

    >>> check_retrain_params({"factors": 8, "iterations": 5})
    {'factors': 8, 'iterations': 5}
    >>> check_retrain_params({"iterations": 10**9})
    Traceback (most recent call last):
    ...
    deepcuts.exceptions.DeepcutsError: retrain parameter iterations=1000000000 is out of bounds: use a whole number from 1 to 100
    """
    if params is None:
        return params
    if not isinstance(params, dict):
        raise DeepcutsError("retrain params must be a JSON object of hyperparameters")
    for name, value in params.items():
        if value is not None and not isinstance(value, bool | int | float | str):
            raise DeepcutsError(
                f"retrain parameter {name!r} must be a number, string, boolean or null, got "
                f"{type(value).__name__}"
            )
        if isinstance(value, str) and len(value) > 100:
            raise DeepcutsError(f"retrain parameter {name!r} is longer than 100 characters")
        if name in RETRAIN_BOUNDS and value is not None:
            lo, hi = RETRAIN_BOUNDS[name]
            ok = (
                not isinstance(value, bool)
                and isinstance(value, int | float)
                and math.isfinite(value)
                and float(value).is_integer()
                and lo <= value <= hi
            )
            if not ok:
                raise DeepcutsError(
                    f"retrain parameter {name}={value!r} is out of bounds: use a whole number "
                    f"from {lo:g} to {hi:g}"
                )
        elif isinstance(value, float | int) and not isinstance(value, bool):
            if not (math.isfinite(value) and abs(value) <= _MAX_ABS):
                raise DeepcutsError(
                    f"retrain parameter {name}={value!r} must be finite and within +-{_MAX_ABS:g}"
                )
    if params.get("show_progress"):
        raise DeepcutsError("retrain parameter show_progress must be false on a server")
    if params.get("validation") is not None:
        raise DeepcutsError("retrain parameter validation cannot be set over HTTP")
    f, it = params.get("factors"), params.get("iterations")
    if (
        isinstance(f, int | float)
        and isinstance(it, int | float)
        and f * it > MAX_FACTOR_ITERATIONS
    ):
        raise DeepcutsError(
            f"retrain parameters factors x iterations = {f * it:g} exceed "
            f"{MAX_FACTOR_ITERATIONS}; use fewer factors or iterations"
        )
    return params
