"""Compiled SGD kernels of the ranking-loss models (private; used by :mod:`~deepcuts.models.ranking`).

Model (mixture of tastes, Kula 2017, "Mixture-of-tastes models for representing users with
diverse interests", arXiv:1711.08379): user ``u`` has ``P`` taste vectors ``x_up`` and ``P``
attention vectors ``a_up``; item ``i`` has ``y_i`` and a bias ``b_i``. With
``t_p = x_up . y_i`` and ``w_p = softmax_p(a_up . y_i)``,

    s_ui = sum_p w_p t_p + b_i

``P = 1`` is plain matrix factorisation with item biases (``w_1 = 1``; no attention vector).

Losses of a sampled triple ``(u, i, j)`` (``i`` played by ``u``, ``j`` not), each pair weighted
by ``rho_i`` (the popularity weight of the positive item):

* BPR (Rendle et al. 2009): ``-log sigmoid(s_ui - s_uj)``; step ``g = sigmoid(s_uj - s_ui)``.
* WARP (Weston, Bengio, Usunier 2011): negatives are drawn until one violates the margin,
  ``s_uj > s_ui - 1``, after ``N`` draws; the loss is ``L(N) (1 - s_ui + s_uj)`` with the rank
  weight ``L(N) = log(floor((n_items - 1) / N))``; no violator within ``max_trials`` draws, no
  update.

Gradients of ``d = s_ui - s_uj`` (``m = sum_p w_p t_p``, the score without bias):

    dd/dx_up = w_p(i) y_i - w_p(j) y_j
    dd/da_up = w_p(i) (t_p(i) - m(i)) y_i - w_p(j) (t_p(j) - m(j)) y_j
    dd/dy_i  = sum_p w_p(i) x_up + w_p(i) (t_p(i) - m(i)) a_up      (and minus that for y_j)
    dd/db_i  = 1,  dd/db_j = -1

Every touched parameter ``theta`` moves along ``g = c * grad - reg * theta`` (``c`` the loss's
step weight): plain SGD, ``theta += lr * g``, or Adagrad per coordinate (Duchi, Hazan, Singer,
JMLR 2011), ``G += g^2; theta += lr * g / sqrt(G)``. The persona-distinctness penalty
``w_d sum_{p<q} exp(-|x_up - x_uq|^2 / s)`` takes a plain SGD step on the user's tastes at
every sample.

Determinism (same seed, same model, whatever the number of threads)
-------------------------------------------------------------------
Lock-free "Hogwild" SGD makes results depend on thread timing. These kernels use stratified SGD
instead (DSGD, Gemulla, Nijkamp, Haas, Sismanis, KDD 2011): users are split into ``T`` blocks
and items into ``T`` blocks; an epoch runs ``T`` sub-epochs, and in sub-epoch ``s`` the strata
``(user block b, item block (b + s) mod T)`` for ``b = 0..T-1`` are processed in parallel. The
strata of a sub-epoch share no user and no item, so no two threads ever touch the same vector,
and each stratum draws its samples and negatives (from its own item block) from its own
random stream seeded by the caller. The model therefore depends on the seed and on ``T`` only,
not on the number of threads or their timing. Each stratum's loss goes to its own slot and the
slots are summed in a fixed order.

The random stream is SplitMix64 (Steele, Lea, Flood 2014), written out so that the NumPy
references reproduce it bit for bit: :func:`reference_epoch` and :func:`reference_fold_in`
are the oracles of :func:`sgd_epoch` and :func:`fold_in_rows` in the tests.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = [
    "BPR_LOSS",
    "WARP_LOSS",
    "fold_in_rows",
    "mixture_scores",
    "reference_epoch",
    "reference_fold_in",
    "sgd_epoch",
]

BPR_LOSS = 0
WARP_LOSS = 1

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_MASK = (1 << 64) - 1
#: draws of a negative that the user did not play before the sample is skipped
NEG_TRIES = 20


@njit(inline="always", cache=True)
def _rand(state):  # pragma: no cover - numba
    """SplitMix64: advances ``state[0]`` and returns a uniform uint64."""
    state[0] += _GOLDEN
    z = state[0]
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(inline="always", cache=True)
def _below(state, n):  # pragma: no cover - numba
    """Uniform integer in [0, n)."""
    return np.int64(_rand(state) % np.uint64(n))


@njit(inline="always", cache=True)
def _played(indptr, indices, u, j):  # pragma: no cover - numba
    """Whether item ``j`` is in user ``u``'s (sorted) CSR row: binary search."""
    lo = indptr[u]
    hi = indptr[u + 1]
    while lo < hi:
        mid = (lo + hi) >> 1
        v = indices[mid]
        if v < j:
            lo = mid + 1
        elif v > j:
            hi = mid
        else:
            return True
    return False


