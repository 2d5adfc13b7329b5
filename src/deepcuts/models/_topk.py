"""Top-k selection over dense score blocks.

:func:`topk_rows` runs a compiled single pass per row (numba; rows in parallel for large
blocks) that keeps the ``k`` best entries in a small sorted buffer: about 6 us per row of 17k
items, where ``np.argpartition`` + sort takes about 30 us. :func:`topk_rows_numpy` is the
vectorised NumPy reference the tests compare it with. Both give the same indices and values,
ties broken by the lower item index.

:func:`scored_candidates` turns an index's candidates into a candidate block (ascending item
indices per row, exact scores ``x_u . y_i``) in one compiled pass per row, where a gather of the
candidates' vectors, ``np.einsum`` and :func:`~deepcuts.models.base.candidate_block`'s sort took
about 23 us per user of a 300-candidate block at 64 factors (the service's ANN path, issue 15);
:func:`scored_candidates_numpy` is its reference.
"""

from __future__ import annotations

import numba as nb
import numpy as np

__all__ = ["scored_candidates", "scored_candidates_numpy", "topk_rows", "topk_rows_numpy"]

#: blocks with at least this many entries are split over threads (row-parallel kernel)
PARALLEL_MIN = 1 << 21


def topk_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the ``k`` largest finite entries of each row, sorted descending.

    Parameters
    ----------
    scores : ndarray of shape (b, n_items)
        ``-inf`` (or NaN) marks ineligible items.
    k : int
        Number of items per row (clipped to n_items).

    Returns
    -------
    idx : ndarray of shape (b, k) int64
        Column indices, best first, ties by lower index; slots without an eligible item are
        -1.
    vals : ndarray of shape (b, k) float32
        Their scores (``-inf`` in empty slots).

    Examples
    --------
    >>> s = np.array([[0.1, 0.9, -np.inf, 0.5]], dtype=np.float32)
    >>> idx, vals = topk_rows(s, 3)
    >>> idx.tolist(), vals.astype(float).round(1).tolist()
    ([[1, 3, 0]], [[0.9, 0.5, 0.1]])
    >>> topk_rows(s, 4)[0].tolist()
    [[1, 3, 0, -1]]
    """
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-D (b, n_items), got shape {scores.shape}")
    b, n_items = scores.shape
    k = min(int(k), n_items)
    if k <= 0 or b == 0:
        return np.empty((b, 0), np.int64), np.empty((b, 0), np.float32)
    scores = np.ascontiguousarray(scores, dtype=np.float32)
    idx = np.empty((b, k), np.int64)
    vals = np.empty((b, k), np.float32)
    if scores.size >= PARALLEL_MIN and b > 1:
        _topk_parallel(scores, idx, vals)
    else:
        _topk_serial(scores, idx, vals)
    return idx, vals


@nb.njit(cache=True, nogil=True, inline="always")
def _topk_row(row, idx, vals):
    k = idx.shape[0]
    for t in range(k):
        idx[t] = -1
        vals[t] = -np.inf
    worst = -np.inf  # score of the k-th slot; a candidate must beat it strictly
    for j in range(row.shape[0]):
        v = row[j]
        if v > worst:  # False for NaN and -inf
            # insert after every slot scoring >= v (those have lower indices: ties keep order)
            t = k - 1
            while t > 0 and vals[t - 1] < v:
                vals[t] = vals[t - 1]
                idx[t] = idx[t - 1]
                t -= 1
            vals[t] = v
            idx[t] = j
            worst = vals[k - 1]


@nb.njit(cache=True, nogil=True)
def _topk_serial(scores, idx, vals):
    for r in range(scores.shape[0]):
        _topk_row(scores[r], idx[r], vals[r])


@nb.njit(cache=True, nogil=True, parallel=True)
def _topk_parallel(scores, idx, vals):
    for r in nb.prange(scores.shape[0]):
        _topk_row(scores[r], idx[r], vals[r])


def topk_rows_numpy(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """NumPy reference of :func:`topk_rows` (argpartition, then a stable sort)."""
    scores = np.asarray(scores, np.float32)
    b, n_items = scores.shape
    k = min(int(k), n_items)
    if k <= 0 or b == 0:
        return np.empty((b, 0), np.int64), np.empty((b, 0), np.float32)
    clean = np.where(np.isnan(scores), -np.inf, scores)
    if k < n_items:
        part = np.argpartition(-clean, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(n_items), (b, n_items)).copy()
    vals = np.take_along_axis(clean, part, axis=1)
    # the k-th value may be tied with entries outside the partition: take the lowest indices
    kth = vals.min(axis=1, keepdims=True)
    out_idx = np.empty((b, k), np.int64)
    out_val = np.empty((b, k), np.float32)
    for r in range(b):  # reference only: clarity over speed
        row = clean[r]
        better = np.flatnonzero(row > kth[r])
        tied = np.flatnonzero(row == kth[r])[: k - len(better)]
        cand = np.concatenate([better, tied])
        order = np.lexsort((cand, -row[cand]))
        out_idx[r] = cand[order]
        out_val[r] = row[cand[order]]
    empty = np.isneginf(out_val)
    out_idx[empty] = -1
    return out_idx, out_val


def scored_candidates(
    user_vectors: np.ndarray, item_vectors: np.ndarray, candidates: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A candidate block with exact scores: each row's candidates sorted ascending, scored.

    Parameters
    ----------
    user_vectors : ndarray of shape (b, f)
    item_vectors : ndarray of shape (n_items, f)
    candidates : ndarray of shape (b, C) int
        Item indices per row in any order, each at most once; ``-1`` = no item.

    Returns
    -------
    candidates : ndarray of shape (b, C) int32
        Ascending per row, ``-1`` pads last (the layout of
        :func:`~deepcuts.models.base.candidate_block`).
    scores : ndarray of shape (b, C) float32
        ``user_vectors[r] . item_vectors[c]`` (float32 sums), ``-inf`` on pads and non-finite
        scores.

    Examples
    --------
    >>> U = np.array([[1.0, 2.0]], np.float32)
    >>> Y = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], np.float32)
    >>> c, s = scored_candidates(U, Y, np.array([[2, -1, 0]]))
    >>> c.tolist(), s.tolist()
    ([[0, 2, -1]], [[1.0, 3.0, -inf]])
    """
    U = np.ascontiguousarray(user_vectors, dtype=np.float32)
    Y = np.ascontiguousarray(item_vectors, dtype=np.float32)
    cand = np.ascontiguousarray(candidates, dtype=np.int64)
    if U.ndim != 2 or Y.ndim != 2 or cand.ndim != 2 or len(U) != len(cand):
        raise ValueError(
            f"need user vectors (b, f), item vectors (n, f) and candidates (b, C), got "
            f"{U.shape}, {Y.shape} and {cand.shape}"
        )
    if U.shape[1] != Y.shape[1]:
        raise ValueError(f"user vectors have {U.shape[1]} factors, item vectors {Y.shape[1]}")
    if cand.size and cand.max() >= len(Y):
        raise ValueError(f"a candidate index is >= the {len(Y)} items")
    big = np.iinfo(np.int64).max
    key = np.sort(np.where(cand >= 0, cand, big), axis=1)  # NumPy's sort: ~5x numba's here
    out_c = np.empty(cand.shape, np.int32)
    out_s = np.empty(cand.shape, np.float32)
    if cand.size:
        if cand.size * U.shape[1] >= PARALLEL_MIN:
            _scored_parallel(U, Y, key, out_c, out_s)
        else:
            _scored_serial(U, Y, key, out_c, out_s)
        out_s[~np.isfinite(out_s)] = -np.inf
    return out_c, out_s


