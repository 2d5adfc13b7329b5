"""MSD Taste Profile reader: aggregation to artists, mapping formats, bad input (issue 2)."""

import gzip

import numpy as np
import pandas as pd
import pytest

from deepcuts.data import aggregate_to_artists, read_msd_mapping, read_msd_taste_profile
from deepcuts.exceptions import DataError

ARTISTS = ["Jay-Z feat. Rihanna", "Rihanna", "The Beatles", "Beatles, The", "AC/DC", "Björk"]


def make_msd(folder, n_lines=3000, n_users=200, n_songs=40, seed=0):
    """Power-law triplets (unique (user, song) per line, grouped by user) + unique_tracks."""
    rng = np.random.default_rng(seed)
    songs = [f"SO{k:016d}" for k in range(n_songs)]
    song_artist = [ARTISTS[k % len(ARTISTS)] for k in range(n_songs)]
    lines = set()
    rows = []
    p = 1.0 / np.arange(1, n_songs + 1)
    p /= p.sum()
    while len(rows) < n_lines:
        u = f"{rng.integers(n_users):040x}"
        s = songs[rng.choice(n_songs, p=p)]
        if (u, s) in lines:
            continue
        lines.add((u, s))
        rows.append((u, s, int(rng.zipf(2.0))))
    rows.sort(key=lambda r: r[0])
    trip = folder / "triplets.txt"
    trip.write_text("".join(f"{u}\t{s}\t{c}\n" for u, s, c in rows))
    ut = folder / "unique_tracks.txt"
    ut.write_text(
        "".join(
            f"TR{k:016d}<SEP>{s}<SEP>{a}<SEP>Title {k}\n"
            for k, (s, a) in enumerate(zip(songs, song_artist))
        )
    )
    df = pd.DataFrame(rows, columns=["user", "song", "count"])
    df["artist"] = df["song"].map(dict(zip(songs, song_artist)))
    return trip, ut, df


def expected_artist_counts(df):
    key = {
        "Jay-Z feat. Rihanna": "jay-z",
        "Rihanna": "rihanna",
        "The Beatles": "beatles",
        "Beatles, The": "beatles",
        "AC/DC": "ac/dc",
        "Björk": "bjork",
    }
    return df.assign(item=df["artist"].map(key)).groupby(["user", "item"])["count"].sum()


def as_series(x):
    f = x.to_frame()
    return f.set_index(["user", "item"])["count"].astype(float).sort_index()


@pytest.mark.parametrize("block_bytes", [2000, 1 << 20])
def test_artist_counts_match_reference(tmp_path, block_bytes):
    trip, ut, df = make_msd(tmp_path)
    x = read_msd_taste_profile(trip, ut, block_bytes=block_bytes)
    exp = expected_artist_counts(df).astype(float).sort_index()
    got = as_series(x)
    pd.testing.assert_series_equal(got, exp, check_names=False)
    assert x.meta["lines"] == len(df)
    names = dict(zip(x.items["item"], x.items["name"]))
    assert names["beatles"] in ("The Beatles", "Beatles, The")
    assert names["jay-z"] == "Jay-Z"
    assert names["bjork"] == "Björk"
    assert x.matrix.dtype == np.float32


def test_split_credit_halves_feat_plays(tmp_path):
    trip, ut, df = make_msd(tmp_path)
    prim = read_msd_taste_profile(trip, ut)
    split = read_msd_taste_profile(trip, ut, credit="split")
    feat = df[df["artist"] == "Jay-Z feat. Rihanna"]["count"].sum()
    rih = df[df["artist"] == "Rihanna"]["count"].sum()
    col = lambda x, a: x.item_plays()[x.item_map.index([a])[0]]  # noqa: E731
    assert col(prim, "rihanna") == rih
    assert col(split, "rihanna") == pytest.approx(rih + feat / 2)
    assert col(split, "jay-z") == pytest.approx(feat / 2)
    assert split.matrix.sum() == pytest.approx(prim.matrix.sum())


def test_csv_mapping_equals_unique_tracks(tmp_path):
    trip, ut, _ = make_msd(tmp_path)
    mp = read_msd_mapping(ut)
    csv = tmp_path / "map.csv"
    mp[["song_id", "artist_name"]].to_csv(csv, index=False)
    a = read_msd_taste_profile(trip, ut)
    b = read_msd_taste_profile(trip, csv)
    pd.testing.assert_series_equal(as_series(a), as_series(b))


def test_track_level_aggregates_to_artist_level(tmp_path):
    trip, ut, df = make_msd(tmp_path)
    t = read_msd_taste_profile(trip, ut, level="track")
    assert t.nnz == len(df)
    assert {"artist", "artist_name"} <= set(t.items.columns)
    a = aggregate_to_artists(t)
    pd.testing.assert_series_equal(as_series(a), as_series(read_msd_taste_profile(trip, ut)))


def test_gzip_input(tmp_path):
    trip, ut, _ = make_msd(tmp_path)
    gz = tmp_path / "triplets.txt.gz"
    gz.write_bytes(gzip.compress(trip.read_bytes()))
    pd.testing.assert_series_equal(
        as_series(read_msd_taste_profile(gz, ut)), as_series(read_msd_taste_profile(trip, ut))
    )


def test_unknown_song_raises_or_drops(tmp_path):
    trip, ut, df = make_msd(tmp_path, n_lines=200)
    lines = trip.read_text().splitlines(keepends=True)
    lines.insert(150, f"{'f' * 40}\tSOUNKNOWN\t7\n")
    trip.write_text("".join(lines))
    with pytest.raises(DataError, match=r"line 151.*field 'song'.*SOUNKNOWN"):
        read_msd_taste_profile(trip, ut, block_bytes=100)
    x = read_msd_taste_profile(trip, ut, unknown_songs="drop")
    assert x.meta["dropped_lines"] == 1 and x.meta["dropped_plays"] == 7
    assert x.matrix.sum() == df["count"].sum()


