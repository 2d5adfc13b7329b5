"""Readers of the listening histories people can download: a Last.fm scrobble CSV export and
a Spotify (extended) streaming history.

Both are personal exports of one listener, small enough to read whole (a decade of scrobbles
is a few MB). Listens are aggregated exactly as :func:`~deepcuts.data.readers.read_lastfm1k`
does (artist-name normalisation, play counts per (user, artist), last-listen times, optional
listen log); the user id is the ``user`` argument, since the files do not carry one.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from deepcuts.data.readers._common import check_file
from deepcuts.data.readers.listens import _check_options, _ListenAggregator
from deepcuts.exceptions import DataError

__all__ = ["read_lastfm_scrobbles", "read_spotify_history"]

#: columns of the header-less Last.fm CSV export (lastfm-to-csv): artist, album, track, date
_LASTFM_PLAIN = ["artist", "album", "track", "date"]


def _read_text(p: Path) -> str:
    raw = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(
            f"byte 0x{raw[e.start]:02x} is not UTF-8; re-save the export as UTF-8", path=p
        ) from None


def read_lastfm_scrobbles(
    path,
    *,
    user: str = "me",
    level: str = "artist",
    credit: str = "primary",
    normalize: bool = True,
    return_log: bool = False,
):
    """Read a Last.fm scrobble export (CSV) into :class:`~deepcuts.data.Interactions`.

    Two layouts are recognised: with a header naming ``artist`` and a time column
    (``uts`` unix seconds, or ``utc_time``/``date``/``time``; optional ``track`` and
    ``artist_mbid``, as lastfm.ghan.nl writes it), or without a header as four columns
    ``artist, album, track, date`` with dates like ``31 Jan 2021 14:03`` (lastfm-to-csv).
    Scrobbles without a date ("now playing") are kept with time 0.

    Parameters
    ----------
    path : path
        The ``.csv`` (``.gz`` allowed).
    user : str, default="me"
        User id of every scrobble.
    level, credit, normalize, return_log
        As in :func:`~deepcuts.data.readers.read_lastfm1k`; ``artist_mbid`` keeps artists
        with different MusicBrainz ids apart.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "scrobbles.csv"
    >>> _ = f.write_text("Björk,Post,Army of Me,31 Jan 2021 14:03\\n"
    ...                  "Bjork,Homogenic,Joga,31 Jan 2021 14:07\\n")
    >>> read_lastfm_scrobbles(f).to_frame()[["user", "item", "count"]].values.tolist()
    [['me', 'bjork', 2.0]]
    """
    _check_options(level, credit)
    p = check_file(path)
    text = _read_text(p)
    rows = list(csv.reader(io.StringIO(text)))
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise DataError("no scrobbles found", path=p)
    head = [c.strip().lower() for c in rows[0]]
    if "artist" in head:
        df = pd.DataFrame(rows[1:], columns=None)
        width = len(head)
        if df.shape[1] != width:
            bad = next(k for k, r in enumerate(rows[1:], start=2) if len(r) != width)
            raise DataError(f"expected {width} fields like the header", path=p, line=bad)
        df.columns = head
    else:
        bad = next((k for k, r in enumerate(rows, start=1) if len(r) != 4), None)
        if bad is not None:
            raise DataError(
                "expected 4 fields (artist, album, track, date) or a header row naming "
                "'artist' and a time column (uts, utc_time or date)",
                path=p,
                line=bad,
            )
        df = pd.DataFrame(rows, columns=_LASTFM_PLAIN)
    t = _scrobble_times(df, p)
    artist = df["artist"].astype(str).str.strip()
    keep = (artist != "").to_numpy()
    if not keep.any():
        raise DataError("no scrobble has an artist name", path=p, field="artist")
    agg = _ListenAggregator(level=level, credit=credit, normalize=normalize, keep_log=return_log)
    track = df["track"] if "track" in df else pd.Series([""] * len(df))
    mbids = df["artist_mbid"].to_numpy(dtype=object)[keep] if "artist_mbid" in df else None
    agg.add(np.full(int(keep.sum()), str(user), dtype=object), artist.to_numpy(dtype=object)[keep],
            track.astype(str).to_numpy(dtype=object)[keep], t[keep], mbids=mbids)  # fmt: skip
    return agg.result("lastfm-scrobbles", p)


def _scrobble_times(df: pd.DataFrame, p: Path) -> np.ndarray:
    if "uts" in df:
        t = pd.to_numeric(df["uts"], errors="coerce")
        col = "uts"
    else:
        col = next((c for c in ("utc_time", "date", "time", "timestamp") if c in df), None)
        if col is None:
            raise DataError("no time column: name one uts (unix seconds), utc_time or date", path=p)
        s = df[col].astype(str).str.strip()
        t = pd.to_datetime(s.where(s != ""), format="mixed", utc=True, errors="coerce")
        t = (t - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    blank = df[col].astype(str).str.strip() == ""
    bad = t.isna() & ~blank
    if bad.any():
        k = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"{df[col].iloc[k]!r} is not a date/time", path=p, line=k + 2, field=col)
    return t.fillna(0).to_numpy(np.int64)


def _spotify_documents(p: Path) -> list[tuple[str, object]]:
    """(name, parsed JSON) of every streaming-history file under ``p`` (file, folder, .zip)."""
    names_ok = ("streaming_history", "streaminghistory", "endsong")

    def wanted(name: str) -> bool:
        base = name.rsplit("/", 1)[-1].lower()
        return base.endswith(".json") and base.startswith(names_ok)

    docs: list[tuple[str, object]] = []
    if p.is_dir():
        files = sorted(f for f in p.rglob("*.json") if wanted(f.name)) or sorted(p.rglob("*.json"))
        if not files:
            raise DataError("no .json streaming history in this folder", path=p)
        return [(f.name, _load_json(f.read_bytes(), f)) for f in files]
    check_file(p)
    if zipfile.is_zipfile(p):
        with zipfile.ZipFile(p) as zf:
            members = sorted(n for n in zf.namelist() if wanted(n))
            if not members:
                raise DataError(
                    "no Streaming_History*.json / StreamingHistory*.json inside this zip", path=p
                )
            for n in members:
                docs.append((n, _load_json(zf.read(n), Path(f"{p}!{n}"))))
        return docs
    raw = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
    return [(p.name, _load_json(raw, p))]


def _load_json(raw: bytes, where: Path):
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"not valid JSON ({e})", path=where) from None


def read_spotify_history(
    path,
    *,
    user: str = "me",
    min_ms: int = 30_000,
    level: str = "artist",
    credit: str = "primary",
    normalize: bool = True,
    return_log: bool = False,
):
    """Read a Spotify streaming history into :class:`~deepcuts.data.Interactions`.

    Reads the *extended* streaming history (``Streaming_History_Audio_*.json``: objects with
    ``ts``, ``ms_played``, ``master_metadata_album_artist_name``,
    ``master_metadata_track_name``) and the account-data one (``StreamingHistory*.json``:
    ``endTime``, ``artistName``, ``trackName``, ``msPlayed``): one file, a folder or the
    ``my_spotify_data.zip`` as downloaded. Podcast episodes (no artist) are skipped.

    Parameters
    ----------
    path : path
    user : str, default="me"
        User id of every stream.
    min_ms : int, default=30000
        Streams shorter than this (milliseconds) are skipped: Spotify counts a stream from
        30 s, and a skipped track is not a play.
    level, credit, normalize, return_log
        As in :func:`~deepcuts.data.readers.read_lastfm1k`.

    Examples
    --------
    >>> import json, pathlib, tempfile
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "Streaming_History_Audio_2023.json"
    >>> rows = [{"ts": "2023-01-01T10:00:00Z", "ms_played": 200000,
    ...          "master_metadata_album_artist_name": "Radiohead",
    ...          "master_metadata_track_name": "Airbag"},
    ...         {"ts": "2023-01-01T10:04:00Z", "ms_played": 5000,
    ...          "master_metadata_album_artist_name": "Muse",
    ...          "master_metadata_track_name": "Uprising"}]
    >>> _ = f.write_text(json.dumps(rows))
    >>> read_spotify_history(f).to_frame()[["item", "count"]].values.tolist()  # Muse: skipped
    [['radiohead', 1.0]]
    """
    _check_options(level, credit)
    p = Path(path)
    if not p.exists():
        raise DataError("file not found; check the path", path=p)
    artists, tracks, times = [], [], []
    short = 0
    for name, doc in _spotify_documents(p):
        if not isinstance(doc, list):
            raise DataError("expected a JSON array of streams", path=Path(name))
        frame = pd.DataFrame([o for o in doc if isinstance(o, dict)])
        if frame.empty:
            continue
        if "master_metadata_album_artist_name" in frame:
            a, tr, ts, ms = ("master_metadata_album_artist_name", "master_metadata_track_name",
                             "ts", "ms_played")  # fmt: skip
        elif "artistName" in frame:
            a, tr, ts, ms = "artistName", "trackName", "endTime", "msPlayed"
        else:
            raise DataError(
                "not a Spotify streaming history: no 'master_metadata_album_artist_name' or "
                "'artistName' field",
                path=Path(name),
            )
        for col in (ts, ms):
            if col not in frame:
                raise DataError(f"streams lack the field {col!r}", path=Path(name), field=col)
        played = pd.to_numeric(frame[ms], errors="coerce").fillna(0).to_numpy()
        artist = frame[a].where(frame[a].notna(), "").astype(str).str.strip()
        ok = (artist != "").to_numpy() & (played >= min_ms)
        short += int(((artist != "").to_numpy() & (played < min_ms)).sum())
        when = pd.to_datetime(frame[ts], utc=True, errors="coerce", format="mixed")
        if when[ok].isna().any():
            k = int(np.flatnonzero(ok & when.isna().to_numpy())[0])
            raise DataError(
                f"stream {k + 1}: {frame[ts].iloc[k]!r} is not a date/time",
                path=Path(name),
                field=ts,
            )
        secs = ((when - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy()
        artists.append(artist.to_numpy(dtype=object)[ok])
        track = frame[tr] if tr in frame else pd.Series([""] * len(frame))
        tracks.append(track.where(track.notna(), "").astype(str).to_numpy(dtype=object)[ok])
        times.append(secs[ok].astype(np.int64))
    if not artists or sum(len(x) for x in artists) == 0:
        raise DataError(
            f"no music streams of at least {min_ms} ms found (podcasts are skipped)", path=p
        )
    agg = _ListenAggregator(level=level, credit=credit, normalize=normalize, keep_log=return_log)
    a = np.concatenate(artists)
    agg.add(np.full(len(a), str(user), dtype=object), a, np.concatenate(tracks),
            np.concatenate(times))  # fmt: skip
    out = agg.result("spotify", p)
    (out[0] if isinstance(out, tuple) else out).meta["skipped_short"] = short
    return out
