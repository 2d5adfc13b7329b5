"""Approximate top-k (issue 15): recall against exact scoring, persistence, re-rankers, fallback."""

from __future__ import annotations

import numpy as np
import pytest

from deepcuts.data import generate_listening
from deepcuts.exceptions import DeepcutsError
from deepcuts.models import ALS, _ann, load_model
from deepcuts.models._ann import ItemIndex, resolve_ann

faiss = pytest.importorskip("faiss", reason="the ann extra (faiss-cpu) is not installed")


@pytest.fixture(scope="module")
def data():
    return generate_listening(1500, 6000, level="song", songs_per_artist=6, random_state=0)


@pytest.fixture(scope="module")
def models(data):
    exact = ALS(factors=16, iterations=4, random_state=0, ann=False).fit(data.interactions)
    approx = exact.clone().set_params(ann=True)
    approx.fit(data.interactions)
    return exact, approx


def _overlap(a, b) -> float:
    return float(np.mean([len(np.intersect1d(x, y)) / max(len(x), 1) for x, y in zip(a, b)]))


def test_ann_recall_against_exact(data, models):
    exact, approx = models
    assert exact.item_index() is None and approx.item_index() is not None
    np.testing.assert_array_equal(exact.item_factors_, approx.item_factors_)  # same seed
    users = np.arange(300)
    ui = data.interactions.matrix[users]
    e_idx, e_val, _ = exact.rank_index(users, ui, 20)
    a_idx, a_val, _ = approx.rank_index(users, ui, 20)
    assert _overlap(e_idx, a_idx) >= 0.95
    # the candidates are scored exactly: equal items have equal scores, and none is played
    same = e_idx[:, 0] == a_idx[:, 0]
    np.testing.assert_allclose(e_val[same, 0], a_val[same, 0], rtol=1e-5)
    for r in range(len(users)):
        assert not np.isin(a_idx[r], ui[r].indices).any()


def test_ann_recall_falls_with_fewer_cells_probed(data, models):
    exact, _ = models
    Y = exact.item_factors_
    U = exact.user_factors_[:200]
    truth = np.argsort(-(U @ Y.T), axis=1)[:, :20]
    wide = ItemIndex(nlist=64, nprobe=64, kind="ivf-flat").build(Y).search(U, 20)
    narrow = ItemIndex(nlist=64, nprobe=1, kind="ivf-flat").build(Y).search(U, 20)
    assert _overlap(truth, wide) == pytest.approx(1.0, abs=0.02)  # every cell: near exact
    assert _overlap(truth, narrow) < _overlap(truth, wide)


def _rescored_top(U, Y, cand, k=20):
    s = np.where(cand >= 0, np.einsum("bf,bcf->bc", U, Y[np.maximum(cand, 0)]), -np.inf)
    return np.take_along_axis(cand, np.argsort(-s, axis=1, kind="stable")[:, :k], axis=1)


def test_pq_codes_propose_candidates_that_exact_rescoring_ranks(models):
    """Issue 15: 4-bit PQ codes (IVFPQFastScan) order candidates coarsely; re-scored exactly,
    300 of them hold the true top 20."""
    exact, _ = models
    Y = exact.item_factors_
    U = exact.user_factors_[:200]
    truth = np.argsort(-(U @ Y.T), axis=1)[:, :20]
    index = ItemIndex(nlist=64, nprobe=64).build(Y)
    assert len(Y) >= _ann.FASTSCAN_MIN_ITEMS and index.kind_ == "ivfpq-fastscan"
    assert index.params()["kind"] == "ivfpq-fastscan"
    raw = index.search(U, 20)
    rescored = _rescored_top(U, Y, index.search(U, 300))
    assert _overlap(truth, rescored) >= 0.98
    assert _overlap(truth, raw) < _overlap(truth, rescored)  # the codes alone are coarser
    small = ItemIndex(nlist=16).build(Y[: _ann.FASTSCAN_MIN_ITEMS - 1])
    assert small.kind_ == "ivf-flat"  # a few thousand items: raw vectors
    back = ItemIndex.from_array(index.to_array(), index.params())
    np.testing.assert_array_equal(back.search(U[:20], 50), index.search(U[:20], 50))
    assert back.kind_ == "ivfpq-fastscan"
    with pytest.raises(DeepcutsError, match="kind must be"):
        ItemIndex(kind="hnsw")


def test_rerankers_filters_and_personas_with_ann(data, models):
    from deepcuts.rerank import ArtistCap

    _, approx = models
    users = data.interactions.user_map.ids[:5]
    allow = data.interactions.item_map.ids[:3000]
    recs = approx.recommend(users, n=10, items=allow, exclude=allow[:50])
    assert set(recs.items) <= set(allow[50:])
    capped = approx.recommend(users, n=10, rerankers=[ArtistCap(max_per_artist=1)])
    frame = capped.to_frame()
    artists = data.interactions.items.set_index("item").loc[frame["item"], "artist"].to_numpy()
    frame["artist"] = artists
    assert frame.groupby("user")["artist"].nunique().eq(frame.groupby("user").size()).all()
    # a history that is not a training user: folded in, then searched
    hist = {data.interactions.item_map.ids[i]: 3 for i in (1, 2, 3)}
    assert len(approx.recommend_history(hist, n=10)) == 10


