"""Compiled kernels of post-hoc personas (private; used by :mod:`deepcuts.models.persona`).

PinnerSage (Pal et al., "PinnerSage: multi-modal user embedding framework for recommendations at
Pinterest", KDD 2020, DOI 10.1145/3394486.3403280) clusters each user's history in a fixed item
space and keeps one vector per cluster. Here a user's played items ``i`` are points ``y^_i =
y_i / |y_i|`` (unit item vectors of a trained single-vector model) and are clustered by
bottom-up agglomeration, stopped at a distance threshold (so the number of personas is chosen
per user: one taste, one cluster).

Kernels:

* :func:`cluster_users` - per user (parallel over users): agglomerative clustering with the
  Lance-Williams update (average linkage on cosine distance ``1 - y^_i . y^_j`` or Ward on
  ``|y^_i - y^_j|^2``), the nearest-neighbour cache making a merge ``O(m)`` in the common
  case; then clusters holding under ``min_share`` of the user's plays or fewer than
  ``min_items`` items are folded into the nearest other cluster (centroid cosine); clusters are
  numbered by plays, largest first.
* :func:`mixture_combine` - the mixture-of-tastes score (Kula, "Mixture-of-tastes models for
  representing users with diverse interests", 2017): per item, attention
  ``a_p(i) = softmax_p(log pi_p + cos(c_p, y_i) / tau)`` over the user's personas and
  ``s(i) = sum_p a_p(i) x_p . y_i``, and the hard ``max_p x_p . y_i`` beside it.

Each kernel has a plain NumPy reference (``reference_*``) used by the tests as an oracle.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = [
    "LINKAGES",
    "cluster_users",
    "mixture_combine",
    "reference_cluster_user",
    "reference_mixture",
]

#: linkage name -> kernel code
LINKAGES = {"average": 0, "ward": 1}


@njit(cache=True)
def _nearest(D, active, i, m):  # pragma: no cover - numba
    best = np.inf
    arg = -1
    for k in range(m):
        if k != i and active[k] and D[i, k] < best:
            best = D[i, k]
            arg = k
    return arg, best


@njit(cache=True, fastmath=True)
def _cluster_one(items, w, Yn, threshold, linkage, max_items, min_share, min_items, max_clusters,
                 lab):  # pragma: no cover - numba  # fmt: skip
    """Cluster one user's items; writes labels (0 = most plays) into ``lab``; returns count."""
    n = len(items)
    f = Yn.shape[1]
    if n == 0:
        return 0
    # the max_items most played items are agglomerated; the rest join their nearest cluster
    order = np.argsort(-w)
    m = min(n, max_items)
    D = np.empty((m, m), np.float64)
    for a in range(m):
        ia = items[order[a]]
        D[a, a] = np.inf
        for b in range(a + 1, m):
            ib = items[order[b]]
            c = 0.0
            for k in range(f):
                c += Yn[ia, k] * Yn[ib, k]
            d = 1.0 - c if linkage == 0 else max(2.0 - 2.0 * c, 0.0)
            D[a, b] = d
            D[b, a] = d
    size = np.ones(m, np.float64)
    active = np.ones(m, np.bool_)
    parent = np.arange(m)
    nn = np.empty(m, np.int64)
    nnd = np.empty(m, np.float64)
    for a in range(m):
        nn[a], nnd[a] = _nearest(D, active, a, m)
    # linkage height: average -> mean cosine distance; ward -> sqrt of the Lance-Williams d
    left = m
    while left > 1:
        i = -1
        best = np.inf
        for a in range(m):
            if active[a] and nnd[a] < best:
                best = nnd[a]
                i = a
        height = best if linkage == 0 else np.sqrt(best)
        if height > threshold and left <= max_clusters:
            break
        j = nn[i]
        ni, nj = size[i], size[j]
        for k in range(m):
            if not active[k] or k == i or k == j:
                continue
            if linkage == 0:
                d = (ni * D[i, k] + nj * D[j, k]) / (ni + nj)
            else:
                nk = size[k]
                d = ((ni + nk) * D[i, k] + (nj + nk) * D[j, k] - nk * D[i, j]) / (ni + nj + nk)
            D[i, k] = d
            D[k, i] = d
        active[j] = False
        size[i] = ni + nj
        for a in range(m):
            if parent[a] == j:
                parent[a] = i
        left -= 1
        for k in range(m):
            if not active[k]:
                continue
            if k == i or nn[k] == i or nn[k] == j:
                nn[k], nnd[k] = _nearest(D, active, k, m)
            elif D[k, i] < nnd[k]:
                nn[k] = i
                nnd[k] = D[k, i]
    # clusters -> 0..K-1, centroids (sums of unit vectors)
    root_id = np.full(m, -1, np.int64)
    K = 0
    for a in range(m):
        r = parent[a]
        if root_id[r] < 0:
            root_id[r] = K
            K += 1
    cen = np.zeros((K, f), np.float64)
    cw = np.zeros(K, np.float64)
    cn = np.zeros(K, np.int64)
    lab_o = np.empty(n, np.int64)
    for a in range(m):
        c = root_id[parent[a]]
        lab_o[a] = c
        for k in range(f):
            cen[c, k] += Yn[items[order[a]], k]
    for a in range(m, n):  # items past max_items: nearest centroid
        ia = items[order[a]]
        best = -np.inf
        arg = 0
        for c in range(K):
            s = 0.0
            for k in range(f):
                s += cen[c, k] * Yn[ia, k]
            s /= max(np.sqrt(np.sum(cen[c] ** 2)), 1e-12)
            if s > best:
                best = s
                arg = c
        lab_o[a] = arg
    for a in range(m, n):
        for k in range(f):
            cen[lab_o[a], k] += Yn[items[order[a]], k]
    total = 0.0
    for a in range(n):
        cw[lab_o[a]] += w[order[a]]
        cn[lab_o[a]] += 1
        total += w[order[a]]
    # fold small clusters (share or item count under the floor) into their nearest neighbour
    alive = np.ones(K, np.bool_)
    k_alive = K
    while k_alive > 1:
        small = -1
        smallest = np.inf
        for c in range(K):
            if alive[c] and (cw[c] < min_share * total or cn[c] < min_items):
                if cw[c] < smallest:
                    smallest = cw[c]
                    small = c
        if small < 0:
            break
        best = -np.inf
        into = -1
        ns = max(np.sqrt(np.sum(cen[small] ** 2)), 1e-12)
        for c in range(K):
            if alive[c] and c != small:
                s = 0.0
                for k in range(f):
                    s += cen[c, k] * cen[small, k]
                s /= ns * max(np.sqrt(np.sum(cen[c] ** 2)), 1e-12)
                if s > best:
                    best = s
                    into = c
        for a in range(n):
            if lab_o[a] == small:
                lab_o[a] = into
        for k in range(f):
            cen[into, k] += cen[small, k]
        cw[into] += cw[small]
        cn[into] += cn[small]
        alive[small] = False
        k_alive -= 1
    # number the surviving clusters by plays, largest first
    keys = np.full(K, np.inf)
    for c in range(K):
        if alive[c]:
            keys[c] = -cw[c]
    rank = np.argsort(keys)
    new_id = np.empty(K, np.int64)
    for r in range(K):
        new_id[rank[r]] = r
    for a in range(n):
        lab[order[a]] = new_id[lab_o[a]]
    return k_alive


