"""``deepcuts ingest SOURCE -o DATASET``: read listening data into a saved interactions file."""

from __future__ import annotations

import time

from deepcuts.cli._checks import add_force_argument, check_output, encoding, utf8_source
from deepcuts.data import filter_interactions, read_interactions
from deepcuts.data._persist import INTERACTIONS_FORMAT, interactions_paths
from deepcuts.data.readers import FORMATS
from deepcuts.exceptions import DeepcutsError

INGEST_FORMATS = ("auto", *(f for f in FORMATS if f != "npz"))


def register(sub) -> None:
    p = sub.add_parser(
        "ingest",
        help="read listening data (HetRec, MSD, Last.fm 1K, ListenBrainz, CSV/Parquet) and save it",
        description="Read a listening-data source into a users x items play-count matrix and "
        "save it as DATASET.npz + DATASET.json (atomic write, no pickle) for "
        "'deepcuts train/evaluate --data DATASET'. Examples: "
        "deepcuts ingest train_triplets.txt --format msd --tracks unique_tracks.txt -o msd; "
        "deepcuts ingest plays.csv --columns user=uid,item=artist,count=plays -o plays; "
        "deepcuts ingest listens.tsv --format lastfm1k --min-items-per-user 2 -o lfm1k.",
    )
    p.add_argument("source", help="file or folder to read")
    p.add_argument(
        "--format",
        choices=INGEST_FORMATS,
        default="auto",
        help="hetrec: HetRec 2011 Last.fm 2K folder; msd: Taste Profile triplets "
        "(needs --tracks); lastfm1k: Last.fm 1K listens TSV (recognised by its official name "
        "userid-timestamp-artid-artname-traid-traname.tsv); listenbrainz: export as JSON lines "
        "(file, folder or .zip) or a JSON array; lastfm-scrobbles: a Last.fm scrobble CSV "
        "export; spotify: Spotify (extended) streaming history JSON, folder or .zip; table: "
        "CSV/TSV/Parquet with a header (see --columns). auto (default) guesses from the path "
        "and the first bytes",
    )
    p.add_argument("-o", "--output", required=True, help="output path (without extension)")
    add_force_argument(p)
    p.add_argument(
        "--tracks",
        "--mapping",
        dest="tracks",
        metavar="PATH",
        help="msd: song -> artist mapping, unique_tracks.txt or a CSV with song_id,artist_name",
    )
    p.add_argument(
        "--drop-unknown-songs",
        action="store_true",
        help="msd: drop plays of songs missing from --tracks (default: error)",
    )
    p.add_argument(
        "--columns",
        metavar="ROLE=COL,...",
        help="table: column mapping, roles user, item (required), count, time, name; "
        "e.g. user=uid,item=artist,count=plays",
    )
    p.add_argument(
        "--user",
        help="listenbrainz: user name for listens without user_name; lastfm-scrobbles, "
        "spotify: the user id of the export (default: me)",
    )
    p.add_argument(
        "--level", choices=("artist", "track"), default="artist", help="items (msd, listens)"
    )
    p.add_argument(
        "--credit",
        choices=("primary", "split"),
        default="primary",
        help="'A feat. B' counts for A only (primary) or half each (split)",
    )
    p.add_argument(
        "--encoding",
        type=encoding,
        default="utf-8",
        help="text encoding (default utf-8; a UTF-16/32 byte-order mark is detected)",
    )
    p.add_argument(
        "--min-items-per-user",
        type=int,
        default=1,
        metavar="N",
        help="drop users with fewer than N distinct items (2 drops single-artist users)",
    )
    p.add_argument(
        "--min-users-per-item",
        type=int,
        default=1,
        metavar="N",
        help="drop items with fewer than N distinct users",
    )
    p.add_argument(
        "--k-core", action="store_true", help="repeat both filters until nothing changes"
    )
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    p.set_defaults(func=run)