@pytest.mark.parametrize(
    ("bad_line", "pattern"),
    [
        ("u1\tSO0000000000000000\n", r"line 1001: expected 3 .*got 2"),
        ("u1\tSO0000000000000000\t3\t4\n", r"line 1001: expected 3 .*got 4"),
        ("u1\tSO0000000000000000\t-3\n", r"line 1001, field 'count': count '-3' is negative"),
        ("u1\tSO0000000000000000\tmany\n", r"line 1001, field 'count': .*not a number"),
        ("\tSO0000000000000000\t3\n", r"line 1001, field 'user'"),
    ],
)
def test_bad_lines_name_line_and_field(tmp_path, bad_line, pattern):
    trip, ut, _ = make_msd(tmp_path, n_lines=2000)
    lines = trip.read_text().splitlines(keepends=True)
    lines.insert(1000, bad_line)
    trip.write_text("".join(lines))
    with pytest.raises(DataError, match=pattern) as e:
        read_msd_taste_profile(trip, ut, block_bytes=4096)
    assert str(trip) in str(e.value)


def test_latin1_bytes_name_line_and_field(tmp_path):
    trip, ut, _ = make_msd(tmp_path, n_lines=500)
    data = trip.read_bytes().splitlines(keepends=True)
    data.insert(300, b"caf\xe9\tSO0000000000000000\t1\n")
    trip.write_bytes(b"".join(data))
    with pytest.raises(DataError, match=r"line 301.*cannot be decoded as utf-8.*latin-1"):
        read_msd_taste_profile(trip, ut, block_bytes=1000)


def test_empty_files(tmp_path):
    trip, ut, _ = make_msd(tmp_path, n_lines=10)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        read_msd_taste_profile(empty, ut)
    with pytest.raises(DataError, match="empty"):
        read_msd_taste_profile(trip, empty)


def test_mapping_errors(tmp_path):
    bad = tmp_path / "map.csv"
    bad.write_text("song,artist\nSO1,A\n")
    with pytest.raises(DataError, match=r"line 1, field 'song_id'"):
        read_msd_mapping(bad)
    ut = tmp_path / "unique_tracks.txt"
    ut.write_text("TR1<SEP>SO1<SEP>A<SEP>t\nTR2<SEP>SO2<SEP>B\n")
    with pytest.raises(DataError, match=r"line 2: expected 4"):
        read_msd_mapping(ut)


def test_fast_and_validated_parsers_agree(tmp_path):
    """The pyarrow fast path and the line-by-line parser give the same block contents."""
    from deepcuts.data.readers._stream import iter_blocks
    from deepcuts.data.readers.msd import _parse_triplets, _parse_triplets_fast

    trip, _, _ = make_msd(tmp_path, n_lines=800)
    for block in iter_blocks(trip, block_bytes=5000):
        fast, slow = _parse_triplets_fast(block), _parse_triplets(block)
        assert fast is not None
        for (fu, fc), (su, sc) in [((fast[0], fast[1]), (slow[0], slow[1])),
                                   ((fast[2], fast[3]), (slow[2], slow[3]))]:  # fmt: skip
            assert fu[fc].tolist() == su[sc].tolist()
        np.testing.assert_array_equal(fast[4], slow[4])


def test_blank_lines_and_crlf_take_the_validated_path(tmp_path):
    trip, ut, df = make_msd(tmp_path, n_lines=600)
    lines = trip.read_text().splitlines()
    odd = tmp_path / "odd.txt"
    # CRLF line ends and blank lines: the fast path declines, the result is the same
    odd.write_bytes(("\r\n".join(lines[:300] + ["", ""] + lines[300:]) + "\r\n").encode())
    pd.testing.assert_series_equal(
        as_series(read_msd_taste_profile(odd, ut, block_bytes=3000)),
        as_series(read_msd_taste_profile(trip, ut)),
    )
    # an unknown song after the blank lines still gets its exact line number
    bad = lines[:300] + ["", ""] + lines[300:400] + [f"{'e' * 40}\tSONOPE\t2"] + lines[400:]
    odd.write_text("\n".join(bad) + "\n")
    with pytest.raises(DataError, match=r"line 403, field 'song'.*SONOPE"):
        read_msd_taste_profile(odd, ut, block_bytes=1 << 20)


def test_benchmark_generator_writes_a_valid_taste_profile(tmp_path):
    """benchmarks/msd_reader.py's generator: exact line count, MSD layout, readable."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "msd_reader.py"
    spec = importlib.util.spec_from_file_location("msd_reader_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    info = bench.generate(tmp_path, 5003, seed=3, chunk=1000)
    trip, ut = tmp_path / "train_triplets.txt", tmp_path / "unique_tracks.txt"
    ref = pd.read_csv(trip, sep="\t", header=None, names=["user", "song", "count"])
    assert len(ref) == info["lines"] == 5003
    assert ref["user"].str.fullmatch(r"[0-9A-F]{40}").all()
    assert ref["song"].str.fullmatch(r"SO[0-9A-F]{16}").all()
    assert (ref["count"] >= 1).all()
    # users are grouped (one run per user), as in train_triplets.txt
    runs = (ref["user"] != ref["user"].shift()).sum()
    assert runs == ref["user"].nunique() == info["users"]
    mp = read_msd_mapping(ut)
    assert len(mp) == info["songs"] and mp["artist_name"].str.contains(" feat. ").any()
    x = read_msd_taste_profile(trip, ut)
    assert x.matrix.sum() == ref["count"].sum()
    assert x.n_users == info["users"]
