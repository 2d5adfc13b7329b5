"""Listening simulator (Botify user model) and the Botify stand-in world."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepcuts.data.botify import read_botify
from deepcuts.data.idmap import IdMap
from deepcuts.data.sessions import sessionize
from deepcuts.evaluation.simulator import ListeningSimulator, botify_world, listen_time
from deepcuts.exceptions import DeepcutsError
from deepcuts.models.session import PopularNext, RandomNext, SessionCooccurrence, StickyArtist

DATA = Path(__file__).parent / "data"


class Fixed:
    """Policy that always serves the same track."""

    def __init__(self, item):
        self.item = item

    def next_tracks(self, history, times, users):
        return np.full(len(history), self.item)


def tiny_world(n_users=1, bias=5.0, sharp=1.0):
    emb = np.eye(4, dtype=np.float32) * 10
    users = pd.DataFrame(
        {
            "user": np.arange(n_users),
            "interests": [[0]] * n_users,
            "consume_bias": bias,
            "consume_sharpness": sharp,
        }
    )
    return emb, users


def test_listen_time_formula():
    # hand-computed: sigmoid(2) = 0.8808; * 0.8^1 = 0.7046
    assert listen_time(7.0, 5.0, 1.0, 1).item() == pytest.approx(0.70)
    assert listen_time(7.0, 5.0, 1.0, 0).item() == pytest.approx(0.88)
    assert listen_time(-100.0, 0.0, 2.0, 0).item() == 0.0
    assert listen_time(7.0, 5.0, 1.0, 0, repeat=True).item() == 0.0


def test_repeats_end_the_session_after_budget_steps():
    emb, users = tiny_world()
    sim = ListeningSimulator(
        embeddings=emb, artists=list("abcd"), users=users, interest_neighbors=1, budget=3
    )
    res = sim.run(Fixed(0), n_sessions=4)  # track 0 is the start track: every repeat scores 0
    # time 0 spends budget with probability 1: 3 recommendations, then the session is over
    assert res.sessions["length"].tolist() == [4] * 4
    assert res.sessions["total_time"].tolist() == [1.0] * 4
    assert res.log.groupby("session")["time"].apply(list).iloc[0] == [1.0, 0.0, 0.0, 0.0]


def test_a_perfect_match_runs_to_max_steps():
    # bias -100: every track gets time 1 (never a repeat: the policy walks the catalogue)
    emb = np.eye(30, dtype=np.float32)
    users = pd.DataFrame(
        {"user": [0], "interests": [[0]], "consume_bias": [-100.0], "consume_sharpness": [1.0]}
    )
    sim = ListeningSimulator(
        embeddings=emb,
        artists=np.arange(30),
        users=users,
        interest_neighbors=1,
        max_steps=12,
    )

    class Walk:
        def next_tracks(self, history, times, users):
            return history[:, -1] + 1

    res = sim.run(Walk(), n_sessions=2)
    assert res.sessions["length"].tolist() == [12, 12]
    assert res.sessions["total_time"].tolist() == [12.0, 12.0]


def test_artist_discount_applies_per_session():
    emb = np.ones((3, 2), np.float32) * 3  # every dot = 18: time 1 before the discount
    users = pd.DataFrame(
        {"user": [0], "interests": [[0]], "consume_bias": [0.0], "consume_sharpness": [5.0]}
    )
    sim = ListeningSimulator(
        embeddings=emb, artists=["x", "x", "x"], users=users, interest_neighbors=1, max_steps=3
    )

    class Walk:
        def next_tracks(self, history, times, users):
            return history[:, -1] + 1

    t = sim.run(Walk(), n_sessions=1).log["time"].tolist()
    assert t == [1.0, 0.8, 0.64]


def test_common_random_numbers_and_log_sessions():
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((200, 8)).astype(np.float32) * 1.2
    users = pd.DataFrame(
        {
            "user": np.arange(40),
            "interests": [[i, i + 40] for i in range(40)],
            "consume_bias": rng.uniform(0, 10, 40),
            "consume_sharpness": rng.uniform(0.5, 2, 40),
        }
    )
    sim = ListeningSimulator(
        embeddings=emb, artists=np.arange(200) // 4, users=users, random_state=3
    )
    items = IdMap(np.arange(200))
    a = sim.run(RandomNext(random_state=1).fit(items), n_sessions=300)
    b = sim.run(PopularNext().fit_order(items, np.arange(200)), n_sessions=300)
    # same users and start tracks for every policy; reruns are identical
    assert a.sessions["user"].tolist() == b.sessions["user"].tolist()
    starts = lambda r: r.log[r.log["step"] == 0]["item"].tolist()  # noqa: E731
    assert starts(a) == starts(b)
    again = sim.run(RandomNext(random_state=1).fit(items), n_sessions=300)
    pd.testing.assert_frame_equal(a.log, again.log)
    # the log's timestamps cut back into exactly the simulated sessions
    s = sessionize(a.log, weight_col="time", item_map=items)
    assert s.n_sessions == 300
    assert sorted(s.lengths().tolist()) == sorted(a.sessions["length"].tolist())
    summ = a.summary()
    assert summ["sessions"] == 300 and summ["mean_length"] == a.sessions["length"].mean()


def test_bad_policy_and_inputs():
    emb, users = tiny_world()
    sim = ListeningSimulator(embeddings=emb, artists=list("abcd"), users=users)
    with pytest.raises(DeepcutsError, match="outside"):
        sim.run(Fixed(7), n_sessions=1)

    class Wrong:
        def next_tracks(self, history, times, users):
            return np.zeros((len(history), 2), int)

    with pytest.raises(DeepcutsError, match="shape"):
        sim.run(Wrong(), n_sessions=1)
    with pytest.raises(DeepcutsError, match="n_sessions"):
        sim.run(Fixed(1))
    bad = users.assign(interests=[[9]])
    with pytest.raises(DeepcutsError, match="interests"):
        ListeningSimulator(embeddings=emb, artists=list("abcd"), users=bad).run(
            Fixed(1), n_sessions=1
        )
    with pytest.raises(DeepcutsError, match="budget"):
        ListeningSimulator(embeddings=emb, artists=list("abcd"), users=users, budget=0).run(
            Fixed(1), n_sessions=1
        )


def clustered_world(seed=0, n_clusters=12, per_artist=4, artists_per_cluster=6, d=16):
    """Tracks in taste clusters; artists inside clusters; users interested in one cluster."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((n_clusters, d))
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    n_artists = n_clusters * artists_per_cluster
    cluster_of_artist = np.arange(n_artists) % n_clusters
    artist = np.repeat(np.arange(n_artists), per_artist)
    e = centers[cluster_of_artist[artist]] + 0.3 * rng.standard_normal((len(artist), d)) / np.sqrt(
        d
    )
    e = 3.5 * e / np.linalg.norm(e, axis=1, keepdims=True)
    n_users = 150
    users = pd.DataFrame(
        {
            "user": np.arange(n_users),
            "interests": [list(rng.choice(len(artist), 3)) for _ in range(n_users)],
            "consume_bias": rng.uniform(3, 10, n_users),
            "consume_sharpness": rng.uniform(0.5, 2, n_users),
        }
    )
    return e.astype(np.float32), artist, users


