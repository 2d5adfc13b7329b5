"""Intra-list diversity: how different the items within one recommendation list are."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from deepcuts.evaluation.metrics._kernels import ild_sparse

__all__ = ["intra_list_diversity", "item_vectors_from_matrix"]


def item_vectors_from_matrix(matrix) -> sp.csr_matrix:
    """L2-normalised item columns of a users x items matrix, as item-major CSR (n_items, n_users).

    The cosine of two such rows is the cosine similarity of the items' listener vectors
    (co-occurrence weighted by play counts). Items nobody played are all-zero rows.
    """
    items = sp.csr_matrix(sp.csr_matrix(matrix, dtype=np.float64).T)
    items.sum_duplicates()
    items.sort_indices()
    norms = np.sqrt(np.asarray(items.multiply(items).sum(axis=1)).ravel())
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    out = sp.csr_matrix(sp.diags(scale) @ items)
    out.sort_indices()
    return out


def _normalise_dense(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return np.divide(v, norms, out=np.zeros_like(v), where=norms > 0)


def intra_list_diversity(
    rec: np.ndarray,
    *,
    item_vectors=None,
    matrix=None,
    k: int | None = None,
) -> np.ndarray:
    """Mean pairwise cosine distance ``1 - cos(v_i, v_j)`` over the item pairs of each list.

    ``ILD_u = 2 / (n (n - 1)) * sum_{i < j in L_u} (1 - cos(v_i, v_j))`` (Ziegler et al. 2005).
    Item vectors ``v`` are either given (``item_vectors``, e.g. ALS factors or audio features)
    or, with ``matrix``, the items' listener columns of the training matrix. With non-negative
    vectors (such as listener columns) the value lies in [0, 1]; general vectors give [0, 2].
    An all-zero vector counts as orthogonal to everything.

    Parameters
    ----------
    rec : ndarray of shape (b, n) int, ``-1`` = no item
    item_vectors : ndarray of shape (n_items, d) or sparse, optional
    matrix : csr_matrix of shape (n_users, n_items), optional
        Used when ``item_vectors`` is None. Pass the result of
        :func:`item_vectors_from_matrix` as ``item_vectors`` to reuse it across calls.
    k : int, optional
        Cut-off (default all columns).

    Returns
    -------
    ndarray of shape (b,) float64
        0 for a one-item list (it has no pair of different items: no diversity), NaN for an
        empty list (nothing to measure; means skip it).

    Examples
    --------
    >>> v = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> rec = np.array([[0, 1], [0, 2], [0, -1], [-1, -1]])
    >>> intra_list_diversity(rec, item_vectors=v).round(4).tolist()
    [1.0, 0.2929, 0.0, nan]
    """
    rec = np.asarray(rec)[:, : (None if k is None else int(k))]
    out = _ild(rec, item_vectors, matrix)
    return np.where((rec >= 0).sum(axis=1) == 1, 0.0, out)


def _ild(rec: np.ndarray, item_vectors, matrix) -> np.ndarray:
    if item_vectors is None:
        if matrix is None:
            raise ValueError("pass item_vectors or the training matrix")
        item_vectors = item_vectors_from_matrix(matrix)
    if sp.issparse(item_vectors):
        rows = sp.csr_matrix(item_vectors)
        if not rows.has_sorted_indices:
            rows = rows.copy()
            rows.sort_indices()
        norms = np.sqrt(np.asarray(rows.multiply(rows).sum(axis=1)).ravel())
        if not np.allclose(norms[norms > 0], 1.0, atol=1e-6):
            scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
            rows = sp.csr_matrix(sp.diags(scale) @ rows)
            rows.sort_indices()
        return ild_sparse(rec, rows)
    v = _normalise_dense(item_vectors)
    valid = rec >= 0
    e = v[np.where(valid, rec, 0)] * valid[..., None]  # (b, n, d)
    g = np.einsum("bkd,bld->bkl", e, e)
    pair = valid[:, :, None] & valid[:, None, :]
    pair &= np.triu(np.ones((rec.shape[1],) * 2, dtype=bool), 1)[None]
    n_pairs = pair.sum(axis=(1, 2))
    dist = np.where(pair, 1.0 - g, 0.0).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_pairs > 0, dist / n_pairs, np.nan)
