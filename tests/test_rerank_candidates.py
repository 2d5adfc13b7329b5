"""Re-rankers on candidate blocks (issue 15): a (b, C) block of candidates gives the lists of the
dense (b, n_items) block whose other items are ineligible; C = n_items gives the dense lists."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from deepcuts.exceptions import DeepcutsError
from deepcuts.models import ALS
from deepcuts.models.base import candidate_block, rank_candidates
from deepcuts.rerank import (
    MMR,
    ArtistCap,
    DepthKnob,
    ObscurityBand,
    RarityKnob,
    build_rerankers,
)
from deepcuts.rerank import _depth_kernels as DK
from deepcuts.rerank.depth import taste_listeners
from deepcuts.testing import planted_blocks

N = 10


@pytest.fixture(scope="module")
def model():
    x = planted_blocks(90, 160, 4, density=0.3, noise=0.05, random_state=5)
    # a few artists of several tracks each, some unknown: the artist cap has work to do
    artists = [None if k % 11 == 0 else f"artist {k % 13}" for k in range(x.n_items)]
    x.items["artist"] = artists
    return ALS(factors=8, iterations=4, random_state=0, ann=False).fit(x)


def _sparse_vectors(model):
    return (model.interactions_.matrix.T > 0).astype(np.float32)


RERANKERS = {
    "rarity-rare": lambda m: [RarityKnob(0.2)],
    "rarity-popular": lambda m: [RarityKnob(2.0)],
    "band": lambda m: [ObscurityBand(20, 90)],
    "depth": lambda m: [DepthKnob(0.6)],  # tail-first with taste evidence (the default)
    "depth-taste-only": lambda m: [DepthKnob(0.8, taste=1.0)],
    "depth-calibrated": lambda m: [DepthKnob(0.6, deep="calibrated")],
    "depth-deepest": lambda m: [DepthKnob(1.0, floor=2)],
    "depth-mine": lambda m: [DepthKnob("mine+0.2")],
    "depth-tail": lambda m: [DepthKnob(0.7, deep="tail")],
    "mmr-factors": lambda m: [MMR(0.5)],
    "mmr-columns": lambda m: [MMR(0.4, pool=30, item_vectors=_sparse_vectors(m))],
    "artist-cap": lambda m: [ArtistCap(1)],
    "chain": lambda m: build_rerankers(
        rarity=0.7, band="10:95", diversity=0.3, artist_cap=2, depth=0.4
    ),
}


def _users(model, b=24):
    uidx = np.arange(b, dtype=np.int32)
    return uidx, model.interactions_.matrix[uidx]


def _random_candidates(n_items, b, rng):
    """Ascending candidate rows of different lengths, -1 padded (some shorter than N)."""
    width = n_items // 2
    cand = np.full((b, width), -1, np.int32)
    for r in range(b):
        k = int(rng.integers(N // 2, width + 1))
        cand[r, :k] = np.sort(rng.choice(n_items, k, replace=False))
    return cand


@pytest.mark.parametrize("name", sorted(RERANKERS))
def test_whole_catalogue_as_candidates_gives_the_dense_lists(model, name):
    uidx, ui = _users(model)
    scores = model.score_index(uidx, ui)
    dense = rank_candidates(model, uidx, ui, N, None, scores, rerankers=RERANKERS[name](model))
    cand = np.tile(np.arange(model.n_items, dtype=np.int32), (len(uidx), 1))
    block = rank_candidates(model, uidx, ui, N, cand, scores, rerankers=RERANKERS[name](model))
    np.testing.assert_array_equal(block[0], dense[0])
    np.testing.assert_array_equal(block[1], dense[1])
    assert (dense[0] >= 0).sum() > len(uidx)  # lists are not empty


@pytest.mark.parametrize("name", sorted(RERANKERS))
def test_candidate_block_gives_the_lists_of_the_masked_dense_block(model, name):
    """Candidates are the dense block with every other item ineligible, at a (b, C) cost."""
    uidx, ui = _users(model)
    scores = model.score_index(uidx, ui)
    cand = _random_candidates(model.n_items, len(uidx), np.random.default_rng(1))
    rows = np.arange(len(uidx))[:, None]
    masked = np.full_like(scores, -np.inf)
    ok = cand >= 0
    masked[np.broadcast_to(rows, cand.shape)[ok], cand[ok]] = scores[rows, np.maximum(cand, 0)][ok]
    block_scores = np.where(ok, scores[rows, np.maximum(cand, 0)], -np.inf)
    dense = rank_candidates(model, uidx, ui, N, None, masked, rerankers=RERANKERS[name](model))
    block = rank_candidates(
        model, uidx, ui, N, cand, block_scores, rerankers=RERANKERS[name](model)
    )
    np.testing.assert_array_equal(block[0], dense[0])
    np.testing.assert_array_equal(block[1], dense[1])
    # every listed item is a candidate of its row and unplayed
    for r in range(len(uidx)):
        listed = block[0][r][block[0][r] >= 0]
        assert np.isin(listed, cand[r]).all()
        assert not np.isin(listed, ui[r].indices).any()


def test_masks_on_candidate_blocks(model):
    uidx, ui = _users(model, 6)
    scores = model.score_index(uidx, ui)
    cand = np.tile(np.arange(model.n_items, dtype=np.int32), (len(uidx), 1))
    allow = np.arange(0, model.n_items, 2)
    block = np.array([4, 6])
    for c in (None, cand):
        idx, _ = rank_candidates(model, uidx, ui, N, c, scores, allow=allow, block=block)
        assert np.isin(idx[idx >= 0], allow).all() and not np.isin(idx, block).any()
    kept, _ = rank_candidates(model, uidx, ui, N, cand, scores, filter_played=False)
    np.testing.assert_array_equal(kept, rank_candidates(model, uidx, ui, N, None, scores,
                                                        filter_played=False)[0])  # fmt: skip


def test_depth_kernel_on_candidates_matches_reference(model):
    rng = np.random.default_rng(2)
    n_items, b = model.n_items, 12
    cand = _random_candidates(n_items, b, rng)
    scores = np.where(cand >= 0, rng.normal(size=cand.shape), -np.inf).astype(np.float32)
    eligible = rng.random(n_items) < 0.7
    pct = (100 * rng.random(n_items)).astype(np.float32)
    weight = rng.random(n_items).astype(np.float32)
    target = rng.uniform(10, 90, b)
    share = rng.uniform(0, 1, b)
    share[0] = 0.0  # depth 0: the row is left as it is
    got = DK.depth_rows(scores, eligible, pct, weight, target, share, N, cand)
    ref = DK.depth_rows_reference(scores, eligible, pct, weight, target, share, N, cand)
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(got[0], scores[0])
    # tail-first with taste evidence: the pool's evidence is looked up by item id
    x = model.interactions_
    hist = x.matrix[:b]
    args = (eligible, pct, weight, target, share, N, 3 * N, 0.5, hist,
            taste_listeners(x), sp.csr_matrix(x.matrix))  # fmt: skip
    got = DK.tail_first_rows(scores, *args, candidates=cand)
    ref = DK.tail_first_rows_reference(scores, *args, candidates=cand)
    np.testing.assert_allclose(got, ref, rtol=1e-6)
    assert (np.argsort(-got, axis=1)[:, :N] == np.argsort(-ref, axis=1)[:, :N]).all()
    # with content evidence (unit tag vectors): looked up by item id as well
    tags = sp.random(n_items, 7, density=0.4, format="csr", random_state=3, dtype=np.float32)
    norm = np.sqrt(np.asarray(tags.multiply(tags).sum(axis=1)).ravel())
    content = sp.csr_matrix(sp.diags(1 / np.where(norm > 0, norm, 1)) @ tags, dtype=np.float32)
    got = DK.tail_first_rows(scores, *args, candidates=cand, content=content, mix=0.7)
    ref = DK.tail_first_rows_reference(scores, *args, candidates=cand, content=content, mix=0.7)
    np.testing.assert_allclose(got, ref, rtol=1e-6)
    assert (np.argsort(-got, axis=1)[:, :N] == np.argsort(-ref, axis=1)[:, :N]).all()


def test_candidate_block_sorts_and_pads():
    cand, vals = candidate_block(np.array([[9, 3, -1, 5]]), np.array([[1.0, np.nan, 7.0, 2.0]]))
    assert cand.dtype == np.int32 and vals.dtype == np.float32
    assert cand.tolist() == [[3, 5, 9, -1]]
    assert vals.tolist() == [[-np.inf, 2.0, 1.0, -np.inf]]
    with pytest.raises(DeepcutsError, match="one shape"):
        candidate_block(np.zeros((2, 3)), np.zeros((2, 4)))


def test_misaligned_candidates_are_refused(model):
    uidx, ui = _users(model, 2)
    with pytest.raises(DeepcutsError, match="shape"):
        rank_candidates(model, uidx, ui, N, np.zeros((2, 5), np.int32), np.zeros((2, 4)))
    with pytest.raises(DeepcutsError, match="columns"):
        rank_candidates(model, uidx, sp.csr_matrix((2, model.n_items)), N, None, np.zeros((2, 4)))


def test_ann_lists_with_rerankers_equal_exact_when_every_item_is_a_candidate(model):
    pytest.importorskip("faiss", reason="the ann extra (faiss-cpu) is not installed")
    approx = model.clone().set_params(ann=True, ann_candidates=model.n_items)
    approx.fit(model.interactions_)
    assert approx.item_index() is not None
    uidx, ui = _users(model)
    for name in ("depth", "chain", "mmr-factors"):
        e = model.rank_index(uidx, ui, N, rerankers=RERANKERS[name](model))
        a = approx.rank_index(uidx, ui, N, rerankers=RERANKERS[name](approx))
        np.testing.assert_array_equal(a[0], e[0])
        np.testing.assert_allclose(
            a[1], e[1], rtol=1e-5, atol=1e-6
        )  # float32 sums in another order
    block = approx.vector_candidates(approx.user_factors_[:3], N)
    assert block[0].shape == (3, model.n_items) and (np.diff(block[0], axis=1) > 0).all()
