"""Readers for timestamped listen logs: Last.fm 1K (TSV) and ListenBrainz (JSON lines).

Each listen (user, time, artist, track) is aggregated to a play count per (user, artist) by
default, or per (user, track) with ``level="track"``. ``Interactions.timestamps`` holds the
time of the *last* listen of each pair (what time-based splits use). With
``return_log=True`` the raw listen log comes back too, for session models.

Artist credits are normalised by :mod:`deepcuts.data.artists` (``normalize=False`` keeps the
names exactly as written). Files are streamed in blocks; memory holds one block, the
vocabularies and the aggregated pairs (plus the log when asked for).
"""

from __future__ import annotations

import json
import logging
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from deepcuts.data.artists import normalize_artists
from deepcuts.data.idmap import IdMap
from deepcuts.data.interactions import Interactions
from deepcuts.data.readers._common import check_file, open_text
from deepcuts.data.readers._stream import (
    DEFAULT_BLOCK_BYTES,
    Block,
    PairAccumulator,
    Vocab,
    iter_blocks,
    iter_blocks_from,
    parse_block,
    require_nonempty,
    to_unix_seconds,
)
from deepcuts.exceptions import DataError

__all__ = ["LASTFM1K_COLUMNS", "read_lastfm1k", "read_listenbrainz"]

log = logging.getLogger(__name__)

#: columns of the Last.fm 1K ``userid-timestamp-artid-artname-traid-traname.tsv``
LASTFM1K_COLUMNS = ["user", "time", "artist_mbid", "artist", "track_mbid", "track"]
_WS = re.compile(r"\s+")
#: listen times are unix seconds in [0, 2**42) (the year 141,338: room for any real time)
MAX_UNIX_SECONDS = 2**42


def _check_options(level: str, credit: str) -> None:
    if level not in ("artist", "track"):
        raise DataError(f"level must be 'artist' or 'track', got {level!r}", field="level")
    if credit not in ("primary", "split"):
        raise DataError(f"credit must be 'primary' or 'split', got {credit!r}", field="credit")
    if level == "track" and credit != "primary":
        raise DataError("credit='split' only applies to level='artist'", field="credit")


