"""The ALS model (issue 3): training, fold-in, partial_fit, explain, persistence."""

import numpy as np
import pandas as pd
import pytest

from deepcuts.data import Interactions, load_lastfm2k
from deepcuts.exceptions import DeepcutsError
from deepcuts.models import ALS, load_model
from deepcuts.models.als import IMPLICIT_EQUIVALENT, _ndcg_at_k
from deepcuts.testing import RecommenderContract, planted_blocks


class TestALSContract(RecommenderContract):
    def make_model(self):
        return ALS(factors=8, iterations=8, random_state=0)


class TestALSCholeskyContract(RecommenderContract):
    def make_model(self):
        return ALS(factors=8, iterations=5, solver="cholesky", random_state=0)


@pytest.fixture(scope="module")
def blocks():
    return planted_blocks(150, 60, 3, random_state=2)


@pytest.fixture(scope="module")
def model(blocks):
    return ALS(factors=8, iterations=10, regularization=0.1, random_state=0).fit(blocks)


def test_loss_decreases(model):
    h = model.loss_history_
    assert len(h) == 10 == model.n_iterations_
    assert h[-1] < h[0]
    assert np.all(np.diff(h) <= 1e-6 * h[0])


def test_cholesky_loss_monotone(blocks):
    h = ALS(factors=8, iterations=6, solver="cholesky", random_state=0).fit(blocks).loss_history_
    assert np.all(np.diff(h) <= 1e-9)


def test_planted_structure_recovered(model, blocks):
    # every user's vector scores its own block's items above the others
    bu, bi = blocks.meta["blocks_user"], blocks.meta["blocks_item"]
    ub = np.array([bu[u] for u in blocks.user_map.ids])
    ib = np.array([bi[i] for i in blocks.item_map.ids])
    scores = model.user_factors_ @ model.item_factors_.T
    own = np.array([scores[u, ib == ub[u]].mean() for u in range(len(ub))])
    other = np.array([scores[u, ib != ub[u]].mean() for u in range(len(ub))])
    assert np.all(own > other + 0.3)


def test_cg_close_to_cholesky(blocks):
    a = ALS(factors=8, iterations=10, random_state=0, cg_steps=4).fit(blocks)
    b = ALS(factors=8, iterations=10, random_state=0, solver="cholesky").fit(blocks)
    sa = a.user_factors_ @ a.item_factors_.T
    sb = b.user_factors_ @ b.item_factors_.T
    assert np.abs(sa - sb).mean() < 0.01 and np.abs(sa - sb).max() < 0.15
    assert abs(a.loss_history_[-1] - b.loss_history_[-1]) < 0.02 * b.loss_history_[-1]


def test_fold_in_reproduces_trained_user(blocks):
    m = ALS(factors=8, iterations=10, solver="cholesky", random_state=0).fit(blocks)
    # after the last item step the user vectors are one step stale; one more exact user step
    # (what fold-in computes) must match the trained vectors closely
    folded = m.fold_in(blocks.matrix[:20])
    s_fold = folded @ m.item_factors_.T
    s_train = m.user_factors_[:20] @ m.item_factors_.T
    assert np.abs(s_fold - s_train).max() < 0.05
    top_f = np.argsort(-s_fold, axis=1)[:, :3]
    top_t = np.argsort(-s_train, axis=1)[:, :3]
    assert (top_f == top_t).mean() > 0.9


def test_recommend_history_uses_fold_in(model, blocks):
    hist = blocks.user_items("u1")
    rec = model.recommend_history(dict(zip(hist["item"], hist["count"])), n=5).to_frame()
    known = model.recommend("u1", n=5).to_frame()
    assert len(set(rec["item"]) & set(known["item"])) >= 4


def test_fold_in_bad_shape(model):
    import scipy.sparse as sp

    with pytest.raises(DeepcutsError, match="columns"):
        model.fold_in(sp.csr_matrix((1, 3)))


def test_seeded_reproducible(blocks):
    a = ALS(factors=8, iterations=4, random_state=7).fit(blocks)
    b = ALS(factors=8, iterations=4, random_state=7).fit(blocks)
    c = ALS(factors=8, iterations=4, random_state=8).fit(blocks)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    assert not np.array_equal(a.item_factors_, c.item_factors_)