@njit(inline="always", cache=True)
def _score(X, A, Y, B, u, i, t, w):  # pragma: no cover - numba
    """``s_ui``; fills ``t[p] = x_up . y_i`` and ``w[p] = softmax_p(a_up . y_i)``."""
    P, f = X.shape[1], X.shape[2]
    if P == 1:
        acc = np.float32(0.0)
        for k in range(f):
            acc += X[u, 0, k] * Y[i, k]
        t[0] = acc
        w[0] = 1.0
        return acc + B[i]
    emax = np.float32(-np.inf)
    for p in range(P):
        tp = np.float32(0.0)
        ep = np.float32(0.0)
        for k in range(f):
            tp += X[u, p, k] * Y[i, k]
            ep += A[u, p, k] * Y[i, k]
        t[p] = tp
        w[p] = ep
        if ep > emax:
            emax = ep
    z = np.float32(0.0)
    for p in range(P):
        w[p] = math.exp(w[p] - emax)
        z += w[p]
    m = np.float32(0.0)
    for p in range(P):
        w[p] /= z
        m += w[p] * t[p]
    return m + B[i]


@njit(inline="always", cache=True)
def _step(theta, G, g, lr, ada):  # pragma: no cover - numba
    """New value of a parameter after the ascent step ``g`` (SGD, or Adagrad with sum ``G``)."""
    if ada:
        G += g * g
        return theta + lr * g / math.sqrt(G + 1e-8), G
    return theta + lr * g, G


@njit(inline="always", cache=True)
def _update(
    X, A, Y, B, GX, GA, GY, GB, u, i, j, c, lr, reg, ti, wi, mi, tj, wj, mj, items_too, ada,
):  # pragma: no cover - numba  # fmt: skip
    """One step along ``c * grad(s_ui - s_uj) - reg * theta`` (module docstring)."""
    P, f = X.shape[1], X.shape[2]
    for k in range(f):
        yi = Y[i, k]
        yj = Y[j, k]
        gi = np.float32(0.0)
        gj = np.float32(0.0)
        for p in range(P):
            x = X[u, p, k]
            gi += wi[p] * x
            gj += wj[p] * x
            X[u, p, k], GX[u, p, k] = _step(
                x, GX[u, p, k], c * (wi[p] * yi - wj[p] * yj) - reg * x, lr, ada
            )
            if P > 1:
                a = A[u, p, k]
                hi = wi[p] * (ti[p] - mi)
                hj = wj[p] * (tj[p] - mj)
                gi += hi * a
                gj += hj * a
                A[u, p, k], GA[u, p, k] = _step(
                    a, GA[u, p, k], c * (hi * yi - hj * yj) - reg * a, lr, ada
                )
        if items_too:
            Y[i, k], GY[i, k] = _step(yi, GY[i, k], c * gi - reg * yi, lr, ada)
            Y[j, k], GY[j, k] = _step(yj, GY[j, k], -c * gj - reg * yj, lr, ada)
    if items_too:
        B[i], GB[i] = _step(B[i], GB[i], c - reg * B[i], lr, ada)
        B[j], GB[j] = _step(B[j], GB[j], -c - reg * B[j], lr, ada)


@njit(inline="always", cache=True)
def _distinct(X, u, lr, weight, scale):  # pragma: no cover - numba
    """Gradient step on ``weight * sum_{p<q} exp(-|x_up - x_uq|^2 / scale)``; returns its value."""
    P, f = X.shape[1], X.shape[2]
    total = 0.0
    for p in range(P):
        for q in range(p + 1, P):
            d2 = np.float32(0.0)
            for k in range(f):
                d = X[u, p, k] - X[u, q, k]
                d2 += d * d
            e = math.exp(-d2 / scale)
            total += weight * e
            g = np.float32(lr * weight * e * 2.0 / scale)
            for k in range(f):
                d = X[u, p, k] - X[u, q, k]
                X[u, p, k] += g * d
                X[u, q, k] -= g * d
    return total


