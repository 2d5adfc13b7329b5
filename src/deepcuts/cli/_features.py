"""``deepcuts features FOLDER -o features.csv``: audio content features of every file in a folder."""

from __future__ import annotations

import io
import sys
from pathlib import Path

from deepcuts.exceptions import DeepcutsError


def register(sub) -> None:
    p = sub.add_parser(
        "features",
        help="extract audio features (MFCC, tempo, chroma, key, moods) from a folder of audio",
        description="Extract content features from every wav/mp3/ogg/flac file under FOLDER and "
        "write one row per file to a CSV. Work is cached next to the output "
        "(OUTPUT.cache.parquet), so an interrupted or repeated run only extracts new or "
        "changed files. Files that cannot be decoded are listed and skipped.",
    )
    p.add_argument("folder", help="folder with audio files (searched recursively)")
    p.add_argument("-o", "--output", required=True, help="CSV file to write")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (-1: all CPUs)")
    p.add_argument(
        "--duration", type=float, default=None, help="analyse at most this many seconds per file"
    )
    p.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from deepcuts._fileio import atomic_write_bytes
    from deepcuts.data.audio import extract_folder

    out = Path(args.output)
    if out.is_dir():
        raise DeepcutsError(f"{out}: is a folder; pass a CSV file name with -o")
    cache = None if args.no_cache else out.with_name(out.name + ".cache.parquet")
    res = extract_folder(
        args.folder,
        n_jobs=args.jobs,
        cache=cache,
        duration=args.duration,
        show_progress=not args.quiet,
    )
    buf = io.StringIO()
    res.features.drop(columns=["path"]).to_csv(buf, index=False)
    atomic_write_bytes(out, buf.getvalue().encode())
    n_new = len(res.features) - res.n_cached
    print(
        f"wrote {out}: {len(res.features)} files ({n_new} extracted, {res.n_cached} from cache) "
        f"in {res.seconds:.1f}s"
    )
    if len(res.failed):
        print(f"skipped {len(res.failed)} file(s) that could not be read:", file=sys.stderr)
        for row in res.failed.itertuples():
            print(f"  {row.file}: {row.error}", file=sys.stderr)
    return 0