def test_ann_index_saves_and_loads(tmp_path, data, models):
    _, approx = models
    path = approx.save(tmp_path / "als")
    manifest = (tmp_path / "als.json").read_text()
    assert '"ann_index"' in manifest and "faiss" in manifest
    back = load_model(path)
    assert back.item_index() is not None
    users = np.arange(50)
    ui = data.interactions.matrix[users]
    np.testing.assert_array_equal(
        back.rank_index(users, ui, 20)[0], approx.rank_index(users, ui, 20)[0]
    )
    # switched off after loading: exact scoring, no index
    back.set_params(ann=False)
    assert back.item_index() is None


def test_auto_threshold_and_fallback(monkeypatch):
    assert resolve_ann("auto", _ann.ANN_AUTO_MIN_ITEMS) is True
    assert resolve_ann("auto", _ann.ANN_AUTO_MIN_ITEMS - 1) is False
    assert resolve_ann(False, 10**7) is False
    with pytest.raises(DeepcutsError, match="ann must be"):
        resolve_ann("yes", 10)
    # without faiss: auto scores exactly, True says how to install it
    monkeypatch.setattr(_ann, "ann_available", lambda: False)
    monkeypatch.setattr(
        _ann, "_faiss", lambda: (_ for _ in ()).throw(DeepcutsError(_ann._INSTALL_HINT))
    )
    assert resolve_ann("auto", 10**7) is False
    with pytest.raises(DeepcutsError, match=r"deepcuts\[ann\]"):
        resolve_ann(True, 10)


def test_bad_ann_arguments_are_named(data):
    with pytest.raises(DeepcutsError, match="ann must be"):
        ALS(factors=4, iterations=1, ann="fast").fit(data.interactions)
    with pytest.raises(DeepcutsError, match="ann_candidates"):
        ALS(factors=4, iterations=1, ann_candidates=0).fit(data.interactions)


def test_service_serves_an_ann_model_with_fold_in(tmp_path, data, models, monkeypatch):
    pytest.importorskip("sqlalchemy", reason="the serve extra is not installed")
    from deepcuts.serving.service import RecommenderService
    from deepcuts.serving.store import Listen, Store

    _, approx = models
    path = approx.save(tmp_path / "als")
    svc = RecommenderService(Store("sqlite://"), tmp_path / "data", seed=False)
    svc.import_model(path)
    svc.start()
    assert svc.handle.model.item_index() is not None  # the saved index, loaded
    u = str(data.interactions.user_map.ids[0])
    got = svc.recommend(u, n=10, depth=0.5)
    assert len(got["items"]) == 10
    # a new listener: the stored history is folded in and searched through the index
    calls = []
    original = ALS.vector_candidates
    monkeypatch.setattr(
        ALS, "vector_candidates", lambda self, v, k: calls.append(k) or original(self, v, k)
    )
    songs = [str(s) for s in data.interactions.item_map.ids[[5, 6, 7]]]
    svc.store.add_listens([Listen("newcomer", s) for s in songs])
    folded = svc.recommend("newcomer", n=10)
    assert folded["source"] == "history" and len(folded["items"]) == 10
    assert calls  # the folded-in vector went through the index
    assert not {r["artist"] for r in folded["items"]} & set(songs)


def test_small_searches_stay_on_one_thread_unless_openmp_waits_passively(monkeypatch):
    Y = np.random.default_rng(0).normal(size=(500, 8)).astype(np.float32)
    index = _ann.ItemIndex(nlist=8, nprobe=8).build(Y)
    calls = []
    monkeypatch.setattr(faiss, "omp_set_num_threads", calls.append)
    monkeypatch.setattr(_ann, "_omp_threads", lambda: 2)
    q = Y[:16]
    for policy, expected in (("", [1, 1, 2]), ("passive", [1, 2, 2])):
        monkeypatch.setenv("OMP_WAIT_POLICY", policy)
        calls.clear()
        for b in (4, _ann.SMALL_BATCH_PASSIVE, _ann.SMALL_BATCH):
            index.search(np.resize(q, (b, 8)), 5)
        assert calls == expected, policy
    # many cores: a served batch takes one thread per 4 queries, a large batch every core
    monkeypatch.setattr(_ann, "_omp_threads", lambda: 16)
    calls.clear()
    for b in (8, 18, 40, _ann.SMALL_BATCH):
        index.search(np.resize(q, (b, 8)), 5)
    assert calls == [2, 4, 10, 16]
