"""Ranking-loss models (issue 12): SGD kernels vs NumPy oracles, determinism, BPR/WARP,
MixtureOfTastes scoring and persona API, persistence, parameter errors."""

import numba
import numpy as np
import pytest
import scipy.sparse as sp

from deepcuts.data import generate_listening
from deepcuts.exceptions import DeepcutsError
from deepcuts.models import BPR, MODELS, MixtureOfTastes, load_model, make_model
from deepcuts.models import _rank_kernels as K
from deepcuts.models.ranking import _epoch_plan
from deepcuts.testing import RecommenderContract, planted_blocks


class TestBPRContract(RecommenderContract):
    def make_model(self):
        return BPR(factors=8, iterations=25, random_state=0)


class TestWARPContract(RecommenderContract):
    def make_model(self):
        return BPR(factors=8, iterations=8, loss="warp", learning_rate=0.02, random_state=0)


class TestMixtureContract(RecommenderContract):
    def make_model(self):
        return MixtureOfTastes(factors=8, n_personas=2, iterations=25, random_state=0)


@pytest.fixture(scope="module")
def small():
    return planted_blocks(40, 96, 3, random_state=1)


@pytest.fixture(scope="module")
def listening():
    return generate_listening(
        300, 600, n_genres=6, listens_per_user=40, random_state=0
    ).interactions


def _state(x, P, f, seed=0):
    C = sp.csr_matrix(x.matrix, dtype=np.float32)
    C.sort_indices()
    rng = np.random.default_rng(seed)
    n_u, n_i = C.shape
    X = rng.standard_normal((n_u, P, f), dtype=np.float32) * np.float32(0.3)
    A = rng.standard_normal((n_u, P, f), dtype=np.float32) * np.float32(0.3)
    Y = rng.standard_normal((n_i, f), dtype=np.float32) * np.float32(0.3)
    B = rng.standard_normal(n_i, dtype=np.float32) * np.float32(0.1)
    rows = np.repeat(np.arange(n_u, dtype=np.int32), np.diff(C.indptr))
    return C, rows, X, A, Y, B, rng


@pytest.mark.parametrize(
    "P, loss, dw, ada",
    [(1, K.BPR_LOSS, 0.0, False), (3, K.BPR_LOSS, 0.5, True), (2, K.WARP_LOSS, 0.0, True)],
)
def test_epoch_kernel_matches_reference(small, P, loss, dw, ada):
    C, rows, X, A, Y, B, rng = _state(small, P, 6)
    T = 3
    *plan, seeds = _epoch_plan(rows, C.indices, np.diff(C.indptr) * 1.0, np.bincount(C.indices) * 1.0,
                       T, rng)  # fmt: skip
    rho = np.linspace(0.5, 1.5, C.shape[1]).astype(np.float32)
    args = (0.05, 0.01, loss, 10, dw, 0.5, ada)
    G = tuple(np.zeros_like(v) for v in (X, A, Y, B))
    ref = K.reference_epoch(C.indptr, C.indices, rows, X, A, Y, B, *G, *plan, rho, seeds, *args)
    out_loss = np.zeros((T, T))
    K.sgd_epoch(C.indptr.astype(np.int64), C.indices, rows, X, A, Y, B, *G, *plan, rho, seeds,
                *args, out_loss)  # fmt: skip
    for got, want in zip((X, A, Y, B) + G, ref[:4] + ref[5]):
        np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-4)
    np.testing.assert_allclose(out_loss, ref[4], rtol=2e-3, atol=1e-3)
    assert ref[4].sum() > 0


