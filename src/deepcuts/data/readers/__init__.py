"""Readers that turn listening data files into :class:`~deepcuts.data.Interactions`.

Every reader streams its file in bounded memory, shows an opt-in progress bar
(``show_progress=True``) and raises :class:`~deepcuts.exceptions.DataError` naming the file,
1-based line and field for bad input. :func:`read_interactions` picks one by format name.
"""

from __future__ import annotations

from pathlib import Path

from deepcuts.data.readers.hetrec import read_hetrec_lastfm
from deepcuts.data.readers.listens import read_lastfm1k, read_listenbrainz
from deepcuts.data.readers.msd import read_msd_mapping, read_msd_taste_profile
from deepcuts.data.readers.table import parse_columns, read_table
from deepcuts.exceptions import DataError

__all__ = [
    "FORMATS",
    "parse_columns",
    "read_hetrec_lastfm",
    "read_interactions",
    "read_lastfm1k",
    "read_listenbrainz",
    "read_msd_mapping",
    "read_msd_taste_profile",
    "read_table",
]

#: format names accepted by :func:`read_interactions` (and ``deepcuts ingest --format``)
FORMATS = ("hetrec", "msd", "lastfm1k", "listenbrainz", "table", "npz")


def _guess_format(p: Path) -> str:
    name = p.name.lower().removesuffix(".gz")
    if p.is_dir():
        if (p / "user_artists.dat").exists() or (p / "user_artists.dat.gz").exists():
            return "hetrec"
        return "listenbrainz"
    if name.endswith((".npz", ".json")) and not name.endswith((".jsonl", ".ndjson")):
        return "npz"
    if name.endswith((".jsonl", ".ndjson", ".zip")):
        return "listenbrainz"
    if name.endswith((".csv", ".parquet", ".pq")):
        return "table"
    raise DataError(
        f"cannot tell the format of this file; pass format= (CLI: --format) one of "
        f"{', '.join(FORMATS)}",
        path=p,
    )


def read_interactions(path, format: str = "auto", **kw):
    """Read any supported dataset into :class:`~deepcuts.data.Interactions`.

    Parameters
    ----------
    path : path
        File or folder.
    format : {"auto", "hetrec", "msd", "lastfm1k", "listenbrainz", "table", "npz"}, default="auto"
        ``"npz"`` is a dataset saved with :meth:`Interactions.save`. ``"auto"`` guesses from the
        path (a HetRec folder, ``.npz``, ``.jsonl``/``.zip``, ``.csv``/``.parquet``).
    **kw
        Passed to the reader: ``mapping=`` (msd, required), ``columns=`` (table), ``user=``
        (listenbrainz), ``level=``, ``credit=``, ``show_progress=``...

    Examples
    --------
    >>> from deepcuts.data.datasets import bundled_path
    >>> read_interactions(bundled_path("lastfm2k"), format="hetrec").shape
    (1892, 17632)
    """
    p = Path(path)
    if format == "auto":
        format = _guess_format(p)
    if format == "hetrec":
        return read_hetrec_lastfm(p, **kw)
    if format == "msd":
        if kw.get("mapping") is None:
            raise DataError(
                "the msd format needs a song -> artist mapping (mapping=unique_tracks.txt, "
                "CLI --mapping)",
                field="mapping",
            )
        mapping = kw.pop("mapping")
        return read_msd_taste_profile(p, mapping, **kw)
    if format == "lastfm1k":
        return read_lastfm1k(p, **kw)
    if format == "listenbrainz":
        return read_listenbrainz(p, **kw)
    if format == "table":
        return read_table(p, **kw)
    if format == "npz":
        from deepcuts.data.interactions import Interactions

        return Interactions.load(p)
    raise DataError(
        f"unknown format {format!r}; choose one of {', '.join(FORMATS)}", field="format"
    )
