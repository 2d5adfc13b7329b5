"""Re-rankers (issue 5): rarity knob, obscurity band, MMR, artist cap, build_rerankers."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from deepcuts.data import Interactions
from deepcuts.exceptions import DeepcutsError
from deepcuts.models import ALS, ItemKNN, Popularity
from deepcuts.rerank import (
    MMR,
    ArtistCap,
    ObscurityBand,
    RarityKnob,
    build_rerankers,
    item_frequency,
    popularity_percentiles,
)
from deepcuts.rerank import _mmr_kernels as K
from deepcuts.rerank.diversity import _normalised_dense, _normalised_sparse
from deepcuts.testing import planted_blocks


@pytest.fixture(scope="module")
def data():
    return planted_blocks(60, 40, 4, density=0.4, noise=0.05, random_state=3)


@pytest.fixture(scope="module")
def als(data):
    return ALS(factors=8, iterations=4, random_state=0).fit(data)


def _ctx(model, n=10, b=1):
    return SimpleNamespace(model=model, n=n, user_index=np.arange(b), user_items=None)


# ---------------------------------------------------------------------------- rarity knob
def test_item_frequency_and_percentiles():
    np.testing.assert_allclose(item_frequency(np.array([0, 1, 5]), 5), [0.2, 0.2, 1.0])
    pct = popularity_percentiles(np.array([3, 1, 1, 2, 10]))
    np.testing.assert_allclose(pct, [80.0, 40.0, 40.0, 60.0, 100.0])


def test_rarity_one_is_neutral(als, data):
    scores = als.score_index(np.arange(5))
    out = RarityKnob(1.0).rerank(scores, _ctx(als))
    np.testing.assert_array_equal(out, scores)
    a, _, _ = als.rank_index(np.arange(5), data.matrix[:5], 10)
    b, _, _ = als.rank_index(np.arange(5), data.matrix[:5], 10, rerankers=[RarityKnob(1)])
    np.testing.assert_array_equal(a, b)


def test_rarity_positive_scores_multiply_by_power_of_frequency(data):
    model = Popularity().fit(data)
    s = np.random.default_rng(0).uniform(0.1, 2.0, (3, data.n_items)).astype(np.float32)
    s[0, 5] = -np.inf
    f = item_frequency(data.item_popularity(), data.n_users)
    for r in (0.0, 0.5, 2.0):
        out = RarityKnob(r).rerank(s, _ctx(model))
        expect = s * f ** (r - 1.0)
        np.testing.assert_allclose(np.exp(out[np.isfinite(s)]), expect[np.isfinite(s)], rtol=1e-5)
        assert out[0, 5] == -np.inf


def test_rarity_negative_scores_keep_order_among_equally_popular_items(data):
    """A naive s * f**(r-1) reverses negative scores; the shifted form never does."""
    model = Popularity().fit(data)
    pop = data.item_popularity()
    same = np.flatnonzero(pop == np.bincount(pop).argmax())[:6]
    assert len(same) >= 3
    s = np.zeros((1, data.n_items), np.float32)
    s[0, same] = np.linspace(-3.0, 1.0, len(same))
    out = RarityKnob(0.2).rerank(s, _ctx(model))
    assert np.all(np.diff(out[0, same]) > 0)
    # and a rarer item with the same negative score than a popular one moves ahead of it
    rare, common = np.argmin(pop), np.argmax(pop)
    s2 = np.full((1, data.n_items), -1.0, np.float32)
    s2[0, :] = 0.5
    s2[0, [rare, common]] = -1.0
    out2 = RarityKnob(0.2).rerank(s2, _ctx(model))
    assert out2[0, rare] > out2[0, common]
    out3 = RarityKnob(2.0).rerank(s2, _ctx(model))
    assert out3[0, rare] < out3[0, common]


def test_rarity_lowers_popularity_of_lists(als, data):
    pop = data.item_popularity().astype(float)
    users = np.arange(data.n_users)
    means = []
    for r in (2.0, 1.0, 0.5, 0.0, -1.0):
        idx, _, _ = als.rank_index(users, data.matrix, 5, rerankers=[RarityKnob(r)])
        means.append(np.log(pop[idx[idx >= 0]]).mean())
    assert all(a >= b - 1e-9 for a, b in zip(means, means[1:]))
    assert means[0] > means[-1]


@pytest.mark.parametrize("bad", [3.5, -7, float("nan"), float("inf"), "x", None, True])
def test_rarity_out_of_range_names_argument_and_range(bad):
    with pytest.raises(DeepcutsError, match=r"rarity must be a number in \[-3, 3\]"):
        RarityKnob(bad)


# ---------------------------------------------------------------------------- band
def test_band_keeps_exactly_the_percentile_range(data):
    model = Popularity().fit(data)
    pct = popularity_percentiles(data.item_popularity())
    lo, hi = np.percentile(pct, 30), np.percentile(pct, 80)
    out = ObscurityBand(lo, hi).rerank(np.ones((2, data.n_items), np.float32), _ctx(model, b=2))
    inside = (pct >= lo) & (pct <= hi)
    assert inside.any() and (~inside).any()
    np.testing.assert_array_equal(np.isfinite(out[0]), inside)


@pytest.mark.parametrize(
    "low, high, msg",
    [(-1, 50, "band low"), (10, 101, "band high"), (60, 60, "low < high"), (90, 60, "low < high")],
)
def test_band_validation(low, high, msg):
    with pytest.raises(DeepcutsError, match=msg):
        ObscurityBand(low, high)


# ---------------------------------------------------------------------------- MMR
def _random_pool(rng, b=6, n_items=40, P=15):
    scores = rng.normal(size=(b, n_items)).astype(np.float32)
    cand = np.stack([rng.permutation(n_items)[:P] for _ in range(b)]).astype(np.int64)
    cand[0, -3:] = -1
    rel = rng.random((b, P)).astype(np.float32)
    rel[cand < 0] = 0.0
    return scores, cand, rel


@pytest.mark.parametrize("lam", [0.0, 0.3, 0.7, 1.0])
def test_mmr_dense_kernel_matches_reference(lam):
    rng = np.random.default_rng(1)
    _, cand, rel = _random_pool(rng)
    v = _normalised_dense(rng.normal(size=(40, 5)))
    got = K.mmr_dense(cand, rel, v, np.float32(lam), 8, parallel=True)
    ref = K.mmr_reference(cand, rel, v.astype(np.float64) @ v.T.astype(np.float64), lam, 8)
    np.testing.assert_array_equal(got, ref)
    serial = K.mmr_dense(cand, rel, v, np.float32(lam), 8, parallel=False)
    np.testing.assert_array_equal(serial, ref)


@pytest.mark.parametrize("lam", [0.2, 0.6])
def test_mmr_sparse_kernel_matches_reference(lam):
    rng = np.random.default_rng(2)
    _, cand, rel = _random_pool(rng)
    v = _normalised_sparse(sp.random(40, 30, density=0.3, random_state=2, format="csr"))
    args = (cand, rel, v.indptr, v.indices, v.data, np.float32(lam), 12)
    got = K.mmr_sparse(*args, parallel=True)
    ref = K.mmr_reference(cand, rel, (v @ v.T).toarray().astype(np.float64), lam, 12)
    np.testing.assert_array_equal(got, ref)
    serial = K.mmr_sparse(*args, parallel=False)
    np.testing.assert_array_equal(serial, ref)


def test_mmr_reduces_intra_list_similarity(als, data):
    users = np.arange(data.n_users)
    v = _normalised_dense(als.item_factors_)

    def mean_sim(rerankers):
        idx, _, _ = als.rank_index(users, data.matrix, 5, rerankers=rerankers)
        g = v[idx]
        s = np.einsum("bid,bjd->bij", g, g)
        return (s.sum(axis=(1, 2)) - 5) / 20

    base = mean_sim([])
    np.testing.assert_allclose(mean_sim([MMR(0.0)]), base)
    assert mean_sim([MMR(0.5)]).mean() < base.mean() - 0.05


def test_mmr_uses_item_columns_without_factors(data):
    model = ItemKNN(k=10).fit(data)
    users = np.arange(20)
    idx0, _, _ = model.rank_index(users, data.matrix[users], 5)
    idx1, _, _ = model.rank_index(users, data.matrix[users], 5, rerankers=[MMR(0.9)])
    assert (idx1 >= 0).all() and not np.array_equal(idx0, idx1)
    assert all(len(set(r)) == 5 for r in idx1.tolist())


def test_mmr_validation():
    with pytest.raises(DeepcutsError, match=r"diversity must be a number in \[0, 1\]"):
        MMR(1.5)
    with pytest.raises(DeepcutsError, match="pool"):
        MMR(0.5, pool=0)
    ctx = SimpleNamespace(model=None, n=2)
    with pytest.raises(DeepcutsError, match="item_vectors has 3 rows"):
        MMR(0.5, item_vectors=np.eye(3)).rerank(np.zeros((1, 4), np.float32), ctx)


# ---------------------------------------------------------------------------- artist cap
def _tracks(artists):
    ids = [f"t{k}" for k in range(len(artists))]
    items = pd.DataFrame({"item": ids, "artist": artists})
    df = pd.DataFrame({"user": ["u"] * len(ids), "item": ids, "count": 1})
    return Interactions.from_frame(df, items=items)


def test_artist_cap_demotes_over_cap_tracks():
    x = _tracks(["A", "a ", "A", "B", "B", "C", None])
    ctx = _ctx(SimpleNamespace(interactions_=x), n=4)
    s = np.array([[7, 6, 5, 4, 3, 2, 1]], np.float32)
    out = ArtistCap(1).rerank(s, ctx)
    order = np.argsort(-out[0], kind="stable").tolist()
    assert order == [0, 3, 5, 6, 1, 2, 4]  # "a " == "A"; unknown artist never capped
    out2 = ArtistCap(2).rerank(s, ctx)
    assert np.argsort(-out2[0], kind="stable").tolist() == [0, 1, 3, 4, 5, 6, 2]


def test_artist_cap_widens_window_when_one_artist_dominates():
    artists = ["A"] * 300 + ["B", "C"]
    x = _tracks(artists)
    ctx = _ctx(SimpleNamespace(interactions_=x), n=3, b=2)
    s = np.tile(np.linspace(10, 1, 302, dtype=np.float32), (2, 1))
    s[1, 300:] = -np.inf  # second user: only A is eligible -> list still has n items
    out = ArtistCap(1).rerank(s, ctx)
    assert np.argsort(-out[0])[:3].tolist() == [0, 300, 301]
    assert np.argsort(-out[1])[:3].tolist() == [0, 1, 2]
    assert np.isfinite(out[1, :300]).all()


def test_artist_cap_needs_artist_column(data):
    model = Popularity().fit(data)
    with pytest.raises(DeepcutsError, match="column 'artist'"):
        ArtistCap(2).rerank(np.zeros((1, data.n_items), np.float32), _ctx(model))
    with pytest.raises(DeepcutsError, match="artist_cap must be a positive integer"):
        ArtistCap(0)


# ---------------------------------------------------------------------------- composition
def test_build_rerankers_order_and_errors():
    rr = build_rerankers(rarity=0.5, band=(10, 90), diversity=0.2, artist_cap=2)
    assert [type(r) for r in rr] == [ObscurityBand, RarityKnob, MMR, ArtistCap]
    assert build_rerankers() == []
    for kw, msg in [
        ({"rarity": 4}, "rarity"),
        ({"band": "90:10"}, "low < high"),
        ({"band": "10-90"}, "LOW:HIGH"),
        ({"band": "a:b"}, "numbers"),
        ({"diversity": -0.1}, "diversity"),
        ({"artist_cap": 1.5}, "artist_cap"),
    ]:
        with pytest.raises(DeepcutsError, match=msg):
            build_rerankers(**kw)


@pytest.mark.parametrize("seed", range(4))
def test_lists_have_exactly_n_items_when_available(seed):
    """Played filter, allow/block lists, band and every re-ranker: len == min(n, available)."""
    rng = np.random.default_rng(seed)
    base = planted_blocks(40, 60, 3, density=0.3, random_state=seed)
    n_items = base.n_items
    items = base.items.assign(artist=[f"a{k}" for k in rng.integers(0, 4, n_items)])
    x = Interactions(base.matrix, base.user_map, base.item_map, items=items)
    model = ALS(factors=4, iterations=2, random_state=seed).fit(x)
    users = np.arange(x.n_users)
    allow = rng.choice(n_items, 40, replace=False)
    block = rng.choice(n_items, 5, replace=False)
    band = sorted(rng.uniform(0, 100, 2))
    rr = build_rerankers(rarity=rng.uniform(-1, 2), band=band, diversity=rng.uniform(0, 1),
                         artist_cap=1)  # fmt: skip
    pct = popularity_percentiles(x.item_popularity())
    for n in (1, 5, 30):
        idx, vals, _ = model.rank_index(users, x.matrix, n, allow=allow, block=block, rerankers=rr)
        for u in users:
            ok = np.zeros(n_items, bool)
            ok[allow] = True
            ok[block] = False
            ok[x.matrix[u].indices] = False
            ok &= (pct >= band[0]) & (pct <= band[1])
            got = idx[u][idx[u] >= 0]
            assert len(got) == min(n, ok.sum())
            assert ok[got].all() and len(set(got.tolist())) == len(got)


def test_artist_column_survives_save_and_load(tmp_path):
    """A saved track model keeps its artists, so the cap works from the CLI too."""
    from deepcuts.models import load_model

    x = _tracks(["A", "A", "B", None])
    model = Popularity().fit(x)
    loaded = load_model(model.save(tmp_path / "pop"))
    artists = loaded.interactions_.items["artist"]
    assert artists[:3].tolist() == ["A", "A", "B"] and pd.isna(artists[3])
    s = np.array([[4, 3, 2, 1]], np.float32)
    out = ArtistCap(1).rerank(s, _ctx(loaded, n=3))
    assert np.argsort(-out[0]).tolist() == [0, 2, 3, 1]
