"""MSD Taste Profile reader: throughput and bounded memory on a generated triplet file.

The full Taste Profile ``train_triplets.txt`` has 48M lines (``user \\t song \\t count``, grouped
by user). This script writes a seeded synthetic file of the same shape (``--lines``, default 10M:
40-hex user ids, ``SO...`` song ids, Zipf play counts and song popularity, users grouped) plus a
``unique_tracks.txt`` mapping (``track<SEP>song<SEP>artist<SEP>title``, some ``feat.`` credits)
into a temporary folder, then reads it with :func:`deepcuts.data.read_msd_taste_profile` in a fresh
child process and reports

* lines/s of the streaming reader (mapping read included),
* peak RSS of the reading process (``ru_maxrss``) and its RSS after imports (the baseline),
* the bytes of the resulting CSR matrix and id maps, for comparison,
* the same for the file written twice in a row (2x the lines, the same distinct pairs, every
  count doubled): peak RSS must not grow with the number of lines (``--no-twice`` skips it),
* the same for the anchor, ``pandas.read_csv`` of the whole file followed by a groupby (what
  one would write without a streaming reader), measured in its own process (``--no-anchor``
  skips it).

Peak RSS of the streaming reader minus its baseline stays a small multiple of the result plus one
block (``--block-mb``), whatever the file size; the anchor grows with the file.

Usage: ``python benchmarks/msd_reader.py [--lines 10000000] [--block-mb 16] [--no-anchor]
[--write]`` (``--write`` records the numbers in ``docs/benchmarks.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SECTION = "MSD Taste Profile reader: bounded memory"
ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- generation
def _fixed_ids(prefix: bytes, n: int, width: int, rng) -> np.ndarray:
    """``n`` distinct ids ``prefix + hex`` of total ``width`` bytes, as an (n, width) uint8 array."""
    hex_digits = np.frombuffer(b"0123456789ABCDEF", np.uint8)
    body = width - len(prefix)
    out = np.empty((n, width), np.uint8)
    out[:, : len(prefix)] = np.frombuffer(prefix, np.uint8)
    # a random hex body, then the index in the last 8 hex digits keeps the ids unique
    out[:, len(prefix) :] = hex_digits[rng.integers(0, 16, size=(n, body))]
    idx = np.arange(n, dtype=np.int64)
    for j in range(8):
        out[:, width - 1 - j] = hex_digits[(idx >> (4 * j)) & 15]
    return out


def _digits(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left-aligned ASCII digits of positive ints: (n, w) uint8 and the number of digits."""
    nd = np.floor(np.log10(np.maximum(c, 1))).astype(np.int64) + 1
    w = int(nd.max())
    out = np.zeros((len(c), w), np.uint8)
    for j in range(w):
        # digit j from the left exists where j < nd; its value is c // 10**(nd-1-j) % 10
        p = np.maximum(nd - 1 - j, 0)
        out[:, j] = np.where(j < nd, (c // 10**p) % 10 + 48, 0)
    return out, nd


def generate(folder: Path, n_lines: int, seed: int = 0, chunk: int = 1_000_000) -> dict:
    """Write ``train_triplets.txt`` and ``unique_tracks.txt`` into ``folder``; returns sizes."""
    rng = np.random.default_rng(seed)
    # Taste Profile ratios: 48.4M lines, 1.02M users, 384k songs, ~44k artists
    n_users = max(10, int(n_lines / 47.5))
    n_songs = max(20, min(384_546, n_lines // 20))
    n_artists = max(5, n_songs // 9)
    users = _fixed_ids(b"", n_users, 40, rng)
    songs = _fixed_ids(b"SO", n_songs, 18, rng)
    # lines per user: heavy-tailed, at least 1, summing to n_lines
    w = rng.pareto(1.5, n_users) + 1.0
    per_user = np.maximum(1, np.floor(w / w.sum() * n_lines)).astype(np.int64)
    short = n_lines - int(per_user.sum())
    if short > 0:
        np.add.at(per_user, rng.integers(0, n_users, short), 1)
    else:
        while short < 0:  # trim the largest users
            k = int(np.argmax(per_user))
            cut = min(-short, int(per_user[k]) - 1)
            per_user[k] -= cut
            short += cut
    user_of_line = np.repeat(np.arange(n_users), per_user)
    # song popularity ~ Zipf(0.9): cumulative table for inverse-CDF sampling
    pop = 1.0 / np.arange(1, n_songs + 1) ** 0.9
    cdf = np.cumsum(pop / pop.sum())
    trip = folder / "train_triplets.txt"
    with open(trip, "wb") as fh:
        for start in range(0, n_lines, chunk):
            u = user_of_line[start : start + chunk]
            n = len(u)
            s = np.minimum(np.searchsorted(cdf, rng.random(n)), n_songs - 1)
            c = np.minimum(rng.zipf(1.8, n), 9999).astype(np.int64)
            dig, nd = _digits(c)
            width = 40 + 1 + 18 + 1 + dig.shape[1] + 1
            buf = np.zeros((n, width), np.uint8)
            buf[:, :40] = users[u]
            buf[:, 40] = 9
            buf[:, 41:59] = songs[s]
            buf[:, 59] = 9
            buf[:, 60 : 60 + dig.shape[1]] = dig
            buf[np.arange(n), 60 + nd] = 10  # newline right after the last digit
            keep = np.ones((n, width), bool)
            keep[:, 60:] = np.arange(width - 60)[None, :] <= nd[:, None]
            fh.write(buf[keep].tobytes())
    # mapping: one track per song; every 25th artist credit is "A feat. B"
    art_of_song = np.minimum(
        np.searchsorted(np.cumsum(np.full(n_artists, 1.0 / n_artists)), rng.random(n_songs)),
        n_artists - 1,
    )
    song_txt = songs.view(f"S{songs.shape[1]}").ravel().astype(str)
    lines = []
    for k in range(n_songs):
        a = int(art_of_song[k])
        b = (a * 7 + 1) % n_artists
        credit = f"Artist {a}" if a % 25 else f"Artist {a} feat. Artist {b}"
        lines.append(f"TR{k:016X}<SEP>{song_txt[k]}<SEP>{credit}<SEP>Song {k}\n")
    tracks = folder / "unique_tracks.txt"
    tracks.write_text("".join(lines), encoding="utf-8")
    return {
        "lines": n_lines,
        "users": n_users,
        "songs": n_songs,
        "artists": n_artists,
        "triplets_bytes": trip.stat().st_size,
        "tracks_bytes": tracks.stat().st_size,
    }


# ----------------------------------------------------------------------------- measuring
def _rss_now() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss() -> int:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb * 1024 if sys.platform != "darwin" else kb


def _ids_bytes(ids) -> int:
    import pandas as pd

    return int(pd.Index(ids).memory_usage(deep=True))


def child(mode: str, trip: str, tracks: str, block_mb: int) -> dict:
    """Runs in a fresh process: read the file one way, report time and memory."""
    import pandas as pd

    from deepcuts.data import read_msd_mapping, read_msd_taste_profile

    base = _rss_now()
    t0 = time.perf_counter()
    if mode == "stream":
        x = read_msd_taste_profile(trip, tracks, block_bytes=block_mb << 20)
        m = x.matrix
        result = {
            "users": x.n_users,
            "items": x.n_items,
            "nnz": x.nnz,
            "max_count": float(m.data.max()),
            "matrix_bytes": int(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes),
            "idmap_bytes": _ids_bytes(x.user_map.ids) + _ids_bytes(x.item_map.ids),
        }
    else:
        mp = read_msd_mapping(tracks)
        df = pd.read_csv(trip, sep="\t", header=None, names=["user", "song", "count"])
        art = df["song"].map(pd.Series(mp["artist_name"].to_numpy(), index=mp["song_id"]))
        agg = df.assign(artist=art).groupby(["user", "artist"], sort=False)["count"].sum()
        result = {"nnz": int(len(agg))}
    seconds = time.perf_counter() - t0
    result.update(seconds=seconds, baseline_rss=base, peak_rss=_peak_rss(), end_rss=_rss_now())
    return result


def measure(mode: str, trip: Path, tracks: Path, block_mb: int) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, str(trip), str(tracks), str(block_mb)]
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise SystemExit(f"{mode} reader failed:\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def mib(b: float) -> str:
    return f"{b / 2**20:,.0f} MiB"


def markdown(
    info: dict, gen_s: float, ours: dict, twice: dict | None, anchor: dict | None, block_mb: int
) -> str:
    n = info["lines"]
    runs = [(ours, n), (twice, 2 * n), (anchor, n)]

    def row(label, f):
        return f"| {label} | " + " | ".join(f(r, k) if r else "" for r, k in runs) + " |"

    table = "\n".join(
        [
            f"| | streaming reader, {n:,} lines | streaming reader, same file twice "
            f"({2 * n:,} lines) | pandas.read_csv + groupby, {n:,} lines |",
            "|---|---|---|---|",
            row("lines/s", lambda r, k: f"{k / r['seconds']:,.0f}"),
            row("read time", lambda r, k: f"{r['seconds']:.1f} s"),
            row("pairs", lambda r, k: f"{r['nnz']:,}"),
            row("peak RSS", lambda r, k: mib(r["peak_rss"])),
            row("peak RSS - baseline", lambda r, k: mib(r["peak_rss"] - r["baseline_rss"])),
        ]
    )
    ratio = ""
    if anchor:
        ratio = (
            f"\n\nRatios streaming / pandas: time {ours['seconds'] / anchor['seconds']:.2f}, "
            f"peak RSS above baseline "
            f"{(ours['peak_rss'] - ours['baseline_rss']) / (anchor['peak_rss'] - anchor['baseline_rss']):.2f}."
        )
    return (
        f"## {SECTION}\n\n"
        f"`python benchmarks/msd_reader.py --lines {n} --write`: a generated Taste Profile file "
        f"of {n:,} lines ({mib(info['triplets_bytes'])}; {info['users']:,} users, "
        f"{info['songs']:,} songs, {info['artists']:,} artists, written in {gen_s:.0f} s) plus "
        f"its unique_tracks mapping ({mib(info['tracks_bytes'])}), read with "
        f"`read_msd_taste_profile` (blocks of {block_mb} MiB) in a fresh process on "
        f"{platform.machine()} ({os.cpu_count()} cores, shared). Result: {ours['users']:,} users "
        f"x {ours['items']:,} artists, {ours['nnz']:,} pairs; its CSR matrix takes "
        f"{mib(ours['matrix_bytes'])} and its id maps {mib(ours['idmap_bytes'])}. Baseline RSS "
        f"(interpreter, numpy, pandas, deepcuts imported) was {mib(ours['baseline_rss'])}.\n\n"
        f"{table}{ratio}\n\n"
        "Memory of the streaming reader is one block of lines, the song -> artist mapping, the "
        "user vocabulary and the aggregated (user, artist) pairs, merged geometrically "
        "(a merge happens when the pairs buffered since the last one outnumber the merged pairs, "
        "so at most about twice the distinct pairs are held, plus the sort buffers of a merge): "
        "it grows with the number of distinct pairs, not with the number of lines. Reading the "
        "file twice over (twice the lines, the same pairs) re-buffers every pair once before the "
        "final merge, so its peak is higher; by design further passes would not raise it "
        "again (the buffer never exceeds the merged pairs), whereas the anchor grows with every "
        "line. The pandas anchor holds every line "
        "in memory before aggregating. Times are wall-clock on a machine shared with other jobs; "
        "the ratio to the anchor measured in the same run is the stable number.\n"
    )


def write_section(path: Path, text: str) -> None:
    sys.path.insert(0, str(ROOT / "src"))
    from deepcuts._fileio import atomic_write_bytes

    old = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^## {re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(old):
        new = pattern.sub(lambda _: text + "\n", old)
    else:
        new = old.rstrip("\n") + "\n\n" + text
    atomic_write_bytes(path, new.encode())


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        mode, trip, tracks, block_mb = sys.argv[2:6]
        print(json.dumps(child(mode, trip, tracks, int(block_mb))))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=10_000_000, help="triplet lines to generate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--block-mb", type=int, default=16, help="reader block size in MiB")
    ap.add_argument("--no-anchor", action="store_true", help="skip the pandas.read_csv anchor")
    ap.add_argument("--no-twice", action="store_true", help="skip the file-read-twice check")
    ap.add_argument("--dir", type=Path, help="where to write the files (default: a temp dir)")
    ap.add_argument("--write", action="store_true", help="record the numbers in docs/benchmarks.md")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        info = generate(folder, args.lines, seed=args.seed)
        gen_s = time.perf_counter() - t0
        print(
            f"generated {info['lines']:,} lines ({mib(info['triplets_bytes'])}) and "
            f"{info['songs']:,} tracks in {gen_s:.1f}s ({info['lines'] / gen_s:,.0f} lines/s)"
        )
        trip, tracks = folder / "train_triplets.txt", folder / "unique_tracks.txt"
        ours = measure("stream", trip, tracks, args.block_mb)
        print(
            f"streaming reader: {ours['seconds']:.1f}s, {info['lines'] / ours['seconds']:,.0f} "
            f"lines/s; peak RSS {mib(ours['peak_rss'])} (baseline {mib(ours['baseline_rss'])}, "
            f"+{mib(ours['peak_rss'] - ours['baseline_rss'])}); result {ours['users']:,} users x "
            f"{ours['items']:,} artists, {ours['nnz']:,} pairs: CSR {mib(ours['matrix_bytes'])}, "
            f"id maps {mib(ours['idmap_bytes'])}"
        )
        twice = None
        if not args.no_twice:
            double = folder / "train_triplets_twice.txt"
            with open(double, "wb") as out:
                for _ in range(2):
                    with open(trip, "rb") as src:
                        shutil.copyfileobj(src, out, 16 << 20)
            twice = measure("stream", double, tracks, args.block_mb)
            double.unlink()
            print(
                f"same file twice ({2 * info['lines']:,} lines): {twice['seconds']:.1f}s, "
                f"peak RSS {mib(twice['peak_rss'])} "
                f"(+{mib(twice['peak_rss'] - twice['baseline_rss'])}), {twice['nnz']:,} pairs"
            )
        anchor = None
        if not args.no_anchor:
            anchor = measure("pandas", trip, tracks, args.block_mb)
            print(
                f"pandas.read_csv + groupby (anchor): {anchor['seconds']:.1f}s, "
                f"{info['lines'] / anchor['seconds']:,.0f} lines/s; peak RSS "
                f"{mib(anchor['peak_rss'])} (+{mib(anchor['peak_rss'] - anchor['baseline_rss'])})"
            )
            print(
                f"ratio streaming / anchor: time {ours['seconds'] / anchor['seconds']:.2f}, "
                f"peak RSS above baseline "
                f"{(ours['peak_rss'] - ours['baseline_rss']) / (anchor['peak_rss'] - anchor['baseline_rss']):.2f}"
            )
    if args.write:
        out = ROOT / "docs" / "benchmarks.md"
        write_section(out, markdown(info, gen_s, ours, twice, anchor, args.block_mb))
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
