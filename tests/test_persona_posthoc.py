"""Post-hoc personas (issue 12): planted tastes, one-taste users, tab rules, mixture vs max,
persona lists that stay in their taste, save/load, and the clustering kernel's oracle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from deepcuts.data import generate_listening
from deepcuts.exceptions import DeepcutsError
from deepcuts.models import ALS, MODELS, PostHocPersonas, load_model
from deepcuts.models import _persona_cluster_kernels as CK
from deepcuts.models._io import write_model_files
from deepcuts.models.persona._labels import distinct_labels
from deepcuts.models.persona._posthoc import null_threshold


@pytest.fixture(scope="module")
def gen():
    return generate_listening(n_users=300, n_items=600, random_state=3)


@pytest.fixture(scope="module")
def fitted(gen):
    x = gen.interactions
    als = ALS(factors=32, iterations=8, reg_scaling="activity", regularization=0.3,
              random_state=0).fit(x)  # fmt: skip
    return PostHocPersonas.from_model(als)


def _majority_genres(m, gen, u):
    M = m.interactions_.matrix
    lo, hi = M.indptr[u], M.indptr[u + 1]
    g, lab, pl = gen.item_genre[M.indices[lo:hi]], m.train_personas_[lo:hi], M.data[lo:hi]
    return [int(np.bincount(g[lab == p], weights=pl[lab == p]).argmax())
            for p in range(m.user_n_personas_[u])]  # fmt: skip


def test_registry_default_is_posthoc():
    assert MODELS["persona"] is PostHocPersonas
    with pytest.raises(DeepcutsError, match="linkage"):
        PostHocPersonas(linkage="single")._check_params()
    with pytest.raises(DeepcutsError, match="blend"):
        PostHocPersonas(blend=2.0)._check_params()


def test_planted_tastes_recovered_as_distinct_personas(fitted, gen):
    M = fitted.interactions_.matrix
    found = total = 0
    for u in range(M.shape[0]):  # test oracle over 300 users
        lo, hi = M.indptr[u], M.indptr[u + 1]
        g, pl = gen.item_genre[M.indices[lo:hi]], M.data[lo:hi]
        major = _majority_genres(fitted, gen, u)
        for t in gen.user_genres[u][gen.user_genres[u] >= 0]:
            if pl[g == t].sum() >= 0.05 * pl.sum() and (g == t).sum() >= 3:
                total += 1
                found += t in major
    assert total > 300 and found / total >= 0.9


def test_one_taste_users_get_one_persona(fitted, gen):
    one = gen.n_tastes == 1
    assert one.sum() > 50
    assert (fitted.user_n_personas_[one] == 1).mean() >= 0.95


def test_auto_threshold_is_the_null_quantile_of_random_training_pairs(fitted):
    x = fitted.interactions_.matrix
    Yn = fitted.item_factors_ / np.linalg.norm(fitted.item_factors_, axis=1, keepdims=True)
    # oracle: the same seeded draw of entries, distances one pair at a time
    rng = np.random.default_rng(0)
    a = x.indices[rng.integers(0, x.nnz, 2000)]
    b = x.indices[rng.integers(0, x.nnz, 2000)]
    d = [max(1.0 - float(Yn[i] @ Yn[j]), 0.0) for i, j in zip(a, b)]
    got = null_threshold(x, Yn, 0.1, n_pairs=2000, seed=0)
    assert got == pytest.approx(np.quantile(d, 0.1), rel=1e-5)
    assert fitted.threshold == "auto" and fitted.null_quantile == 0.1
    assert fitted.threshold_ == pytest.approx(null_threshold(x, Yn, 0.1, seed=0), rel=1e-6)
    assert 0.3 < fitted.threshold_ < 1.0
    # ward units: the Ward height of two single items, sqrt(2 * cosine distance)
    w = null_threshold(x, Yn, 0.1, "ward", seed=0)
    assert w == pytest.approx(np.sqrt(2 * fitted.threshold_), rel=1e-5)
    # a higher quantile merges more: never more personas
    hi = PostHocPersonas.from_model(fitted, null_quantile=0.3)
    assert hi.threshold_ > fitted.threshold_
    assert (hi.user_n_personas_ <= fitted.user_n_personas_).all()
    # a number still works and is used as given
    fixed = PostHocPersonas.from_model(fitted, threshold=0.5)
    assert fixed.threshold_ == 0.5
    for bad in ({"threshold": "median"}, {"threshold": -1.0}, {"null_quantile": 1.5}):
        with pytest.raises(DeepcutsError, match=next(iter(bad))):
            PostHocPersonas(**bad)._check_params()


def test_auto_threshold_is_scale_free():
    """One rule at two scales of the generator: every one-taste user gets one persona and the
    planted tastes are found, where a fixed threshold tuned at one scale fails the other."""
    for n_users, n_items, f in ((150, 300, 16), (400, 600, 48)):
        g = generate_listening(n_users=n_users, n_items=n_items, random_state=5)
        als = ALS(factors=f, iterations=8, reg_scaling="activity", regularization=0.3,
                  random_state=0).fit(g.interactions)  # fmt: skip
        m = PostHocPersonas.from_model(als)
        one = g.n_tastes == 1
        assert (m.user_n_personas_[one] == 1).mean() >= 0.95, (n_users, m.threshold_)
        multi = g.n_tastes >= 2
        assert (m.user_n_personas_[multi] >= 2).mean() >= 0.6, (n_users, m.threshold_)


def test_taste_fit_matches_numpy_reference(fitted):
    users = np.arange(8)
    rows = fitted.interactions_.matrix[users]
    st = fitted._persona_state(users, rows)
    got = fitted._taste_fit(st)
    Y = fitted.item_factors_ / np.linalg.norm(fitted.item_factors_, axis=1, keepdims=True)
    refs = []
    for j, u in enumerate(users):  # oracle: one user at a time
        n = fitted.user_n_personas_[u]
        cos = fitted.persona_keys_[u, :n] @ Y.T
        refs.append(np.linalg.norm(fitted.user_factors_[u]) * cos)
        np.testing.assert_allclose(got[j], refs[-1].max(axis=0), rtol=1e-4, atol=1e-5)
    # the default list is the taste_fit-free list plus beta times the term
    b = PostHocPersonas.from_model(fitted, taste_fit=0.3, item_norm=0.0)
    a = PostHocPersonas.from_model(fitted, taste_fit=0.0, item_norm=0.0)
    np.testing.assert_allclose(b.score_index(users) - a.score_index(users), 0.3 * got,
                               rtol=1e-3, atol=1e-4)  # fmt: skip
    # a persona's list adds beta |x_u| cos(c_up, y_i) inside its taste
    pb = b.score_index(users, persona=0)
    pa = a.score_index(users, persona=0)
    inside = np.isfinite(pa)
    assert (np.isfinite(pb) == inside).all() and inside.any()
    want = 0.3 * np.stack([r[0] for r in refs])
    np.testing.assert_allclose((pb - np.where(inside, pa, 0))[inside], want[inside],
                               rtol=1e-3, atol=1e-4)  # fmt: skip
    with pytest.raises(DeepcutsError, match="taste_fit"):
        PostHocPersonas(taste_fit=-1.0)._check_params()


def test_defaults_are_the_benchmarks_choice():
    """Issue 12: benchmarks/persona_eval.py picks the default persona model's settings."""
    path = Path(__file__).resolve().parents[1] / "docs" / "persona_eval.json"
    chosen = json.loads(path.read_text())["selection"]["chosen"]
    dflt = PostHocPersonas()
    assert {k: getattr(dflt, k) for k in chosen} == chosen


