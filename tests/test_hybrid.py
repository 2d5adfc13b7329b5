"""Hybrid cold start: content features -> ALS latent space (issue 7)."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from deepcuts.data.features import FeatureTable
from deepcuts.exceptions import DeepcutsError, NotFittedError
from deepcuts.models import ALS
from deepcuts.models.hybrid import FeatureToFactors, _knn_map, _ridge, best_persona
from deepcuts.testing.synthetic import planted_blocks


def block_table(n_items=60, n_blocks=3, noise=0.3, seed=0):
    rng = np.random.default_rng(seed)
    block = np.arange(n_items) % n_blocks
    x = np.eye(n_blocks)[block] * 3 + noise * rng.standard_normal((n_items, n_blocks))
    x = np.hstack([x, rng.standard_normal((n_items, 2))])  # two uninformative columns
    df = pd.DataFrame(x, columns=[f"f{k}" for k in range(x.shape[1])])
    df.insert(0, "item", [f"i{k}" for k in range(n_items)])
    return FeatureTable.from_frame(df, id_col="item")


@pytest.fixture(scope="module")
def cold_setup():
    x = planted_blocks(120, 60, 3, random_state=0)
    hidden_ids = [f"i{k}" for k in range(45, 60)]  # 15 items, 5 per block
    hidden = x.item_map.index(hidden_ids)
    keep = np.ones(x.n_items, np.float32)
    keep[hidden] = 0
    train = x.with_matrix(sp.csr_matrix(x.matrix @ sp.diags(keep)))
    train.matrix.eliminate_zeros()
    als = ALS(factors=8, iterations=10, regularization=0.1, random_state=0).fit(train)
    table = block_table()
    return x, train, als, table, hidden_ids


def test_map_learns_and_ranks_hidden_items(cold_setup):
    x, train, als, table, hidden_ids = cold_setup
    m = FeatureToFactors(match="id").fit(als, table)
    assert m.n_train_ == 45 and m.scoring_ == "recall"
    assert len(m.cv_results_) == 6 + 5 * 2  # every ridge alpha and knn (k, power) was scored
    assert m.cv_score_ == max(r["score"] for r in m.cv_results_)
    assert m.cv_r2_ > 0.1  # 3 blocks explain ~3 of 8 factors
    users = [f"u{k}" for k in range(30)]
    rec = m.recommend(als, users, table, n=3, candidates=hidden_ids).to_frame()
    assert set(rec["item"]) <= set(hidden_ids) and len(rec) == 90
    same = [int(u[1:]) % 3 == int(i[1:]) % 3 for u, i in zip(rec["user"], rec["item"])]
    assert np.mean(same) > 0.9
    assert rec.groupby("user")["rank"].apply(list).map(lambda r: r == [1, 2, 3]).all()


def test_fill_cold_items_makes_them_recommendable(cold_setup):
    x, train, als, table, hidden_ids = cold_setup
    m = FeatureToFactors(match="id").fit(als, table)
    hybrid = m.fill_cold_items(als, table)
    assert np.abs(als.item_factors_[train.item_map.index(hidden_ids)]).max() < 1e-3
    rec = hybrid.recommend("u0", n=5, items=hidden_ids).to_frame()
    assert all(int(i[1:]) % 3 == 0 for i in rec["item"])
    # the original model is untouched and similar_items sees the new vectors
    assert not np.shares_memory(hybrid.item_factors_, als.item_factors_)
    sim = hybrid.similar_items(hidden_ids[0], n=5).to_frame()
    assert all(int(i[1:]) % 3 == int(hidden_ids[0][1:]) % 3 for i in sim["item"])


def test_best_persona_feature_detection(cold_setup):
    x, train, als, table, hidden_ids = cold_setup
    m = FeatureToFactors(match="id").fit(als, table)
    v = m.item_vectors(table, hidden_ids[:3])
    p, s = best_persona(als, [0, 1], v)  # single-vector model: persona 0, score u . v
    assert (p == 0).all()
    np.testing.assert_allclose(s, als.user_factors_[[0, 1]] @ v.T, rtol=1e-5)

    class TwoPersonas:
        # persona 0 = the user's ALS vector, persona 1 = a block-1 user's vector, one unused
        persona_factors_ = np.stack(
            [als.user_factors_[[0, 1]], als.user_factors_[[1, 1]], np.zeros((2, 8))], axis=1
        ).astype(np.float32)

    blk = [hidden_ids[k] for k in range(15) if int(hidden_ids[k][1:]) % 3 in (0, 1)]
    p, s = best_persona(TwoPersonas(), [0], m.item_vectors(table, blk))
    expect = [0 if int(i[1:]) % 3 == 0 else 1 for i in blk]
    assert p[0].tolist() == expect


@pytest.mark.parametrize("method", ["ridge", "knn"])
def test_each_method_ranks_hidden_items(cold_setup, method):
    x, train, als, table, hidden_ids = cold_setup
    m = FeatureToFactors(match="id", method=method, scoring="r2").fit(als, table)
    assert m.method_ == method and m.scoring_ == "r2"
    assert set(m.params_) == ({"alpha"} if method == "ridge" else {"k", "power"})
    rec = m.recommend(als, [f"u{k}" for k in range(30)], table, n=2, candidates=hidden_ids)
    same = [int(u[1:]) % 3 == int(i[1:]) % 3 for u, i in zip(rec.queries, rec.items)]
    assert np.mean(same) > 0.9


def test_ridge_closed_form_matches_sklearn():
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(3)
    x, v = rng.standard_normal((50, 4)), rng.standard_normal((50, 3))
    w, b = _ridge(x, v, 7.0)
    ref = Ridge(alpha=7.0).fit(x, v)
    np.testing.assert_allclose(w, ref.coef_.T, atol=1e-10)
    np.testing.assert_allclose(b, ref.intercept_, atol=1e-10)


def test_knn_map_known_answer():
    # three warm items; a query equal to item 0's direction with k=1 gets exactly item 0's vector,
    # with k=2 and power=1 the similarity-weighted mean of the two nearest
    xw = np.array([[1.0, 0.0], [0.6, 0.8], [-1.0, 0.0]], np.float32)
    vw = np.array([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]], np.float32)
    mean = vw.mean(axis=0)
    np.testing.assert_allclose(_knn_map(np.array([[2.0, 0.0]]), xw, vw, 1, 1.0, mean), [[1, 0]])
    got = _knn_map(np.array([[1.0, 0.0]]), xw, vw, 2, 1.0, mean)
    np.testing.assert_allclose(got, [[1 / 1.6, 0.6 / 1.6]], rtol=1e-6)
    # nothing similar (all cosines <= 0): the mean vector
    np.testing.assert_allclose(
        _knn_map(np.array([[0.0, -1.0]]), xw[:1], vw[:1], 1, 1.0, mean), [mean]
    )


@pytest.mark.parametrize("method", ["ridge", "knn"])
def test_save_load_and_errors(cold_setup, tmp_path, method):
    x, train, als, table, hidden_ids = cold_setup
    with pytest.raises(NotFittedError):
        FeatureToFactors().transform(np.zeros((1, 5)))
    m = FeatureToFactors(match="id", method=method, alphas=(1.0, 10.0), neighbors=(5, 10))
    m.fit(als, table)
    m.save(tmp_path / "map")
    loaded = FeatureToFactors.load(tmp_path / "map")
    np.testing.assert_allclose(loaded.item_vectors(table), m.item_vectors(table))
    assert (loaded.method_, loaded.params_, loaded.cv_score_) == (m.method_, m.params_, m.cv_score_)
    assert repr(loaded) == repr(m)
    with pytest.raises(DeepcutsError, match="shape"):
        m.transform(np.zeros((1, 2)))
    with pytest.raises(DeepcutsError, match="unknown feature table id"):
        m.item_vectors(table, ["nope"])
    with pytest.raises(DeepcutsError, match="alphas"):
        FeatureToFactors(alphas=(0.0,)).fit(als, table)
    with pytest.raises(DeepcutsError, match="neighbors"):
        FeatureToFactors(method="knn", neighbors=(0,)).fit(als, table)
    with pytest.raises(DeepcutsError, match="method must be"):
        FeatureToFactors(method="svm").fit(als, table)
    with pytest.raises(DeepcutsError, match="scoring must be"):
        FeatureToFactors(scoring="auc").fit(als, table)
    with pytest.raises(DeepcutsError, match="item_factors_"):
        from deepcuts.models import Popularity

        FeatureToFactors(match="id").fit(Popularity().fit(x), table)