@pytest.mark.parametrize("P, loss, ada", [(1, K.BPR_LOSS, False), (2, K.WARP_LOSS, True)])
def test_fold_in_kernel_matches_reference(small, P, loss, ada):
    C, _, X, A, Y, B, rng = _state(small, P, 6, seed=3)
    H = C[:5]
    X0, A0 = X[:5].copy(), A[:5].copy()
    seeds = np.arange(1, 6, dtype=np.uint64) * np.uint64(977)
    rho = np.ones(C.shape[1], np.float32)
    args = (3, 0.05, 0.01, loss, 10, 0.2, 0.5, ada)
    GX, GA = np.zeros_like(X0), np.zeros_like(A0)
    want = K.reference_fold_in(H.indptr, H.indices, X0, A0, Y, B, GX, GA, rho, seeds, *args)
    Y0, B0 = Y.copy(), B.copy()
    K.fold_in_rows(H.indptr.astype(np.int64), H.indices, X0, A0, Y, B, GX, GA,
                   np.arange(C.shape[1], dtype=np.int32), rho, seeds, *args)  # fmt: skip
    np.testing.assert_allclose(X0, want[0], rtol=2e-3, atol=2e-4)
    np.testing.assert_allclose(A0, want[1], rtol=2e-3, atol=2e-4)
    assert np.array_equal(Y, Y0) and np.array_equal(B, B0)  # items stay fixed


def test_random_stream_matches_python():
    state = np.array([12345], np.uint64)
    ref = K._Stream(12345)
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps on purpose
        got = [int(K._rand.py_func(state)) for _ in range(5)]
    assert got == [ref.next() for _ in range(5)]


@pytest.mark.parametrize("cls", [BPR, MixtureOfTastes])
def test_same_seed_same_model_any_thread_count(listening, cls):
    kw = dict(factors=8, iterations=3, random_state=7, loss="warp")
    if cls is MixtureOfTastes:
        kw.update(n_personas=3, distinct_weight=0.1)
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        a = cls(**kw).fit(listening)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        b = cls(**kw).fit(listening)
    finally:
        numba.set_num_threads(old)
    assert a.n_strata_ > 1
    assert np.array_equal(a.item_factors_, b.item_factors_)
    assert np.array_equal(a.loss_history_, b.loss_history_)
    c = cls(**{**kw, "random_state": 8}).fit(listening)
    assert not np.allclose(a.item_factors_, c.item_factors_)


def _block_precision(model, x, n=5):
    rec = model.recommend(x.user_map.ids, n=n).to_frame()
    u = rec["user"].str[1:].astype(int)
    i = rec["item"].str[1:].astype(int)
    return float(((u % 3) == (i % 3)).mean())


@pytest.mark.parametrize("loss", ["bpr", "warp"])
def test_bpr_learns_planted_blocks(loss):
    x = planted_blocks(120, 60, 3, random_state=0)
    lr = 0.05 if loss == "bpr" else 0.02
    m = BPR(factors=8, iterations=25 if loss == "bpr" else 8, loss=loss, learning_rate=lr,
            regularization=0.05, random_state=0).fit(x)  # fmt: skip
    assert _block_precision(m, x) > 0.9
    assert m.loss_history_[-1] < m.loss_history_[0]


def test_mixture_with_one_taste_is_bpr(listening):
    kw = dict(factors=8, iterations=4, learning_rate=0.05, random_state=3)
    b = BPR(**kw).fit(listening)
    m = MixtureOfTastes(n_personas=1, **kw).fit(listening)
    np.testing.assert_array_equal(m.persona_factors_[:, 0], b.user_factors_)
    np.testing.assert_array_equal(m.item_factors_, b.item_factors_)
    users = np.arange(20)
    np.testing.assert_allclose(m.score_index(users), b.score_index(users), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        m.score_index(users, scoring="max"), b.score_index(users), rtol=1e-5, atol=1e-6
    )


@pytest.fixture(scope="module")
def mixture(listening):
    return MixtureOfTastes(
        factors=8, n_personas=3, iterations=8, min_share=0.0, min_items=1, random_state=0
    ).fit(listening)


