"""Compiled kernels of the session (next-track) recommender, each with a NumPy reference.

- :func:`pair_weights`: the (a, b, w) co-occurrence triples of listens within a window of each
  other in a session, time-decayed (counted in parallel over sessions).
- :func:`topn_excluding`: the ``n`` best items of each sparse score row, skipping the items the
  session already played, filled up from a fallback order (parallel over rows).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = [
    "keep_top_per_row",
    "pair_weights",
    "pair_weights_reference",
    "topn_excluding",
    "topn_excluding_reference",
]


# ------------------------------------------------------------------------------- pair counting
@njit(cache=True)
def _n_pairs(indptr, window, symmetric):  # pragma: no cover - compiled
    n_s = len(indptr) - 1
    out = np.zeros(n_s + 1, np.int64)
    for s in range(n_s):
        m = indptr[s + 1] - indptr[s]
        c = 0
        for d in range(1, window + 1):
            if m > d:
                c += m - d
        out[s + 1] = c * (2 if symmetric else 1)
    return np.cumsum(out)


@njit(parallel=True, cache=True, fastmath=True)
def _fill_pairs(
    indptr, items, weights, window, decay, symmetric, offsets, rows, cols, vals
):  # pragma: no cover - compiled
    # w(a -> b) = decay^(d - 1) * w_a * w_b for listens a at position i and b at i + d,
    # 1 <= d <= window (item-to-item co-occurrence within sessions with a distance decay, as in
    # session-kNN / SR models, Ludewig & Jannach 2018)
    for s in prange(len(indptr) - 1):
        lo, hi = indptr[s], indptr[s + 1]
        p = offsets[s]
        for i in range(lo, hi):
            f = np.float32(1.0)
            for d in range(1, window + 1):
                j = i + d
                if j >= hi:
                    break
                w = f * weights[i] * weights[j]
                rows[p] = items[i]
                cols[p] = items[j]
                vals[p] = w
                p += 1
                if symmetric:
                    rows[p] = items[j]
                    cols[p] = items[i]
                    vals[p] = w
                    p += 1
                f *= decay


def pair_weights(
    indptr: np.ndarray,
    items: np.ndarray,
    weights: np.ndarray,
    *,
    window: int,
    decay: float,
    symmetric: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Co-occurrence triples ``(a, b, w)`` of a CSR-like session layout (duplicates not summed).

    Parameters
    ----------
    indptr : ndarray of shape (n_sessions + 1,) int64
    items : ndarray of shape (n_listens,) int32
    weights : ndarray of shape (n_listens,) float32
    window : int
        Largest distance ``d`` (in listens) between a pair.
    decay : float
        ``w = decay ** (d - 1) * w_a * w_b``.
    symmetric : bool
        Also emit ``(b, a, w)``.

    Returns
    -------
    rows, cols : ndarray int32
    vals : ndarray float32

    Examples
    --------
    >>> r, c, v = pair_weights(np.array([0, 3]), np.array([5, 6, 7], np.int32),
    ...                        np.ones(3, np.float32), window=2, decay=0.5, symmetric=False)
    >>> list(zip(r.tolist(), c.tolist(), v.tolist()))
    [(5, 6, 1.0), (5, 7, 0.5), (6, 7, 1.0)]
    """
    indptr = np.ascontiguousarray(indptr, np.int64)
    items = np.ascontiguousarray(items, np.int32)
    weights = np.ascontiguousarray(weights, np.float32)
    offsets = _n_pairs(indptr, int(window), bool(symmetric))
    total = int(offsets[-1])
    rows = np.empty(total, np.int32)
    cols = np.empty(total, np.int32)
    vals = np.empty(total, np.float32)
    if total:
        _fill_pairs(
            indptr,
            items,
            weights,
            int(window),
            np.float32(decay),
            bool(symmetric),
            offsets,
            rows,
            cols,
            vals,
        )
    return rows, cols, vals


def pair_weights_reference(indptr, items, weights, *, window, decay, symmetric):
    """Plain-Python reference of :func:`pair_weights` (for tests on small inputs)."""
    rows, cols, vals = [], [], []
    for s in range(len(indptr) - 1):
        seq = list(range(indptr[s], indptr[s + 1]))
        for a, i in enumerate(seq):
            for d in range(1, window + 1):
                if a + d >= len(seq):
                    break
                j = seq[a + d]
                w = decay ** (d - 1) * weights[i] * weights[j]
                rows.append(items[i])
                cols.append(items[j])
                vals.append(w)
                if symmetric:
                    rows.append(items[j])
                    cols.append(items[i])
                    vals.append(w)
    return (
        np.asarray(rows, np.int32),
        np.asarray(cols, np.int32),
        np.asarray(vals, np.float32),
    )


