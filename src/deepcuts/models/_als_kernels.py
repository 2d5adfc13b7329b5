"""Compiled kernels of implicit-feedback ALS (private; used by :mod:`deepcuts.models.als`).

Notation of Hu, Koren, Volinsky (2008), "Collaborative Filtering for Implicit Feedback
Datasets": users ``u`` with factors ``x_u`` (rows of ``X``), items ``i`` with factors ``y_i``
(rows of ``Y``), preference ``p_ui`` in {0, 1} and confidence ``c_ui >= 1`` (``c_ui = 1`` and
``p_ui = 0`` for every unobserved pair). One half-step solves, for every row ``u``,

    x_u = (Y^T C_u Y + reg*I)^-1 Y^T C_u p(u)

using ``Y^T C_u Y = Y^T Y + Y^T (C_u - I) Y``: ``Y^T Y`` is shared by all rows and the
correction only runs over the row's stored entries.

Stored entries reach the kernels as *signed confidences*: ``+c_ui`` where ``p_ui = 1`` and
``-c_ui`` where ``p_ui = 0`` (an observed dislike), the convention of the ``implicit`` package.
Every kernel takes the stored values ``data`` with a confidence ``mode`` and turns each value
into its signed confidence as it reads it (:func:`_confidence`), so training keeps no float
copy of the play-count matrix:

* :data:`CONF_GIVEN` (0): ``data`` already holds the signed confidences (any weighting, computed
  by the caller);
* :data:`CONF_RAW` (1): ``data`` holds play counts ``x``, ``w = x``;
* :data:`CONF_LOG` (2): ``data`` holds play counts, ``w = log(x + eta)``;

then ``c = (1 + alpha |w|) / alpha0``, negative where ``w < 0`` (``alpha0``: the unobserved
weight). :func:`reference_confidence` is the same map in NumPy; :func:`confidence_stats` gives
the per-row statistics training needs (positive entries, total confidence) in one pass.

Two solvers:

* :func:`cg_half_step` - a few conjugate-gradient steps per row, warm-started from the current
  factors (Takacs, Pilaszy, Tikk (2011), "Applications of the conjugate gradient method for
  implicit feedback collaborative filtering"), run in an eigenbasis of ``Y^T Y`` (see
  :func:`diagonalise`) where ``Y^T Y + reg*I`` is diagonal, so each product with
  ``A_u = Y^T C_u Y + reg*I`` costs ``f + 2 f nnz_u`` multiply-adds instead of
  ``f^2 + 2 f nnz_u``, never forming ``A_u``. CG commutes with an orthogonal change of basis,
  so the iterates are those of the plain method; the caller rotates both sides, and since
  ``x_u . y_i`` is invariant under a common rotation the model is unchanged.
* :func:`cholesky_half_step` - forms ``A_u`` (``f^2 nnz_u / 2``) and solves exactly by Cholesky
  (``f^3 / 3``), accumulating in float64; works in any basis (takes ``Y^T Y + reg*I``).

Both also return each row's share of the training loss *before* the update (the dot products
``x_u . y_i`` are computed anyway), so the per-iteration loss costs no extra pass.

Rows are processed in blocks of :data:`BLOCK`; each block allocates its scratch buffers once
(including room for the gathered ``y_i`` of its longest row, at most :data:`GATHER` of them:
a longer row, such as a hit song's, reads the rest from ``Y`` in place, so the scratch memory
per thread stays bounded however popular an item is), so the inner loops do not allocate. Every kernel is ``njit(parallel=True, cache=True, fastmath=True, nogil=True)`` on
float32 factors (releasing the GIL, so a server's request threads keep answering while a model
retrains in the background); none calls BLAS, so the caller pins BLAS to one thread only around
the kernels (see ``deepcuts.models.als``).

:func:`reference_half_step` and :func:`reference_cg_half_step` are plain NumPy versions used by
the tests as oracles.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = [
    "BLOCK",
    "CONF_GIVEN",
    "CONF_LOG",
    "CONF_RAW",
    "GATHER",
    "cg_half_step",
    "cholesky_half_step",
    "conf_params",
    "confidence_stats",
    "diagonalise",
    "reference_confidence",
    "reference_cg_half_step",
    "reference_half_step",
    "reference_ials_half_step",
    "reference_row_loss",
    "rotate_",
    "row_loss",
]

#: rows per parallel work unit (scratch buffers are allocated once per block)
BLOCK = 64
#: at most this many ``y_i`` of a row are gathered into a contiguous buffer (CG solver)
GATHER = 1024

#: confidence modes (see the module docstring)
CONF_GIVEN, CONF_RAW, CONF_LOG = 0, 1, 2
#: whole play counts below this have their confidence looked up (CG solver)
COUNT_TABLE = 1024


def conf_params(mode: int, alpha: float = 1.0, eta: float = 1.0, a0: float = 1.0) -> tuple:
    """The kernels' confidence arguments ``(mode, alpha, eta, inv_a0)`` for a mode, slope
    ``alpha``, ``eta`` of ``log(x + eta)`` and unobserved weight ``alpha0``; ``alpha`` is
    rounded to float32 first, as the NumPy path multiplies by ``np.float32(alpha)``.

    ``inv_a0 = 1 / alpha0`` is formed here in float64 (from ``float32(alpha0)``, the divisor
    of the NumPy path), not in the kernel: under ``fastmath`` a division there is narrowed to
    float32 and replaced by a multiplication with a float32 reciprocal, off by one unit in the
    last place for a third of the entries; a product with a float64 reciprocal rounds to the
    same float32 as the exact quotient (but for ties one in ~10^8)."""
    if mode not in (CONF_GIVEN, CONF_RAW, CONF_LOG):
        raise ValueError(f"unknown confidence mode {mode!r}")
    return int(mode), float(np.float32(alpha)), float(eta), 1.0 / float(np.float32(a0))


@njit(inline="always", fastmath=True)
def _confidence(v, mode, alpha, eta, inv_a0):
    """Signed confidence of one stored value ``v`` (see the module docstring), float32.

    The weight is computed in float64 and rounded to float32, as
    :func:`deepcuts.data.weighting.apply_weighting` stores it; then ``alpha |w|``, ``+ 1`` and
    ``/ alpha0`` are each rounded to float32 in turn, as NumPy's float32 arithmetic does
    (:func:`reference_confidence`; see :func:`conf_params` for ``inv_a0``)."""
    if mode == CONF_GIVEN:
        return np.float32(v)
    if mode == CONF_RAW:
        w = np.float32(v)
    else:
        w = np.float32(np.log(np.float64(v) + eta))
    # alpha arrives as float64(float32(alpha)): the float64 product is exact, its rounding
    # to float32 is NumPy's float32 product (and no fused multiply-add can form)
    t = np.float32(np.float64(abs(w)) * alpha)
    c = np.float32(np.float64(t) + 1.0)
    if inv_a0 != 1.0:
        c = np.float32(np.float64(c) * inv_a0)
    if w < 0:
        return -c
    return c


@njit(inline="always", fastmath=True)
def _count_table(mode, alpha, eta, inv_a0):
    # signed confidences of the whole counts 0 .. COUNT_TABLE - 1 (a log per entry and
    # half-step would cost ~10% of a CG half-step; play counts are mostly small integers)
    table = np.empty(COUNT_TABLE, np.float32)
    if mode != CONF_GIVEN:
        for k in range(COUNT_TABLE):
            table[k] = _confidence(np.float32(k), mode, alpha, eta, inv_a0)
    return table


@njit(inline="always", fastmath=True)
def _confidences_into(data, lo, n, mode, alpha, eta, inv_a0, table, out):
    # out[j] = signed confidence of data[lo + j]; the mode's branch taken once per row, whole
    # counts below COUNT_TABLE looked up in ``table`` (:func:`_count_table`)
    if mode == CONF_GIVEN:
        for j in range(n):
            out[j] = data[lo + j]
    else:
        for j in range(n):
            v = data[lo + j]
            if v >= 0 and v < COUNT_TABLE:
                k = int(v)
                if k == v:
                    out[j] = table[k]
                    continue
            out[j] = _confidence(v, mode, alpha, eta, inv_a0)


@njit(parallel=True, cache=True, fastmath=True, nogil=True)
def confidence_stats(indptr, data, mode, alpha, eta, inv_a0):  # pragma: no cover - numba
    """Per-row number of positive entries (``p_ui = 1``), int64 (n_rows,), and per-row sum of
    the confidences ``|c_ui|``, float64 (n_rows,), of a CSR matrix's stored values."""
    n = len(indptr) - 1
    npos = np.zeros(n, np.int64)
    total = np.zeros(n, np.float64)
    for u in prange(n):
        k = 0
        t = 0.0
        for jj in range(indptr[u], indptr[u + 1]):
            c = _confidence(data[jj], mode, alpha, eta, inv_a0)
            if c > 0:
                k += 1
                t += c
            else:
                t -= c
        npos[u] = k
        total[u] = t
    return npos, total


