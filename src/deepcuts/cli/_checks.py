"""Checks of command-line values: ``-o`` outputs, ``--seed``, ``--encoding``, UTF-16 input.

What ``-o`` may overwrite (``deepcuts train`` and ``deepcuts ingest`` outputs):

``-o PATH`` writes ``PATH.npz`` + ``PATH.json``. An existing output is replaced only when it
is the same kind of file: a saved model of the same class for ``train``, a saved dataset for
``ingest`` (re-running a command). Anything else (a dataset under a model's name, a model of
another class, a file deepcuts did not write) needs ``--force``; the command's own input is
never overwritten, even with ``--force``.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import gzip
import json
import shutil
import tempfile
from pathlib import Path

from deepcuts.exceptions import DataError, DeepcutsError

__all__ = ["add_force_argument", "check_output", "encoding", "seed", "utf8_source"]

#: largest --seed (NumPy seeds are unsigned 32-bit)
MAX_SEED = 2**32 - 1
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def seed(value: str) -> int:
    """argparse type of ``--seed``: a whole number from 0 to 2**32 - 1."""
    try:
        n = int(value)
    except ValueError:
        n = -1
    if not 0 <= n <= MAX_SEED:
        raise argparse.ArgumentTypeError(
            f"must be a whole number from 0 to {MAX_SEED}, got {value!r}"
        )
    return n


def encoding(value: str) -> str:
    """argparse type of ``--encoding``: a text encoding Python knows (normalised name).

    >>> encoding("UTF16")
    'utf-16'
    """
    try:
        info = codecs.lookup(value)
    except LookupError:
        info = None
    if info is None or not getattr(info, "_is_text_encoding", True):
        raise argparse.ArgumentTypeError(
            f"unknown text encoding {value!r}; use e.g. utf-8, utf-16, latin-1 or cp1252"
        )
    return info.name


def _wide(path: Path, enc: str) -> str | None:
    """The UTF-16/32 codec to transcode ``path`` with, or ``None`` (a byte-order mark is
    trusted over ``enc``; ``enc`` itself when it is UTF-16/32)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            head = fh.read(64)
    except (OSError, EOFError):
        return None
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name
    name = codecs.lookup(enc).name
    if name.startswith(("utf-16", "utf-32")):
        return name
    even, odd = head[0::2], head[1::2]
    if (
        len(head) >= 8
        and head.strip(b"\x00")
        and (not odd.strip(b"\x00") or not even.strip(b"\x00"))
    ):
        order = "le" if not odd.strip(b"\x00") else "be"
        raise DataError(
            f"every other byte is NUL: this looks like UTF-16 without a byte-order mark; pass "
            f"--encoding utf-16-{order}",
            path=path,
        )
    return None


@contextlib.contextmanager
def utf8_source(path, enc: str):
    """``(path, encoding)`` to read: a UTF-16/32 file (by ``enc`` or its byte-order mark) is
    first transcoded to a temporary UTF-8 file, since the readers split lines on the byte
    ``\\n``; messages then name the original file. Folders and other files pass through."""
    src = Path(path)
    wide = _wide(src, enc) if src.is_file() else None
    if wide is None:
        yield src, enc
        return
    opener = gzip.open if src.suffix == ".gz" else open
    with tempfile.TemporaryDirectory(prefix="deepcuts-utf8-") as tmp:
        out = Path(tmp) / src.name.removesuffix(".gz")
        try:
            with opener(src, "rb") as raw, open(out, "w", encoding="utf-8", newline="") as fh:
                text = codecs.getreader(wide)(raw, errors="strict")
                shutil.copyfileobj(text, fh, 1 << 20)
        except (UnicodeDecodeError, UnicodeError) as e:
            raise DataError(
                f"cannot be decoded as {wide} ({e}); pass the file's encoding with --encoding",
                path=src,
            ) from None
        except (OSError, EOFError) as e:
            raise DataError(f"cannot read compressed data ({e})", path=src) from None
        try:
            yield out, "utf-8"
        except DeepcutsError as e:
            e.args = (str(e).replace(str(out), str(src)),)
            raise


def add_force_argument(p) -> None:
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an existing -o output that is not the same kind (never the input)",
    )


def _manifest(path: Path) -> dict | None:
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return m if isinstance(m, dict) else None


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


def check_output(
    files: tuple[Path, Path],
    *,
    want: dict,
    inputs=(),
    force: bool = False,
    option: str = "-o",
) -> None:
    """Refuse to write ``files`` (``(npz, json)``) over something else.

    Parameters
    ----------
    files : (Path, Path)
        The ``.npz`` and ``.json`` the command will write.
    want : dict
        Manifest entries an existing output must have to be replaced without ``--force``,
        e.g. ``{"format": "deepcuts-model", "class": "ALS"}``.
    inputs : iterable of Path
        Files the command reads: never overwritten.
    force : bool, default=False

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "x.json").write_text('{"format": "deepcuts-interactions"}')
    >>> check_output((d / "x.npz", d / "x.json"), want={"format": "deepcuts-model"})
    Traceback (most recent call last):
    ...
    deepcuts.exceptions.DeepcutsError: -o: x.json exists and is a deepcuts-interactions file, not a deepcuts-model; choose another -o path or add --force to replace it
    """
    inputs = [Path(p) for p in inputs]
    for f in files:
        for src in inputs:
            if _same(f, src) or f.resolve() == src.resolve():
                raise DeepcutsError(
                    f"{option}: {f.name} is the input of this command; choose another {option} "
                    "path (the input is never overwritten)"
                )
    existing = [f for f in files if f.exists()]
    if not existing or force:
        return
    m = _manifest(files[1]) if files[1].exists() else None
    if m is not None and all(m.get(k) == v for k, v in want.items()):
        return  # the same kind of output: re-running the command replaces it
    if m is None:
        what = "not a file deepcuts wrote"
    else:
        what = f"a {m.get('format', 'unknown')} file" + (
            f" of {m['class']}" if m.get("class") else ""
        )
    wanted = " of ".join(str(want[k]) for k in ("format", "class") if k in want)
    raise DeepcutsError(
        f"{option}: {existing[0].name} exists and is {what}, not a {wanted}; choose another "
        f"{option} path or add --force to replace it"
    )
