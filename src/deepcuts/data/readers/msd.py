"""Reader for the Million Song Dataset Echo Nest Taste Profile (``user \\t song \\t count``).

The Taste Profile subset has 48M lines of ``user<TAB>song<TAB>count`` (no header). deepcuts
recommends artists, so plays are aggregated to artists through a song -> artist mapping: MSD's
``unique_tracks.txt`` (``track<SEP>song<SEP>artist<SEP>title``) or a CSV with columns
``song_id, artist_name``. Artist names are normalised by :mod:`deepcuts.data.artists`
(feat./ft./`` / `` credits split, primary artist credited by default, Unicode folding).

The triplets file is streamed in blocks: memory holds one block, the user vocabulary and the
aggregated matrix, never the file (see ``benchmarks/msd_reader.py``).
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from deepcuts.data.artists import normalize_artists
from deepcuts.data.idmap import IdMap
from deepcuts.data.interactions import Interactions
from deepcuts.data.readers._stream import (
    DEFAULT_BLOCK_BYTES,
    Block,
    PairAccumulator,
    Vocab,
    iter_blocks,
    parse_block,
    require_nonempty,
    to_count,
)
from deepcuts.exceptions import DataError

__all__ = ["read_msd_mapping", "read_msd_taste_profile"]

log = logging.getLogger(__name__)

_UNIQUE_TRACKS_COLS = ["track_id", "song_id", "artist_name", "title"]


def read_msd_mapping(path, *, encoding: str = "utf-8", show_progress: bool = False) -> pd.DataFrame:
    """Read a song -> artist mapping.

    Parameters
    ----------
    path : path
        MSD ``unique_tracks.txt`` (``track<SEP>song<SEP>artist<SEP>title``, no header; the
        separator is the literal text ``<SEP>``), or a CSV file whose header has ``song_id``
        and ``artist_name`` (optionally ``title``). ``.gz`` is decompressed.
    encoding : str, default="utf-8"
    show_progress : bool, default=False
        Show a tqdm progress bar.

    Returns
    -------
    pandas.DataFrame
        Columns ``song_id``, ``artist_name``, ``title`` (``""`` when absent), one row per song
        (the first line wins when a song id repeats, as in ``unique_tracks.txt``).
    """
    p = Path(path)
    blocks = iter_blocks(p, encoding=encoding, show_progress=show_progress, desc=p.name)
    frames = []
    first = True
    header: list[str] | None = None
    for block in blocks:
        if first:
            first = False
            first_line = block.line(0)
            if b"<SEP>" not in first_line:
                header = _csv_header(block)
        if header is None:
            sep_block = Block(
                block.first_line, block.data.replace(b"<SEP>", b"\x1f"), block.path, encoding
            )
            df = parse_block(sep_block, _UNIQUE_TRACKS_COLS, sep="\x1f")
        else:
            df = parse_block(
                block,
                header,
                sep=",",
                quoting=csv.QUOTE_MINIMAL,
                header_lines=1 if block.first_line == 1 else 0,
            )
            if "title" not in df:
                df["title"] = ""
        require_nonempty(df, "song_id", p)
        require_nonempty(df, "artist_name", p)
        frames.append(df[["song_id", "artist_name", "title"]])
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if out.empty:
        raise DataError("mapping has no songs", path=p)
    out = out.drop_duplicates("song_id", keep="first").reset_index(drop=True)
    log.info(
        "read song -> artist mapping: %d songs, %d artist credits",
        len(out),
        out["artist_name"].nunique(),
    )
    return out


def _csv_header(block: Block) -> list[str]:
    text = block.line(0).decode(block.encoding, errors="replace")
    cols = [c.strip().strip('"') for c in next(csv.reader([text]))]
    missing = [c for c in ("song_id", "artist_name") if c not in cols]
    if missing:
        raise DataError(
            f"mapping column(s) {missing} not found in header {cols}; pass MSD "
            f"unique_tracks.txt (track<SEP>song<SEP>artist<SEP>title) or a CSV with a header "
            f"naming song_id and artist_name",
            path=block.path,
            line=1,
            field=missing[0],
        )
    return cols


def _parse_triplets(block: Block):
    """Validated parse (exact line and field in every error): uniques, codes and counts."""
    p = block.path
    df = parse_block(block, ["user", "song", "count"])
    require_nonempty(df, "user", p)
    require_nonempty(df, "song", p)
    counts = to_count(df, "count", p)
    user_codes, user_uniq = pd.factorize(df["user"].to_numpy(dtype=object), sort=False)
    song_codes, song_uniq = pd.factorize(df["song"].to_numpy(dtype=object), sort=False)
    return (
        np.asarray(user_uniq, dtype=object),
        user_codes,
        np.asarray(song_uniq, dtype=object),
        song_codes,
        counts,
    )


def _parse_triplets_fast(block: Block):
    """Fast path with pyarrow's CSV reader; None when anything looks off (the validated parser
    then reports the exact line and field)."""
    if block.encoding.lower().replace("-", "").replace("_", "") != "utf8":
        return None
    try:
        import pyarrow as pa
        import pyarrow.csv as pacsv
    except ImportError:  # the 'parquet' extra is not installed: the validated parser reads it
        return None

    try:
        table = pacsv.read_csv(
            pa.py_buffer(block.data),
            read_options=pacsv.ReadOptions(column_names=["user", "song", "count"]),
            parse_options=pacsv.ParseOptions(
                delimiter="\t", quote_char=False, escape_char=False, ignore_empty_lines=False
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={"user": pa.string(), "song": pa.string(), "count": pa.float64()},
                strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None  # a malformed block: the validated parser re-reads it and names the line
    col = table.column("count")
    if col.null_count:
        return None
    counts = col.to_numpy()
    if not (np.isfinite(counts).all() and (counts >= 0).all()):
        return None
    out = []
    for name in ("user", "song"):
        enc = table.column(name).combine_chunks().dictionary_encode()
        uniq = enc.dictionary.to_numpy(zero_copy_only=False)
        if len(uniq) and (np.char.str_len(uniq.astype(str)) == 0).any():
            return None
        out += [uniq.astype(object), enc.indices.to_numpy().astype(np.int64)]
    return out[0], out[1], out[2], out[3], counts.astype(np.float64)


def read_msd_taste_profile(
    path,
    mapping,
    *,
    level: str = "artist",
    credit: str = "primary",
    unknown_songs: str = "raise",
    encoding: str = "utf-8",
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    show_progress: bool = False,
) -> Interactions:
    """Read Taste Profile triplets (``user \\t song \\t count``) into :class:`Interactions`.

    Parameters
    ----------
    path : path
        ``train_triplets.txt`` (or ``.gz``): tab-separated, no header.
    mapping : path or pandas.DataFrame
        Song -> artist mapping: a file for :func:`read_msd_mapping` or its result.
    level : {"artist", "track"}, default="artist"
        ``"artist"``: items are artist keys (:func:`deepcuts.data.artists.artist_key`), counts
        summed over the artist's songs. ``"track"``: items are song ids and ``items`` gets an
        ``artist`` column (artist key) and ``artist_name`` (display), for per-artist caps and
        :func:`deepcuts.data.aggregate_to_artists`.
    credit : {"primary", "split"}, default="primary"
        ``"primary"``: a song's plays count for the first artist of its credit only (``"A feat.
        B"`` -> A). ``"split"``: divided equally between all credited artists. Artist level only.
    unknown_songs : {"raise", "drop"}, default="raise"
        A song missing from the mapping raises :class:`DataError` naming the line, or its plays
        are dropped (their number is logged and kept in ``meta["dropped_plays"]``).
    encoding : str, default="utf-8"
    block_bytes : int, default=16 MiB
        Bytes read per block; memory use is a few times this plus the result.
    show_progress : bool, default=False
        Show a tqdm progress bar (bytes read).

    Returns
    -------
    Interactions
        Users (Taste Profile user hashes, first-appearance order) x artists (or songs), play
        counts as float32. ``items`` has ``item``, ``name``, ``tags`` (empty) and, at track level,
        ``artist``, ``artist_name``. Only items with at least one play are kept.
    """
    if level not in ("artist", "track"):
        raise DataError(f"level must be 'artist' or 'track', got {level!r}", field="level")
    if credit not in ("primary", "split"):
        raise DataError(f"credit must be 'primary' or 'split', got {credit!r}", field="credit")
    if unknown_songs not in ("raise", "drop"):
        raise DataError(
            f"unknown_songs must be 'raise' or 'drop', got {unknown_songs!r}", field="unknown_songs"
        )
    p = Path(path)
    mp = (
        mapping
        if isinstance(mapping, pd.DataFrame)
        else read_msd_mapping(mapping, encoding=encoding, show_progress=show_progress)
    )
    for c in ("song_id", "artist_name"):
        if c not in mp.columns:
            raise DataError(f"mapping frame lacks column {c!r}", field=c)
    mp = mp.drop_duplicates("song_id", keep="first").reset_index(drop=True)
    songs = pd.Index(mp["song_id"].to_numpy(dtype=object))
    norm = normalize_artists(mp["artist_name"].to_numpy(dtype=object), credit=credit)
    art_codes, art_keys = pd.factorize(norm["key"], sort=False)
    art_display = norm.groupby(art_codes, sort=True)["display"].first().to_numpy(dtype=object)
    # song -> artists as CSR (song_ptr, song_art, song_share); "primary" gives one per song
    song_ptr = np.zeros(len(songs) + 1, dtype=np.int64)
    np.cumsum(np.bincount(norm["row"].to_numpy(), minlength=len(songs)), out=song_ptr[1:])
    song_art = art_codes.astype(np.int64)
    song_share = norm["share"].to_numpy(np.float64)
    has_artist = np.diff(song_ptr) > 0

    users = Vocab()
    tracks = Vocab() if level == "track" else None
    acc = PairAccumulator()
    n_lines = 0
    dropped_lines = 0
    dropped_plays = 0.0
    for block in iter_blocks(
        p, encoding=encoding, block_bytes=block_bytes, show_progress=show_progress, desc=p.name
    ):
        parsed = _parse_triplets_fast(block) or _parse_triplets(block)
        user_uniq, user_codes, song_uniq, song_codes, counts = parsed
        n_lines += len(counts)
        pos_uniq = songs.get_indexer(song_uniq)
        unknown_uniq = pos_uniq < 0
        unknown_uniq[~unknown_uniq] = ~has_artist[pos_uniq[~unknown_uniq]]
        pos = pos_uniq[song_codes]
        unknown = unknown_uniq[song_codes]
        if unknown.any():
            if unknown_songs == "raise":
                # re-parse the block line by line for the exact line (blank lines counted)
                df = parse_block(block, ["user", "song", "count"])
                bad = ~df["song"].isin(songs[has_artist]).to_numpy()
                k = int(np.flatnonzero(bad)[0])
                raise DataError(
                    f"song {df['song'].iloc[k]!r} is not in the song -> artist mapping; use the "
                    f"matching unique_tracks.txt or pass unknown_songs='drop' "
                    f"(CLI: --drop-unknown-songs)",
                    path=p,
                    line=int(df["_line"].iloc[k]),
                    field="song",
                )
            dropped_lines += int(unknown.sum())
            dropped_plays += float(counts[unknown].sum())
            keep = ~unknown
            user_codes, song_codes, counts, pos = (
                user_codes[keep],
                song_codes[keep],
                counts[keep],
                pos[keep],
            )
        # vocabularies are looked up once per distinct id of the block, not once per line
        u = users.encode(user_uniq)[user_codes]
        if level == "track":
            acc.add(u, tracks.encode(song_uniq)[song_codes], counts)
        elif credit == "primary":
            acc.add(u, song_art[song_ptr[pos]], counts)
        else:
            n_per = (song_ptr[pos + 1] - song_ptr[pos]).astype(np.int64)
            rep = np.repeat(np.arange(len(pos)), n_per)
            offs = np.arange(len(rep)) - np.repeat(np.cumsum(n_per) - n_per, n_per)
            flat = song_ptr[pos][rep] + offs
            acc.add(u[rep], song_art[flat], counts[rep] * song_share[flat])
    if dropped_lines:
        log.warning(
            "%s: dropped %d lines (%.0f plays) whose song is not in the mapping",
            p,
            dropped_lines,
            dropped_plays,
        )
    n_items = len(tracks) if tracks is not None else len(art_keys)
    matrix, _ = acc.result((len(users), n_items))
    if len(users) == 0 or matrix.nnz == 0:
        raise DataError("no plays left to read (all lines dropped?)", path=p)
    if level == "track":
        song_ids = tracks.ids()
        rows = songs.get_indexer(song_ids)
        prim = song_art[song_ptr[rows]]
        titles = mp["title"].to_numpy(dtype=object)[rows] if "title" in mp else song_ids
        items = pd.DataFrame(
            {
                "item": song_ids,
                "name": [f"{a} - {t}" if t else str(a) for a, t in zip(art_display[prim], titles)],
                "artist": np.asarray(art_keys, dtype=object)[prim],
                "artist_name": art_display[prim],
            }
        )
    else:
        used = np.flatnonzero(np.bincount(matrix.indices, minlength=n_items))
        matrix = matrix[:, used]
        items = pd.DataFrame(
            {"item": np.asarray(art_keys, dtype=object)[used], "name": art_display[used]}
        )
    items["tags"] = [[] for _ in range(len(items))]
    x = Interactions(
        matrix,
        IdMap(users.ids(), name="user"),
        IdMap(items["item"].to_numpy(), name="item"),
        items=items,
    )
    x.meta.update(
        {
            "source": "msd-taste-profile",
            "path": str(p),
            "level": level,
            "credit": credit,
            "lines": n_lines,
            "dropped_lines": dropped_lines,
            "dropped_plays": dropped_plays,
        }
    )
    log.info("read %s from %d lines", x, n_lines)
    return x