@njit(inline="always", fastmath=True)
def _dot(a, b, f):
    s = np.float32(0.0)
    for k in range(f):
        s += a[k] * b[k]
    return s


@njit(inline="always", fastmath=True)
def _cg_advance(x, r, p, ap, rsold, f):
    """One conjugate-gradient update once ``ap = A p`` is known: moves ``x``, ``r`` and ``p``
    in place and returns the new ``r . r``, or -1 when the search stops (``p^T A p <= 0`` or
    the residual vanished)."""
    pap = _dot(p, ap, f)
    if pap <= 0:
        return np.float32(-1.0)
    a = rsold / pap
    for k in range(f):
        x[k] += a * p[k]
        r[k] -= a * ap[k]
    rsnew = _dot(r, r, f)
    if rsnew < 1e-20:
        return np.float32(-1.0)
    beta = rsnew / rsold
    for k in range(f):
        p[k] = r[k] + beta * p[k]
    return rsnew


@njit(inline="always", fastmath=True)
def _symv(A, v, out, f):
    # out = A v  (A symmetric f x f, float32)
    for k in range(f):
        s = np.float32(0.0)
        for j in range(f):
            s += A[k, j] * v[j]
        out[k] = s


@njit(inline="always", fastmath=True)
def _cholesky_solve(A, b, z, f):
    # z = A^-1 b for symmetric positive definite A (lower triangle used): in-place Cholesky
    # A = L L^T, then L w = b and L^T z = w (w stored in z). A is overwritten by L.
    for j in range(f):
        s = A[j, j]
        for k in range(j):
            s -= A[j, k] * A[j, k]
        s = np.sqrt(max(s, 1e-12))
        A[j, j] = s
        for i in range(j + 1, f):
            t = A[i, j]
            for k in range(j):
                t -= A[i, k] * A[j, k]
            A[i, j] = t / s
    for i in range(f):
        t = b[i]
        for k in range(i):
            t -= A[i, k] * z[k]
        z[i] = t / A[i, i]
    for i in range(f - 1, -1, -1):
        t = z[i]
        for k in range(i + 1, f):
            t -= A[k, i] * z[k]
        z[i] = t / A[i, i]


