"""Sessions from timestamped listens, and the Botify reader (next-track work)."""

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepcuts.data.botify import read_botify
from deepcuts.data.datasets import shared_data_path
from deepcuts.data.idmap import IdMap
from deepcuts.data.readers.listens import read_lastfm1k
from deepcuts.data.sessions import sessionize, split_sessions
from deepcuts.exceptions import DataError

DATA = Path(__file__).parent / "data"


def test_split_sessions_known_answer():
    users = ["a", "b", "a", "a", "b", "a"]
    times = [0, 10, 1200, 2401, 5000, 2500]  # a: 0, 1200 (gap 1200: same), 2401 (new), 2500
    session, order = split_sessions(users, times, gap=1200)
    assert session.tolist() == [0, 2, 0, 1, 3, 1]
    assert np.all(np.diff(session[order]) >= 0)
    # gap 0: every listen its own session, except exact same-second listens
    s0, _ = split_sessions(["u", "u", "u"], [5, 5, 6], gap=0)
    assert s0.tolist() == [0, 0, 1]


def test_split_sessions_errors():
    with pytest.raises(DataError, match="gap"):
        split_sessions(["a"], [0], gap=-1)
    with pytest.raises(DataError, match="unix seconds"):
        split_sessions(["a"], ["2009-01-01"])
    with pytest.raises(DataError, match="same length"):
        split_sessions(["a", "b"], [0])
    with pytest.raises(DataError, match="not finite"):
        split_sessions(["a", "a"], [0, np.nan])


def test_sessionize_orders_weights_and_filters():
    log = pd.DataFrame(
        {
            "user": ["u", "u", "v", "u", "u"],
            "item": ["c", "a", "a", "b", "z"],
            "timestamp": [120, 0, 30, 60, 99999],
            "time": [0.5, 1.0, 0.2, 0.9, 1.0],
        }
    )
    s = sessionize(log, weight_col="time")
    assert s.n_sessions == 3 and s.lengths().tolist() == [3, 1, 1]
    first = s.item_map.external(s.items[: s.indptr[1]]).tolist()
    assert first == ["a", "b", "c"]  # time order within the session
    np.testing.assert_allclose(s.weights[:3], [1.0, 0.9, 0.5])
    assert s.users.tolist() == ["u", "u", "v"] and s.start.tolist() == [0, 99999, 30]
    # a fixed vocabulary drops unknown items; min_length drops short sessions
    s2 = sessionize(log, item_map=IdMap(["a", "b", "c"]), min_length=2)
    assert s2.n_sessions == 1 and s2.lengths().tolist() == [3]
    sub = s.subset(np.array([False, True, True]))
    assert sub.n_sessions == 2 and sub.item_map.external(sub.items).tolist() == ["z", "a"]
    with pytest.raises(DataError, match="no column 'ts'"):
        sessionize(log, time_col="ts")


def test_bundled_lastfm1k_sessions():
    _, log = read_lastfm1k(DATA / "lastfm1k" / "head1000.tsv.gz", level="track", return_log=True)
    s = sessionize(log, gap=20 * 60)
    assert len(log) == 1000 and s.n_sessions == 54
    # sessions never hold a gap above 20 minutes, and consecutive sessions are further apart
    ts = np.sort(log["timestamp"].to_numpy())
    assert (np.diff(ts) > 1200).sum() == 53
    assert s.lengths().sum() == 1000


@pytest.mark.realdata
def test_lastfm1k_sample_has_374_sessions():
    root = shared_data_path("lastfm-1k-sample")
    if root is None:
        pytest.skip("Last.fm 1K sample not found: ../shared/data/lastfm-1k-sample is absent")
    path = root / "userid-timestamp-artid-artname-traid-traname.tsv"
    _, log = read_lastfm1k(path, level="track", return_log=True)
    s = sessionize(log, gap=20 * 60)
    # SOURCE.md: user_000001 has 374 sessions at a 20-minute gap; user_000002 one
    assert (s.users == "user_000001").sum() == 374 and s.n_sessions == 375


def test_read_bundled_botify():
    b = read_botify(DATA / "botify")
    assert len(b.tracks) == 3000 and len(b.users) == 184 and len(b.top_tracks) == 2388
    assert b.tracks.loc[0, "artist"] == "Jack Johnson"
    assert b.tracks.loc[0, "artist_key"] == "jack johnson"
    assert all(len(i) == 3 for i in b.users["interests"])
    assert b.top_tracks.max() < 3000


def test_botify_errors(tmp_path):
    with pytest.raises(DataError, match="tracks.json"):
        read_botify(tmp_path)
    with gzip.open(tmp_path / "tracks.json.gz", "wt") as f:
        f.write('{"track": 0, "artist": "A", "title": "x"}\n{"track": 1, "artist": "B"}\n')
    with pytest.raises(DataError, match=r"line 2.*title"):
        read_botify(tmp_path)
    (tmp_path / "tracks.json.gz").unlink()
    (tmp_path / "tracks.json").write_text('{"track": 0, "artist": "A", "title": "x"}\n')
    (tmp_path / "users.json").write_text(
        '{"user": 0, "interests": [5], "consume_bias": 1, "consume_sharpness": 1}\n'
    )
    with pytest.raises(DataError, match="same catalogue"):
        read_botify(tmp_path)


@pytest.mark.realdata
def test_read_shared_botify():
    root = shared_data_path("botify")
    if root is None:
        pytest.skip("Botify data not found: ../shared/data/botify is absent in this checkout")
    b = read_botify(root)
    assert len(b.tracks) == 50000 and len(b.users) == 10000 and len(b.top_tracks) == 37175
    assert b.tracks["artist"].nunique() == 11464
