"""The compiled top-k kernel against its NumPy reference."""

import numpy as np
import pytest

from deepcuts.models import _topk
from deepcuts.models._topk import topk_rows, topk_rows_numpy


def _block(rng, b, n, *, ties=False):
    s = rng.standard_normal((b, n)).astype(np.float32)
    if ties:
        s = np.round(s, 1)  # many equal values, also at the k-th place
    s[rng.random((b, n)) < 0.2] = -np.inf
    s[rng.random((b, n)) < 0.05] = np.nan
    s[0] = -np.inf  # a row with nothing eligible
    if b > 1:
        s[1, 3:] = -np.inf  # fewer eligible items than k
        s[1, :3] = [0.5, 0.5, -1.0]
    return s


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("k", [1, 5, 10, 57, 200])
def test_topk_matches_numpy_reference(k, ties):
    s = _block(np.random.default_rng(k), 23, 200, ties=ties)
    idx, val = topk_rows(s, k)
    ridx, rval = topk_rows_numpy(s, k)
    np.testing.assert_array_equal(idx, ridx)
    np.testing.assert_array_equal(val, rval)
    assert idx.dtype == np.int64 and val.dtype == np.float32
    assert (idx[0] == -1).all() and np.isneginf(val[0]).all()
    assert (idx[1, :3] >= 0).all() or k < 3


def test_topk_ties_take_the_lowest_index_and_sort_descending():
    s = np.array([[1, 3, 3, 2, 3, 0]], np.float32)
    idx, val = topk_rows(s, 2)
    assert idx.tolist() == [[1, 2]]
    idx, val = topk_rows(s, 4)
    assert idx.tolist() == [[1, 2, 4, 3]] and val.tolist() == [[3, 3, 3, 2]]


def test_topk_parallel_path_matches(monkeypatch):
    monkeypatch.setattr(_topk, "PARALLEL_MIN", 1)
    s = _block(np.random.default_rng(0), 64, 500, ties=True)
    np.testing.assert_array_equal(topk_rows(s, 20)[0], topk_rows_numpy(s, 20)[0])


def test_topk_edge_shapes_and_dtypes():
    s = np.random.default_rng(1).random((3, 4))  # float64 in, float32 out
    idx, val = topk_rows(s, 10)  # k clipped to n_items
    assert idx.shape == (3, 4) and val.dtype == np.float32
    assert topk_rows(s, 0)[0].shape == (3, 0)
    assert topk_rows(np.empty((0, 5), np.float32), 3)[0].shape[0] == 0
    with pytest.raises(ValueError, match="2-D"):
        topk_rows(np.zeros(5), 2)


@pytest.mark.parametrize("b,C,f", [(1, 1, 1), (5, 37, 8), (64, 300, 64), (3, 400, 33)])
def test_scored_candidates_match_numpy_reference(b, C, f):
    rng = np.random.default_rng(b * 1000 + C)
    n_items = C + 50
    U = rng.normal(size=(b, f)).astype(np.float32)
    Y = rng.normal(size=(n_items, f)).astype(np.float32)
    cand = np.stack([rng.permutation(n_items)[:C] for _ in range(b)]).astype(np.int64)
    cand[rng.random(cand.shape) < 0.2] = -1  # pads anywhere in the row, as an index gives
    got_c, got_s = _topk.scored_candidates(U, Y, cand)
    ref_c, ref_s = _topk.scored_candidates_numpy(U, Y, cand)
    np.testing.assert_array_equal(got_c, ref_c)
    assert got_c.dtype == np.int32 and got_s.dtype == np.float32
    np.testing.assert_allclose(got_s, ref_s, rtol=1e-4, atol=1e-4)
    # ascending per row with the pads last, and the layout of candidate_block
    from deepcuts.models.base import candidate_block

    blk_c, _ = candidate_block(cand, np.ones(cand.shape, np.float32))
    np.testing.assert_array_equal(got_c, blk_c)
    assert np.all(np.isneginf(got_s[got_c < 0]))


def test_scored_candidates_parallel_path_matches(monkeypatch):
    monkeypatch.setattr(_topk, "PARALLEL_MIN", 1)
    rng = np.random.default_rng(3)
    U = rng.normal(size=(17, 16)).astype(np.float32)
    Y = rng.normal(size=(500, 16)).astype(np.float32)
    cand = np.stack([rng.permutation(500)[:40] for _ in range(17)])
    got = _topk.scored_candidates(U, Y, cand)
    ref = _topk.scored_candidates_numpy(U, Y, cand)
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-4, atol=1e-4)


def test_scored_candidates_refuse_bad_shapes():
    U = np.zeros((2, 4), np.float32)
    with pytest.raises(ValueError, match="factors"):
        _topk.scored_candidates(U, np.zeros((5, 3), np.float32), np.zeros((2, 3), np.int64))
    with pytest.raises(ValueError, match=">= the 5 items"):
        _topk.scored_candidates(U, np.zeros((5, 4), np.float32), np.full((2, 3), 5))