@njit(inline="always", cache=True)
def _sample_step(
    indptr, indices, X, A, Y, B, GX, GA, GY, GB, u, i, neg_items, neg_lo, neg_hi, rho, lr, reg,
    loss_kind, max_trials, n_items, dw, ds, items_too, ada, state, ti, wi, tj, wj,
):  # pragma: no cover - numba  # fmt: skip
    """One (u, i) sample: draw negatives from ``neg_items[neg_lo:neg_hi]``, update; the loss."""
    n_neg = neg_hi - neg_lo
    si = _score(X, A, Y, B, u, i, ti, wi)
    mi = si - B[i]
    loss = 0.0
    c = np.float32(0.0)
    j = -1
    sj = np.float32(0.0)
    if loss_kind == 0:  # BPR: one negative the user did not play
        for _ in range(NEG_TRIES):
            cand = neg_items[neg_lo + _below(state, n_neg)]
            if not _played(indptr, indices, u, cand):
                j = cand
                break
        if j < 0:
            return 0.0
        sj = _score(X, A, Y, B, u, j, tj, wj)
        d = si - sj
        # -log sigmoid(d) = softplus(-d); step sigmoid(-d)
        if d > 0:
            loss = math.log1p(math.exp(-d))
            g = math.exp(-d) / (1.0 + math.exp(-d))
        else:
            loss = -d + math.log1p(math.exp(d))
            g = 1.0 / (1.0 + math.exp(d))
        c = np.float32(rho * g)
    else:  # WARP: draw until a negative violates the margin
        for trial in range(1, max_trials + 1):
            cand = neg_items[neg_lo + _below(state, n_neg)]
            if _played(indptr, indices, u, cand):
                continue
            sc = _score(X, A, Y, B, u, cand, tj, wj)
            if sc > si - 1.0:
                j = cand
                sj = sc
                rank = (n_items - 1) // trial
                L = math.log(rank) if rank > 1 else 0.0
                loss = L * (1.0 - si + sj)
                c = np.float32(rho * L)
                break
        if j < 0 or c == 0.0:
            return loss
    _update(
        X, A, Y, B, GX, GA, GY, GB, u, i, j, c, np.float32(lr), np.float32(reg), ti, wi, mi, tj,
        wj, sj - B[j], items_too, ada,
    )  # fmt: skip
    if dw > 0.0 and X.shape[1] > 1:
        loss += _distinct(X, u, lr, dw, ds)
    return loss


@njit(parallel=True, cache=True, fastmath=True)
def sgd_epoch(
    indptr, indices, rows, X, A, Y, B, GX, GA, GY, GB, order, strat_ptr, blk_items, blk_ptr, rho,
    seeds, lr, reg, loss_kind, max_trials, dw, ds, ada, out_loss,
):  # pragma: no cover - numba  # fmt: skip
    """One epoch of stratified SGD (module docstring), in place.

    Parameters
    ----------
    indptr, indices : CSR structure of the training matrix (n_users, n_items), sorted rows
    rows : int32 (nnz,) user of each stored entry
    X, A : float32 (n_users, P, f) tastes and attentions (``A`` unused when ``P == 1``)
    Y : float32 (n_items, f); B : float32 (n_items,)
    GX, GA, GY, GB : float32, shaped as X, A, Y, B: Adagrad sums of squared steps (``ada``)
    order : int64 (nnz,) stored entries sorted by stratum ``user_block * T + item_block``
    strat_ptr : int64 (T*T + 1,) start of each stratum in ``order``
    blk_items, blk_ptr : items sorted by item block, and each block's start (T + 1,)
    rho : float32 (n_items,) weight of each positive item
    seeds : uint64 (T, T) seed of the stratum processed by block ``b`` in sub-epoch ``s``
    out_loss : float64 (T, T) each stratum's summed loss
    """
    T = len(blk_ptr) - 1
    P = X.shape[1]
    n_items = Y.shape[0]
    for s in range(T):
        for b in prange(T):
            ib = (b + s) % T
            st = b * T + ib
            lo = strat_ptr[st]
            n = strat_ptr[st + 1] - lo
            state = np.empty(1, np.uint64)
            state[0] = seeds[s, b]
            ti = np.empty(P, np.float32)
            wi = np.empty(P, np.float32)
            tj = np.empty(P, np.float32)
            wj = np.empty(P, np.float32)
            acc = 0.0
            for _ in range(n):
                e = order[lo + _below(state, n)]
                u = rows[e]
                i = indices[e]
                acc += _sample_step(
                    indptr, indices, X, A, Y, B, GX, GA, GY, GB, u, i, blk_items, blk_ptr[ib],
                    blk_ptr[ib + 1], rho[i], lr, reg, loss_kind, max_trials, n_items, dw, ds,
                    True, ada, state, ti, wi, tj, wj,
                )  # fmt: skip
            out_loss[s, b] = acc