@njit(inline="always", fastmath=True)
def _axpy_rows(B, coef, n, out, f):
    # out += sum_j coef[j] * B[j]  (4 rows per pass: one load/store of out per 4 products)
    j = 0
    while j + 4 <= n:
        c0 = coef[j]
        c1 = coef[j + 1]
        c2 = coef[j + 2]
        c3 = coef[j + 3]
        for k in range(f):
            out[k] += c0 * B[j, k] + c1 * B[j + 1, k] + c2 * B[j + 2, k] + c3 * B[j + 3, k]
        j += 4
    while j < n:
        c0 = coef[j]
        for k in range(f):
            out[k] += c0 * B[j, k]
        j += 1


@njit(inline="always", fastmath=True)
def _dot_rows(B, v, n, out, f):
    # out[j] = B[j] . v  (4 rows per pass share the loads of v)
    j = 0
    while j + 4 <= n:
        t0 = np.float32(0.0)
        t1 = np.float32(0.0)
        t2 = np.float32(0.0)
        t3 = np.float32(0.0)
        for k in range(f):
            vk = v[k]
            t0 += B[j, k] * vk
            t1 += B[j + 1, k] * vk
            t2 += B[j + 2, k] * vk
            t3 += B[j + 3, k] * vk
        out[j] = t0
        out[j + 1] = t1
        out[j + 2] = t2
        out[j + 3] = t3
        j += 4
    while j < n:
        t0 = np.float32(0.0)
        for k in range(f):
            t0 += B[j, k] * v[k]
        out[j] = t0
        j += 1


