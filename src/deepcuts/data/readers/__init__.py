"""Readers that turn listening data files into :class:`~deepcuts.data.Interactions`.

Every reader streams its file in bounded memory, shows an opt-in progress bar
(``show_progress=True``) and raises :class:`~deepcuts.exceptions.DataError` naming the file,
1-based line and field for bad input. :func:`read_interactions` picks one by format name.
"""

from __future__ import annotations

from pathlib import Path

from deepcuts.data.readers.exports import read_lastfm_scrobbles, read_spotify_history
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
    "read_lastfm_scrobbles",
    "read_listenbrainz",
    "read_msd_mapping",
    "read_msd_taste_profile",
    "read_spotify_history",
    "read_table",
]

#: format names accepted by :func:`read_interactions` (and ``deepcuts ingest --format``)
FORMATS = (
    "hetrec", "msd", "lastfm1k", "lastfm-scrobbles", "listenbrainz", "spotify", "table", "npz",
)  # fmt: skip

#: personal listening exports (one listener): what ``deepcuts serve`` accepts as an upload
HISTORY_FORMATS = ("lastfm1k", "lastfm-scrobbles", "listenbrainz", "spotify")

#: the file name of the official Last.fm 1K release (Celma 2010)
LASTFM1K_FILE = "userid-timestamp-artid-artname-traid-traname.tsv"
_SPOTIFY_NAMES = ("streaming_history", "streaminghistory", "endsong", "my_spotify_data")


def _head(p: Path, n: int = 4096) -> str:
    import gzip

    try:
        opener = gzip.open if p.suffix == ".gz" else open
        with opener(p, "rb") as fh:
            return fh.read(n).decode("utf-8", "replace").lstrip("\ufeff \t\r\n")
    except OSError:
        return ""


def _sniff_csv(p: Path) -> str:
    """ "lastfm-scrobbles" for a Last.fm scrobble export, else "table"."""
    import csv

    lines = _head(p).splitlines()
    if not lines:
        return "table"
    first = next(csv.reader([lines[0]]), [])
    head = [c.strip().lower() for c in first]
    if "artist" in head and ({"uts", "utc_time"} & set(head)):
        return "lastfm-scrobbles"
    if len(first) == 4 and "count" not in head:
        import re

        if re.fullmatch(r"\d{1,2} \w{3} \d{4},? \d{1,2}:\d{2}", first[3].strip()):
            return "lastfm-scrobbles"
    return "table"


def _guess_format(p: Path) -> str:
    name = p.name.lower().removesuffix(".gz")
    if p.is_dir():
        if (p / "user_artists.dat").exists() or (p / "user_artists.dat.gz").exists():
            return "hetrec"
        if any(f.name.lower().startswith(_SPOTIFY_NAMES) for f in p.rglob("*.json")):
            return "spotify"
        return "listenbrainz"
    if name == LASTFM1K_FILE or (name.startswith("userid-timestamp") and name.endswith(".tsv")):
        return "lastfm1k"
    if name.startswith(_SPOTIFY_NAMES):
        return "spotify"
    if name.endswith(".json"):
        head = _head(p)
        if head.startswith("["):  # an array export: Spotify streams or ListenBrainz listens
            return "spotify" if ("ms_played" in head or "msPlayed" in head) else "listenbrainz"
        return "npz"
    if name.endswith(".npz"):
        return "npz"
    if name.endswith((".jsonl", ".ndjson", ".zip")):
        return "listenbrainz"
    if name.endswith(".csv"):
        return _sniff_csv(p)
    if name.endswith((".parquet", ".pq")):
        return "table"
    raise DataError(
        f"cannot tell the format of this file; pass format= (CLI: --format) one of "
        f"{', '.join(FORMATS)} (the Last.fm 1K log is recognised by its official name "
        f"{LASTFM1K_FILE})",
        path=p,
    )


def read_interactions(path, format: str = "auto", **kw):
    """Read any supported dataset into :class:`~deepcuts.data.Interactions`.

    Parameters
    ----------
    path : path
        File or folder.
    format : str, default="auto"
        One of :data:`FORMATS`. ``"npz"`` is a dataset saved with :meth:`Interactions.save`.
        ``"auto"`` guesses from the path and, for ``.json`` and ``.csv``, the first bytes: a
        HetRec folder, the official Last.fm 1K file name, ``Streaming_History*.json`` (Spotify),
        a JSON array (Spotify streams or ListenBrainz listens), ``.jsonl``/``.zip``
        (ListenBrainz), a Last.fm scrobble ``.csv``, other ``.csv``/``.parquet`` (table).
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
    if format == "lastfm-scrobbles":
        return read_lastfm_scrobbles(p, **kw)
    if format == "spotify":
        return read_spotify_history(p, **kw)
    if format == "table":
        return read_table(p, **kw)
    if format == "npz":
        from deepcuts.data.interactions import Interactions

        return Interactions.load(p)
    raise DataError(
        f"unknown format {format!r}; choose one of {', '.join(FORMATS)}", field="format"
    )
