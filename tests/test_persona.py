"""Multi-persona ALS (issue 4): training, loss terms, persona API, fold-in, persistence."""

import numpy as np
import pandas as pd
import pytest

from deepcuts.data import Interactions
from deepcuts.exceptions import DeepcutsError
from deepcuts.models import MODELS, PersonaALS, load_model, make_model
from deepcuts.models import _persona_kernels as K
from deepcuts.testing import RecommenderContract


class TestPersonaContract(RecommenderContract):
    def make_model(self):
        return PersonaALS(factors=8, n_personas=2, iterations=6, random_state=0)


class TestPersonaKMeansAutoContract(RecommenderContract):
    def make_model(self):
        return PersonaALS(
            factors=8,
            n_personas=3,
            persona_count="auto",
            min_items_per_persona=4,
            init="kmeans",
            n_clusters=6,
            iterations=5,
            distinct_weight=0.1,
            collapse_weight=0.5,
            solver="cholesky",
            random_state=0,
        )


def two_taste_data(n_users=120, n_items=80, n_blocks=4, seed=0, pop_skew=0.0, n_per=None):
    """Every user plays two of ``n_blocks`` item blocks (tastes); item ``i`` is in block i % B.

    User ``u`` has tastes ``u % B`` and ``(u // B + u + 1) % B`` (two different blocks).
    """
    rng = np.random.default_rng(seed)
    ib = np.arange(n_items) % n_blocks
    pop = 1.0 / (1.0 + np.arange(n_items)) ** pop_skew
    rows = []
    tastes = {}
    for u in range(n_users):
        a = u % n_blocks
        b = (a + 1 + (u // n_blocks) % (n_blocks - 1)) % n_blocks
        tastes[f"u{u}"] = (a, b)
        for blk in (a, b):
            items = np.flatnonzero(ib == blk)
            p = pop[items] / pop[items].sum()
            pick = rng.choice(items, size=n_per or max(3, len(items) // 2), replace=False, p=p)
            rows += [(f"u{u}", f"i{i}", int(rng.integers(1, 20))) for i in pick]
    df = pd.DataFrame(rows, columns=["user", "item", "count"])
    meta = pd.DataFrame(
        {
            "item": [f"i{i}" for i in range(n_items)],
            "name": [f"artist {i}" for i in range(n_items)],
            "tags": [[f"genre{b}", "music"] for b in ib],
        }
    )
    x = Interactions.from_frame(df, items=meta)
    x.meta["tastes"] = tastes
    x.meta["item_block"] = {f"i{i}": int(ib[i]) for i in range(n_items)}
    return x


@pytest.fixture(scope="module")
def two_taste():
    return two_taste_data()


@pytest.fixture(scope="module")
def fitted2(two_taste):
    return PersonaALS(
        factors=8, n_personas=2, iterations=10, regularization=0.1, init="kmeans",
        n_clusters=4, random_state=0,
    ).fit(two_taste)  # fmt: skip


def _blocks_of(model, x, user):
    """Block of each item credited to each persona of ``user`` (by ``personas`` attribution)."""
    u = int(x.user_map.index([user])[0])
    row = x.matrix[u]
    a = model._assign(row, model.persona_factors_[[u]], model.item_factors_,
                      model.user_n_personas_[[u]], collapse_weight=0.0)  # fmt: skip
    ib = x.meta["item_block"]
    blocks = np.array([ib[i] for i in x.item_map.external(row.indices)])
    return a, blocks


# ---------------------------------------------------------------------- kernels vs references
def _system(seed=0, n=30, m=25, f=6, density=0.2):
    rng = np.random.default_rng(seed)
    import scipy.sparse as sp

    C = sp.random(n, m, density=density, random_state=seed, format="csr", dtype=np.float32)
    C.data = 1.0 + 4.0 * C.data
    C.data[::9] *= -1.0
    Y = (rng.standard_normal((m, f)) * 0.4).astype(np.float32)
    X = (rng.standard_normal((n, f)) * 0.4).astype(np.float32)
    A0 = (Y.T @ Y + 0.1 * np.eye(f)).astype(np.float32)
    extra = (rng.standard_normal((n, f)) * 0.1).astype(np.float32)
    active = rng.random(n) < 0.8
    return C, X, Y, A0, extra, active


def _weights(C, seed=0):
    rng = np.random.default_rng(seed)
    rw = rng.uniform(0.3, 1.0, C.shape[0]).astype(np.float32)
    cw = rng.uniform(0.3, 1.0, C.shape[1]).astype(np.float32)
    return rw, cw


def _solve(C, X, Y, extra, active, rw, cw, steps, exact, nonneg, reg=0.1):
    out = X.copy()
    loss = np.zeros(len(X))
    A0 = ((Y.T.astype(np.float64) * cw) @ Y).astype(np.float32)
    K.solve_rows(C.indptr, C.indices, C.data, out, Y, A0, np.full(len(X), reg, np.float32), rw, cw, extra,
                 active, steps, exact, nonneg, loss)  # fmt: skip
    return out, loss


@pytest.mark.parametrize("nonneg", [False, True])
def test_exact_solve_matches_reference(nonneg):
    C, X, Y, _, extra, active = _system()
    rw, cw = _weights(C)
    out, _ = _solve(C, X, Y, extra, active, rw, cw, 3, True, nonneg)
    ref = K.reference_solve_rows(C.indptr, C.indices, C.data, Y, 0.1, rw, cw, extra, active,
                                 nonneg)  # fmt: skip
    np.testing.assert_allclose(out, ref, atol=1e-4)
    assert np.all(out[~active] == 0)


def test_cg_converges_to_exact_solve():
    C, X, Y, _, extra, active = _system(1)
    rw, cw = _weights(C, 1)
    out, loss = _solve(C, X, Y, extra, active, rw, cw, 40, False, False)
    ref = K.reference_solve_rows(C.indptr, C.indices, C.data, Y, 0.1, rw, cw, extra, active)
    np.testing.assert_allclose(out, ref, atol=1e-3)
    # the loss is reported for the entry factors: sum c (p - s)^2 + reg |x|^2 over all columns
    dense = rw[:, None].astype(np.float64) * cw[None, :]
    P = np.zeros(C.shape)
    r, c = C.nonzero()
    dense[r, c] = np.abs(C.data)
    P[r, c] = C.data > 0
    S = X.astype(np.float64) @ Y.T
    want = (dense * (P - S) ** 2).sum(1) + 0.1 * (X.astype(np.float64) ** 2).sum(1)
    np.testing.assert_allclose(loss[active], want[active], rtol=1e-3)


def test_single_persona_with_split_negatives_is_als(two_taste):
    """P = 1: persona ALS reduces to single-vector ALS (same solves, Cholesky, same start)."""
    from deepcuts.models import ALS

    kw = dict(factors=6, regularization=0.1, solver="cholesky", random_state=0)
    m = PersonaALS(n_personas=1, iterations=2, init_iterations=2, init_noise=0.0, **kw)
    m.fit(two_taste)
    als = ALS(iterations=4, reg_scaling="none", **kw).fit(two_taste)
    s1 = m.persona_factors_[:, 0] @ m.item_factors_.T
    s2 = als.user_factors_ @ als.item_factors_.T
    assert np.abs(s1 - s2).max() < 0.05


@pytest.mark.parametrize("collapse", [0.0, 0.3, 5.0])
def test_assign_matches_reference(collapse):
    C, _, Y, _, _, _ = _system(2, n=40, density=0.3)
    rng = np.random.default_rng(3)
    U = rng.standard_normal((40, 3, Y.shape[1])).astype(np.float32)
    n_act = rng.integers(1, 4, size=40).astype(np.int32)
    out = np.zeros(C.nnz, np.int32)
    K.assign_personas(C.indptr, C.indices, U, Y, n_act, collapse, 4, out)
    ref = K.reference_assign(C.indptr, C.indices, U, Y, n_act, collapse, 4)
    np.testing.assert_array_equal(out, ref)
    rows = np.repeat(np.arange(40), np.diff(C.indptr))
    assert np.all(out < n_act[rows])
    # no empty persona when a user has at least P_u items
    for u in range(40):
        a = out[C.indptr[u] : C.indptr[u + 1]]
        if len(a) >= n_act[u]:
            assert set(a.tolist()) == set(range(n_act[u]))


def test_blend_matches_reference_and_proportions():
    rng = np.random.default_rng(0)
    b, P, m, n = 6, 3, 12, 8
    cand = np.stack([np.stack([rng.permutation(20)[:m] for _ in range(P)]) for _ in range(b)])
    cand[0, 2, 5:] = -1  # a persona that runs out
    val = -np.sort(-rng.random((b, P, m)), axis=2).astype(np.float32)
    mix = rng.dirichlet(np.ones(P), size=b)
    mix[1] = [0.5, 0.5, 0.0]
    idx = np.empty((b, n), np.int64)
    out_val = np.empty((b, n), np.float32)
    per = np.empty((b, n), np.int64)
    K.blend_lists(cand, val, mix, n, idx, out_val, per)
    np.testing.assert_array_equal(idx, K.reference_blend(cand, mix, n))
    for r in range(b):
        assert len(set(idx[r].tolist())) == n  # no duplicates
    assert np.bincount(per[1], minlength=P).tolist() == [4, 4, 0]


def test_distinct_push_is_bounded_and_is_the_gradient():
    rng = np.random.default_rng(0)
    U = rng.standard_normal((5, 3, 4)).astype(np.float32) * 0.5
    U[0, 1] = U[0, 0]  # coinciding personas: finite penalty, zero push between them
    act = np.ones((5, 3), bool)
    w, s = 0.7, 0.5
    extra, pen = K.distinct_push(U, act, w, s)
    assert np.isfinite(pen) and pen <= w * 3 * 5 + 1e-6  # <= w P(P-1)/2 per user
    bound = w * 2 / np.sqrt(2 * np.e * s)
    assert np.linalg.norm(extra, axis=2).max() <= bound + 1e-5
    # extra = -grad/2 of the penalty (central differences)
    eps = 1e-3
    for k in range(4):
        Up, Um = U.astype(np.float64).copy(), U.astype(np.float64).copy()
        Up[2, 1, k] += eps
        Um[2, 1, k] -= eps
        g = (K.distinct_push(Up, act, w, s)[1] - K.distinct_push(Um, act, w, s)[1]) / (2 * eps)
        assert extra[2, 1, k] == pytest.approx(-g / 2, rel=2e-2, abs=1e-4)


# ---------------------------------------------------------------------- model behaviour
def test_registered_and_make_model():
    assert MODELS["persona-als"] is PersonaALS
    m = make_model("persona-als", factors="8", n_personas="2")
    assert m.factors == 8 and m.n_personas == 2
    with pytest.raises(DeepcutsError, match="init"):
        make_model("persona-als", init="random")
    with pytest.raises(DeepcutsError, match="distinct_scale"):
        make_model("persona-als", distinct_scale=0.0)


def test_personas_separate_two_tastes(fitted2, two_taste):
    """Users with two tastes: each persona takes one taste (the heart of MaxMF)."""
    purity = []
    for u in [f"u{k}" for k in range(40)]:
        a, blocks = _blocks_of(fitted2, two_taste, u)
        for p in (0, 1):
            if (a == p).any():
                purity.append(np.bincount(blocks[a == p]).max() / (a == p).sum())
    assert np.mean(purity) > 0.9


def test_recommend_from_one_persona(fitted2, two_taste):
    ib = two_taste.meta["item_block"]
    tastes = two_taste.meta["tastes"]
    for u in ["u0", "u5", "u9"]:
        blocks = set()
        for p in (0, 1):
            rec = fitted2.recommend(u, n=4, persona=p).to_frame()
            assert (rec["persona"] == p).all()
            top = {ib[i] for i in rec["item"]}
            assert len(top) == 1  # one persona = one taste
            blocks |= top
        assert blocks == set(tastes[u])  # and the two personas are the user's two tastes
    with pytest.raises(DeepcutsError, match="persona=5"):
        fitted2.recommend("u0", persona=5)


def test_max_scoring_and_attribution(fitted2, two_taste):
    rec = fitted2.recommend(["u0", "u1"], n=10).to_frame()
    U = fitted2.persona_factors_[two_taste.user_map.index(["u0", "u1"])]
    Y = fitted2.item_factors_[two_taste.item_map.index(rec["item"].to_numpy())]
    rows = (rec["user"] == "u1").to_numpy().astype(int)
    s = np.einsum("rpf,rf->rp", U[rows], Y)
    np.testing.assert_allclose(rec["score"], s.max(axis=1), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(rec["persona"], s.argmax(axis=1))


def test_personas_frame_labels_and_shares(fitted2, two_taste):
    df = fitted2.personas("u0")
    assert df.columns.tolist() == ["persona", "share", "n_items", "label", "top_artists",
                                   "top_tags"]  # fmt: skip
    assert len(df) == 2 and df.share.sum() == pytest.approx(1.0)
    assert df.n_items.sum() == two_taste.matrix[0].nnz
    labels = set(df.label)
    want = {f"genre{b}" for b in two_taste.meta["tastes"]["u0"]}
    # the shared tag "music" is on every item: idf keeps it out of the first place
    assert {lab.split(" / ")[0] for lab in labels} == want
    assert all(len(a) <= 5 for a in df.top_artists)


def test_blend_follows_shares_and_mix(fitted2):
    rec = fitted2.recommend("u0", n=10, persona_mix=[1.0, 0.0]).to_frame()
    assert (rec["persona"] == 0).all() and len(rec) == 10
    rec = fitted2.recommend("u0", n=10, persona_mix=[0.5, 0.5]).to_frame()
    assert rec["persona"].value_counts().to_dict() == {0: 5, 1: 5}
    assert rec["item"].is_unique
    shares = fitted2.personas("u0").share.to_numpy()
    rec = fitted2.recommend("u0", n=10, blend=True).to_frame()
    counts = np.bincount(rec["persona"], minlength=2)
    assert np.abs(counts - 10 * shares).max() <= 1.0
    played = set(fitted2.interactions_.user_items("u0")["item"])
    assert not played & set(rec["item"])
    with pytest.raises(DeepcutsError, match="persona_mix"):
        fitted2.recommend("u0", persona_mix=[0.0, 0.0])
    with pytest.raises(DeepcutsError, match="persona_mix"):
        fitted2.recommend("u0", persona_mix=[1, -1])


def test_fold_in_recovers_the_users_personas(fitted2, two_taste):
    u = 3
    hist = two_taste.user_items(f"u{u}")
    rec = fitted2.recommend_history(dict(zip(hist["item"], hist["count"])), n=10)
    trained = fitted2.recommend(f"u{u}", n=10)
    assert len(set(rec.items) & set(trained.items)) >= 7
    assert rec.personas is not None
    U, n = fitted2.fold_in(two_taste.matrix[[u]])
    assert n.tolist() == [2]
    Un = U[0] / np.linalg.norm(U[0], axis=1, keepdims=True)
    T = fitted2.persona_factors_[u]
    Tn = T / np.linalg.norm(T, axis=1, keepdims=True)
    # each folded-in persona points at one of the trained personas
    assert (Un @ Tn.T).max(axis=1).min() > 0.8
    with pytest.raises(DeepcutsError, match="columns"):
        fitted2.fold_in(two_taste.matrix[:, :5])


def test_health_diagnostics(fitted2):
    h = fitted2.persona_health(k=10)
    assert h.columns.tolist() == ["user", "n_personas", "max_share", "min_share", "collapsed",
                                  "max_cosine", "list_overlap"]  # fmt: skip
    assert len(h) == fitted2.interactions_.n_users
    s = h.attrs["summary"]
    assert s["collapsed_fraction"] < 0.1  # two clear tastes: personas are used
    assert s["mean_list_overlap"] < 0.2  # and recommend different items
    assert h.max_share.between(0.5, 1.0).all()


def test_save_load_keeps_personas(fitted2, tmp_path):
    fitted2.save(tmp_path / "p")
    m = load_model(tmp_path / "p")
    np.testing.assert_array_equal(m.persona_factors_, fitted2.persona_factors_)
    assert m.personas("u0").label.tolist() == fitted2.personas("u0").label.tolist()
    a = m.recommend("u2", n=5, persona=1).to_frame()
    b = fitted2.recommend("u2", n=5, persona=1).to_frame()
    assert a["item"].tolist() == b["item"].tolist()


# ---------------------------------------------------------------------- loss terms
def _fit(x, **kw):
    params = dict(factors=8, n_personas=2, iterations=6, random_state=0)
    params.update(kw)
    return PersonaALS(**params).fit(x)


def test_l2_shrinks_factors(two_taste):
    small = _fit(two_taste, regularization=0.01)
    big = _fit(two_taste, regularization=20.0)

    def total(m):  # the penalised quantity: sum |x_up|^2 + sum |y_i|^2
        return (m.persona_factors_**2).sum() + (m.item_factors_**2).sum()

    assert total(big) < 0.7 * total(small)
    s_big = np.abs(big.persona_factors_ @ big.item_factors_.T).mean()
    s_small = np.abs(small.persona_factors_ @ small.item_factors_.T).mean()
    assert s_big < s_small  # and the scores shrink towards 0


def test_distinctness_pushes_personas_apart(two_taste):
    def score_dist(m):  # mean squared score difference of the two personas over played items
        G = m._score_metric(m.item_factors_, two_taste.item_popularity())
        D = m.persona_factors_[:, 0] - m.persona_factors_[:, 1]
        return np.einsum("nf,fg,ng->n", D, G, D).mean()

    off = _fit(two_taste, init="als", init_noise=0.05)
    on = _fit(two_taste, init="als", init_noise=0.05, distinct_weight=2.0, distinct_scale=0.5)
    cos = lambda m: m.persona_health(k=5).attrs["summary"]["mean_max_cosine"]  # noqa: E731
    assert cos(on) < 0.6 * cos(off)
    assert score_dist(on) > score_dist(off)
    assert np.isfinite(on.loss_history_).all()


def test_popularity_weighting_favours_rare_items():
    x = two_taste_data(n_users=150, n_items=400, pop_skew=1.0, seed=1, n_per=8)
    pop = x.item_popularity()

    def arp(m):
        rec = m.recommend(list(x.user_map.ids[:100]), n=10)
        return pop[rec.item_index].mean()

    plain = _fit(x, iterations=5)
    mild = _fit(x, iterations=5, popularity_exponent=1.0)
    rare = _fit(x, iterations=5, popularity_exponent=3.0)
    assert arp(rare) < arp(mild) < arp(plain)
    assert arp(rare) < 0.7 * arp(plain)


def test_anti_collapse_balances_shares(two_taste):
    # persona-seeded copies with tiny noise: without the penalty one persona takes most items
    kw = dict(init="als", init_noise=0.01, n_personas=3, iterations=4)
    free = _fit(two_taste, **kw).persona_health(k=5)
    held = _fit(two_taste, collapse_weight=3.0, **kw).persona_health(k=5)
    assert held.max_share.mean() < free.max_share.mean() - 0.05
    assert (
        held.attrs["summary"]["collapsed_fraction"] <= free.attrs["summary"]["collapsed_fraction"]
    )


def test_loss_history_and_reproducible(two_taste):
    a = _fit(two_taste, distinct_weight=0.1, collapse_weight=0.1)
    b = _fit(two_taste, distinct_weight=0.1, collapse_weight=0.1)
    assert len(a.loss_history_) == 6 and a.loss_history_[-1] < a.loss_history_[0]
    np.testing.assert_array_equal(a.persona_factors_, b.persona_factors_)


def test_auto_persona_count():
    x = two_taste_data(n_users=60, n_items=80)
    # add a listener with 3 artists and one who plays a single taste a lot
    extra = pd.DataFrame(
        {
            "user": ["few"] * 3 + ["narrow"] * 20,
            "item": ["i0", "i1", "i2"] + [f"i{4 * k}" for k in range(20)],
            "count": [5] * 23,
        }
    )
    df = pd.concat([x.to_frame()[["user", "item", "count"]], extra], ignore_index=True)
    y = Interactions.from_frame(df, items=x.items)
    m = _fit(y, n_personas=4, persona_count="auto", min_items_per_persona=5, n_clusters=4)
    n = dict(zip(y.user_map.ids, m.user_n_personas_))
    assert n["few"] == 1
    assert n["narrow"] == 1  # much listening, one taste
    two = [n[f"u{k}"] for k in range(60)]
    assert np.mean(np.array(two) == 2) > 0.8  # two tastes -> two personas


def test_nonnegative_variant(two_taste):
    m = _fit(two_taste, nonnegative=True, init="kmeans", n_clusters=4, iterations=8)
    assert (m.persona_factors_ >= 0).all() and (m.item_factors_ >= 0).all()
    ib = two_taste.meta["item_block"]
    tastes = two_taste.meta["tastes"]
    rec = m.recommend([f"u{k}" for k in range(20)], n=5).to_frame()
    ok = [ib[i] in tastes[u] for u, i in zip(rec["user"], rec["item"])]
    assert np.mean(ok) > 0.9


def test_tie_pulls_personas_together(two_taste):
    cos = lambda m: m.persona_health(k=5).attrs["summary"]["mean_max_cosine"]  # noqa: E731
    free = _fit(two_taste, init="als")
    tied = _fit(two_taste, init="als", tie_weight=50.0)
    assert cos(tied) > 0.95 > cos(free)


@pytest.mark.parametrize("split", [True, "share", False])
def test_sibling_rows_consistent_between_half_steps(two_taste, split):
    """Persona-step rows and item-step rows describe the same weighted (pseudo-user, item) cells."""
    import scipy.sparse as sp

    m = PersonaALS(n_personas=3, sibling_weight=0.5, split_negatives=split)
    C = m._confidence(two_taste.matrix[:20])
    rng = np.random.default_rng(0)
    n_act = rng.integers(1, 4, size=20).astype(np.int32)
    a = (
        rng.integers(0, 3, size=C.nnz) % n_act[np.repeat(np.arange(20), np.diff(C.indptr))]
    ).astype(np.int32)
    rw_p = m._negative_weights(n_act, C, a)
    rows = m._pseudo_rows(C, a, 3, n_act, rw_p).toarray()
    Ct = C.T.tocsr()
    perm = sp.csr_matrix((np.arange(C.nnz) + 1.0, C.indices, C.indptr), shape=C.shape).T.tocsr()
    to_c = (perm.data - 1).astype(np.int64)
    items = m._item_rows(Ct, Ct.indices.astype(np.int64), to_c, a, 3, n_act, rw_p).toarray()
    np.testing.assert_allclose(rows, items.T)
    # persona p of user u: its own items with c, siblings' items with -(0.5 * rw_u)
    u = int(np.argmax(n_act))
    lo, hi = C.indptr[u], C.indptr[u + 1]
    n_up = np.bincount(a[lo:hi], minlength=3)
    for p in range(n_act[u]):
        if split == "share":
            rw = (n_up[p] + 1.0) / (hi - lo + n_act[u])
        else:
            rw = 1.0 / n_act[u] if split else 1.0
        assert rw_p[u * 3 + p] == pytest.approx(rw)
        r = rows[u * 3 + p, C.indices[lo:hi]]
        np.testing.assert_allclose(r, np.where(a[lo:hi] == p, C.data[lo:hi], -0.5 * rw), rtol=1e-6)
    # the user's total weight on unobserved items is ALS's (1) unless split_negatives=False
    assert rw_p[u * 3 : u * 3 + n_act[u]].sum() == pytest.approx(1.0 if split else n_act[u])


def test_hybrid_places_new_items_into_personas(fitted2, two_taste):
    """deepcuts.models.hybrid.best_persona reads persona_factors_ of a fitted PersonaALS."""
    from deepcuts.models.hybrid import best_persona

    ib = two_taste.meta["item_block"]
    tastes = two_taste.meta["tastes"]
    u = 0
    a, blocks = _blocks_of(fitted2, two_taste, "u0")
    # an item vector of each taste: the mean vector of that block's items
    V = np.stack(
        [
            fitted2.item_factors_[
                [two_taste.item_map.index([i])[0] for i in ib if ib[i] == b]
            ].mean(0)
            for b in tastes["u0"]
        ]
    )
    p, s = best_persona(fitted2, [u], V)
    assert sorted(p[0].tolist()) == [0, 1]  # each taste goes to a different persona
    for k, b in enumerate(tastes["u0"]):
        assert np.bincount(blocks[a == p[0, k]]).argmax() == b


class TestPersonaActivityRegContract(RecommenderContract):
    def make_model(self):
        return PersonaALS(
            factors=8, n_personas=2, iterations=4, regularization=0.1,
            reg_scaling="activity", random_state=0,
        )  # fmt: skip


def test_activity_scaled_reg_per_row(tmp_path):
    import scipy.sparse as sp

    C = sp.csr_matrix(np.array([[2, 0, -1, 3], [0, 0, 0, 0], [1, 1, 1, 1]], np.float32))
    m = PersonaALS(regularization=0.5, reg_scaling="activity")
    np.testing.assert_allclose(m._scaled_reg(C), [1.0, 0.5, 2.0])  # 2, 0 (floor 1), 4 positives
    tie = np.array([0.5 + 3, 0.5, 0.5 + 3], np.float32)  # a tie term on top of the shared reg
    np.testing.assert_allclose(m._scaled_reg(C, tie), [4.0, 0.5, 5.0])
    plain = PersonaALS(regularization=0.5)
    np.testing.assert_allclose(plain._scaled_reg(C, tie), tie)
    with pytest.raises(DeepcutsError, match="reg_scaling"):
        PersonaALS(reg_scaling="users")._check_params()