def test_save_load_roundtrip(model, tmp_path):
    model.save(tmp_path / "als")
    m2 = load_model(tmp_path / "als")
    assert isinstance(m2, ALS) and m2.get_params() == model.get_params()
    np.testing.assert_array_equal(m2.user_factors_, model.user_factors_)
    np.testing.assert_array_equal(m2.item_factors_, model.item_factors_)
    np.testing.assert_array_equal(m2.loss_history_, model.loss_history_)
    assert m2.n_iterations_ == model.n_iterations_
    np.testing.assert_allclose(
        m2.fold_in(model.interactions_.matrix[:3]), model.fold_in(model.interactions_.matrix[:3])
    )


def test_similar_items_and_users(model, blocks):
    bi, bu = blocks.meta["blocks_item"], blocks.meta["blocks_user"]
    sim = model.similar_items("i0", n=5).to_frame()
    assert len(sim) == 5 and "i0" not in set(sim["item"])
    assert all(bi[i] == bi["i0"] for i in sim["item"])
    su = model.similar_users(["u0", "u4"], n=4)
    assert list(su.columns) == ["query", "user", "score", "rank"]
    assert len(su) == 8 and not (su["query"] == su["user"]).any()
    assert all(bu[u] == bu[q] for q, u in zip(su["query"], su["user"]))


def test_explain_sums_to_exact_score(blocks):
    m = ALS(factors=8, iterations=8, solver="cholesky", random_state=0).fit(blocks)
    df = m.explain("u0", "i3", n=100)
    assert list(df.columns) == ["item", "name", "count", "contribution"]
    assert len(df) == blocks.matrix[0].nnz
    assert np.all(np.diff(df["contribution"].to_numpy()) <= 0)
    exact = float(
        m.fold_in(blocks.matrix[:1])[0] @ m.item_factors_[blocks.item_map.index(["i3"])[0]]
    )
    assert df.attrs["score"] == pytest.approx(exact, rel=1e-3, abs=1e-4)
    assert len(m.explain("u0", "i3", n=3)) == 3


def test_explain_real_names():
    x = load_lastfm2k()
    m = ALS(factors=16, iterations=3, random_state=0).fit(x)
    u = x.user_map.ids[0]
    top = m.recommend(u, n=1).items[0]
    df = m.explain(u, top, n=5)
    assert len(df) == 5 and set(df["name"]) <= set(x.user_items(u)["name"])
    assert df["contribution"].iloc[0] > 0


def test_partial_fit_new_user_and_item(blocks):
    m = ALS(factors=8, iterations=10, regularization=0.1, random_state=0).fit(blocks)
    old_item_vecs = m.item_factors_.copy()
    # a new user of block 0 who also plays a brand-new item, which other block-0 users play too
    rows = [("newbie", f"i{k}", 10) for k in (0, 3, 6, 9, 12)] + [("newbie", "new-item", 20)]
    rows += [(f"u{u}", "new-item", 5) for u in (0, 3, 6, 9, 12, 15)]
    new = Interactions.from_frame(pd.DataFrame(rows, columns=["user", "item", "count"]))
    m.partial_fit(new)
    assert m.user_factors_.shape == (151, 8) and m.item_factors_.shape == (61, 8)
    np.testing.assert_array_equal(m.item_factors_[:60], old_item_vecs)
    assert m.interactions_.n_users == 151 and m.interactions_.matrix[150].nnz == 6
    rec = m.recommend("newbie", n=5).to_frame()
    bi = blocks.meta["blocks_item"]
    assert sum(bi.get(i, 0) == 0 for i in rec["item"]) >= 4
    sim = m.similar_items("new-item", n=5).to_frame()
    assert sum(bi[i] == 0 for i in sim["item"]) >= 4
    assert "new-item" in set(m.recommend("u18", n=60).items)


def test_validation_and_early_stopping(blocks):
    import scipy.sparse as sp

    mat = blocks.matrix.tocoo()
    held = np.random.default_rng(0).random(mat.nnz) < 0.2
    train = sp.csr_matrix((mat.data * ~held, (mat.row, mat.col)), shape=mat.shape)
    train.eliminate_zeros()
    test = sp.csr_matrix((mat.data * held, (mat.row, mat.col)), shape=mat.shape)
    test.eliminate_zeros()
    xt = blocks.with_matrix(train)
    m = ALS(
        factors=8,
        iterations=30,
        random_state=0,
        validation=blocks.with_matrix(test),
        early_stopping_rounds=2,
    ).fit(xt)
    assert 1 <= m.n_iterations_ <= 30
    assert len(m.validation_history_) == m.n_iterations_ == len(m.loss_history_)
    assert m.validation_history_[-1] == m.validation_history_.max()
    assert _ndcg_at_k(m.user_factors_, m.item_factors_, train, test, 10) == pytest.approx(
        m.validation_history_[-1]
    )
    assert m.validation_history_.max() > 0.5
    with pytest.raises(DeepcutsError, match="validation"):
        ALS(early_stopping_rounds=2).fit(xt)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"factors": 0}, "factors"),
        ({"solver": "svd"}, "solver"),
        ({"alpha": -1.0}, "alpha"),
        ({"weighting": "confidence"}, "already is a confidence"),
        ({"weighting": "nope"}, "unknown weighting"),
    ],
)
def test_bad_params(blocks, params, match):
    with pytest.raises(DeepcutsError, match=match):
        ALS(**params).fit(blocks)


