"""Compiled kernels of multi-persona ALS (private; used by :mod:`deepcuts.models.persona`).

Notation (MaxMF, Weston, Weiss, Yee, RecSys 2013, with the implicit-feedback loss of Hu, Koren,
Volinsky 2008): user ``u`` has persona vectors ``x_up`` (``p < P_u``), item ``i`` has ``y_i``;
the score is ``s_ui = max_p x_up . y_i``. Every observed pair is *assigned* to one persona
``a_ui``; the rows of the solves are (user, persona) *pseudo-users* whose stored entries are
the items assigned to them, so one solve kernel serves both half-steps:

    x_r = (Y^T C_r Y + reg*I)^-1 (Y^T C_r p(r) + e_r)

where ``r`` is a row (a pseudo-user, or an item with the pseudo-users as columns), ``C_r`` its
confidences (1 on every column that is not stored), and ``e_r`` an optional extra linear term
(the linearised persona-distinctness penalty, see :func:`distinct_push`).

Kernels:

* :func:`solve_rows` - conjugate-gradient (warm-started, Takacs, Pilaszy, Tikk 2011) or exact
  Cholesky solve of every active row, optionally projected onto ``x >= 0`` (the non-negative
  variant); returns each row's data loss before the update.
* :func:`assign_personas` - the assignment step ``a_ui = argmax_p x_up . y_i`` with the
  anti-collapse penalty and the no-empty-persona rule.
* :func:`blend_lists` - fills a list from several personas' ranked candidates in proportion to
  a mix.
* :func:`calibrate_lists` - the calibrated combined list (Steck 2018, over personas): greedy
  relevance against the KL divergence of the list's persona mix from the listener's shares.

Stored entries carry *signed confidences* (``+c`` for ``p = 1``, ``-c`` for an observed dislike),
the convention of :mod:`deepcuts.models._als_kernels`. Each kernel has a plain NumPy reference
(``reference_*``) used by the tests as an oracle.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from deepcuts.models._als_kernels import (  # shared inline helpers
    _cg_advance,
    _cholesky_solve,
    _dot,
    _symv,
)

__all__ = [
    "BLOCK",
    "assign_personas",
    "blend_lists",
    "distinct_push",
    "reference_assign",
    "reference_blend",
    "reference_solve_rows",
    "solve_rows",
]

#: rows per parallel work unit (scratch arrays are allocated once per block)
BLOCK = 64


@njit(cache=True)
def _max_row_nnz(indptr):  # pragma: no cover - numba
    m = 0
    for u in range(len(indptr) - 1):
        m = max(m, indptr[u + 1] - indptr[u])
    return m


@njit(parallel=True, cache=True, fastmath=True)
def solve_rows(
    indptr, indices, conf, X, Y, A0, reg, rw, cw, extra, active, cg_steps, exact, nonneg, loss
):  # pragma: no cover - numba
    """Update every active row of ``X`` in place; inactive rows are set to zero.

    Every unobserved cell ``(r, j)`` has preference 0 and confidence ``rw_r * cw_j`` (with
    ``rw = cw = 1`` this is the implicit-ALS solve), so the system of row ``r`` is

        A_r = rw_r A0 + reg_r*I + sum_{j stored} (c_rj - rw_r cw_j) y_j y_j^T,
        b_r = sum_{j stored} c_rj p_rj y_j + e_r,       A0 = sum_j cw_j y_j y_j^T.

    Parameters
    ----------
    indptr, indices : int arrays
        CSR structure of the (n_rows, n_cols) confidence matrix.
    conf : float32 array of shape (nnz,)
        Signed confidences.
    X : float32 array of shape (n_rows, f)
        Rows to solve (warm start for CG), modified in place.
    Y : float32 array of shape (n_cols, f)
        The fixed side.
    A0 : float32 array of shape (f, f)
        ``Y^T diag(cw) Y`` (without the regularisation).
    reg : float32 array of shape (n_rows,)
        L2 weight of each row.
    rw : float32 array of shape (n_rows,)
        Row weight of unobserved cells.
    cw : float32 array of shape (n_cols,)
        Column weight of unobserved cells.
    extra : float32 array of shape (n_rows, f)
        Extra linear term ``e_r`` added to ``Y^T C_r p(r)``.
    active : bool array of shape (n_rows,)
    cg_steps : int
        Conjugate-gradient steps (ignored when ``exact``).
    exact : bool
        Cholesky solve (float64) instead of CG.
    nonneg : bool
        Project the solution onto ``x >= 0``.
    loss : float64 array of shape (n_rows,)
        Out: ``sum_j c_rj (p_rj - x_r . y_j)^2 + reg |x_r|^2`` over all columns (confidence
        ``rw_r cw_j`` where unobserved), for the factors as they were on entry (0 if inactive).
    """
    n, f = X.shape
    n_blocks = (n + BLOCK - 1) // BLOCK
    max_nnz = _max_row_nnz(indptr)
    for blk in prange(n_blocks):
        x = np.empty(f, np.float32)
        r = np.empty(f, np.float32)
        p = np.empty(f, np.float32)
        ap = np.empty(f, np.float32)
        s = np.empty(max(max_nnz, 1), np.float32)
        A = np.empty((f, f), np.float64)
        b = np.empty(f, np.float64)
        z = np.empty(f, np.float64)
        for u in range(blk * BLOCK, min(n, (blk + 1) * BLOCK)):
            if not active[u]:
                for k in range(f):
                    X[u, k] = 0.0
                loss[u] = 0.0
                continue
            lo = indptr[u]
            hi = indptr[u + 1]
            wr = rw[u]
            rg = reg[u]
            for k in range(f):
                x[k] = X[u, k]
            _symv(A0, x, ap, f)
            for k in range(f):
                ap[k] = wr * ap[k] + rg * x[k]
            dense = _dot(x, ap, f)
            for jj in range(lo, hi):
                s[jj - lo] = _dot(Y[indices[jj]], x, f)
            lu = 0.0
            for jj in range(lo, hi):
                c = conf[jj]
                pu = np.float32(1.0)
                if c < 0:
                    c = -c
                    pu = np.float32(0.0)
                d = pu - s[jj - lo]
                lu += c * d * d - wr * cw[indices[jj]] * s[jj - lo] * s[jj - lo]
            loss[u] = dense + lu
            if exact:
                # A_r = Y^T Y + reg*I + sum_j (c_rj - 1) y_j y_j^T ; b_r = Y^T C_r p(r) + e_r
                for k in range(f):
                    b[k] = extra[u, k]
                    for j in range(k + 1):
                        A[k, j] = wr * A0[k, j]
                    A[k, k] += rg
                for jj in range(lo, hi):
                    i = indices[jj]
                    c = np.float64(conf[jj])
                    pu64 = 1.0
                    if c < 0:
                        c = -c
                        pu64 = 0.0
                    w = c - wr * cw[i]
                    for k in range(f):
                        yk = np.float64(Y[i, k])
                        b[k] += c * pu64 * yk
                        wy = w * yk
                        for j in range(k + 1):
                            A[k, j] += wy * Y[i, j]
                _cholesky_solve(A, b, z, f)
                for k in range(f):
                    x[k] = np.float32(z[k])
            else:
                # r = Y^T C_r p(r) + e_r - A_r x
                for k in range(f):
                    r[k] = extra[u, k] - ap[k]
                for jj in range(lo, hi):
                    c = conf[jj]
                    pu = np.float32(1.0)
                    if c < 0:
                        c = -c
                        pu = np.float32(0.0)
                    i = indices[jj]
                    coef = c * pu - (c - wr * cw[i]) * s[jj - lo]
                    for k in range(f):
                        r[k] += coef * Y[i, k]
                rsold = _dot(r, r, f)
                if rsold > 1e-20:
                    for k in range(f):
                        p[k] = r[k]
                    for _ in range(cg_steps):
                        _symv(A0, p, ap, f)
                        for k in range(f):
                            ap[k] = wr * ap[k] + rg * p[k]
                        for jj in range(lo, hi):
                            s[jj - lo] = _dot(Y[indices[jj]], p, f)
                        for jj in range(lo, hi):
                            c = conf[jj]
                            if c < 0:
                                c = -c
                            i = indices[jj]
                            coef = (c - wr * cw[i]) * s[jj - lo]
                            for k in range(f):
                                ap[k] += coef * Y[i, k]
                        rsold = _cg_advance(x, r, p, ap, rsold, f)
                        if rsold < 0:
                            break
            for k in range(f):
                v = x[k]
                if nonneg and v < 0:
                    v = np.float32(0.0)
                X[u, k] = v


@njit(parallel=True, cache=True, fastmath=True)
def assign_personas(
    indptr, indices, U, Y, n_active, collapse_weight, rounds, out
):  # pragma: no cover - numba
    """Assign every stored (user, item) entry to one of the user's personas.

    The assignment maximises, per user,

        sum_i x_{u,a_ui} . y_i  -  collapse_weight * n_u * sum_p (share_up - 1/P_u)^2

    with ``share_up`` the fraction of the user's ``n_u`` items assigned to persona ``p``: first
    ``a_ui = argmax_p x_up . y_i``, then (if ``collapse_weight > 0``) up to ``rounds`` sweeps
    of exact coordinate ascent (moving one item into persona ``p`` changes the penalty by
    ``collapse_weight * (2 n_up / n_u + 1/n_u - 2/P_u)``, so each item goes to
    ``argmax_p x_up . y_i - 2 collapse_weight n_up / n_u``, counts without the item). Finally no
    persona of a user with ``n_u >= P_u`` stays empty: an empty persona takes the worst-fitted
    item (lowest assigned score) among personas holding at least two items.

    Parameters
    ----------
    indptr, indices : int arrays
        CSR structure of the (n_users, n_items) matrix.
    U : float32 array of shape (n_users, P, f)
    Y : float32 array of shape (n_items, f)
    n_active : int array of shape (n_users,)
        ``P_u``: personas ``0..P_u-1`` of user ``u`` take part.
    collapse_weight : float
    rounds : int
    out : int32 array of shape (nnz,)
        Out: the persona of each stored entry.
    """
    n_users, P, f = U.shape
    n_blocks = (n_users + BLOCK - 1) // BLOCK
    max_nnz = _max_row_nnz(indptr)
    for blk in prange(n_blocks):
        S = np.empty((max(max_nnz, 1), P), np.float32)
        cnt = np.zeros(P, np.int64)
        for u in range(blk * BLOCK, min(n_users, (blk + 1) * BLOCK)):
            lo = indptr[u]
            hi = indptr[u + 1]
            m = hi - lo
            pu = n_active[u]
            if pu <= 1 or m == 0:
                for jj in range(lo, hi):
                    out[jj] = 0
                continue
            for p in range(P):
                cnt[p] = 0
            for jj in range(lo, hi):
                i = indices[jj]
                best = 0
                for p in range(pu):
                    v = _dot(U[u, p], Y[i], f)
                    S[jj - lo, p] = v
                    if v > S[jj - lo, best]:
                        best = p
                out[jj] = best
                cnt[best] += 1
            if collapse_weight > 0:
                g = 2.0 * collapse_weight / m
                for _ in range(rounds):
                    changed = 0
                    for jj in range(lo, hi):
                        cur = out[jj]
                        cnt[cur] -= 1
                        best = 0
                        bv = -np.inf
                        for p in range(pu):
                            v = S[jj - lo, p] - g * cnt[p]
                            if v > bv:
                                bv = v
                                best = p
                        cnt[best] += 1
                        out[jj] = best
                        if best != cur:
                            changed += 1
                    if changed == 0:
                        break
            if m >= pu:
                for p in range(pu):
                    if cnt[p] == 0:
                        worst = -1
                        wv = np.inf
                        for jj in range(lo, hi):
                            q = out[jj]
                            if cnt[q] >= 2 and S[jj - lo, q] < wv:
                                wv = S[jj - lo, q]
                                worst = jj
                        if worst >= 0:
                            cnt[out[worst]] -= 1
                            out[worst] = p
                            cnt[p] += 1


@njit(parallel=True, cache=True)
def blend_lists(cand, cand_val, mix, n, out_idx, out_val, out_per):  # pragma: no cover - numba
    """Fill each list from several personas' candidates in proportion to ``mix``.

    Position ``k`` (0-based) goes to the persona with the largest deficit
    ``mix_p * (k + 1) - taken_p`` (ties to the lower persona), which takes its best candidate
    not already in the list; a persona whose candidates run out drops out.

    Parameters
    ----------
    cand : int array of shape (b, P, m)
        Each persona's ranked candidate items (-1 = none).
    cand_val : float32 array of shape (b, P, m)
        Their scores.
    mix : float64 array of shape (b, P)
        Non-negative weights summing to 1 per row (0 = persona not used).
    n : int
    out_idx, out_val, out_per : arrays of shape (b, n)
        Out: items (-1 padded), scores (-inf padded), source persona (-1 padded).
    """
    b, P, m = cand.shape
    for r in prange(b):
        ptr = np.zeros(P, np.int64)
        taken = np.zeros(P, np.float64)
        w = mix[r].copy()
        pos = 0
        while pos < n:
            best = -1
            bv = -np.inf
            for p in range(P):
                if w[p] > 0:
                    d = w[p] * (pos + 1) - taken[p]
                    if d > bv:
                        bv = d
                        best = p
            if best < 0:
                break
            found = False
            while ptr[best] < m:
                it = cand[r, best, ptr[best]]
                ptr[best] += 1
                if it < 0:
                    ptr[best] = m
                    break
                dup = False
                for k in range(pos):
                    if out_idx[r, k] == it:
                        dup = True
                        break
                if not dup:
                    out_idx[r, pos] = it
                    out_val[r, pos] = cand_val[r, best, ptr[best] - 1]
                    out_per[r, pos] = best
                    found = True
                    break
            if not found:
                w[best] = 0.0
                continue
            taken[best] += 1.0
            pos += 1
        for k in range(pos, n):
            out_idx[r, k] = -1
            out_val[r, k] = -np.inf
            out_per[r, k] = -1


@njit(parallel=True, cache=True)
def calibrate_lists(rel, member, shares, lam, alpha, n, out):  # pragma: no cover - numba
    """Calibrated lists over personas (Steck, RecSys 2018, with tastes in place of genres).

    Position ``t`` takes the unused candidate ``j`` maximising
    ``(1 - lam) s_j / |s_1| - lam KL(p || q~)``, where ``p`` is the user's target mix over the
    categories (persona shares, or persona x popularity band), ``q`` the mix of the list with
    ``j`` added (each candidate belongs to one category, ``member``), ``q~ = (1 - alpha) q +
    alpha p`` (Steck's smoothing) and ``s_1`` the best candidate's score. Since the KL term
    depends only on ``j``'s category, the best candidate of each category is its first unused
    one: each step weighs one candidate per category. Parallel over rows;
    :func:`calibrate_lists_serial` is the same for a few rows (no thread start-up).

    Parameters
    ----------
    rel : float32 array of shape (b, C)
        Candidates' scores, descending per row (``-inf`` = no candidate).
    member : int32 array of shape (b, C)
        Category of each candidate (``0 <= member < P``).
    shares : float32 array of shape (b, P)
        The user's target mix (0 for categories not in the history).
    lam, alpha : float
    n : int
    out : int32 array of shape (b, n)
        Out: positions in ``rel`` of the list, best first (-1 padded).
    """
    for r in prange(rel.shape[0]):
        _calibrate_row(rel[r], member[r], shares[r], lam, alpha, n, out[r])


@njit(cache=True)
def calibrate_lists_serial(rel, member, shares, lam, alpha, n, out):  # pragma: no cover - numba
    """:func:`calibrate_lists` on one thread (a request's few rows)."""
    for r in range(rel.shape[0]):
        _calibrate_row(rel[r], member[r], shares[r], lam, alpha, n, out[r])


@njit(cache=True, inline="always")
def _calibrate_row(rel, member, shares, lam, alpha, n, out):  # pragma: no cover - numba
    C = rel.shape[0]
    P = shares.shape[0]
    ptr = np.full(P, -1, np.int64)
    cnt = np.zeros(P, np.float64)
    scale = 1.0
    if C > 0 and np.isfinite(rel[0]) and rel[0] != 0.0:
        scale = abs(rel[0])
    for p in range(P):  # first candidate of each category
        for j in range(C):
            if member[j] == p and np.isfinite(rel[j]):
                ptr[p] = j
                break
    for t in range(n):
        best = -1
        bv = -np.inf
        for p in range(P):
            j = ptr[p]
            if j < 0:
                continue
            kl = 0.0
            for q in range(P):
                pq = shares[q]
                if pq > 0.0:
                    c = cnt[q] + (1.0 if q == p else 0.0)
                    qq = (1.0 - alpha) * c / (t + 1) + alpha * pq
                    kl += pq * np.log(pq / qq)
            v = (1.0 - lam) * rel[j] / scale - lam * kl
            if v > bv or (v == bv and best >= 0 and j < ptr[best]):
                bv = v
                best = p
        if best < 0:
            for k in range(t, n):
                out[k] = -1
            return
        j = ptr[best]
        out[t] = j
        cnt[best] += 1.0
        nxt = -1
        for jj in range(j + 1, C):
            if member[jj] == best and np.isfinite(rel[jj]):
                nxt = jj
                break
        ptr[best] = nxt


def distinct_push(U: np.ndarray, active: np.ndarray, weight: float, scale: float, G=None):
    """Linearised persona-distinctness term and the penalty's value (vectorised NumPy).

    The penalty is ``weight * sum_u sum_{p<q} exp(-d_G(x_up, x_uq)^2 / scale)`` over each
    user's active personas, with ``d_G(a, b)^2 = (a - b)^T G (a - b)``. With
    ``G = Y^T W Y / sum(W)`` (``W`` = item popularity, what the model passes) ``d_G^2`` is the
    mean squared difference of the two personas' scores over played items, so ``scale`` is in
    score units and the penalty does not depend on how ALS happens to split the scale between
    user and item vectors. ``G = I`` gives the plain Euclidean distance.

    The penalty is at most ``weight * P (P - 1) / 2`` per user (bounded, unlike
    ``1 / distance^2``) and its pull fades far apart. In the ALS normal equations
    ``A x = b - grad/2`` the gradient is linearised at the current factors, giving the extra
    term ``e_up = (weight / scale) sum_q exp(-d_pq^2 / scale) G (x_up - x_uq)``, whose norm is
    bounded by ``weight (P - 1) |G|^(1/2) / sqrt(2 e / scale)``.

    Parameters
    ----------
    U : float32 array of shape (n_users, P, f)
    active : bool array of shape (n_users, P)
    weight, scale : float
    G : array of shape (f, f), optional
        Metric (symmetric positive semi-definite); default identity.

    Returns
    -------
    extra : float32 array of shape (n_users, P, f)
    penalty : float
    """
    D = U[:, :, None, :] - U[:, None, :, :]  # (n, P, P, f): x_up - x_uq
    DG = D if G is None else D @ np.asarray(G, D.dtype)
    d2 = np.einsum("npqf,npqf->npq", D, DG)
    pair = active[:, :, None] & active[:, None, :]
    P = U.shape[1]
    pair &= ~np.eye(P, dtype=bool)[None]
    w = np.where(pair, np.exp(-d2 / scale), 0.0)
    extra = (weight / scale) * np.einsum("npq,npqf->npf", w, DG)
    penalty = 0.5 * weight * float(w.sum(dtype=np.float64))
    return np.ascontiguousarray(extra, np.float32), penalty


# ---------------------------------------------------------------------- NumPy references
def reference_solve_rows(indptr, indices, conf, Y, reg, rw, cw, extra, active, nonneg=False):
    """Exact solve of every active row from the dense weights (NumPy float64; 0 if inactive)."""
    n, f = len(indptr) - 1, Y.shape[1]
    out = np.zeros((n, f))
    Y = Y.astype(np.float64)
    for u in range(n):
        if not active[u]:
            continue
        lo, hi = indptr[u], indptr[u + 1]
        wgt = rw[u] * np.asarray(cw, np.float64)  # confidence of every column ...
        pref = np.zeros(len(Y))
        c = conf[lo:hi].astype(np.float64)
        wgt[indices[lo:hi]] = np.abs(c)  # ... observed ones replaced by |c|
        pref[indices[lo:hi]] = c > 0
        A = (Y * wgt[:, None]).T @ Y + np.broadcast_to(reg, (n,))[u] * np.eye(f)
        b = Y.T @ (wgt * pref) + extra[u]
        x = np.linalg.solve(A, b)
        out[u] = np.maximum(x, 0) if nonneg else x
    return out


def reference_assign(indptr, indices, U, Y, n_active, collapse_weight=0.0, rounds=0):
    """Assignment of :func:`assign_personas` with Python loops (NumPy oracle)."""
    out = np.zeros(len(indices), np.int32)
    P = U.shape[1]
    for u in range(len(indptr) - 1):
        lo, hi = indptr[u], indptr[u + 1]
        m, pu = hi - lo, int(n_active[u])
        if pu <= 1 or m == 0:
            continue
        S = Y[indices[lo:hi]].astype(np.float64) @ U[u, :pu].astype(np.float64).T
        a = np.argmax(S, axis=1)
        cnt = np.bincount(a, minlength=P)
        if collapse_weight > 0:
            g = 2.0 * collapse_weight / m
            for _ in range(rounds):
                changed = 0
                for j in range(m):
                    cnt[a[j]] -= 1
                    best = int(np.argmax(S[j] - g * cnt[:pu]))
                    changed += best != a[j]
                    a[j] = best
                    cnt[best] += 1
                if not changed:
                    break
        if m >= pu:
            for p in range(pu):
                if cnt[p] == 0:
                    ok = cnt[a] >= 2
                    if ok.any():
                        fit = np.where(ok, S[np.arange(m), a], np.inf)
                        j = int(np.argmin(fit))
                        cnt[a[j]] -= 1
                        a[j] = p
                        cnt[p] += 1
        out[lo:hi] = a
    return out


def reference_blend(cand, mix, n):
    """Items of :func:`blend_lists` with Python loops (NumPy oracle)."""
    b, P, m = cand.shape
    out = np.full((b, n), -1, np.int64)
    for r in range(b):
        w = np.array(mix[r], np.float64)
        ptr = [0] * P
        taken = np.zeros(P)
        chosen: list[int] = []
        while len(chosen) < n:
            live = np.flatnonzero(w > 0)
            if not len(live):
                break
            d = w * (len(chosen) + 1) - taken
            d[w <= 0] = -np.inf
            p = int(np.argmax(d))
            while ptr[p] < m and (cand[r, p, ptr[p]] in chosen):
                ptr[p] += 1
            if ptr[p] >= m or cand[r, p, ptr[p]] < 0:
                w[p] = 0
                continue
            chosen.append(int(cand[r, p, ptr[p]]))
            ptr[p] += 1
            taken[p] += 1
        out[r, : len(chosen)] = chosen
    return out


def reference_calibrate(rel, member, shares, lam, alpha, n):
    """Positions of :func:`calibrate_lists`, every candidate weighed at every step (oracle)."""
    b, C = rel.shape
    P = shares.shape[1]
    out = np.full((b, n), -1, np.int64)
    for r in range(b):
        s = np.asarray(rel[r], np.float64)
        scale = abs(s[0]) if np.isfinite(s[0]) and s[0] != 0 else 1.0
        p = np.asarray(shares[r], np.float64)
        used = ~np.isfinite(s)
        cnt = np.zeros(P)
        for t in range(n):
            if used.all():
                break
            M = np.eye(P)[member[r]]  # (C, P) one-hot
            q = (1 - alpha) * (cnt[None, :] + M) / (t + 1) + alpha * p[None, :]
            with np.errstate(divide="ignore", invalid="ignore"):
                kl = np.where(p > 0, p * np.log(p / q), 0.0).sum(axis=1)
            v = (1 - lam) * np.where(used, 0.0, s) / scale - lam * kl
            v[used] = -np.inf
            j = int(np.argmax(v))
            out[r, t] = j
            used[j] = True
            cnt[member[r, j]] += 1
    return out
