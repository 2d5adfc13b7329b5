"""Listen-log readers: Last.fm 1K TSV and ListenBrainz JSON lines (issue 2)."""

import json
import zipfile

import numpy as np
import pandas as pd
import pytest

from deepcuts.data import read_interactions, read_lastfm1k, read_listenbrainz
from deepcuts.data.datasets import shared_data_path
from deepcuts.exceptions import DataError

LISTENS = [
    # user, unix time, artist, track
    ("alice", 1_000, "Björk", "Joga"),
    ("alice", 3_000, "Bjork", "Joga"),
    ("alice", 2_000, "The Knife", "Heartbeats"),
    ("bob", 5_000, "Jay-Z feat. Rihanna", "Run This Town"),
    ("bob", 4_000, "Rihanna", "Umbrella"),
    ("bob", 9_000, "The Knife", "Silent Shout"),
    ("carol", 7_000, "坂本龍一", "Hibari"),
]


def iso(t):
    return pd.Timestamp(t, unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def write_1k(path, rows=LISTENS):
    path.write_text(
        "".join(f"{u}\t{iso(t)}\t\t{a}\t\t{tr}\n" for u, t, a, tr in rows), encoding="utf-8"
    )
    return path


def write_lb(path, rows=LISTENS, with_user=True):
    objs = []
    for u, t, a, tr in rows:
        o = {
            "listened_at": t,
            "track_metadata": {
                "artist_name": a,
                "track_name": tr,
                "release_name": "R",
                "additional_info": {"recording_msid": "x"},
            },
        }
        if with_user:
            o["user_name"] = u
        objs.append(json.dumps(o, ensure_ascii=False))
    path.write_text("\n".join(objs) + "\n", encoding="utf-8")
    return path


def check_counts(x):
    f = x.to_frame().set_index(["user", "item"])
    assert f.loc[("alice", "bjork"), "count"] == 2
    assert f.loc[("alice", "bjork"), "timestamp"] == 3_000
    assert f.loc[("alice", "knife"), "timestamp"] == 2_000
    assert f.loc[("bob", "rihanna"), "count"] == 1  # "Jay-Z feat. Rihanna" credits Jay-Z
    assert f.loc[("bob", "jay-z"), "count"] == 1
    assert f.loc[("carol", "坂本龍一"), "count"] == 1
    assert x.nnz == 6 and len(x.timestamps) == 6
    names = dict(zip(x.items["item"], x.items["name"]))
    assert names["bjork"] == "Björk" and names["knife"] == "The Knife"


@pytest.mark.parametrize("block_bytes", [40, 1 << 20])
def test_lastfm1k_counts_and_last_times(tmp_path, block_bytes):
    x = read_lastfm1k(write_1k(tmp_path / "l.tsv"), block_bytes=block_bytes)
    check_counts(x)


def test_listenbrainz_matches_lastfm1k(tmp_path):
    a = read_lastfm1k(write_1k(tmp_path / "l.tsv"))
    b = read_listenbrainz(write_lb(tmp_path / "l.jsonl"), block_bytes=100)
    check_counts(b)
    pd.testing.assert_frame_equal(
        a.to_frame().sort_values(["user", "item"]).reset_index(drop=True),
        b.to_frame().sort_values(["user", "item"]).reset_index(drop=True),
    )


def test_listenbrainz_user_argument_and_zip(tmp_path):
    f = write_lb(
        tmp_path / "mine.jsonl", rows=[r for r in LISTENS if r[0] == "alice"], with_user=False
    )
    with pytest.raises(DataError, match=r"line 1, field 'user_name'.*--user"):
        read_listenbrainz(f)
    x = read_listenbrainz(f, user="alice")
    assert x.user_map.ids.tolist() == ["alice"]
    z = tmp_path / "export.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(f, "listens/2024/1.jsonl")
        zf.writestr("user.json", '{"user_name": "alice"}')
    y = read_interactions(z, user="alice")
    assert y.nnz == x.nnz and y.matrix.sum() == 3


def test_listenbrainz_bad_lines(tmp_path):
    f = write_lb(tmp_path / "l.jsonl")
    lines = f.read_text().splitlines()
    broken = tmp_path / "b.jsonl"
    broken.write_text("\n".join([*lines[:3], "{not json", *lines[3:]]) + "\n")
    with pytest.raises(DataError, match=r"line 4: not valid JSON"):
        read_listenbrainz(broken)
    bad_time = tmp_path / "t.jsonl"
    o = json.loads(lines[0])
    o["listened_at"] = "yesterday"
    bad_time.write_text(lines[1] + "\n" + json.dumps(o) + "\n")
    with pytest.raises(DataError, match=r"line 2, field 'listened_at'"):
        read_listenbrainz(bad_time)
    # a JSON-array export is read as well (issue 14): the same counts as the JSON lines
    arr = tmp_path / "a.json"
    arr.write_text("[" + ",".join(lines) + "]")
    a, ref = read_listenbrainz(arr), read_listenbrainz(f)
    assert (a.matrix != ref.matrix).nnz == 0 and a.item_map == ref.item_map


def test_track_level_and_log(tmp_path):
    x, log = read_lastfm1k(write_1k(tmp_path / "l.tsv"), level="track", return_log=True)
    assert {"artist", "artist_name"} <= set(x.items.columns)
    assert "bjork - joga" in x.item_map
    assert x.to_frame().set_index("item").loc["bjork - joga", "count"] == 2
    assert len(log) == len(LISTENS)
    assert (np.diff(log[log.user == "alice"].timestamp.to_numpy()) >= 0).all()


def test_lastfm1k_bad_input(tmp_path):
    f = write_1k(tmp_path / "l.tsv")
    lines = f.read_text().splitlines(keepends=True)
    f.write_text("".join([*lines[:2], "alice\tnot-a-time\t\tX\t\tY\n", *lines[2:]]))
    with pytest.raises(DataError, match=r"line 3, field 'time'"):
        read_lastfm1k(f)
    f.write_text("".join([*lines[:5], "alice\t2009-05-04T23:08:57Z\tX\n"]))
    with pytest.raises(DataError, match=r"line 6: expected 6"):
        read_lastfm1k(f)


@pytest.mark.realdata
def test_lastfm1k_sample_real():
    folder = shared_data_path("lastfm-1k-sample")
    if folder is None:
        pytest.skip("lastfm-1k-sample not found: ../shared/data/lastfm-1k-sample is absent")
    path = folder / "userid-timestamp-artid-artname-traid-traname.tsv"
    raw = read_lastfm1k(path, normalize=False)
    # SOURCE.md: 2 users, 235 artists, user_000001 has 4,997 plays, user_000002 has 3
    assert raw.n_users == 2 and raw.n_items == 235
    assert raw.user_items("user_000001")["count"].sum() == 4997
    assert raw.user_items("user_000002")["count"].sum() == 3
    norm = read_lastfm1k(path)
    assert norm.n_items < 235 and norm.matrix.sum() == 5000  # "X Feat. Y" credits merge
    tracks, log = read_lastfm1k(path, level="track", normalize=False, return_log=True)
    assert tracks.n_items == 1192 and len(log) == 5000
    last = pd.Timestamp("2009-05-04T23:08:57Z").value // 10**9
    assert tracks.timestamps.max() == last