@njit(inline="always", fastmath=True)
def _axpy_rows_at(Y, idx, lo, coef, c0, n, out, f):
    # out += sum_j coef[c0 + j] * Y[idx[lo + j]]  (the rows beyond the gathered ones, in place)
    for j in range(n):
        c = coef[c0 + j]
        i = idx[lo + j]
        for k in range(f):
            out[k] += c * Y[i, k]


@njit(inline="always", fastmath=True)
def _dot_rows_at(Y, idx, lo, v, n, out, o0, f):
    # out[o0 + j] = Y[idx[lo + j]] . v
    for j in range(n):
        i = idx[lo + j]
        t = np.float32(0.0)
        for k in range(f):
            t += Y[i, k] * v[k]
        out[o0 + j] = t


@njit(parallel=True, cache=True, fastmath=True, nogil=True)
def cg_half_step(
    indptr, indices, data, mode, alpha, eta, inv_a0, X, Y, lam, extra, cg_steps, loss
):  # pragma: no cover - numba
    """Conjugate-gradient update of every row of ``X`` in place, in an eigenbasis of ``Y^T Y``.

    Parameters
    ----------
    indptr, indices : int32/int64 arrays
        CSR structure of the (n_rows, n_cols) matrix.
    data : float32 array of shape (nnz,)
        Stored values: signed confidences (``+c_ui`` for ``p_ui = 1``, ``-c_ui`` for
        ``p_ui = 0``) with ``mode=CONF_GIVEN``, play counts with ``CONF_RAW`` / ``CONF_LOG``.
    mode : int
        :data:`CONF_GIVEN`, :data:`CONF_RAW` or :data:`CONF_LOG` (see the module docstring).
    alpha, eta, inv_a0 : float
        Confidence slope, the ``eta`` of ``log(x + eta)`` and one over the unobserved weight
        ``alpha0`` (unused with ``CONF_GIVEN``; :func:`conf_params` forms all four).
    X : float32 array of shape (n_rows, f)
        Factors to update (warm start), modified in place.
    Y : float32 array of shape (n_cols, f)
        The fixed side, expressed in a basis where ``Y^T Y + reg*I = diag(lam)`` (see
        :func:`diagonalise`; ``X`` must be in the same basis).
    lam : float32 array of shape (f,)
        The diagonal of ``Y^T Y + reg*I`` in that basis.
    extra : float32 array of shape (n_rows,)
        Per-row penalty added to ``reg`` (``A_u = ... + (reg + extra[u]) I``): zeros, or the
        activity-scaled penalty of ALS-WR (see ``ALS(reg_scaling="activity")``).
    cg_steps : int
        Conjugate-gradient steps per row.
    loss : float64 array of shape (n_rows,)
        Out: ``sum_i c_ui (p_ui - x_u . y_i)^2 + reg |x_u|^2`` over *all* columns ``i``, for
        the factors as they were on entry.

    Notes
    -----
    ``A_u = Y^T C_u Y + reg*I = diag(lam) + sum_i (c_ui - 1) y_i y_i^T``. Because conjugate
    gradients commute with an orthogonal change of basis, running them in the eigenbasis of
    ``Y^T Y`` gives the same iterates as in the original basis, but the dense part of every
    product ``A_u p`` costs ``f`` instead of ``f^2`` multiply-adds. The row's first
    :data:`GATHER` ``y_i`` are gathered once into a contiguous scratch buffer ``Y_u``; every CG
    step then reads the buffer twice, four rows at a time: the dot products ``Y_u p``
    (:func:`_dot_rows`), then ``A_u p += Y_u^T (w * Y_u p)`` (:func:`_axpy_rows`); the entries
    of a longer row past the buffer are read from ``Y`` in place.
    """
    n, f = X.shape
    n_blocks = (n + BLOCK - 1) // BLOCK
    table = _count_table(mode, alpha, eta, inv_a0)
    for blk in prange(n_blocks):
        lo_u = blk * BLOCK
        hi_u = min(n, lo_u + BLOCK)
        mx = 1
        for u in range(lo_u, hi_u):
            mx = max(mx, indptr[u + 1] - indptr[u])
        x = np.empty(f, np.float32)
        r = np.empty(f, np.float32)
        p = np.empty(f, np.float32)
        ap = np.empty(f, np.float32)
        s = np.empty(mx, np.float32)
        w = np.empty(mx, np.float32)
        Yu = np.empty((min(mx, GATHER), f), np.float32)
        for u in range(lo_u, hi_u):
            lo = indptr[u]
            nu = indptr[u + 1] - lo
            ng = min(nu, GATHER)  # gathered; the rest (nu - ng) is read from Y in place
            # r = Y^T C_u p(u) - A_u x_u, starting with -(diag(lam) + extra_u I) x_u
            eu = extra[u]
            for k in range(f):
                x[k] = X[u, k]
                ap[k] = (lam[k] + eu) * x[k]
                r[k] = -ap[k]
            dense = _dot(x, ap, f)  # x^T (Y^T Y + reg I) x
            # gather Y_u (the rows y_i of the row's entries) with s_ui = x_u . y_i
            for jj in range(ng):
                i = indices[lo + jj]
                for k in range(f):
                    Yu[jj, k] = Y[i, k]
            _dot_rows(Yu, x, ng, s, f)
            if nu > ng:
                _dot_rows_at(Y, indices, lo + ng, x, nu - ng, s, ng, f)
            _confidences_into(data, lo, nu, mode, alpha, eta, inv_a0, table, w)
            lu = 0.0
            for jj in range(nu):
                c = w[jj]
                pu = np.float32(1.0)
                if c < 0:
                    c = -c
                    pu = np.float32(0.0)
                sv = s[jj]
                d = pu - sv
                lu += c * d * d - sv * sv
                w[jj] = c - np.float32(1.0)
                # r += (c_ui p_ui - (c_ui - 1) s_ui) y_i
                s[jj] = c * pu - w[jj] * sv
            _axpy_rows(Yu, s, ng, r, f)
            if nu > ng:
                _axpy_rows_at(Y, indices, lo + ng, s, ng, nu - ng, r, f)
            loss[u] = dense + lu
            rsold = _dot(r, r, f)
            if rsold < 1e-20:
                continue
            for k in range(f):
                p[k] = r[k]
            for _ in range(cg_steps):
                # ap = A_u p = diag(lam) p + sum_i (c_ui - 1) (y_i . p) y_i
                _dot_rows(Yu, p, ng, s, f)
                if nu > ng:
                    _dot_rows_at(Y, indices, lo + ng, p, nu - ng, s, ng, f)
                for jj in range(nu):
                    s[jj] *= w[jj]
                for k in range(f):
                    ap[k] = (lam[k] + eu) * p[k]
                _axpy_rows(Yu, s, ng, ap, f)
                if nu > ng:
                    _axpy_rows_at(Y, indices, lo + ng, s, ng, nu - ng, ap, f)
                rsold = _cg_advance(x, r, p, ap, rsold, f)
                if rsold < 0:
                    break
            for k in range(f):
                X[u, k] = x[k]