@njit(parallel=True, cache=True)
def cluster_users(indptr, indices, w, Yn, threshold, linkage, max_items, min_share, min_items,
                  max_clusters, labels, n_clusters):  # pragma: no cover - numba  # fmt: skip
    """Cluster every user's items (rows of a CSR matrix) in the unit item space ``Yn``.

    Parameters
    ----------
    indptr, indices : int arrays
        CSR structure of the (n_users, n_items) history.
    w : float64 array of shape (nnz,)
        Plays of each stored entry (the shares and the ``max_items`` choice use them).
    Yn : float32 array of shape (n_items, f)
        Unit item vectors.
    threshold : float
        Linkage height above which two clusters are not merged (average: mean cosine
        distance; Ward: ``sqrt(2 n_a n_b / (n_a + n_b)) |c_a - c_b|``).
    linkage : int
        0 = average, 1 = Ward (:data:`LINKAGES`).
    max_items : int
        Most played items agglomerated per user; the rest join their nearest cluster.
    min_share, min_items : float, int
        A cluster under either floor is folded into its nearest neighbour.
    max_clusters : int
        Merging goes on past the threshold until at most this many clusters remain.
    labels : int32 array of shape (nnz,)
        Out: cluster of each stored entry, 0 = the cluster with the most plays.
    n_clusters : int32 array of shape (n_users,)
        Out: number of clusters of each user (0 for an empty row).
    """
    n = len(indptr) - 1
    for u in prange(n):
        lo = indptr[u]
        hi = indptr[u + 1]
        lab = np.empty(hi - lo, np.int64)
        k = _cluster_one(indices[lo:hi], w[lo:hi], Yn, threshold, linkage, max_items,
                         min_share, min_items, max_clusters, lab)  # fmt: skip
        for jj in range(lo, hi):
            labels[jj] = lab[jj - lo]
        n_clusters[u] = k


