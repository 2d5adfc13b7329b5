"""Compiled kernels of the item-kNN model, each with a small NumPy reference for the tests."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["topk_per_row", "topk_per_row_reference"]


@njit(parallel=True, cache=True, fastmath=True)
def _row_counts(indptr, k):  # pragma: no cover - compiled
    n = len(indptr) - 1
    out = np.empty(n + 1, np.int64)
    out[0] = 0
    for r in prange(n):
        out[r + 1] = min(indptr[r + 1] - indptr[r], k)
    return out


@njit(parallel=True, cache=True, fastmath=True)
def _row_fill(indptr, indices, data, k, out_indptr, out_indices, out_data):  # pragma: no cover
    n = len(indptr) - 1
    for r in prange(n):
        s = indptr[r]
        e = indptr[r + 1]
        o = out_indptr[r]
        if e - s <= k:
            for p in range(s, e):
                out_indices[o + p - s] = indices[p]
                out_data[o + p - s] = data[p]
        else:
            # stable sort on -value: ties keep column order (the row's indices are sorted)
            order = np.argsort(-data[s:e], kind="mergesort")[:k]
            keep = np.sort(order)  # back to column order
            for q in range(k):
                out_indices[o + q] = indices[s + keep[q]]
                out_data[o + q] = data[s + keep[q]]


def topk_per_row(indptr, indices, data, k: int):
    """Keep the ``k`` largest stored values of each CSR row (ties: lower column first).

    Parameters
    ----------
    indptr : ndarray of shape (n_rows + 1,)
    indices : ndarray of shape (nnz,), sorted within each row
    data : ndarray of shape (nnz,) float32
    k : int

    Returns
    -------
    indptr, indices, data of the pruned matrix (rows keep sorted column indices).
    """
    indptr = np.asarray(indptr, dtype=np.int64)
    counts = _row_counts(indptr, int(k))
    out_indptr = np.cumsum(counts)
    nnz = int(out_indptr[-1])
    out_indices = np.empty(nnz, np.int32)
    out_data = np.empty(nnz, np.float32)
    _row_fill(
        indptr,
        np.asarray(indices, dtype=np.int32),
        np.asarray(data, dtype=np.float32),
        int(k),
        out_indptr,
        out_indices,
        out_data,
    )
    return out_indptr, out_indices, out_data


def topk_per_row_reference(dense: np.ndarray, k: int) -> np.ndarray:
    """Dense NumPy reference: zero all but the ``k`` largest non-zeros of each row."""
    out = np.zeros_like(dense)
    for r, row in enumerate(dense):
        nz = np.flatnonzero(row)
        order = nz[np.argsort(-row[nz], kind="stable")][:k]
        out[r, order] = row[order]
    return out
