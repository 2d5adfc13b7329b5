"""Compiled greedy maximal marginal relevance (private; used by :mod:`deepcuts.rerank.diversity`).

Carbonell & Goldstein (1998), "The use of MMR, diversity-based reranking for reordering
documents and producing summaries": from a candidate pool ``R`` pick, one at a time,

    i* = argmax_{i in R \\ S} [ (1 - lambda) * rel(i) - lambda * max_{j in S} sim(i, j) ]

where ``S`` holds the items picked so far (the max is 0 while ``S`` is empty) and ``sim`` is the
cosine of item vectors. ``max_{j in S} sim(i, j)`` is kept per candidate and updated with the
last pick only, so one user costs ``m * P`` similarities for ``m`` picks from ``P`` candidates.

One kernel, two item representations: :func:`mmr_dense` (rows of an L2-normalised dense
matrix, e.g. ALS item factors) and :func:`mmr_sparse` (L2-normalised sparse item columns of the
interaction matrix, as CSR arrays with sorted indices) share the greedy loop and differ only in
the similarity (:func:`_similarity`). It is compiled ``njit(cache=True, fastmath=True)`` twice:
parallel over users for batches, serial for a request's few users. :func:`mmr_reference` is
the plain NumPy oracle.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["mmr_dense", "mmr_reference", "mmr_sparse"]


@njit(inline="always", fastmath=True)
def _sparse_dot(indptr, indices, data, a, b):
    """Dot product of sparse rows ``a`` and ``b`` (sorted indices), by merging."""
    p, pe = indptr[a], indptr[a + 1]
    q, qe = indptr[b], indptr[b + 1]
    s = np.float32(0.0)
    while p < pe and q < qe:
        ia = indices[p]
        ib = indices[q]
        if ia == ib:
            s += data[p] * data[q]
            p += 1
            q += 1
        elif ia < ib:
            p += 1
        else:
            q += 1
    return s


@njit(inline="always", fastmath=True)
def _argbest(cand, rel, maxsim, taken, lam, P):
    # validity comes from ``cand``, never from ``rel``: fastmath assumes finite values
    best = -1
    best_v = np.float32(0.0)
    for c in range(P):
        if taken[c] or cand[c] < 0:
            continue
        v = (np.float32(1.0) - lam) * rel[c] - lam * maxsim[c]
        if best < 0 or v > best_v:
            best_v = v
            best = c
    return best


@njit(inline="always", fastmath=True)
def _similarity(vectors, indptr, indices, data, a, b):
    """Cosine of items ``a`` and ``b``: dense rows of ``vectors``, or sparse CSR rows when
    ``indptr`` is not empty."""
    if len(indptr):
        return _sparse_dot(indptr, indices, data, a, b)
    s = np.float32(0.0)
    for k in range(vectors.shape[1]):
        s += vectors[a, k] * vectors[b, k]
    return s


def _mmr(cand, rel, vectors, indptr, indices, data, lam, m):
    b, P = cand.shape
    out = np.full((b, m), -1, np.int64)
    for u in prange(b):
        maxsim = np.zeros(P, np.float32)
        taken = np.zeros(P, np.bool_)
        for t in range(m):
            c = _argbest(cand[u], rel[u], maxsim, taken, lam, P)
            if c < 0:
                break
            out[u, t] = c
            taken[c] = True
            last = cand[u, c]
            for o in range(P):
                if taken[o] or cand[u, o] < 0:
                    continue
                s = _similarity(vectors, indptr, indices, data, last, cand[u, o])
                if s > maxsim[o] or t == 0:
                    maxsim[o] = s
    return out


# The kernel twice: parallel over users for batches, serial for a request's few users
# (starting the thread pool for one user cost more than the picks: ~3 ms against ~0.1 ms).
_mmr_parallel = njit(parallel=True, cache=True, fastmath=True)(_mmr)
_mmr_serial = njit(cache=True, fastmath=True)(_mmr)
#: batches with fewer users than this run the serial kernel (``parallel=None``)
SERIAL_BELOW = 8
_NO_DENSE = np.zeros((0, 0), np.float32)
_NO_SPARSE = (np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float32))


def _kernel(b, parallel):
    if parallel is None:
        parallel = b >= SERIAL_BELOW
    return _mmr_parallel if parallel else _mmr_serial


def mmr_dense(cand, rel, vectors, lam, m, *, parallel=None):
    """Greedy MMR picks over dense item vectors.

    Parameters
    ----------
    cand : int64 (b, P)
        Candidate items per user (``-1`` = none).
    rel : float32 (b, P)
        Relevance of each candidate in [0, 1] (finite; ignored for ``-1`` candidates).
    vectors : float32 (n_items, d)
        L2-normalised item vectors.
    lam : float32
        Diversity weight ``lambda`` in [0, 1].
    m : int
        Picks per user.
    parallel : bool or None
        Users in parallel threads; ``None``: when there are at least :data:`SERIAL_BELOW`.

    Returns
    -------
    int64 (b, m): picked candidate *positions* (columns of ``cand``) in order, ``-1`` padded.
    """
    return _kernel(len(cand), parallel)(cand, rel, vectors, *_NO_SPARSE, lam, m)


def mmr_sparse(cand, rel, indptr, indices, data, lam, m, *, parallel=None):
    """Greedy MMR picks over sparse item vectors (CSR rows = items, sorted indices, L2
    normalised); as :func:`mmr_dense`."""
    return _kernel(len(cand), parallel)(cand, rel, _NO_DENSE, indptr, indices, data, lam, m)


def mmr_reference(cand, rel, sim, lam, m):
    """NumPy oracle of the kernels: ``sim`` is a dense (n_items, n_items) similarity matrix.

    >>> cand = np.array([[0, 1, 2]])
    >>> rel = np.array([[1.0, 0.9, 0.1]], np.float32)
    >>> sim = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    >>> mmr_reference(cand, rel, sim, 0.5, 3).tolist()  # item 1 duplicates item 0
    [[0, 2, 1]]
    """
    cand = np.asarray(cand)
    b, P = cand.shape
    out = np.full((b, m), -1, np.int64)
    for u in range(b):
        chosen: list[int] = []
        for t in range(m):
            best, best_v = -1, -np.inf
            for c in range(P):
                if c in chosen or cand[u, c] < 0:
                    continue
                red = max((sim[cand[u, c], cand[u, j]] for j in chosen), default=0.0)
                v = (1 - lam) * rel[u, c] - lam * red
                if v > best_v:
                    best, best_v = c, v
            if best < 0:
                break
            out[u, t] = best
            chosen.append(best)
    return out