@njit(parallel=True, cache=True, fastmath=True, nogil=True)
def cholesky_half_step(
    indptr, indices, data, mode, alpha, eta, inv_a0, X, Y, A0, extra, loss
):  # pragma: no cover - numba
    """Exact update of every row of ``X`` in place: Cholesky solve of the normal equations.

    Same arguments as :func:`cg_half_step` (without ``cg_steps``; ``A0 = Y^T Y + reg*I`` in any
    basis instead of ``lam``). ``A_u`` and its Cholesky factor are accumulated in float64.
    """
    n, f = X.shape
    n_blocks = (n + BLOCK - 1) // BLOCK
    for blk in prange(n_blocks):
        A = np.empty((f, f), np.float64)
        b = np.empty(f, np.float64)
        z = np.empty(f, np.float64)
        x = np.empty(f, np.float32)
        ax = np.empty(f, np.float32)
        for u in range(blk * BLOCK, min(n, (blk + 1) * BLOCK)):
            for k in range(f):
                x[k] = X[u, k]
                b[k] = 0.0
            _symv(A0, x, ax, f)
            lu = float(_dot(x, ax, f)) + float(extra[u]) * float(_dot(x, x, f))
            # A_u = Y^T Y + reg*I + sum_i (c_ui - 1) y_i y_i^T ; b_u = Y^T C_u p(u)
            for k in range(f):
                for j in range(k + 1):
                    A[k, j] = A0[k, j]
                A[k, k] += extra[u]
            for jj in range(indptr[u], indptr[u + 1]):
                i = indices[jj]
                c = np.float64(_confidence(data[jj], mode, alpha, eta, inv_a0))
                pu = 1.0
                if c < 0:
                    c = -c
                    pu = 0.0
                s = np.float64(_dot(Y[i], x, f))
                d = pu - s
                lu += c * d * d - s * s
                w = c - 1.0
                for k in range(f):
                    yk = np.float64(Y[i, k])
                    b[k] += c * pu * yk
                    wy = w * yk
                    for j in range(k + 1):
                        A[k, j] += wy * Y[i, j]
            loss[u] = lu
            _cholesky_solve(A, b, z, f)
            for k in range(f):
                X[u, k] = np.float32(z[k])


