"""Next-track recommenders: kernels vs references, planted sessions, baselines, persistence."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from deepcuts.data.idmap import IdMap
from deepcuts.data.sessions import Sessions, sessionize
from deepcuts.exceptions import DeepcutsError, NotFittedError
from deepcuts.models import _session_kernels as K
from deepcuts.models.session import (
    PopularNext,
    RandomNext,
    SessionCooccurrence,
    StickyArtist,
    factor_neighbors,
    history_matrix,
    session_item_matrix,
)


def random_sessions(seed=0, n_sessions=40, n_items=30):
    rng = np.random.default_rng(seed)
    lens = rng.integers(1, 8, n_sessions)
    indptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    items = rng.integers(0, n_items, indptr[-1]).astype(np.int32)
    weights = rng.random(indptr[-1]).astype(np.float32)
    return indptr, items, weights


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("window, decay", [(1, 1.0), (3, 0.5)])
def test_pair_weights_matches_reference(symmetric, window, decay):
    indptr, items, weights = random_sessions()
    got = K.pair_weights(indptr, items, weights, window=window, decay=decay, symmetric=symmetric)
    ref = K.pair_weights_reference(
        indptr, items, weights, window=window, decay=decay, symmetric=symmetric
    )

    def dense(r, c, v):
        return sp.csr_matrix((v, (r, c)), shape=(30, 30)).toarray()

    np.testing.assert_allclose(dense(*got), dense(*ref), rtol=1e-5)
    assert len(got[0]) == len(ref[0])


def test_topn_excluding_matches_reference():
    rng = np.random.default_rng(1)
    dense = rng.random((25, 40)) * (rng.random((25, 40)) < 0.2)
    dense[3] = 0  # a row with no signal: all from the fill order
    scores = sp.csr_matrix(dense.astype(np.float32))
    hist = sp.csr_matrix((rng.random((25, 40)) < 0.1).astype(np.float32))
    fill = rng.permutation(40).astype(np.int32)
    got = K.topn_excluding(scores, hist, 6, fill)
    ref = K.topn_excluding_reference(scores, hist, 6, fill)
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-6)
    played = hist.toarray() > 0
    assert not any(played[r, j] for r in range(25) for j in got[0][r] if j >= 0)


def test_keep_top_per_row_matches_dense_reference():
    from deepcuts.models._knn_kernels import topk_per_row_reference

    rng = np.random.default_rng(2)
    dense = (rng.random((20, 30)) * (rng.random((20, 30)) < 0.4)).astype(np.float32)
    got = K.keep_top_per_row(sp.csr_matrix(dense), 3).toarray()
    np.testing.assert_array_equal(got, topk_per_row_reference(dense, 3))


def chain_log(n_repeats=5):
    """Sessions that always play a -> b -> c -> d (one artist per pair of tracks)."""
    rows = []
    for k in range(n_repeats):
        for j, item in enumerate("abcd"):
            rows.append({"user": k, "item": item, "timestamp": 10_000 * k + 60 * j})
    rows.append({"user": 99, "item": "e", "timestamp": 0})  # e: known, never co-listened
    return pd.DataFrame(rows)


def test_planted_chain_next_track():
    s = sessionize(chain_log())
    m = SessionCooccurrence(window=1, symmetric=False, recency=0.5).fit(s)
    rec = m.recommend_next([["a"], ["a", "b"], ["a", "b", "c"]], n=1)
    assert rec["item"].tolist() == ["b", "c", "d"]
    # the played items are never recommended; the list is filled by listening weight
    full = m.recommend_next([["a", "b", "c", "d"]], n=3)
    assert set(full["item"]) == {"e"} and (full["score"] == 0).all()
    # next_tracks on internal indices: same answer
    idx = m.item_map_.index(["a", "b"]).reshape(1, 2)
    assert m.item_map_.external(m.next_tracks(idx)).tolist() == ["c"]


def test_skipped_tracks_hardly_count():
    # sessions: x -> y (listened) and z -> w (listened); the query played x fully, z skipped
    log = pd.DataFrame(
        {
            "user": [0, 0, 1, 1, 2],
            "item": ["x", "y", "z", "w", "x"],
            "timestamp": [0, 60, 0, 60, 50_000],
        }
    )
    m = SessionCooccurrence(window=1, group_weight=0).fit(sessionize(log))
    top = m.recommend_next([["x", "z"]], n=1, weights=[[1.0, 0.05]])["item"].tolist()
    assert top == ["y"]
    top = m.recommend_next([["x", "z"]], n=1, weights=[[0.05, 1.0]])["item"].tolist()
    assert top == ["w"]


def test_centered_training_and_signed_history():
    # session 0: p heard fully, q skipped; session 1 (a listener who hears everything): p, r
    log = pd.DataFrame(
        {
            "user": [0, 0, 0, 1, 1, 2, 2],
            "item": ["p", "q", "s", "p", "r", "t", "r"],
            "timestamp": [0, 60, 120, 50_000, 50_060, 90_000, 90_060],
            "time": [1.0, 0.1, 1.0, 1.0, 1.0, 0.1, 1.0],
        }
    )
    s = sessionize(log, weight_col="time")
    plain = SessionCooccurrence(window=2, group_weight=0).fit(s)
    cent = SessionCooccurrence(window=2, group_weight=0, centered=True).fit(s)
    ix = s.item_map.index
    # centring: the all-through session 1 teaches nothing, the skip of q teaches nothing
    assert plain.cooc_[ix(["p"])[0], ix(["r"])[0]] > 0
    assert cent.cooc_[ix(["p"])[0], ix(["r"])[0]] == 0
    assert cent.cooc_[ix(["p"])[0], ix(["q"])[0]] == 0
    assert cent.cooc_[ix(["p"])[0], ix(["s"])[0]] > 0
    # scoring, hand-computed: C[p,r] = 1, C[p,s] = 0.8 (distance 2), C[p,q] = 0.1, C[t,r] = 0.1;
    # the query heard p fully and skipped t (recency 0.9: p weighs 0.9 * t'_p, t weighs t'_t)
    q, w = [["p", "t"]], [[1.0, 0.1]]
    tm = SessionCooccurrence(window=2, group_weight=0, recency=0.9).fit(s)
    got = tm.recommend_next(q, n=3, weights=w)
    assert got["item"].tolist() == ["r", "s", "q"]
    np.testing.assert_allclose(got["score"], [0.9 + 0.01, 0.72, 0.09], rtol=1e-5)
    # signed: t' = t - mean(t) = +0.45 for p, -0.45 for t: r loses what t shared with it
    sig = SessionCooccurrence(window=2, group_weight=0, recency=0.9, history_weights="signed")
    got = sig.fit(s).recommend_next(q, n=3, weights=w)
    np.testing.assert_allclose(got["score"], [0.405 - 0.045, 0.324, 0.0405], rtol=1e-5)
    with pytest.raises(DeepcutsError, match="history_weights"):
        SessionCooccurrence(history_weights="x").fit(s)


def test_artist_fallback_reaches_unseen_pairs():
    # tracks a1, a2 by artist A and b1, b2 by B; only a1 -> b1 was ever co-listened
    log = pd.DataFrame(
        {
            "user": [0, 0, 1, 2],
            "item": ["a1", "b1", "a2", "b2"],
            "timestamp": [0, 60, 50_000, 100_000],
        }
    )
    s = sessionize(log)
    groups = np.array([i[0] for i in s.item_map.ids])
    m = SessionCooccurrence(window=1).fit(s, item_groups=groups)
    # a2 never co-occurred with anything: its artist did, with B
    assert m.recommend_next([["a2"]], n=1)["item"].tolist()[0] in {"b1", "b2"}
    without = SessionCooccurrence(window=1, group_weight=0).fit(s, item_groups=groups)
    assert without.recommend_next([["a2"]], n=1)["score"].tolist() == [0.0]


def test_external_neighbors_and_helpers():
    s = sessionize(chain_log())
    n = s.n_items
    nb = sp.csr_matrix(
        ([1.0], ([s.item_map.index(["e"])[0]], [s.item_map.index(["a"])[0]])), (n, n)
    )
    m = SessionCooccurrence(window=1, neighbor_weight=1.0).fit(s, neighbors=nb)
    assert m.recommend_next([["e"]], n=1)["item"].tolist() == ["a"]
    mat = session_item_matrix(s)
    assert mat.shape == (6, 5) and mat.sum() == 21
    f = np.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.0, 0.0]])
    nbm = factor_neighbors(f, 1).toarray()
    assert nbm[0].argmax() == 1 and nbm[3].sum() == 0
    hm = history_matrix(np.array([[1, 1, -1]]), np.array([[0.5, 0.25, 1.0]]), 3)
    assert hm.toarray().tolist() == [[0.0, 0.75, 0.0]]


def test_save_load_roundtrip(tmp_path):
    s = sessionize(chain_log())
    groups = np.array(["x", "x", "y", "y", "z"])
    m = SessionCooccurrence(window=2, group_neighbors=3).fit(s, item_groups=groups)
    m.save(tmp_path / "sess")
    loaded = SessionCooccurrence.load(tmp_path / "sess")
    q = [["a"], ["b", "c"], ["e"]]
    pd.testing.assert_frame_equal(loaded.recommend_next(q, n=3), m.recommend_next(q, n=3))
    assert repr(loaded) == repr(m)


def test_errors():
    s = sessionize(chain_log())
    with pytest.raises(NotFittedError):
        SessionCooccurrence().next_tracks(np.zeros((1, 1), int))
    with pytest.raises(DeepcutsError, match="window"):
        SessionCooccurrence(window=0).fit(s)
    with pytest.raises(DeepcutsError, match="decay"):
        SessionCooccurrence(decay=0).fit(s)
    with pytest.raises(DeepcutsError, match="Sessions"):
        SessionCooccurrence().fit(pd.DataFrame())
    with pytest.raises(DeepcutsError, match="item_groups"):
        SessionCooccurrence().fit(s, item_groups=[1, 2])
    m = SessionCooccurrence().fit(s)
    with pytest.raises(DeepcutsError, match="shape"):
        m.next_tracks(np.zeros(3, int))
    with pytest.raises(DeepcutsError, match="n_items"):
        m.next_tracks(np.array([[99]]))


def test_baselines_never_repeat():
    items = IdMap(np.arange(12))
    groups = np.arange(12) // 3  # 4 artists x 3 tracks
    hist = np.array([[0, 1], [5, 4], [9, 10]])
    rnd = RandomNext(random_state=0).fit(items)
    out = rnd.next_tracks(np.repeat(hist, 50, axis=0), n=3)
    assert out.shape == (150, 3)
    assert not (out[:, :, None] == np.repeat(hist, 50, axis=0)[:, None, :]).any()
    assert all(len(set(r)) == 3 for r in out.tolist())
    pop = PopularNext().fit_order(items, np.arange(12)[::-1])
    assert pop.next_tracks(hist, n=2).tolist() == [[11, 10], [11, 10], [11, 8]]
    sticky = StickyArtist(random_state=0).fit(items, groups)
    nxt = sticky.next_tracks(hist)
    # same artist as the last track, not yet played: artist of 1 is {0,1,2} -> 2, etc.
    assert nxt.tolist() == [2, 3, 11]
    # the artist is exhausted: a random unplayed track instead
    done = sticky.next_tracks(np.array([[0, 1, 2]]))
    assert done[0] not in (0, 1, 2)
    pop_s = PopularNext().fit(
        Sessions(
            items,
            np.array([0, 3]),
            np.array([4, 4, 7], np.int32),
            np.ones(3, np.float32),
            np.array([0], object),
            np.array([0.0]),
        )
    )
    assert pop_s.next_tracks(np.array([[4]]), n=2).tolist() == [[7, 0]]