# no fastmath: a persona the user lacks is marked by logprior = -inf, and fastmath's no-inf
# assumption would fold that test away (the max would then see the empty persona's zeros)
@njit(parallel=True, cache=True)
def mixture_combine(S, A, logprior, inv_tau, out_mix, out_max):  # pragma: no cover - numba
    """Mixture-of-tastes and max scores from per-persona scores and attention cosines.

    ``a_p(i) = softmax_p(logprior_p + A_p(i) * inv_tau)``, ``out_mix = sum_p a_p(i) S_p(i)``,
    ``out_max = max_p S_p(i)``; personas with ``logprior = -inf`` are left out.

    Parameters
    ----------
    S, A : float32 arrays of shape (P, b, n_items)
        Persona scores ``x_p . y_i`` and attention cosines ``cos(c_p, y_i)``.
    logprior : float32 array of shape (b, P)
        ``log pi_p`` (``-inf`` for a persona the user does not have).
    inv_tau : float
        ``1 / tau``, the attention's sharpness.
    out_mix, out_max : float32 arrays of shape (b, n_items)
    """
    P, b, n = S.shape
    for u in prange(b):
        for i in range(n):
            top = -np.inf
            smax = -np.inf
            for p in range(P):
                if logprior[u, p] > -np.inf:
                    z = logprior[u, p] + A[p, u, i] * inv_tau
                    if z > top:
                        top = z
                    if S[p, u, i] > smax:
                        smax = S[p, u, i]
            num = 0.0
            den = 0.0
            for p in range(P):
                if logprior[u, p] > -np.inf:
                    e = np.exp(logprior[u, p] + A[p, u, i] * inv_tau - top)
                    num += e * S[p, u, i]
                    den += e
            out_mix[u, i] = num / den
            out_max[u, i] = smax


# ---------------------------------------------------------------------- NumPy references
def reference_cluster_user(items, w, Yn, threshold, linkage="average", min_share=0.0,
                           min_items=1, max_clusters=10**9):  # fmt: skip
    """Plain NumPy agglomeration of one user's items (no ``max_items`` cap): labels, count.

    Clusters are merged closest pair first, with the distance recomputed from the definition
    (average: mean pairwise cosine distance; Ward: ``sqrt(2 n_a n_b / (n_a + n_b)) |c_a -
    c_b|``), then the same small-cluster folding and numbering as :func:`cluster_users`.
    """
    V = Yn[np.asarray(items)].astype(np.float64)
    w = np.asarray(w, np.float64)
    n = len(V)
    groups = [[a] for a in range(n)]

    def dist(g, h):
        if linkage == "average":
            return float(np.mean(1.0 - V[g] @ V[h].T))
        ca, cb = V[g].mean(0), V[h].mean(0)
        na, nb = len(g), len(h)
        return float(np.sqrt(2.0 * na * nb / (na + nb)) * np.linalg.norm(ca - cb))

    while len(groups) > 1:
        pairs = [(dist(groups[a], groups[b]), a, b)
                 for a in range(len(groups)) for b in range(a + 1, len(groups))]  # fmt: skip
        d, a, b = min(pairs)
        if d > threshold and len(groups) <= max_clusters:
            break
        groups[a] = groups[a] + groups[b]
        del groups[b]
    total = w.sum()
    while len(groups) > 1:
        cw = [w[g].sum() for g in groups]
        bad = [k for k, g in enumerate(groups) if cw[k] < min_share * total or len(g) < min_items]
        if not bad:
            break
        s = min(bad, key=lambda k: cw[k])
        cs = V[groups[s]].sum(0)
        others = [k for k in range(len(groups)) if k != s]
        cos = [V[groups[k]].sum(0) @ cs / np.linalg.norm(V[groups[k]].sum(0)) for k in others]
        into = others[int(np.argmax(cos))]
        groups[into] = groups[into] + groups[s]
        del groups[s]
    groups.sort(key=lambda g: -w[g].sum())
    lab = np.empty(n, np.int64)
    for k, g in enumerate(groups):
        lab[g] = k
    return lab, len(groups)


def reference_mixture(S, A, logprior, tau):
    """NumPy oracle of :func:`mixture_combine`: (mixture, max) of shape (b, n_items)."""
    S = np.asarray(S, np.float64)
    z = np.asarray(logprior, np.float64).T[:, :, None] + np.asarray(A, np.float64) / tau
    z = z - z.max(axis=0, keepdims=True)
    e = np.where(np.isfinite(z), np.exp(z), 0.0)
    a = e / e.sum(axis=0, keepdims=True)
    mix = (a * S).sum(axis=0)
    on = np.isfinite(np.asarray(logprior)).T[:, :, None]
    mx = np.where(on, S, -np.inf).max(axis=0)
    return mix, mx