@njit(parallel=True, cache=True, fastmath=True, nogil=True)
def row_loss(
    indptr, indices, data, mode, alpha, eta, inv_a0, X, Y, lam, extra, loss
):  # pragma: no cover - numba
    """Each row's loss share (see :func:`cg_half_step`, same basis) without updating anything."""
    n, f = X.shape
    n_blocks = (n + BLOCK - 1) // BLOCK
    for blk in prange(n_blocks):
        for u in range(blk * BLOCK, min(n, (blk + 1) * BLOCK)):
            lu = 0.0
            for k in range(f):
                lu += (lam[k] + extra[u]) * X[u, k] * X[u, k]
            for jj in range(indptr[u], indptr[u + 1]):
                c = _confidence(data[jj], mode, alpha, eta, inv_a0)
                pu = 1.0
                if c < 0:
                    c = -c
                    pu = 0.0
                i = indices[jj]
                t = np.float32(0.0)
                for k in range(f):
                    t += Y[i, k] * X[u, k]
                sv = float(t)
                d = pu - sv
                lu += c * d * d - sv * sv
            loss[u] = lu


# ---------------------------------------------------------------------- basis change
def diagonalise(F: np.ndarray, reg: float) -> tuple[np.ndarray, np.ndarray]:
    """Eigenbasis of ``F^T F``: ``Q`` (f, f) float32 orthogonal and ``lam`` with
    ``Q^T (F^T F + reg*I) Q = diag(lam)`` (eigenvalues clipped at 0 before adding ``reg``)."""
    G = (F.T @ F).astype(np.float64)
    ev, Q = np.linalg.eigh((G + G.T) / 2)
    lam = np.maximum(ev, 0.0) + float(reg)
    return np.ascontiguousarray(Q, dtype=np.float32), lam.astype(np.float32)


def rotate_(F: np.ndarray, Q: np.ndarray, chunk: int = 1024) -> None:
    """``F <- F Q`` in place, ``chunk`` rows at a time (BLAS) through one scratch block of
    ``chunk`` rows (256 KiB at 64 factors)."""
    buf = np.empty((min(chunk, F.shape[0]), F.shape[1]), F.dtype)
    for a in range(0, F.shape[0], chunk):
        part = F[a : a + chunk]
        out = buf[: len(part)]
        np.matmul(part, Q, out=out)
        part[...] = out


# ---------------------------------------------------------------------- NumPy references
def reference_confidence(data, mode, alpha=1.0, eta=1.0, a0=1.0) -> np.ndarray:
    """Signed confidences of stored values, NumPy float32 (what the kernels compute on the fly):
    ``sign(w) (1 + alpha |w|) / alpha0`` with ``w`` the value (:data:`CONF_RAW`) or
    ``log(value + eta)`` (:data:`CONF_LOG`); the values themselves with :data:`CONF_GIVEN`."""
    data = np.asarray(data)
    if mode == CONF_GIVEN:
        return data.astype(np.float32)
    if mode == CONF_RAW:
        w = data.astype(np.float32)
    elif mode == CONF_LOG:
        w = np.log(data.astype(np.float64) + eta).astype(np.float32)
    else:
        raise ValueError(f"unknown confidence mode {mode!r}")
    c = np.abs(w)
    c *= np.float32(alpha)
    c += np.float32(1.0)
    if a0 != 1.0:
        c /= np.float32(a0)
    return np.where(w < 0, -c, c).astype(np.float32)


