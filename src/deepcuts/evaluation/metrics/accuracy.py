"""Accuracy of top-k lists against held-out items: precision, recall, NDCG, MAP, MRR, hit rate.

Every function takes the ranked lists as an int array ``rec`` of shape (b, n) (internal item
indices, best first, ``-1`` padding where fewer items were eligible) and the held-out items as
a CSR matrix ``test`` of shape (b, n_items) aligned row by row. Relevance is *binary*: an item
is relevant when it is stored in the user's test row, whatever its play count (test counts are
not used as gains). Users with no test items get ``NaN`` (undefined), so means skip them.
Everything is vectorised over users.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = [
    "hit_matrix",
    "hit_rate_at_k",
    "map_at_k",
    "mrr_at_k",
    "ndcg_at_k",
    "precision_at_k",
    "recall_at_k",
]


def _check(rec: np.ndarray, test: sp.csr_matrix, k: int) -> tuple[np.ndarray, sp.csr_matrix]:
    rec = np.asarray(rec)
    if rec.ndim != 2:
        raise ValueError(f"rec must have shape (b, n), got {rec.shape}")
    test = sp.csr_matrix(test)
    if test.shape[0] != rec.shape[0]:
        raise ValueError(f"rec has {rec.shape[0]} rows but test has {test.shape[0]}")
    if int(k) < 1:
        raise ValueError(f"k must be >= 1, got {k!r}")
    return rec, test


def hit_matrix(rec: np.ndarray, test: sp.csr_matrix) -> np.ndarray:
    """``hits[u, r]`` is True when the item at rank ``r`` of user ``u`` is in ``test[u]``.

    Parameters
    ----------
    rec : ndarray of shape (b, n) int
        Item indices, ``-1`` = no item.
    test : csr_matrix of shape (b, n_items)

    Returns
    -------
    ndarray of shape (b, n) bool

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> test = sp.csr_matrix(np.array([[0, 1, 0, 1], [1, 0, 0, 0]], dtype=np.float32))
    >>> hit_matrix(np.array([[1, 2], [3, -1]]), test).tolist()
    [[True, False], [False, False]]
    """
    rec = np.asarray(rec)
    test = sp.csr_matrix(test)
    test.sum_duplicates()  # sorted, unique indices per row
    n_items = test.shape[1]
    present = test.data != 0
    rows = np.repeat(np.arange(test.shape[0], dtype=np.int64), np.diff(test.indptr))
    keys = (rows * n_items + test.indices)[present]  # row-major and column-sorted: ascending
    q = np.arange(rec.shape[0], dtype=np.int64)[:, None] * n_items + rec.astype(np.int64)
    pos = np.searchsorted(keys, q)
    found = keys[np.minimum(pos, len(keys) - 1)] == q if len(keys) else np.zeros(q.shape, bool)
    return found & (rec >= 0)


def _n_relevant(test: sp.csr_matrix) -> np.ndarray:
    test = sp.csr_matrix(test)
    return np.asarray((test != 0).sum(axis=1)).ravel().astype(np.float64)


def _top(rec, test, k):
    rec, test = _check(rec, test, k)
    hits = hit_matrix(rec[:, : int(k)], test)
    n_rel = _n_relevant(test)
    return hits, n_rel


def _undefined(n_rel: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.where(n_rel > 0, values, np.nan)


def precision_at_k(rec: np.ndarray, test: sp.csr_matrix, k: int) -> np.ndarray:
    """Share of the top ``k`` slots holding a relevant item: ``hits@k / k``.

    A list shorter than ``k`` counts its empty slots as misses.

    Returns
    -------
    ndarray of shape (b,) float64, NaN for users without test items

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> test = sp.csr_matrix(np.array([[0, 1, 0, 1]], dtype=np.float32))
    >>> precision_at_k(np.array([[1, 2, 3]]), test, 3).round(4).tolist()
    [0.6667]
    """
    hits, n_rel = _top(rec, test, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _undefined(n_rel, hits.sum(axis=1) / float(k))


def recall_at_k(rec: np.ndarray, test: sp.csr_matrix, k: int) -> np.ndarray:
    """Share of the user's test items found in the top ``k``: ``hits@k / |test_u|``.

    Returns
    -------
    ndarray of shape (b,) float64, NaN for users without test items

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> test = sp.csr_matrix(np.array([[0, 1, 0, 1]], dtype=np.float32))
    >>> recall_at_k(np.array([[1, 2, 0]]), test, 3).tolist()
    [0.5]
    """
    hits, n_rel = _top(rec, test, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _undefined(n_rel, hits.sum(axis=1) / n_rel)


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, int(k) + 2, dtype=np.float64))


def ndcg_at_k(rec: np.ndarray, test: sp.csr_matrix, k: int) -> np.ndarray:
    """Normalised discounted cumulative gain with binary gains.

    ``DCG@k = sum_{r=1..k} rel_r / log2(r + 1)`` and ``NDCG@k = DCG@k / IDCG@k``, where
    ``IDCG@k = sum_{r=1..min(k, |test_u|)} 1 / log2(r + 1)`` is the DCG of a perfect list.

    Returns
    -------
    ndarray of shape (b,) float64 in [0, 1], NaN for users without test items

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> test = sp.csr_matrix(np.array([[0, 1, 0, 1]], dtype=np.float32))
    >>> ndcg_at_k(np.array([[2, 1, 3]]), test, 3).round(4).tolist()  # hits at ranks 2 and 3
    [0.6934]
    """
    hits, n_rel = _top(rec, test, k)
    disc = _discounts(k)
    dcg = (hits * disc[: hits.shape[1]]).sum(axis=1)
    ideal_cum = np.concatenate([[0.0], np.cumsum(disc)])
    idcg = ideal_cum[np.minimum(n_rel, int(k)).astype(np.int64)]
    with np.errstate(invalid="ignore", divide="ignore"):
        return _undefined(n_rel, dcg / idcg)


def map_at_k(rec: np.ndarray, test: sp.csr_matrix, k: int) -> np.ndarray:
    """Average precision at ``k`` (mean over users gives MAP@k).

    ``AP@k = (1 / min(k, |test_u|)) * sum_{r=1..k} P@r * rel_r``.

    Returns
    -------
    ndarray of shape (b,) float64 in [0, 1], NaN for users without test items

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> test = sp.csr_matrix(np.array([[0, 1, 0, 1]], dtype=np.float32))
    >>> map_at_k(np.array([[2, 1, 3]]), test, 3).round(4).tolist()  # (1/2 + 2/3) / 2
    [0.5833]
    """
    hits, n_rel = _top(rec, test, k)
    ranks = np.arange(1, hits.shape[1] + 1, dtype=np.float64)
    prec_at_r = np.cumsum(hits, axis=1) / ranks
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = (prec_at_r * hits).sum(axis=1) / np.minimum(n_rel, int(k))
    return _undefined(n_rel, ap)


def mrr_at_k(rec: np.ndarray, test: sp.csr_matrix, k: int) -> np.ndarray:
    """Reciprocal rank of the first relevant item in the top ``k`` (mean over users: MRR@k).

    ``RR@k = 1 / r`` with ``r`` the rank of the first relevant item, 0 when none of the top
    ``k`` is relevant. However many items are relevant, only the first hit counts.

    Returns
    -------
    ndarray of shape (b,) float64 in [0, 1], NaN for users without test items

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> test = sp.csr_matrix(np.array([[0, 1, 0, 1], [1, 0, 0, 0]], dtype=np.float32))
    >>> mrr_at_k(np.array([[2, 3, 1], [3, 2, 1]]), test, 3).tolist()  # first hit at rank 2; none
    [0.5, 0.0]
    """
    hits, n_rel = _top(rec, test, k)
    first = np.argmax(hits, axis=1)
    rr = np.where(hits.any(axis=1), 1.0 / (first + 1.0), 0.0)
    return _undefined(n_rel, rr)


def hit_rate_at_k(rec: np.ndarray, test: sp.csr_matrix, k: int) -> np.ndarray:
    """1 when at least one relevant item is in the top ``k``, else 0 (mean: hit rate@k).

    Returns
    -------
    ndarray of shape (b,) float64 in {0, 1}, NaN for users without test items

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> test = sp.csr_matrix(np.array([[0, 1, 0, 1], [1, 0, 0, 0]], dtype=np.float32))
    >>> hit_rate_at_k(np.array([[2, 3, 1], [3, 2, 1]]), test, 3).tolist()
    [1.0, 0.0]
    """
    hits, n_rel = _top(rec, test, k)
    return _undefined(n_rel, hits.any(axis=1).astype(np.float64))