def test_learned_session_model_beats_baselines_in_a_clustered_world():
    emb, artist, users = clustered_world()
    items = IdMap(np.arange(len(emb)))
    # training log: sessions served by the random baseline (another seed)
    logger = ListeningSimulator(embeddings=emb, artists=artist, users=users, random_state=11)
    log = logger.run(RandomNext(random_state=2).fit(items), n_sessions=1500).log
    sessions = sessionize(log, weight_col="time", item_map=items)
    model = SessionCooccurrence().fit(sessions, item_groups=artist)
    sim = ListeningSimulator(embeddings=emb, artists=artist, users=users, random_state=5)
    got = {
        "session": sim.run(model, n_sessions=600).summary(),
        "random": sim.run(RandomNext(random_state=0).fit(items), n_sessions=600).summary(),
        "popular": sim.run(PopularNext().fit(sessions), n_sessions=600).summary(),
        "sticky": sim.run(
            StickyArtist(random_state=0).fit(items, artist), n_sessions=600
        ).summary(),
    }
    best_baseline = max(v["mean_total_time"] for k, v in got.items() if k != "session")
    assert got["session"]["mean_total_time"] > 1.2 * best_baseline, got


def test_botify_world_on_bundled_subset():
    b = read_botify(DATA / "botify")
    names = b.tracks["artist"].drop_duplicates().to_numpy()[::2]  # half the artists have vectors
    vecs = np.random.default_rng(0).standard_normal((len(names), 8))
    w = botify_world(b, vecs, names, random_state=0)
    kept = set(b.tracks["artist_key"]) & {n.casefold() for n in names}
    assert w.info["tracks"] == 3000 and 0 < w.info["tracks_kept"] < 3000
    assert len(w.item_map) == len(w.embeddings) == len(w.artists)
    assert set(w.artists) <= {k for k in b.tracks["artist_key"]} and len(kept) > 0
    np.testing.assert_allclose(np.linalg.norm(w.embeddings, axis=1), 3.5, rtol=1e-5)
    # tracks of one artist point the same way: mean same-artist dot near 3.5^2 / (1 + 0.25)
    a0 = w.artists[0]
    same = w.embeddings[w.artists == a0]
    if len(same) > 1:
        assert (same[0] @ same[1]) > 6
    assert all(max(i) < len(w.item_map) for i in w.users["interests"])
    assert w.top_order.max() < len(w.item_map)
    res = w.simulator(random_state=0).run(
        PopularNext().fit_order(w.item_map, w.top_order), n_sessions=50
    )
    # a recommendation costs at most one unit of the budget (5): at least 1 + 5 tracks
    assert len(res.sessions) == 50 and (res.sessions["length"] >= 6).all()