class _ListenAggregator:
    """Turns batches of listens into play counts, last-listen times and (optionally) a log."""

    def __init__(self, *, level: str, credit: str, normalize: bool, keep_log: bool):
        self.level, self.credit, self.normalize = level, credit, normalize
        self.users, self.items = Vocab(), Vocab()
        self.acc = PairAccumulator(with_time=True)
        self.meta: list[pd.DataFrame] = []
        self.log_parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None = (
            [] if keep_log else None
        )
        self.n_listens = 0
        #: artist key -> the MusicBrainz id that owns it (first seen)
        self.key_mbid: dict[str, str] = {}

    def _split_by_mbid(self, keys: np.ndarray, mbids: np.ndarray, primary: np.ndarray):
        """Keys of artists whose MusicBrainz ids differ kept apart (issue 14): the first MBID
        seen with a key owns it, another MBID with the same key gets ``"key [mbid8]"``.
        Only the primary artist of a credit carries the file's MBID; rows without one keep the
        plain key."""
        mb = np.array([m.strip() if isinstance(m, str) else "" for m in mbids], dtype=object)
        use = primary & (mb != "")
        if not use.any():
            return keys
        out = keys.copy()
        pairs = pd.unique(pd.Series(list(zip(keys[use], mb[use])), dtype=object))
        rename = {}
        for key, mbid in pairs:  # distinct (key, MBID) pairs of the block: the vocabulary
            owner = self.key_mbid.setdefault(key, mbid)
            if owner != mbid:
                rename[(key, mbid)] = f"{key} [{mbid[:8]}]"
        if rename:
            sel = np.flatnonzero(use)
            out[sel] = [rename.get((k, m), k) for k, m in zip(keys[sel], mb[sel])]
        return out

    def add(self, users, artists, tracks, times, mbids=None) -> None:
        users = np.asarray(users, dtype=object)
        artists = np.asarray(artists, dtype=object)
        times = np.asarray(times, dtype=np.int64)
        self.n_listens += len(users)
        if self.normalize:
            norm = normalize_artists(artists, credit=self.credit)
            rows = norm["row"].to_numpy()
            keys = norm["key"].to_numpy(dtype=object)
            disp = norm["display"].to_numpy(dtype=object)
            share = norm["share"].to_numpy(np.float64)
            if mbids is not None:
                primary = np.r_[True, rows[1:] != rows[:-1]] if len(rows) else rows.astype(bool)
                keys = self._split_by_mbid(keys, np.asarray(mbids, dtype=object)[rows], primary)
        else:
            rows = np.arange(len(artists))
            keys = disp = artists
            share = np.ones(len(artists))
        if self.level == "track":
            tr = np.asarray(tracks, dtype=object)[rows]
            tr_key = pd.Series(tr, dtype=object).str.replace(_WS, " ", regex=True).str.strip()
            if self.normalize:
                tr_key = tr_key.str.casefold()
            ids = (pd.Series(keys, dtype=object) + " - " + tr_key).to_numpy(dtype=object)
            names = (pd.Series(disp, dtype=object) + " - " + pd.Series(tr, dtype=object)).to_numpy(
                dtype=object
            )
        else:
            ids, names = keys, disp
        n_before = len(self.items)
        u = self.users.encode(users[rows])
        i = self.items.encode(ids)
        new = i >= n_before
        if new.any():
            first = np.unique(i[new], return_index=True)[1]
            sel = np.flatnonzero(new)[first]
            self.meta.append(
                pd.DataFrame({"name": names[sel], "artist": keys[sel], "artist_name": disp[sel]})
            )
        self.acc.add(u, i, share, times[rows])
        if self.log_parts is not None:
            self.log_parts.append((u, i, times[rows]))

    def result(self, source: str, path) -> Interactions | tuple[Interactions, pd.DataFrame]:
        if self.n_listens == 0 or len(self.users) == 0:
            raise DataError("no listens found", path=path)
        matrix, ts = self.acc.result((len(self.users), len(self.items)))
        meta = pd.concat(self.meta, ignore_index=True)
        items = pd.DataFrame({"item": self.items.ids(), "name": meta["name"].to_numpy()})
        if self.level == "track":
            items["artist"] = meta["artist"].to_numpy()
            items["artist_name"] = meta["artist_name"].to_numpy()
        items["tags"] = [[] for _ in range(len(items))]
        x = Interactions(
            matrix,
            IdMap(self.users.ids(), name="user"),
            IdMap(items["item"].to_numpy(), name="item"),
            items=items,
            timestamps=ts,
        )
        x.meta.update(
            {
                "source": source,
                "path": str(path),
                "level": self.level,
                "credit": self.credit,
                "normalize": self.normalize,
                "listens": self.n_listens,
            }
        )
        log.info("read %s from %d listens", x, self.n_listens)
        if self.log_parts is None:
            return x
        u = np.concatenate([p[0] for p in self.log_parts])
        i = np.concatenate([p[1] for p in self.log_parts])
        t = np.concatenate([p[2] for p in self.log_parts])
        order = np.lexsort((t, u))
        listens = pd.DataFrame(
            {
                "user": x.user_map.external(u[order]),
                "item": x.item_map.external(i[order]),
                "timestamp": t[order],
            }
        )
        return x, listens


def read_lastfm1k(
    path,
    *,
    level: str = "artist",
    credit: str = "primary",
    normalize: bool = True,
    return_log: bool = False,
    encoding: str = "utf-8",
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    show_progress: bool = False,
    split_mbids: bool = True,
):
    """Read the Last.fm 1K listen log (``userid-timestamp-artid-artname-traid-traname.tsv``).

    Parameters
    ----------
    path : path
        Tab-separated, no header, six fields: user, ISO-8601 UTC time, artist MBID, artist
        name, track MBID, track name (MBIDs may be empty). ``.gz`` is decompressed.
    level : {"artist", "track"}, default="artist"
        Items are artist keys, or ``"<artist key> - <track>"`` with ``items`` columns
        ``artist`` (artist key) and ``artist_name``.
    credit : {"primary", "split"}, default="primary"
        How a listen of ``"A feat. B"`` counts (see :func:`deepcuts.data.artists.artist_credits`).
    normalize : bool, default=True
        Normalise artist names; ``False`` uses them exactly as written (no credit splitting).
        Artists whose MusicBrainz ids (the file's ``artid``) differ stay apart even when their
        names fold to one key ("The Young Lovers" and "Young Lovers"): the first keeps the key,
        the other gets ``"key [first 8 characters of its MBID]"`` (``split_mbids=False``:
        names only, as the Spark reader :func:`deepcuts.distributed.readers.read_lastfm1k`
        still does).
    return_log : bool, default=False
        Also return the listen log: DataFrame ``user, item, timestamp`` (unix seconds), one row
        per listen (per credited artist), sorted by user then time.
    encoding : str, default="utf-8"
    block_bytes : int, default=16 MiB
    show_progress : bool, default=False
        Show a tqdm progress bar.

    Returns
    -------
    Interactions or (Interactions, pandas.DataFrame)
        Play counts per (user, item) with ``timestamps`` = last listen time of each pair.
        Listens with an empty artist name are skipped and counted in ``meta["skipped"]``.
    """
    _check_options(level, credit)
    p = Path(path)
    agg = _ListenAggregator(level=level, credit=credit, normalize=normalize, keep_log=return_log)
    skipped = 0
    for block in iter_blocks(
        p, encoding=encoding, block_bytes=block_bytes, show_progress=show_progress, desc=p.name
    ):
        df = parse_block(block, LASTFM1K_COLUMNS)
        require_nonempty(df, "user", p)
        t = to_unix_seconds(df, "time", p, fmt="%Y-%m-%dT%H:%M:%SZ")
        has_artist = (df["artist"].str.strip() != "").to_numpy()
        if not has_artist.all():
            skipped += int((~has_artist).sum())
            df, t = df[has_artist], t[has_artist]
        agg.add(df["user"].to_numpy(), df["artist"].to_numpy(), df["track"].to_numpy(), t,
                mbids=df["artist_mbid"].to_numpy() if split_mbids else None)  # fmt: skip
    if skipped:
        log.warning("%s: skipped %d listens with an empty artist name", p, skipped)
    out = agg.result("lastfm-1k", p)
    (out[0] if isinstance(out, tuple) else out).meta["skipped"] = skipped
    return out