def test_soft_mixture_formula_and_max(mixture):
    users = np.arange(30)
    soft = mixture.score_index(users)
    X, A = mixture.persona_factors_[users], mixture.attention_factors_[users]
    Y, B = mixture.item_factors_, mixture.item_biases_
    T = np.einsum("upf,if->upi", X, Y)
    E = np.einsum("upf,if->upi", A, Y)
    W = np.exp(E - E.max(axis=1, keepdims=True))
    W /= W.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(soft, (W * T).sum(axis=1) + B, rtol=1e-4, atol=1e-5)
    full = mixture.user_n_personas_[users] == 3
    assert full.sum() > 5
    hard = mixture.score_index(users, scoring="max")
    np.testing.assert_allclose(hard[full], T[full].max(axis=1) + B, rtol=1e-5, atol=1e-5)
    assert np.all(soft[full] <= hard[full] + 1e-5)  # a convex mix never beats the best taste
    p1 = mixture.score_index(users[full], persona=1)
    np.testing.assert_allclose(p1, T[full][:, 1], rtol=1e-5, atol=1e-5)


def test_persona_api(mixture, listening):
    u = listening.user_map.ids[int(np.argmax(mixture.user_n_personas_))]
    df = mixture.personas(u)
    assert df.columns.tolist() == ["persona", "share", "n_items", "label", "top_artists",
                                   "top_tags"]  # fmt: skip
    assert abs(df.share.sum() - 1) < 1e-6 and len(df) == mixture.user_n_personas_.max()
    assert df.share.is_monotonic_decreasing or len(df) == 1
    rec = mixture.recommend(u, n=5, persona=1).to_frame()
    assert (rec["persona"] == 1).all()
    health = mixture.persona_health(listening.user_map.ids[:20])
    assert len(health) == 20 and "max_share" in health
    blended = mixture.recommend(u, n=10, blend=True).to_frame()
    assert len(blended) == 10 and blended["item"].is_unique
    shares = mixture.personas(u).share.to_numpy()
    counts = np.bincount(blended["persona"], minlength=len(shares))
    assert abs(counts[0] - 10 * shares[0]) <= 1.01
    only1 = mixture.recommend(u, n=5, persona_mix=[0, 1]).to_frame()
    assert (only1["persona"] == 1).all()
    assert only1["item"].tolist() == rec["item"].tolist()
    with pytest.raises(DeepcutsError, match="persona=7"):
        mixture.recommend(u, persona=7)
    with pytest.raises(DeepcutsError, match="scoring"):
        mixture.recommend(u, scoring="median")


def test_shown_personas_hide_small_tastes(listening):
    m = MixtureOfTastes(factors=8, n_personas=3, iterations=6, random_state=0).fit(listening)
    for u in listening.user_map.ids[:40]:
        df = m.personas(u)
        if len(df) > 1:
            assert df.n_items.min() >= 3
    one = MixtureOfTastes(factors=8, n_personas=3, iterations=6, min_share=0.99,
                          random_state=0).fit(listening)  # fmt: skip
    assert (one.user_n_personas_ == 1).all()


def test_distinct_penalty_spreads_tastes(listening):
    kw = dict(factors=8, n_personas=3, iterations=5, random_state=0)
    base = MixtureOfTastes(**kw).fit(listening)
    push = MixtureOfTastes(distinct_weight=1.0, distinct_scale=0.5, **kw).fit(listening)

    def spread(m):
        X = m.persona_factors_
        return float(np.linalg.norm(X[:, 0] - X[:, 1], axis=1).mean())

    assert spread(push) > 1.2 * spread(base)


def test_popularity_weights_favour_rare_items(listening):
    m = BPR(popularity_exponent=1.0)
    w = m._popularity_weights(listening.matrix)
    pop = np.diff(sp.csc_matrix(listening.matrix).indptr)
    assert abs(float((w * pop).sum() / pop.sum()) - 1.0) < 1e-5
    assert w[np.argmax(pop)] < w[pop > 0].max()
    a = BPR(factors=8, iterations=3, random_state=0).fit(listening)
    b = BPR(factors=8, iterations=3, popularity_exponent=1.0, random_state=0).fit(listening)
    assert not np.allclose(a.item_factors_, b.item_factors_)