# ------------------------------------------------------------------------------- top-n
@njit(parallel=True, cache=True, fastmath=True)
def _topn_excluding(
    s_indptr, s_indices, s_data, h_indptr, h_indices, n, fill_order, n_items, out_idx, out_val
):  # pragma: no cover - compiled
    b = len(s_indptr) - 1
    for r in prange(b):
        banned = np.zeros(n_items, np.bool_)
        for p in range(h_indptr[r], h_indptr[r + 1]):
            banned[h_indices[p]] = True
        got = 0
        # selection of the n largest positive scores (n is small: a next-track list)
        while got < n:
            best = -1
            best_v = np.float32(0.0)
            for p in range(s_indptr[r], s_indptr[r + 1]):
                j = s_indices[p]
                v = s_data[p]
                if banned[j] or v <= 0:
                    continue
                if best < 0 or v > best_v or (v == best_v and j < best):
                    best = j
                    best_v = v
            if best < 0:
                break
            out_idx[r, got] = best
            out_val[r, got] = best_v
            banned[best] = True
            got += 1
        q = 0
        while got < n and q < len(fill_order):
            j = fill_order[q]
            q += 1
            if not banned[j]:
                out_idx[r, got] = j
                out_val[r, got] = 0.0
                banned[j] = True
                got += 1


def topn_excluding(scores, history, n: int, fill_order: np.ndarray):
    """Top ``n`` items per row of a sparse score matrix, never an item of the row's history.

    Items with a positive score come first (best first, ties by lower index); the rest of the
    list is filled from ``fill_order`` (score 0), skipping played and already chosen items.

    Parameters
    ----------
    scores : csr_matrix of shape (b, n_items)
    history : csr_matrix of shape (b, n_items)
        Non-zero where the session already played the item.
    n : int
    fill_order : ndarray of shape (m,) int
        Fallback items, best first.

    Returns
    -------
    idx : ndarray of shape (b, n) int32, -1 where nothing is left
    val : ndarray of shape (b, n) float32
    """
    b, n_items = scores.shape
    out_idx = np.full((b, n), -1, np.int32)
    out_val = np.zeros((b, n), np.float32)
    if b:
        _topn_excluding(
            scores.indptr.astype(np.int64),
            scores.indices.astype(np.int32),
            scores.data.astype(np.float32),
            history.indptr.astype(np.int64),
            history.indices.astype(np.int32),
            int(n),
            np.ascontiguousarray(fill_order, np.int32),
            int(n_items),
            out_idx,
            out_val,
        )
    return out_idx, out_val


def topn_excluding_reference(scores, history, n: int, fill_order):
    """Dense NumPy reference of :func:`topn_excluding`."""
    dense = np.asarray(scores.todense(), np.float64)
    played = np.asarray(history.todense()) != 0
    out_idx = np.full((dense.shape[0], n), -1, np.int32)
    out_val = np.zeros((dense.shape[0], n), np.float32)
    for r in range(dense.shape[0]):
        row = np.where(played[r] | (dense[r] <= 0), -np.inf, dense[r])
        order = np.lexsort((np.arange(len(row)), -row))
        chosen = [j for j in order if np.isfinite(row[j])][:n]
        for k, j in enumerate(chosen):
            out_idx[r, k], out_val[r, k] = j, row[j]
        banned = set(np.flatnonzero(played[r])) | set(chosen)
        k = len(chosen)
        for j in fill_order:
            if k >= n:
                break
            if j not in banned:
                out_idx[r, k] = j
                banned.add(j)
                k += 1
    return out_idx, out_val


# ------------------------------------------------------------------------------- pruning
@njit(parallel=True, cache=True, fastmath=True)
def _row_keep(indptr, data, k, keep):  # pragma: no cover - compiled
    for r in prange(len(indptr) - 1):
        lo, hi = indptr[r], indptr[r + 1]
        if hi - lo <= k:
            for p in range(lo, hi):
                keep[p] = True
            continue
        # the k largest values of the row (ties: earlier position first)
        order = np.argsort(-data[lo:hi], kind="mergesort")
        for q in range(k):
            keep[lo + order[q]] = True


def keep_top_per_row(m, k: int):
    """A copy of CSR ``m`` holding only the ``k`` largest entries of each row.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> keep_top_per_row(sp.csr_matrix(np.array([[1.0, 3.0, 2.0]])), 2).toarray()
    array([[0., 3., 2.]])
    """
    import scipy.sparse as sp

    m = sp.csr_matrix(m)
    m.sort_indices()
    keep = np.zeros(m.nnz, np.bool_)
    if m.nnz:
        _row_keep(m.indptr.astype(np.int64), m.data, int(k), keep)
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    return sp.csr_matrix(
        (m.data[keep], (rows[keep], m.indices[keep])), shape=m.shape, dtype=m.dtype
    )