def test_ndcg_helper_hand_computed():
    import scipy.sparse as sp

    X = np.array([[1.0, 0.0]], np.float32)
    Y = np.array([[3.0, 0], [2.0, 0], [1.0, 0], [0.5, 0]], np.float32)
    train = sp.csr_matrix(np.array([[1.0, 0, 0, 0]]))
    valid = sp.csr_matrix(np.array([[0, 0, 1.0, 0]]))
    # ranking after removing the played item 0: items 1, 2, 3 -> the held-out item at rank 2
    assert _ndcg_at_k(X, Y, train, valid, 10) == pytest.approx(1 / np.log2(3))


def test_load_checks_format_version(model, tmp_path):
    import json

    json_path = model.save(tmp_path / "als")
    manifest = json.loads(open(json_path).read())
    manifest["format_version"] = manifest["format_version"] + 1
    open(json_path, "w").write(json.dumps(manifest))
    with pytest.raises(DeepcutsError, match="format version .* retrain and save"):
        load_model(tmp_path / "als")


def test_progress_bar_is_opt_in(blocks, capsys):
    ALS(factors=4, iterations=2, random_state=0).fit(blocks)
    assert capsys.readouterr().err == ""
    ALS(factors=4, iterations=2, random_state=0, show_progress=True).fit(blocks)
    err = capsys.readouterr().err
    assert "ALS" in err and "/2" in err and "loss=" in err


def test_training_leaves_input_counts_alone(blocks):
    before = blocks.matrix.data.copy()
    ALS(factors=4, iterations=2, random_state=0, weighting=lambda m: m).fit(blocks)
    ALS(factors=4, iterations=2, random_state=0, weighting="raw").fit(blocks)
    np.testing.assert_array_equal(blocks.matrix.data, before)


def test_signed_confidence_convention():
    import scipy.sparse as sp

    w = sp.csr_matrix(np.array([[2.0, 0.0, -1.0], [0.0, 0.5, 0.0]], np.float32))
    c = ALS(alpha=3.0)._signed_confidence(w)
    # c = 1 + alpha |w|, negative for an observed dislike (p = 0)
    np.testing.assert_allclose(c.toarray(), [[7.0, 0.0, -4.0], [0.0, 2.5, 0.0]])
    assert c.dtype == np.float32 and c.indices.dtype == np.int32


def test_mild_negative_dislikes_push_scores_down(blocks):
    # with "mild_negative", one or two plays are an observed dislike (p = 0, confidence > 1):
    # those pairs must score well below the pairs played many times, unlike with "log"
    coo = blocks.matrix.tocoo()

    def scores(weighting):
        m = ALS(factors=8, iterations=8, random_state=0, weighting=weighting, **IMPLICIT_EQUIVALENT)
        m.fit(blocks)
        s = np.einsum("ij,ij->i", m.user_factors_[coo.row], m.item_factors_[coo.col])
        return s[coo.data <= 2].mean(), s[coo.data >= 10].mean()

    dislike, like = scores("mild_negative")
    assert dislike < 0.6 * like
    dislike_log, like_log = scores("log")
    assert dislike_log > 0.9 * like_log


class TestALSActivityRegContract(RecommenderContract):
    def make_model(self):
        return ALS(
            factors=8, iterations=6, reg_scaling="activity", regularization=0.1, random_state=0
        )