@pytest.mark.parametrize(
    "model",
    [
        BPR(factors=8, iterations=5, random_state=0),
        MixtureOfTastes(factors=8, n_personas=2, iterations=5, random_state=0),
    ],
)
def test_save_load_and_fold_in(model, listening, tmp_path):
    model.fit(listening)
    model.save(tmp_path / "m")
    back = load_model(tmp_path / "m")
    assert type(back) is type(model) and back.get_params() == model.get_params()
    a = model.recommend(listening.user_map.ids[:5], n=10).to_frame()
    b = back.recommend(listening.user_map.ids[:5], n=10).to_frame()
    assert a.equals(b)
    # fold-in of a known listener's history: deterministic, and ranks their held items high
    u = listening.user_map.ids[0]
    hist = listening.user_items(u).set_index("item")["count"].to_dict()
    r1 = back.recommend_history(hist, n=10).to_frame()
    r2 = back.recommend_history(hist, n=10).to_frame()
    assert r1.equals(r2) and len(r1) == 10


def test_registry_and_validation(listening):
    assert MODELS["bpr"] is BPR and MODELS["mixture"] is MixtureOfTastes
    m = make_model("bpr", loss="warp", factors="16")
    assert m.factors == 16 and m.loss == "warp"
    tr, va = listening.matrix[:, :], listening.matrix.copy()
    m = BPR(factors=8, iterations=6, validation=listening.with_matrix(va),
            early_stopping_rounds=2, random_state=0).fit(listening.with_matrix(tr))  # fmt: skip
    assert len(m.validation_history_) == m.n_iterations_ and len(m.train_seconds_) >= 1
    assert np.all(np.diff(m.train_seconds_) > 0)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"loss": "hinge"}, "loss must be"),
        ({"learning_rate": 0}, "learning_rate"),
        ({"factors": 0}, "factors"),
        ({"regularization": -1.0}, "regularization"),
        ({"n_blocks": 0}, "n_blocks"),
        ({"optimizer": "adam"}, "optimizer"),
        ({"early_stopping_rounds": 2}, "needs validation"),
    ],
)
def test_bad_params(kw, match, listening):
    with pytest.raises(DeepcutsError, match=match):
        BPR(**kw).fit(listening)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"n_personas": 0}, "n_personas"),
        ({"scoring": "median"}, "scoring"),
        ({"distinct_scale": 0.0}, "distinct_scale"),
        ({"min_share": 2.0}, "min_share"),
    ],
)
def test_bad_mixture_params(kw, match):
    with pytest.raises(DeepcutsError, match=match):
        make_model("mixture", **kw)


def test_divergence_is_reported(listening):
    with pytest.raises(DeepcutsError, match="lower learning_rate"):
        BPR(factors=8, iterations=3, learning_rate=1e6, optimizer="sgd", random_state=0).fit(
            listening
        )


def test_mixture_through_the_service(tmp_path):
    pytest.importorskip("fastapi")
    pytest.importorskip("sqlalchemy")
    from fastapi.testclient import TestClient
    from serving_helpers import two_taste_frames

    from deepcuts.serving.app import create_app
    from deepcuts.serving.service import RecommenderService
    from deepcuts.serving.store import Store, default_url

    store = Store(default_url(tmp_path))
    store.import_play_counts(*two_taste_frames())
    params = {"factors": 8, "n_personas": 2, "iterations": 10, "random_state": 0}
    svc = RecommenderService(store, tmp_path, model="mixture", model_params=params, seed=False)
    svc.start()
    with TestClient(create_app(svc)) as client:
        ps = client.get("/users/u5/personas", params={"n": 4}).json()["personas"]
        assert 1 <= len(ps) <= 2 and abs(sum(p["share"] for p in ps) - 1) < 1e-6
        for p in ps:
            r = client.get("/users/u5/recommendations", params={"persona": p["persona"], "n": 3})
            assert r.status_code == 200, r.text
            assert {it["persona"] for it in r.json()["items"]} == {p["persona"]}
        batch = [{"user": "new", "artist": f"Artist {a}", "fraction": 1.0} for a in range(6)]
        assert client.post("/listens/batch", json={"listens": batch}).status_code == 201
        body = client.get("/users/new/personas").json()
        assert body["source"] == "history" and len(body["personas"]) >= 1
        r = client.get("/users/new/recommendations", params={"n": 3})
        assert r.status_code == 200 and len(r.json()["items"]) == 3