def test_tab_rules_share_artists_and_distinct_labels(fitted):
    users = fitted.interactions_.user_map.ids[:60]
    multi = distinct = 0
    for u in users:
        df = fitted.personas(u)
        assert df.share.sum() == pytest.approx(1.0)
        if len(df) > 1:
            assert (df.share >= 0.05).all() and (df.n_items >= 3).all()
            multi += 1
            distinct += df.label.nunique() == len(df)
    assert multi >= 20 and distinct == multi


def test_distinct_labels_fall_back_on_artists():
    labels, tags = distinct_labels([{"rock": 1.0}, {"rock": 1.0}], [["A", "B"], ["C"]], {})
    assert labels == ["A", "C"] and tags == [[], []]


def test_mixture_and_max_match_numpy_reference():
    rng = np.random.default_rng(0)
    P, b, n = 3, 4, 7
    S = rng.standard_normal((P, b, n)).astype(np.float32)
    A = rng.uniform(-1, 1, (P, b, n)).astype(np.float32)
    share = rng.dirichlet(np.ones(P), b)
    lp = np.log(share).astype(np.float32)
    lp[0, 2] = -np.inf  # user 0 has two personas
    mix, mx = np.empty((b, n), np.float32), np.empty((b, n), np.float32)
    CK.mixture_combine(S, A, lp, np.float32(1 / 0.2), mix, mx)
    rmix, rmx = CK.reference_mixture(S, A, lp, 0.2)
    np.testing.assert_allclose(mix, rmix, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(mx, rmx, rtol=1e-6)
    # the mixture lies between the personas' scores; the max is at least it
    assert (mx >= mix - 1e-5).all()


@pytest.mark.parametrize("linkage", ["average", "ward"])
def test_cluster_kernel_matches_reference(linkage):
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((3, 6))
    Y = np.vstack([c + 0.3 * rng.standard_normal((8, 6)) for c in centres]).astype(np.float32)
    Yn = Y / np.linalg.norm(Y, axis=1, keepdims=True)
    items = rng.permutation(24)[:18]
    w = rng.uniform(1, 5, 18)
    th = 0.5 if linkage == "average" else 1.5
    lab = np.zeros(18, np.int32)
    n = np.zeros(1, np.int32)
    CK.cluster_users(np.array([0, 18]), items.astype(np.int64), w, Yn, th, CK.LINKAGES[linkage],
                     100, 0.05, 3, 10, lab, n)  # fmt: skip
    ref, k = CK.reference_cluster_user(items, w, Yn, th, linkage, 0.05, 3)
    assert n[0] == k
    np.testing.assert_array_equal(lab, ref)


def test_persona_list_stays_in_its_taste(fitted, gen):
    M = fitted.interactions_.matrix
    users = np.flatnonzero(fitted.user_n_personas_ == 2)[:20]
    inside = []
    for u in users:
        major = _majority_genres(fitted, gen, u)
        for p in range(2):
            rec = fitted.recommend(fitted.interactions_.user_map.ids[u], n=10, persona=p)
            g = gen.item_genre[rec.item_index]
            inside.append((g == major[p]).mean())
            assert (rec.to_frame()["persona"] == p).all()
    assert len(inside) >= 20 and np.mean(inside) >= 0.9
    assert M.shape[0] == fitted.user_n_personas_.shape[0]


def test_combined_list_and_blend_zero_is_the_base_model(gen):
    x = gen.interactions
    als = ALS(factors=16, iterations=4, random_state=0).fit(x)
    m = PostHocPersonas.from_model(als, blend=0.0, taste_fit=0.0, item_norm=0.0)
    np.testing.assert_allclose(m.score_index(np.arange(5)), als.score_index(np.arange(5)),
                               rtol=1e-5, atol=1e-5)  # fmt: skip
    m2 = PostHocPersonas.from_model(als, blend=0.5)
    s_mix = m2.score_index(np.arange(5), scoring="mixture")
    s_max = m2.score_index(np.arange(5), scoring="max")
    assert s_mix.shape == s_max.shape == (5, x.n_items) and (s_max >= s_mix - 1e-4).all()


def test_save_load_round_trip_without_pickle(fitted, tmp_path):
    path = fitted.save(tmp_path / "ph")
    manifest = json.loads(open(path).read())
    assert manifest["class"] == "PostHocPersonas"
    with np.load(tmp_path / "ph.npz", allow_pickle=False) as z:
        assert "state__persona_factors_" in z.files
    m = load_model(tmp_path / "ph")
    u = fitted.interactions_.user_map.ids[:3]
    np.testing.assert_array_equal(m.recommend(u, n=5).item_index,
                                  fitted.recommend(u, n=5).item_index)  # fmt: skip
    assert m.personas(u[0]).label.tolist() == fitted.personas(u[0]).label.tolist()


def test_new_history_is_clustered_and_folded_in(fitted):
    x = fitted.interactions_
    row = x.matrix[[0]]
    U, n = fitted.fold_in(row)
    assert n[0] == fitted.user_n_personas_[0]
    np.testing.assert_allclose(U[0, : n[0]], fitted.persona_factors_[0, : n[0]], atol=1e-4)
    rec = fitted.recommend_history({x.item_map.ids[i]: 3 for i in row.indices}, n=5)
    assert len(rec) == 5


# ---------------------------------------------------------------------- calibration (issue 12)
def test_calibration_kernel_matches_numpy_reference():
    from deepcuts.models import _persona_kernels as K

    rng = np.random.default_rng(0)
    b, C, P, n = 9, 40, 4, 12
    rel = -np.sort(-rng.standard_normal((b, C)).astype(np.float32), axis=1)
    rel[1, 30:] = -np.inf
    rel[2, 5:] = -np.inf  # fewer candidates than slots: padded with -1
    member = rng.integers(0, P, (b, C)).astype(np.int32)
    shares = rng.dirichlet(np.ones(P), b).astype(np.float32)
    shares[0, 2:] = 0.0
    for lam in (0.0, 0.3, 0.9):
        out = np.empty((b, n), np.int32)
        K.calibrate_lists(rel, member, shares, np.float32(lam), np.float32(0.01), n, out)
        ref = K.reference_calibrate(rel, member, shares, lam, 0.01, n)
        np.testing.assert_array_equal(out, ref)
        serial = np.empty((b, n), np.int32)
        K.calibrate_lists_serial(rel, member, shares, np.float32(lam), np.float32(0.01), n, serial)
        np.testing.assert_array_equal(serial, ref)
        assert (out[2, 5:] == -1).all()
    # lam 0: the relevance order itself
    out0 = np.empty((b, n), np.int32)
    K.calibrate_lists(rel, member, shares, np.float32(0.0), np.float32(0.01), n, out0)
    np.testing.assert_array_equal(out0[0], np.arange(n))


def test_calibration_moves_the_list_mix_toward_the_shares(fitted):
    x = fitted.interactions_
    users = np.flatnonzero(fitted.user_n_personas_ >= 2)[:40]
    one = np.flatnonzero(fitted.user_n_personas_ == 1)[:20]
    cal = PostHocPersonas.from_model(fitted, calibration=0.9, calibration_bands=1)
    plain = PostHocPersonas.from_model(fitted, calibration=0.0)
    n = 10

    def gap(model):
        idx, _, per = model.rank_index(users, x.matrix[users], n)
        P = fitted.persona_shares_.shape[1]
        mix = np.stack([(per == p).mean(axis=1) for p in range(P)], axis=1)
        return np.abs(mix - fitted.persona_shares_[users]).sum(axis=1).mean()

    assert gap(cal) < gap(plain) - 0.05
    # a one-persona listener's list is unchanged, and a calibrated list reports model scores
    a = plain.rank_index(one, x.matrix[one], n)
    c = cal.rank_index(one, x.matrix[one], n)
    np.testing.assert_array_equal(a[0], c[0])
    idx, val, _ = cal.rank_index(users, x.matrix[users], n)
    S = cal.score_index(users)
    np.testing.assert_allclose(val, np.take_along_axis(S, idx, axis=1), rtol=1e-5)
    # a persona's own list is not calibrated
    np.testing.assert_array_equal(
        cal.rank_index(users, x.matrix[users], n, persona=0)[0],
        plain.rank_index(users, x.matrix[users], n, persona=0)[0],
    )
    with pytest.raises(DeepcutsError, match="calibration"):
        PostHocPersonas(calibration=1.5)._check_params()


def test_calibration_on_a_candidate_block_equals_the_dense_block(fitted):
    from deepcuts.models.base import RankContext
    from deepcuts.models.persona._posthoc import PersonaCalibration

    x = fitted.interactions_
    users = np.flatnonzero(fitted.user_n_personas_ >= 2)[:16].astype(np.int32)
    rows = x.matrix[users]
    S = np.asarray(fitted.score_index(users), np.float32)
    n = 10
    step = PersonaCalibration(0.7)  # the model's bands: 3
    dense = step.rerank(S, RankContext(fitted, users, rows, n))
    # a candidate block: every row's 150 best items, ascending ids
    cand = np.sort(np.argsort(-S, axis=1)[:, :150], axis=1).astype(np.int32)
    block = step.rerank(
        np.take_along_axis(S, cand, axis=1), RankContext(fitted, users, rows, n, cand)
    )
    top_dense = np.argsort(-dense, axis=1, kind="stable")[:, :n]
    top_block = np.take_along_axis(cand, np.argsort(-block, axis=1, kind="stable")[:, :n], axis=1)
    np.testing.assert_array_equal(top_dense, top_block)


def test_item_bands_cut_the_plays_into_equal_shares():
    from deepcuts.models.persona._posthoc import item_bands

    pop = np.random.default_rng(0).pareto(1.2, 500) + 1
    band = item_bands(pop, 3)
    assert band.min() == 0 and band.max() == 2
    # head items are more popular than mid items, mid than tail
    assert pop[band == 0].min() >= pop[band == 1].max() >= pop[band == 2].max()
    share = np.array([pop[band == g].sum() for g in range(3)]) / pop.sum()
    assert np.all(np.abs(share - 1 / 3) < pop.max() / pop.sum() + 1e-9)
    np.testing.assert_array_equal(item_bands(pop, 1), 0)


def test_calibration_target_matches_a_loop_and_a_folded_in_history(fitted):
    m = PostHocPersonas.from_model(fitted, calibration=0.3, calibration_bands=3)
    x = m.interactions_.matrix
    users = np.arange(12)
    st = m._persona_state(users, x[users])
    T = m._calibration_target(st, users, x[users])
    band = m._item_bands()
    P = st.shares.shape[1]
    for r, u in enumerate(users):
        lo, hi = x.indptr[u], x.indptr[u + 1]
        ref = np.zeros((P, 3))
        np.add.at(ref, (m.train_personas_[lo:hi], band[x.indices[lo:hi]]), 1.0)
        ref /= np.maximum(ref.sum(axis=1, keepdims=True), 1e-12)
        ref *= np.asarray(st.shares[r])[:, None]
        np.testing.assert_allclose(T[r], ref.ravel(), rtol=1e-5, atol=1e-7)
        assert T[r].sum() == pytest.approx(1.0, abs=1e-5)
    # the same histories folded in as new listeners (user index -1) get the same targets
    new = -np.ones(len(users), np.int64)
    st_new = m._persona_state(new, x[users])
    np.testing.assert_allclose(m._calibration_target(st_new, new, x[users]), T, atol=1e-6)


def test_band_calibration_moves_the_list_depth_toward_the_history(fitted):
    x = fitted.interactions_.matrix
    users = np.arange(80)
    cal = PostHocPersonas.from_model(fitted, calibration=0.5, calibration_bands=3)
    plain = PostHocPersonas.from_model(fitted, calibration=0.0)
    band = cal._item_bands()
    hist = np.array([np.bincount(band[x[u].indices], minlength=3) / x[u].nnz for u in users])

    def gap(model):
        idx = model.rank_index(users, x[users], 10)[0]
        mix = np.stack([(band[idx] == g).mean(axis=1) for g in range(3)], axis=1)
        return np.abs(mix - hist).sum(axis=1).mean()

    assert gap(cal) < gap(plain) - 0.05


# ---------------------------------------------------------------------- item-side z-score
def test_item_score_moments_match_the_dense_scores(fitted):
    """mu_i and sd_i are the mean and std of x_u . y_i over the training users (exact)."""
    from deepcuts.models.persona._posthoc import item_score_moments

    dense = fitted.user_factors_.astype(np.float64) @ fitted.item_factors_.T.astype(np.float64)
    np.testing.assert_allclose(fitted.item_mean_, dense.mean(axis=0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fitted.item_std_, dense.std(axis=0), rtol=1e-4, atol=1e-5)
    with pytest.raises(DeepcutsError, match="one width"):
        item_score_moments(np.ones((3, 2)), np.ones((4, 3)))


def test_top_spread_matches_a_loop():
    from deepcuts.models.persona._posthoc import top_spread

    rng = np.random.default_rng(0)
    S = rng.normal(size=(6, 50)).astype(np.float32)
    S[1, :45] = -np.inf  # fewer finite values than k
    S[2] = -np.inf  # none
    got = top_spread(S, 10)
    for r in range(len(S)):  # oracle: one row at a time
        v = np.sort(S[r][np.isfinite(S[r])])[::-1][:10]
        np.testing.assert_allclose(got[r], v.std() if len(v) else 0.0, atol=1e-6)


def test_item_norm_matches_numpy_reference(fitted):
    """The default list adds gamma * std(row's top 200) * z_ui to the item_norm-free score."""
    users = np.arange(8)
    a = PostHocPersonas.from_model(fitted, item_norm=0.0)
    b = PostHocPersonas.from_model(fitted, item_norm=0.3)
    sa, sb = a.score_index(users), b.score_index(users)
    X, Y = fitted.user_factors_.astype(np.float64), fitted.item_factors_.astype(np.float64)
    dense = X @ Y.T
    mu, sd = dense.mean(axis=0), dense.std(axis=0)
    for j, u in enumerate(users):  # oracle: one user at a time
        z = (dense[u] - mu) / sd
        spread = np.sort(sa[j])[::-1][:200].std()
        np.testing.assert_allclose(sb[j] - sa[j], 0.3 * spread * z, rtol=1e-3, atol=1e-4)
    # a persona's own list is left alone
    np.testing.assert_array_equal(a.score_index(users, persona=0),
                                  b.score_index(users, persona=0))  # fmt: skip
    with pytest.raises(DeepcutsError, match="item_norm"):
        PostHocPersonas(item_norm=-0.1)._check_params()


def test_item_norm_spreads_the_lists_over_the_catalogue(fitted):
    users = np.arange(fitted.interactions_.n_users)
    rows = fitted.interactions_.matrix
    seen = {}
    for g in (0.0, 0.3):
        m = PostHocPersonas.from_model(fitted, item_norm=g)
        idx, _, _ = m.rank_index(users, rows, 10)
        seen[g] = len(np.unique(idx[idx >= 0]))
    assert seen[0.3] > seen[0.0]


def test_item_norm_moments_saved_and_rebuilt_for_old_files(fitted, tmp_path):
    path = fitted.save(tmp_path / "ph")
    with np.load(tmp_path / "ph.npz", allow_pickle=False) as z:
        assert {"extra__item_mean_", "extra__item_std_"} <= set(z.files)
        arrays = {k: z[k] for k in z.files if not k.startswith("extra__item_")}
    m = load_model(tmp_path / "ph")
    np.testing.assert_array_equal(m.item_mean_, fitted.item_mean_)
    np.testing.assert_array_equal(m.item_std_, fitted.item_std_)
    # a file written before item_norm: the moments follow from the saved factors
    manifest = json.loads(Path(path).read_text())
    manifest["params"].pop("item_norm")
    write_model_files(tmp_path / "old", manifest, arrays)
    old = load_model(tmp_path / "old")
    np.testing.assert_allclose(old.item_std_, fitted.item_std_, rtol=1e-6)
    u = fitted.interactions_.user_map.ids[:3]
    np.testing.assert_array_equal(old.recommend(u, n=5).item_index,
                                  fitted.recommend(u, n=5).item_index)  # fmt: skip