@njit(parallel=True, cache=True, fastmath=True)
def fold_in_rows(
    indptr, indices, X, A, Y, B, GX, GA, all_items, rho, seeds, epochs, lr, reg, loss_kind,
    max_trials, dw, ds, ada,
):  # pragma: no cover - numba  # fmt: skip
    """User vectors for history rows with the items fixed: ``epochs`` passes of SGD per row.

    Each row (one listener) draws ``epochs * n_u`` samples from its own stream (``seeds[r]``);
    negatives come from all items. Rows are independent, so the result does not depend on
    threads. ``X``, ``A`` (b, P, f) hold the starting vectors and are updated in place (with
    their Adagrad sums ``GX``, ``GA``).
    """
    b = len(indptr) - 1
    P = X.shape[1]
    n_items = Y.shape[0]
    for r in prange(b):
        lo = indptr[r]
        n = indptr[r + 1] - lo
        if n == 0:
            continue
        state = np.empty(1, np.uint64)
        state[0] = seeds[r]
        ti = np.empty(P, np.float32)
        wi = np.empty(P, np.float32)
        tj = np.empty(P, np.float32)
        wj = np.empty(P, np.float32)
        for _ in range(epochs * n):
            i = indices[lo + _below(state, n)]
            _sample_step(
                indptr, indices, X, A, Y, B, GX, GA, GX[:, 0], GX[0, 0], r, i, all_items, 0,
                n_items, rho[i], lr, reg, loss_kind, max_trials, n_items, dw, ds, False, ada,
                state, ti, wi, tj, wj,
            )  # fmt: skip