def _iter_sources(path: Path, encoding: str, block_bytes: int) -> Iterator[Block]:
    """Blocks of every JSON-lines source under ``path`` (file, folder of files, or .zip)."""
    if path.is_dir():
        files = sorted(
            f
            for f in path.rglob("*")
            if f.is_file() and f.name.endswith((".jsonl", ".jsonl.gz", ".json", ".ndjson"))
        )
        if not files:
            raise DataError("no .jsonl/.json files in this folder", path=path)
        for f in files:
            yield from iter_blocks(f, encoding=encoding, block_bytes=block_bytes)
        return
    check_file(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            members = sorted(
                n
                for n in zf.namelist()
                if n.endswith((".jsonl", ".json", ".ndjson"))
                and not n.endswith(("user.json", "feedback.jsonl", "pinned_recording.jsonl"))
            )
            if not members:
                raise DataError("no listens (.jsonl) inside this zip export", path=path)
            for name in members:
                with zf.open(name) as fh:
                    yield from iter_blocks_from(
                        fh,
                        Path(f"{path}!{name}"),
                        encoding=encoding,
                        block_bytes=block_bytes,
                        allow_empty=True,
                    )
        return
    yield from iter_blocks(path, encoding=encoding, block_bytes=block_bytes)


def _json_lines(block: Block) -> Iterator[tuple[int, dict]]:
    text = block.text()
    for k, ln in enumerate(text.split("\n")):
        if not ln.strip():
            continue
        try:
            obj = json.loads(ln)
        except json.JSONDecodeError as e:
            raise DataError(
                f"not valid JSON ({e.msg} at column {e.colno}); fix or remove this line",
                path=block.path,
                line=block.first_line + k,
            ) from None
        except RecursionError:
            raise DataError(
                "JSON nested too deeply to be a listen; fix or remove this line",
                path=block.path,
                line=block.first_line + k,
            ) from None
        if not isinstance(obj, dict):
            raise DataError(
                "expected a JSON object per line", path=block.path, line=block.first_line + k
            )
        yield block.first_line + k, obj


class _ArrayBlock:
    """The listens of a JSON-array export (ListenBrainz's "export as JSON"), one batch."""

    def __init__(self, path: Path, items: list, first: int):
        self.path, self.items, self.first = path, items, first

    def objects(self) -> Iterator[tuple[int, dict]]:
        for k, obj in enumerate(self.items):
            if not isinstance(obj, dict):
                raise DataError(
                    f"listen {self.first + k} of the JSON array is not an object",
                    path=self.path,
                )
            yield self.first + k, obj


class _LinesBlock:
    def __init__(self, block: Block):
        self.block, self.path = block, block.path

    def objects(self) -> Iterator[tuple[int, dict]]:
        return _json_lines(self.block)


def _starts_with_bracket(p: Path, encoding: str) -> bool:
    if not p.is_file() or zipfile.is_zipfile(p):
        return False
    check_file(p)
    import gzip

    with gzip.open(p, "rb") if p.suffix == ".gz" else open(p, "rb") as fh:
        head = fh.read(4096).decode(encoding, "replace").lstrip("\ufeff \t\r\n")
    return head.startswith("[")


def _listen_batches(p: Path, encoding: str, block_bytes: int):
    """Batches of (line, listen object): JSON lines streamed in blocks, or a JSON array (read
    whole: personal exports are small), in batches of 50,000 listens ("line" = position)."""
    if _starts_with_bracket(p, encoding):
        with open_text(p, encoding) as fh:
            try:
                items = json.load(fh)
            except json.JSONDecodeError as e:
                raise DataError(
                    f"not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})", path=p
                ) from None
            except RecursionError:  # e.g. 100,000 nested brackets (issue 13's hostile corpus)
                raise DataError(
                    "JSON nested too deeply to be a listening history; expected an array of "
                    "listen objects",
                    path=p,
                ) from None
        if not isinstance(items, list):
            raise DataError("expected a JSON array of listens", path=p)
        for s in range(0, len(items), 50_000):
            yield _ArrayBlock(p, items[s : s + 50_000], s + 1)
        return
    for block in _iter_sources(p, encoding, block_bytes):
        yield _LinesBlock(block)


def read_listenbrainz(
    path,
    *,
    user: str | None = None,
    level: str = "artist",
    credit: str = "primary",
    normalize: bool = True,
    return_log: bool = False,
    encoding: str = "utf-8",
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    show_progress: bool = False,
):
    """Read a ListenBrainz listens export (JSON lines) into :class:`Interactions`.

    Parameters
    ----------
    path : path
        A JSON-lines file (one listen object per line, ``.gz`` allowed), a folder of them, a
        ListenBrainz export ``.zip`` (its ``*.jsonl`` listen files), or a JSON array of listen
        objects (the website's "export as JSON"; read whole, and an error's "line" is then the
        listen's position in the array). Each object needs
        ``listened_at`` (unix seconds) and ``track_metadata`` with ``artist_name`` and
        ``track_name``; the user comes from ``user_name`` or the ``user`` argument.
    user : str, optional
        User name for listens without ``user_name`` (personal exports omit it).
    level, credit, normalize, return_log, encoding, block_bytes, show_progress
        As in :func:`read_lastfm1k`.

    Returns
    -------
    Interactions or (Interactions, pandas.DataFrame)
        Play counts per (user, item) with ``timestamps`` = last listen time of each pair.
    """
    _check_options(level, credit)
    p = Path(path)
    if not p.exists():
        raise DataError("file not found; check the path", path=p)
    agg = _ListenAggregator(level=level, credit=credit, normalize=normalize, keep_log=return_log)
    progress = None
    if show_progress:
        from tqdm.auto import tqdm

        progress = tqdm(unit=" listens", desc=p.name, leave=False)
    try:
        for block in _listen_batches(p, encoding, block_bytes):
            us, ar, tr, ts = [], [], [], []
            for line, obj in block.objects():
                meta = obj.get("track_metadata")
                if not isinstance(meta, dict):
                    raise DataError(
                        "missing object 'track_metadata'",
                        path=block.path,
                        line=line,
                        field="track_metadata",
                    )
                artist = meta.get("artist_name")
                if not isinstance(artist, str) or not artist.strip():
                    raise DataError(
                        "missing or empty artist name",
                        path=block.path,
                        line=line,
                        field="track_metadata.artist_name",
                    )
                when = obj.get("listened_at")
                if (
                    isinstance(when, bool)
                    or not isinstance(when, int | float)
                    or not 0 <= when < MAX_UNIX_SECONDS  # False for NaN; inf, 1e300, 10**20
                ):
                    raise DataError(
                        f"listened_at {when!r} is not unix seconds; it must be a number from 0 "
                        f"to 2**42, such as 1700000000",
                        path=block.path,
                        line=line,
                        field="listened_at",
                    )
                name = obj.get("user_name") or user
                if not name:
                    raise DataError(
                        "no user_name in this listen; pass the user (user='NAME', CLI --user NAME)",
                        path=block.path,
                        line=line,
                        field="user_name",
                    )
                us.append(str(name))
                ar.append(artist)
                tr.append(str(meta.get("track_name") or ""))
                ts.append(int(when))
            if us:
                agg.add(us, ar, tr, ts)
            if progress is not None:
                progress.update(len(us))
    finally:
        if progress is not None:
            progress.close()
    return agg.result("listenbrainz", p)
