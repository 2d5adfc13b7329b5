"""Compiled kernels of the item-kNN model, each with a small NumPy reference for the tests."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["item_neighbours", "topk_per_row_reference"]


def topk_per_row_reference(dense: np.ndarray, k: int) -> np.ndarray:
    """Dense NumPy reference: zero all but the ``k`` largest non-zeros of each row."""
    out = np.zeros_like(dense)
    for r, row in enumerate(dense):
        nz = np.flatnonzero(row)
        order = nz[np.argsort(-row[nz], kind="stable")][:k]
        out[r, order] = row[order]
    return out


@njit(parallel=True, cache=True, fastmath=True)
def _item_neighbours(
    it_indptr,
    it_users,
    it_vals,
    us_indptr,
    us_items,
    us_vals,
    norms,
    shrink,
    cosine,
    col_scale,
    k,
    n_chunks,
):  # pragma: no cover - compiled
    # S_ij = sum_u l_iu w_uj (Sarwar et al. 2001: l = w^T), divided by ||w_i|| ||w_j|| + shrink
    # for cosine, times col_scale[j] (RP3beta's 1 / pop_j^beta); row i keeps its k largest
    # j != i. One dense accumulator per chunk of items.
    n_items = len(it_indptr) - 1
    out_idx = np.full((n_items, k), -1, np.int32)
    out_val = np.zeros((n_items, k), np.float64)
    counts = np.zeros(n_items, np.int64)
    chunk = (n_items + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        acc = np.zeros(n_items, np.float64)
        seen = np.zeros(n_items, np.bool_)
        touched = np.empty(n_items, np.int32)
        for i in range(c * chunk, min((c + 1) * chunk, n_items)):
            nt = 0
            for p in range(it_indptr[i], it_indptr[i + 1]):
                u = it_users[p]
                wui = it_vals[p]
                for q in range(us_indptr[u], us_indptr[u + 1]):
                    j = us_items[q]
                    if not seen[j]:
                        seen[j] = True
                        touched[nt] = j
                        nt += 1
                    acc[j] += wui * us_vals[q]
            m = 0
            cand_j = np.empty(nt, np.int32)
            cand_v = np.empty(nt, np.float64)
            for t in range(nt):
                j = touched[t]
                v = acc[j]
                acc[j] = 0.0
                seen[j] = False
                if j == i:
                    continue
                if cosine:
                    d = norms[i] * norms[j] + shrink
                    v = v / d if d > 0 else 0.0
                v *= col_scale[j]
                if v != 0.0 and np.isfinite(v):
                    cand_j[m] = j
                    cand_v[m] = v
                    m += 1
            cj = cand_j[:m]
            cv = cand_v[:m]
            if m > k:
                # k-th largest value by partial sort; ties at it go to the lowest columns
                thr = -np.partition(-cv, k - 1)[k - 1]
                above = cv > thr
                n_above = above.sum()
                ties = np.sort(cj[cv == thr])[: k - n_above]
                cj = np.concatenate((cj[above], ties))
                cv = np.concatenate((cv[above], np.full(len(ties), thr, np.float64)))
            o = np.argsort(cj)
            cj = cj[o]
            cv = cv[o]
            n = len(cj)
            counts[i] = n
            out_idx[i, :n] = cj
            out_val[i, :n] = cv
    return out_idx, out_val, counts


def item_neighbours(w, k: int, *, cosine: bool, shrink: float = 0.0, left=None, col_scale=None):
    """Top-``k`` item-item similarity of a users x items weight matrix, as CSR parts.

    ``S = L W`` with ``L = W^T`` unless ``left`` is given, each column ``j`` times
    ``col_scale[j]``; row ``i`` keeps its ``k`` largest entries ``j != i``.

    Parameters
    ----------
    w : csr_matrix of shape (n_users, n_items)
        Weighted interactions.
    k : int
        Neighbours per item.
    cosine : bool
        Divide dot products by ``||w_i|| ||w_j|| + shrink``.
    shrink : float, default=0.0
    left : csr_matrix of shape (n_items, n_users), optional
        Left factor with the sparsity pattern of ``w^T`` (RP3beta's item -> user transition
        probabilities); default ``w^T``.
    col_scale : ndarray of shape (n_items,), optional
        Factor of each column after the cosine division; default ones.

    Returns
    -------
    indptr, indices, data of an (n_items, n_items) CSR matrix; row ``i`` holds item ``i``'s
    neighbours in column order (the item itself excluded).
    """
    import numba
    import scipy.sparse as sp

    w = sp.csr_matrix(w, dtype=np.float64)
    w.sum_duplicates()
    wt = sp.csr_matrix(w.T)
    if left is not None:
        left = sp.csr_matrix(left, dtype=np.float64)
        left.sum_duplicates()
        left.sort_indices()
        wt.sort_indices()
        if left.shape != wt.shape or not (
            np.array_equal(left.indptr, wt.indptr) and np.array_equal(left.indices, wt.indices)
        ):
            raise ValueError("left must have the sparsity pattern of w transposed")
        wt = left
    n_items = w.shape[1]
    scale = np.ones(n_items) if col_scale is None else np.asarray(col_scale, np.float64)
    norms = np.sqrt(np.asarray(w.multiply(w).sum(axis=0), dtype=np.float64).ravel())
    n_chunks = max(1, min(wt.shape[0], 16 * numba.get_num_threads()))
    idx, val, counts = _item_neighbours(
        wt.indptr.astype(np.int64), wt.indices.astype(np.int32), wt.data.astype(np.float64),
        w.indptr.astype(np.int64), w.indices.astype(np.int32), w.data.astype(np.float64),
        norms, float(shrink), bool(cosine), scale, int(k), n_chunks,
    )  # fmt: skip
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    keep = np.arange(idx.shape[1])[None, :] < counts[:, None]
    return indptr, idx[keep], val[keep].astype(np.float32)
