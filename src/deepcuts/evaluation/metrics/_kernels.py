"""Compiled kernels for list metrics, each with a small NumPy reference used by the tests."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["ild_sparse", "ild_sparse_reference"]


@njit(parallel=True, cache=True, fastmath=True)
def _ild_sparse(rec, indptr, indices, data):  # pragma: no cover - compiled
    b, k = rec.shape
    out = np.empty(b, np.float64)
    for u in prange(b):
        total = 0.0
        pairs = 0
        for a in range(k):
            i = rec[u, a]
            if i < 0:
                continue
            for c in range(a + 1, k):
                j = rec[u, c]
                if j < 0:
                    continue
                # cosine of two L2-normalised sparse rows: merge the sorted index lists
                p, pe = indptr[i], indptr[i + 1]
                q, qe = indptr[j], indptr[j + 1]
                dot = 0.0
                while p < pe and q < qe:
                    if indices[p] == indices[q]:
                        dot += data[p] * data[q]
                        p += 1
                        q += 1
                    elif indices[p] < indices[q]:
                        p += 1
                    else:
                        q += 1
                total += 1.0 - dot
                pairs += 1
        out[u] = total / pairs if pairs > 0 else np.nan
    return out


def ild_sparse(rec: np.ndarray, item_rows) -> np.ndarray:
    """Mean pairwise cosine distance within each list, items given as sparse rows.

    Parameters
    ----------
    rec : ndarray of shape (b, n) int, ``-1`` = no item
    item_rows : csr_matrix of shape (n_items, d)
        L2-normalised item vectors with sorted indices.

    Returns
    -------
    ndarray of shape (b,) float64; NaN for lists with fewer than two items.
    """
    if not item_rows.has_sorted_indices:
        item_rows = item_rows.sorted_indices()
    return _ild_sparse(
        np.ascontiguousarray(rec, dtype=np.int64),
        item_rows.indptr.astype(np.int64),
        item_rows.indices.astype(np.int64),
        item_rows.data.astype(np.float64),
    )


def ild_sparse_reference(rec: np.ndarray, item_rows) -> np.ndarray:
    """Dense NumPy reference of :func:`ild_sparse` (small inputs only)."""
    dense = np.asarray(item_rows.toarray(), dtype=np.float64)
    out = np.full(rec.shape[0], np.nan)
    for u, row in enumerate(np.asarray(rec)):
        items = row[row >= 0]
        if len(items) < 2:
            continue
        g = dense[items] @ dense[items].T
        iu = np.triu_indices(len(items), 1)
        out[u] = float(np.mean(1.0 - g[iu]))
    return out
