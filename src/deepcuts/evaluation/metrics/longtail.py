"""Deep cuts in the lists: recall over long-tail held-out items, and the share of thin items."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from deepcuts.evaluation.metrics.accuracy import recall_at_k

__all__ = ["long_tail_mask", "long_tail_recall", "thin_share"]


def long_tail_mask(item_popularity: np.ndarray, head_share: float = 0.2) -> np.ndarray:
    """Items outside the ``head_share`` most listened (training) items, shape (n_items,) bool.

    The head holds the items more popular than the item at rank ``ceil(head_share * n_items)``
    (rank 1 = most listened); items tied with it are in the long tail, so the head never
    holds more than ``head_share`` of the catalogue.

    Examples
    --------
    >>> long_tail_mask(np.array([9, 7, 3, 3, 1, 0, 0, 0, 0, 0]), 0.2).tolist()
    [False, True, True, True, True, True, True, True, True, True]
    """
    pop = np.asarray(item_popularity)
    if not 0.0 < float(head_share) < 1.0:
        raise ValueError(f"head_share must be in (0, 1), got {head_share!r}")
    if pop.size == 0:
        return np.zeros(0, bool)
    rank = int(np.ceil(float(head_share) * pop.size))
    cut = np.sort(pop)[::-1][rank - 1]
    return pop <= cut


def long_tail_recall(
    rec: np.ndarray, test: sp.csr_matrix, long_tail: np.ndarray, k: int
) -> np.ndarray:
    """Recall@k over each user's held-out long-tail items: ``hits_lt@k / |test_u ∩ LT|``.

    Parameters
    ----------
    rec : ndarray of shape (b, n) int, ``-1`` = no item
    test : csr_matrix of shape (b, n_items)
        Held-out items.
    long_tail : ndarray of shape (n_items,) bool
        :func:`long_tail_mask` of the training popularity.
    k : int

    Returns
    -------
    ndarray of shape (b,) float64; NaN for users without held-out long-tail items.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> test = sp.csr_matrix(np.array([[1, 1, 1, 0], [1, 0, 0, 0]], dtype=np.float32))
    >>> lt = np.array([False, True, True, True])
    >>> long_tail_recall(np.array([[0, 1, 3], [0, 2, 3]]), test, lt, 3).tolist()
    [0.5, nan]
    """
    t = sp.csr_matrix(test, copy=True)
    lt = np.asarray(long_tail, bool)
    t.data = np.where(lt[t.indices], t.data, 0).astype(t.data.dtype)
    t.eliminate_zeros()
    return recall_at_k(rec, t, k)


def thin_share(
    rec: np.ndarray, item_popularity: np.ndarray, floor: int = 3, k: int | None = None
) -> np.ndarray:
    """Share of each list's items with fewer than ``floor`` training listeners.

    Returns
    -------
    ndarray of shape (b,) float64 in [0, 1]; NaN for empty lists.

    Examples
    --------
    >>> thin_share(np.array([[0, 1, 2], [2, -1, -1]]), np.array([10, 2, 3])).round(4).tolist()
    [0.3333, 0.0]
    """
    rec = np.asarray(rec)[:, : (None if k is None else int(k))]
    pop = np.asarray(item_popularity)
    valid = rec >= 0
    thin = valid & (pop[np.where(valid, rec, 0)] < int(floor))
    n = valid.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, thin.sum(axis=1) / n, np.nan)