def _reader_options(args, fmt: str) -> dict:
    """Options for the chosen reader; options that do not apply are an error, not ignored."""
    given = {
        "--tracks": args.tracks is not None,
        "--drop-unknown-songs": args.drop_unknown_songs,
        "--columns": args.columns is not None,
        "--user": args.user is not None,
        "--level": args.level != "artist",
        "--credit": args.credit != "primary",
    }
    allowed = {
        "hetrec": set(),
        "msd": {"--tracks", "--drop-unknown-songs", "--level", "--credit"},
        "lastfm1k": {"--level", "--credit"},
        "listenbrainz": {"--user", "--level", "--credit"},
        "lastfm-scrobbles": {"--user", "--level", "--credit"},
        "spotify": {"--user", "--level", "--credit"},
        "table": {"--columns"},
    }[fmt]
    extra = [opt for opt, on in given.items() if on and opt not in allowed]
    if extra:
        raise DeepcutsError(
            f"{', '.join(extra)} does not apply to --format {fmt}; "
            f"options for {fmt}: {', '.join(sorted(allowed)) or 'none'}"
        )
    if fmt in ("lastfm-scrobbles", "spotify"):  # one listener's export, read whole
        kw = {"level": args.level, "credit": args.credit}
        if args.user:
            kw["user"] = args.user
        return kw
    kw: dict = {"encoding": args.encoding, "show_progress": args.progress}
    if fmt == "msd":
        if args.tracks is None:
            raise DeepcutsError(
                "--format msd needs the song -> artist mapping: add --tracks unique_tracks.txt "
                "(or a CSV with columns song_id,artist_name)"
            )
        kw.update(
            mapping=args.tracks,
            unknown_songs="drop" if args.drop_unknown_songs else "raise",
            level=args.level,
            credit=args.credit,
        )
    elif fmt in ("lastfm1k", "listenbrainz"):
        kw.update(level=args.level, credit=args.credit)
        if fmt == "listenbrainz" and args.user:
            kw["user"] = args.user
    elif fmt == "table":
        kw["columns"] = args.columns
    return kw


def run(args) -> int:
    from pathlib import Path

    from deepcuts.data.readers import _guess_format

    for opt, v in (
        ("--min-items-per-user", args.min_items_per_user),
        ("--min-users-per-item", args.min_users_per_item),
    ):
        if v < 0:
            raise DeepcutsError(f"{opt} must be >= 0, got {v}")
    src = Path(args.source)
    if not src.exists():
        raise DeepcutsError(f"{src}: file not found; check the path")
    fmt = _guess_format(src) if args.format == "auto" else args.format
    if fmt == "npz":
        raise DeepcutsError(
            f"{src}: is already a saved deepcuts dataset; pass it to --data directly"
        )
    kw = _reader_options(args, fmt)
    inputs = [src] + ([Path(args.tracks)] if args.tracks else [])
    if src.is_dir():
        inputs += [f for f in src.rglob("*") if f.is_file()]
    check_output(
        interactions_paths(args.output),
        want={"format": INTERACTIONS_FORMAT},
        inputs=inputs,
        force=args.force,
    )
    t0 = time.perf_counter()
    with utf8_source(src, kw["encoding"]) as (path, enc):
        x = read_interactions(path, format=fmt, **{**kw, "encoding": enc})
    read_s = time.perf_counter() - t0
    print(
        f"read {src} ({fmt}): {x.n_users} users x {x.n_items} items, {x.nnz} pairs in {read_s:.1f}s"
    )
    if args.min_items_per_user > 1 or args.min_users_per_item > 1:
        before = x
        x = filter_interactions(
            x,
            min_items_per_user=args.min_items_per_user,
            min_users_per_item=args.min_users_per_item,
            iterate=args.k_core,
        )
        print(
            f"filtered: dropped {before.n_users - x.n_users} users, "
            f"{before.n_items - x.n_items} items, {before.nnz - x.nnz} pairs"
        )
    if x.nnz == 0:
        raise DeepcutsError(
            "no interactions left after filtering; lower --min-items-per-user / "
            "--min-users-per-item"
        )
    manifest = x.save(args.output)
    print(
        f"wrote {manifest} (+ .npz): {x.n_users} users x {x.n_items} items, {x.nnz} pairs"
        + (", with timestamps" if x.timestamps is not None else "")
    )
    return 0