def mixture_scores(Xu: np.ndarray, Au: np.ndarray, Y: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Soft mixture scores ``sum_p softmax_p(a_up . y_i) x_up . y_i + b_i``, (b, n_items) float32.

    Vectorised NumPy (a loop over the ``P`` tastes, not over users).
    """
    Yt = np.ascontiguousarray(Y.T)
    P = Xu.shape[1]
    E = np.stack([Au[:, p] @ Yt for p in range(P)])  # (P, b, n)
    E -= E.max(axis=0, keepdims=True)
    np.exp(E, out=E)
    E /= E.sum(axis=0, keepdims=True)
    S = np.zeros(E.shape[1:], np.float32)
    for p in range(P):
        S += E[p] * (Xu[:, p] @ Yt)
    S += B[None, :]
    return S


# ---------------------------------------------------------------------------- NumPy references
class _Stream:
    """SplitMix64 in Python integers (the oracle of the compiled ``_rand``)."""

    def __init__(self, seed: int):
        self.state = int(seed) & _MASK

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & _MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        return self.next() % int(n)


def _ref_score(X, A, Y, B, u, i):
    t = X[u] @ Y[i]
    if X.shape[1] == 1:
        w = np.ones(1)
    else:
        e = A[u] @ Y[i]
        w = np.exp(e - e.max())
        w /= w.sum()
    return float(w @ t + B[i]), t, w


def _ref_sample(indptr, indices, X, A, Y, B, G, u, i, negs, rho, lr, reg, loss_kind, max_trials,
                dw, ds, items_too, ada, rs):  # fmt: skip
    row = set(indices[indptr[u] : indptr[u + 1]].tolist())
    n_items = Y.shape[0]
    GX, GA, GY, GB = G
    si, ti, wi = _ref_score(X, A, Y, B, u, i)
    j, c, loss = -1, 0.0, 0.0
    if loss_kind == BPR_LOSS:
        for _ in range(NEG_TRIES):
            cand = int(negs[rs.below(len(negs))])
            if cand not in row:
                j = cand
                break
        if j < 0:
            return 0.0
        sj, tj, wj = _ref_score(X, A, Y, B, u, j)
        d = si - sj
        loss = float(np.logaddexp(0.0, -d))
        c = rho[i] / (1.0 + np.exp(d))
    else:
        for trial in range(1, max_trials + 1):
            cand = int(negs[rs.below(len(negs))])
            if cand in row:
                continue
            sc, tc, wc = _ref_score(X, A, Y, B, u, cand)
            if sc > si - 1.0:
                j, sj, tj, wj = cand, sc, tc, wc
                rank = (n_items - 1) // trial
                L = np.log(rank) if rank > 1 else 0.0
                loss = L * (1.0 - si + sj)
                c = rho[i] * L
                break
        if j < 0 or c == 0.0:
            return loss
    mi, mj = si - B[i], sj - B[j]
    hi, hj = wi * (ti - mi), wj * (tj - mj)
    gi = wi @ X[u] + (hi @ A[u] if X.shape[1] > 1 else 0.0)
    gj = wj @ X[u] + (hj @ A[u] if X.shape[1] > 1 else 0.0)

    def step(theta, G, g):
        if ada:
            G += g * g
            return theta + lr * g / np.sqrt(G + 1e-8)
        return theta + lr * g

    X[u] = step(X[u], GX[u], c * (wi[:, None] * Y[i] - wj[:, None] * Y[j]) - reg * X[u])
    if X.shape[1] > 1:
        A[u] = step(A[u], GA[u], c * (hi[:, None] * Y[i] - hj[:, None] * Y[j]) - reg * A[u])
    if items_too:
        Y[i] = step(Y[i], GY[i], c * gi - reg * Y[i])
        Y[j] = step(Y[j], GY[j], -c * gj - reg * Y[j])
        bi = step(B[i : i + 1], GB[i : i + 1], c - reg * B[i : i + 1])
        bj = step(B[j : j + 1], GB[j : j + 1], -c - reg * B[j : j + 1])
        B[i], B[j] = bi[0], bj[0]
    if dw > 0 and X.shape[1] > 1:
        P = X.shape[1]
        for p in range(P):
            for q in range(p + 1, P):
                d = X[u, p] - X[u, q]
                e = np.exp(-float(d @ d) / ds)
                loss += dw * e
                g = lr * dw * e * 2.0 / ds
                X[u, p] += g * d
                X[u, q] -= g * d
    return loss


def reference_epoch(indptr, indices, rows, X, A, Y, B, GX, GA, GY, GB, order, strat_ptr, blk_items,
                    blk_ptr, rho, seeds, lr, reg, loss_kind, max_trials, dw, ds, ada):  # fmt: skip
    """:func:`sgd_epoch` with Python loops in float64 (updates copies); returns (X, A, Y, B, loss)
    (and the Adagrad sums in a fifth tuple).

    Strata of a sub-epoch are run one after the other: they touch disjoint vectors, so the
    order does not matter (which is what makes the parallel kernel deterministic).
    """
    X, A, Y, B = (np.array(v, np.float64) for v in (X, A, Y, B))
    G = tuple(np.array(v, np.float64) for v in (GX, GA, GY, GB))
    T = len(blk_ptr) - 1
    loss = np.zeros((T, T))
    for s in range(T):
        for b in range(T):
            ib = (b + s) % T
            st = b * T + ib
            lo, n = strat_ptr[st], strat_ptr[st + 1] - strat_ptr[st]
            rs = _Stream(int(seeds[s, b]))
            negs = blk_items[blk_ptr[ib] : blk_ptr[ib + 1]]
            for _ in range(n):
                e = order[lo + rs.below(n)]
                loss[s, b] += _ref_sample(
                    indptr, indices, X, A, Y, B, G, int(rows[e]), int(indices[e]), negs, rho,
                    lr, reg, loss_kind, max_trials, dw, ds, True, ada, rs,
                )  # fmt: skip
    return X, A, Y, B, loss, G


def reference_fold_in(indptr, indices, X, A, Y, B, GX, GA, rho, seeds, epochs, lr, reg, loss_kind,
                      max_trials, dw, ds, ada):  # fmt: skip
    """:func:`fold_in_rows` with Python loops in float64; returns new (X, A)."""
    X, A = np.array(X, np.float64), np.array(A, np.float64)
    Y, B = np.asarray(Y, np.float64), np.asarray(B, np.float64)
    G = (np.array(GX, np.float64), np.array(GA, np.float64), None, None)
    negs = np.arange(Y.shape[0])
    for r in range(len(indptr) - 1):
        lo, n = indptr[r], indptr[r + 1] - indptr[r]
        if n == 0:
            continue
        rs = _Stream(int(seeds[r]))
        for _ in range(epochs * n):
            i = int(indices[lo + rs.below(n)])
            _ref_sample(indptr, indices, X, A, Y, B, G, r, i, negs, rho, lr, reg, loss_kind,
                        max_trials, dw, ds, False, ada, rs)  # fmt: skip
    return X, A