@nb.njit(cache=True, nogil=True, fastmath=True)
def _scored_rows(U, Y, key, out_c, out_s, r):
    # row r by index (row views as arguments kept numba from vectorising the dot: 6x slower)
    n_items = Y.shape[0]
    for j in range(key.shape[1]):
        i = key[r, j]
        if i >= n_items:  # a pad (sorted last)
            out_c[r, j] = -1
            out_s[r, j] = -np.inf
            continue
        acc = np.float32(0.0)
        for t in range(U.shape[1]):
            acc += U[r, t] * Y[i, t]
        out_c[r, j] = i
        out_s[r, j] = acc


@nb.njit(cache=True, nogil=True)
def _scored_serial(U, Y, key, out_c, out_s):
    for r in range(key.shape[0]):
        _scored_rows(U, Y, key, out_c, out_s, r)


@nb.njit(cache=True, nogil=True, parallel=True)
def _scored_parallel(U, Y, key, out_c, out_s):
    for r in nb.prange(key.shape[0]):
        _scored_rows(U, Y, key, out_c, out_s, r)


def scored_candidates_numpy(
    user_vectors: np.ndarray, item_vectors: np.ndarray, candidates: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """NumPy reference of :func:`scored_candidates` (sort, gather, ``einsum``)."""
    cand = np.asarray(candidates, np.int64)
    big = np.iinfo(np.int64).max
    key = np.sort(np.where(cand >= 0, cand, big), axis=1)
    pad = key == big
    Y = np.asarray(item_vectors, np.float32)
    vals = np.einsum("bf,bcf->bc", np.asarray(user_vectors, np.float32), Y[np.where(pad, 0, key)])
    vals = vals.astype(np.float32)
    vals[pad | ~np.isfinite(vals)] = -np.inf
    return np.where(pad, -1, key).astype(np.int32), vals