def _row_system(indptr, indices, conf, Y, A0, u, extra=None):
    lo, hi = indptr[u], indptr[u + 1]
    idx, c = indices[lo:hi], conf[lo:hi].astype(np.float64)
    pu = (c > 0).astype(np.float64)
    c = np.abs(c)
    Yu = Y[idx].astype(np.float64)
    A = A0.astype(np.float64) + (Yu * (c - 1.0)[:, None]).T @ Yu
    if extra is not None:
        A[np.diag_indices_from(A)] += float(extra[u])
    b = Yu.T @ (c * pu)
    return A, b


def reference_half_step(indptr, indices, conf, Y, A0, extra=None) -> np.ndarray:
    """Exact ``x_u = (Y^T C_u Y + (reg + extra_u) I)^-1 Y^T C_u p(u)`` per row, NumPy float64."""
    n = len(indptr) - 1
    out = np.zeros((n, Y.shape[1]))
    for u in range(n):
        A, b = _row_system(indptr, indices, conf, Y, A0, u, extra)
        out[u] = np.linalg.solve(A, b)
    return out


def reference_ials_half_step(indptr, indices, conf, Y, unobserved_weight, reg) -> np.ndarray:
    """Exact iALS row solve with an unobserved weight ``alpha0`` (Rendle et al. 2022), NumPy
    float64, written out without the divide-by-``alpha0`` of ``ALS``:

    ``x_u = (alpha0 Y^T Y + sum_i (c_ui - alpha0) y_i y_i^T + reg_u I)^-1 sum_i c_ui p_ui y_i``

    over the row's observed entries ``i`` (signed confidences as in the kernels), the minimiser
    of ``sum_obs c_ui (p_ui - x.y_i)^2 + alpha0 sum_unobs (x.y_i)^2 + reg_u |x|^2``.
    ``reg`` is a number or one value per row."""
    n, f = len(indptr) - 1, Y.shape[1]
    a0 = float(unobserved_weight)
    Y64 = np.asarray(Y, np.float64)
    G = a0 * (Y64.T @ Y64)
    reg = np.broadcast_to(np.asarray(reg, np.float64), (n,))
    out = np.zeros((n, f))
    for u in range(n):
        lo, hi = indptr[u], indptr[u + 1]
        c = conf[lo:hi].astype(np.float64)
        p = (c > 0).astype(np.float64)
        c = np.abs(c)
        Yu = Y64[indices[lo:hi]]
        A = G + (Yu * (c - a0)[:, None]).T @ Yu + reg[u] * np.eye(f)
        out[u] = np.linalg.solve(A, Yu.T @ (c * p))
    return out


def reference_cg_half_step(indptr, indices, conf, X, Y, A0, cg_steps, extra=None) -> np.ndarray:
    """``cg_steps`` plain conjugate-gradient steps per row from ``X``, NumPy float64."""
    out = np.array(X, dtype=np.float64)
    for u in range(len(indptr) - 1):
        A, b = _row_system(indptr, indices, conf, Y, A0, u, extra)
        x = out[u]
        r = b - A @ x
        p = r.copy()
        rs = r @ r
        for _ in range(cg_steps):
            if rs < 1e-20:
                break
            ap = A @ p
            a = rs / (p @ ap)
            x = x + a * p
            r = r - a * ap
            rs_new = r @ r
            p = r + (rs_new / rs) * p
            rs = rs_new
        out[u] = x
    return out


def reference_row_loss(indptr, indices, conf, X, Y, reg, extra=None) -> np.ndarray:
    """Dense NumPy loss share of every row: ``sum_i c_ui (p_ui - x_u.y_i)^2 + reg |x_u|^2``."""
    n, m = len(indptr) - 1, Y.shape[0]
    C = np.ones((n, m))
    P = np.zeros((n, m))
    for u in range(n):
        lo, hi = indptr[u], indptr[u + 1]
        c = conf[lo:hi].astype(np.float64)
        C[u, indices[lo:hi]] = np.abs(c)
        P[u, indices[lo:hi]] = (c > 0).astype(np.float64)
    S = X.astype(np.float64) @ Y.astype(np.float64).T
    pen = reg + (0.0 if extra is None else np.asarray(extra, np.float64))
    return (C * (P - S) ** 2).sum(axis=1) + pen * (X.astype(np.float64) ** 2).sum(axis=1)