def test_activity_scaled_regularization_solves_als_wr(blocks):
    """``reg_scaling="activity"``: each vector's normal equations carry ``reg * n_pos``
    (ALS-WR); with the exact solver the last item step is the NumPy reference solve, the
    loss decreases, and fold-in (model and service) and explain use the same penalty."""
    from deepcuts.models import _als_kernels as K
    from deepcuts.serving._foldin import ALSFoldIn

    reg = 0.2
    m = ALS(
        factors=8, iterations=6, regularization=reg, reg_scaling="activity",
        solver="cholesky", random_state=0,
    ).fit(blocks)  # fmt: skip
    assert np.all(np.diff(m.loss_history_) <= 1e-6 * m.loss_history_[0])
    C = m._signed_confidence(m._weights(blocks.matrix)).T.tocsr()
    npos = np.diff(C.indptr)  # planted counts: every entry positive
    X = m.user_factors_
    ref = K.reference_half_step(C.indptr, C.indices, C.data, X, X.T @ X, reg * npos)
    np.testing.assert_allclose(m.item_factors_, ref, atol=1e-4)
    plain = ALS(factors=8, iterations=6, regularization=reg, reg_scaling="none",
                solver="cholesky", random_state=0)  # fmt: skip
    assert not np.allclose(plain.fit(blocks).item_factors_, m.item_factors_, atol=1e-3)
    # fold-in of a trained user's row reproduces its vector (users were solved last-but-one,
    # so compare against a fresh exact user solve from the final items)
    rows = blocks.matrix[:5]
    Cu = m._signed_confidence(m._weights(rows))
    Y = m.item_factors_
    want = K.reference_half_step(
        Cu.indptr, Cu.indices, Cu.data, Y, Y.T @ Y, reg * np.diff(Cu.indptr)
    )
    np.testing.assert_allclose(m.fold_in(rows), want, atol=1e-4)
    np.testing.assert_allclose(ALSFoldIn(m).solve(rows[0])[0], want[0], atol=1e-4)
    ex = m.explain(blocks.user_map.ids[0], blocks.item_map.ids[7], n=100)
    np.testing.assert_allclose(ex.attrs["score"], float(want[0] @ Y[7]), rtol=1e-3, atol=1e-5)


def test_reg_scaling_is_saved_and_checked(tmp_path, blocks):
    m = ALS(factors=4, iterations=2, reg_scaling="activity", random_state=0).fit(blocks)
    m.save(tmp_path / "m")
    back = load_model(tmp_path / "m")
    assert back.reg_scaling == "activity"
    np.testing.assert_array_equal(back.fold_in(blocks.matrix[:3]), m.fold_in(blocks.matrix[:3]))
    with pytest.raises(DeepcutsError, match="reg_scaling"):
        ALS(reg_scaling="users").fit(blocks)


@pytest.mark.parametrize(
    "params",
    [
        {},  # log confidence, ALS-WR
        {"weighting": "raw", "alpha": 2.0},
        {"weighting": "log:eta=0.5", "alpha": 4.0, **IMPLICIT_EQUIVALENT},
        {"weighting": "raw", "unobserved_weight": 0.3, "reg_scaling": "frequency"},
        {"solver": "cholesky", "unobserved_weight": 0.5},
    ],
    ids=["log", "raw", "log-eta", "raw-ials", "cholesky"],
)
def test_confidences_on_the_fly_train_the_same_model(blocks, params, monkeypatch):
    """ "raw" and "log" confidences are computed by the kernels from the counts, without a
    float copy of the matrix; the model equals the one trained on precomputed confidences
    (the path every other weighting takes), to float tolerance."""
    from deepcuts.models import als

    counts = blocks.matrix.copy()
    counts.data += (np.arange(counts.nnz) % 7).astype(np.float32)  # varied play counts
    x = blocks.with_matrix(counts)
    m = ALS(factors=8, iterations=4, random_state=0, **params)
    conf = m._confidences(x.matrix)
    assert conf.mode != 0 and np.shares_memory(conf.data, x.matrix.data)
    m.fit(x)
    monkeypatch.setattr(als, "_ON_THE_FLY", {})
    ref = ALS(factors=8, iterations=4, random_state=0, **params)
    assert ref._confidences(x.matrix).mode == 0
    ref.fit(x)
    np.testing.assert_allclose(m.user_factors_, ref.user_factors_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m.item_factors_, ref.item_factors_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m.loss_history_, ref.loss_history_, rtol=1e-6)


def test_weighting_parameters_still_checked_on_the_fly_path(blocks):
    with pytest.raises(DeepcutsError, match="eta"):
        ALS(weighting="log:eta=0", iterations=1).fit(blocks)
    with pytest.raises(DeepcutsError, match="parameter"):
        ALS(weighting="raw:eta=2", iterations=1).fit(blocks)
