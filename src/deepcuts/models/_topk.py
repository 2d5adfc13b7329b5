"""Top-k selection over dense score blocks (vectorised NumPy, no per-user Python loops)."""

from __future__ import annotations

import numpy as np

__all__ = ["topk_rows"]


def topk_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the ``k`` largest finite entries of each row, sorted descending.

    Parameters
    ----------
    scores : ndarray of shape (b, n_items)
        ``-inf`` marks ineligible items.
    k : int
        Number of items per row (clipped to n_items).

    Returns
    -------
    idx : ndarray of shape (b, k) int64
        Column indices; entries whose score is ``-inf`` are set to -1.
    vals : ndarray of shape (b, k) float32

    Examples
    --------
    >>> s = np.array([[0.1, 0.9, -np.inf, 0.5]], dtype=np.float32)
    >>> idx, vals = topk_rows(s, 3)
    >>> idx.tolist(), vals.astype(float).round(1).tolist()
    ([[1, 3, 0]], [[0.9, 0.5, 0.1]])
    """
    b, n_items = scores.shape
    k = min(int(k), n_items)
    if k <= 0 or b == 0:
        return np.empty((b, 0), np.int64), np.empty((b, 0), np.float32)
    if k < n_items:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(n_items), (b, n_items)).copy()
    vals = np.take_along_axis(scores, part, axis=1)
    # stable tie-break by item index for reproducible ranks
    order = np.lexsort((part, -vals), axis=1) if vals.size else part
    idx = np.take_along_axis(part, order, axis=1)
    vals = np.take_along_axis(vals, order, axis=1).astype(np.float32, copy=False)
    idx = np.where(np.isneginf(vals) | np.isnan(vals), -1, idx)
    return idx, vals
