"""ALS kernels against their NumPy references (issue 3)."""

import numpy as np
import pytest
import scipy.sparse as sp

from deepcuts.models import _als_kernels as K


def _no_extra(m):
    """No per-row penalty (the kernels' ``extra`` argument) for the rows of ``m``."""
    return np.zeros(len(m.indptr) - 1, np.float32)


def _cg(m, X, Y, lam, steps, loss=None):
    """``cg_half_step`` on ``m``, in place on ``X``, without a per-row penalty."""
    loss = np.zeros(len(m.indptr) - 1) if loss is None else loss
    K.cg_half_step(m.indptr, m.indices, m.data, X, Y, lam, _no_extra(m), steps, loss)


def _chol(m, X, Y, A0, loss=None):
    """``cholesky_half_step`` on ``m``, in place on ``X``, without a per-row penalty."""
    loss = np.zeros(len(m.indptr) - 1) if loss is None else loss
    K.cholesky_half_step(m.indptr, m.indices, m.data, X, Y, A0, _no_extra(m), loss)


@pytest.fixture(scope="module")
def system():
    rng = np.random.default_rng(0)
    m = sp.random(80, 50, density=0.1, random_state=1, format="csr", dtype=np.float32)
    m.data = 1.0 + 5.0 * m.data
    m.data[::7] *= -1.0  # observed dislikes: p = 0 with confidence |c|
    f, reg = 12, 0.1
    Y = (rng.standard_normal((50, f)) * 0.3).astype(np.float32)
    X = (rng.standard_normal((80, f)) * 0.3).astype(np.float32)
    A0 = (Y.T @ Y + reg * np.eye(f)).astype(np.float32)
    return m, X, Y, A0, reg


def test_cholesky_matches_exact_solve(system):
    m, X, Y, A0, _ = system
    out = X.copy()
    _chol(m, out, Y, A0)
    ref = K.reference_half_step(m.indptr, m.indices, m.data, Y, A0)
    np.testing.assert_allclose(out, ref, atol=1e-5)


def _rotated(X, Y, reg):
    Q, lam = K.diagonalise(Y, reg)
    return X @ Q, Y @ Q, lam, Q


def test_diagonalise(system):
    _, X, Y, A0, reg = system
    Q, lam = K.diagonalise(Y, reg)
    np.testing.assert_allclose(Q.T @ Q, np.eye(len(lam)), atol=1e-5)
    np.testing.assert_allclose(Q.T @ A0 @ Q, np.diag(lam), atol=1e-4)
    F = X.copy()
    K.rotate_(F, Q, chunk=7)
    np.testing.assert_allclose(F, X @ Q, atol=1e-6)


def test_cg_matches_reference_cg(system):
    m, X, Y, _, reg = system
    Xr, Yr, lam, _ = _rotated(X, Y, reg)
    out = Xr.copy()
    _cg(m, out, Yr, lam, 3)
    ref = K.reference_cg_half_step(m.indptr, m.indices, m.data, Xr, Yr, np.diag(lam), 3)
    np.testing.assert_allclose(out, ref, atol=1e-4)


def test_cg_in_eigenbasis_equals_plain_cg(system):
    # CG commutes with the orthogonal change of basis: rotating back gives plain CG's iterates
    m, X, Y, A0, reg = system
    Xr, Yr, lam, Q = _rotated(X, Y, reg)
    out = Xr.copy()
    _cg(m, out, Yr, lam, 3)
    plain = K.reference_cg_half_step(m.indptr, m.indices, m.data, X, Y, A0, 3)
    np.testing.assert_allclose(out @ Q.T, plain, atol=1e-4)


def test_cg_converges_to_exact_solve(system):
    m, X, Y, A0, reg = system
    Xr, Yr, lam, Q = _rotated(X, Y, reg)
    out = Xr.copy()
    for _ in range(8):
        _cg(m, out, Yr, lam, 3)
    ref = K.reference_half_step(m.indptr, m.indices, m.data, Y, A0)
    np.testing.assert_allclose(out @ Q.T, ref, atol=1e-4)
    # a single step of 3 CG iterations is already much closer than the start
    one = Xr.copy()
    _cg(m, one, Yr, lam, 3)
    assert np.abs(one @ Q.T - ref).max() < 0.5 * np.abs(X - ref).max()


@pytest.mark.parametrize("kernel", ["cg", "cholesky", "row_loss"])
def test_loss_matches_dense_reference(system, kernel):
    m, X, Y, A0, reg = system
    loss = np.zeros(80)
    Xc = X.copy()
    Xr, Yr, lam, _ = _rotated(X, Y, reg)
    if kernel == "cg":
        _cg(m, Xr, Yr, lam, 3, loss=loss)
    elif kernel == "cholesky":
        _chol(m, Xc, Y, A0, loss=loss)
    else:
        K.row_loss(m.indptr, m.indices, m.data, Xr, Yr, lam, _no_extra(m), loss)
    ref = K.reference_row_loss(m.indptr, m.indices, m.data, X, Y, reg)
    np.testing.assert_allclose(loss, ref, rtol=1e-4)


def test_empty_rows_get_zero_vectors():
    m = sp.csr_matrix((3, 4), dtype=np.float32)
    Y = np.ones((4, 2), np.float32)
    A0 = (Y.T @ Y + 0.1 * np.eye(2)).astype(np.float32)
    X = np.full((3, 2), 0.5, np.float32)
    _chol(m, X, Y, A0)
    np.testing.assert_allclose(X, 0.0, atol=1e-7)
    # CG from a non-zero start moves towards zero (the exact solution) and never blows up
    Xr, Yr, lam, _ = _rotated(np.full((3, 2), 0.5, np.float32), Y, 0.1)
    _cg(m, Xr, Yr, lam, 5)
    np.testing.assert_allclose(Xr, 0.0, atol=1e-5)


def test_long_rows_share_a_block_with_short_ones():
    # the block's scratch buffer is sized by its longest row; rows of every length in one block
    rng = np.random.default_rng(3)
    n, m_cols, f = 70, 400, 6
    lens = np.r_[[0, 1, 399, 2], rng.integers(0, 30, n - 4)]
    rows = np.repeat(np.arange(n), lens)
    cols = np.concatenate([rng.choice(m_cols, k, replace=False) for k in lens])
    c = sp.csr_matrix((1 + rng.random(len(rows)) * 4, (rows, cols)), shape=(n, m_cols))
    c = sp.csr_matrix(c, dtype=np.float32)
    Y = (rng.standard_normal((m_cols, f)) * 0.1).astype(np.float32)
    X = (rng.standard_normal((n, f)) * 0.1).astype(np.float32)
    Xr, Yr, lam, _ = _rotated(X, Y, 0.05)
    out = Xr.copy()
    _cg(c, out, Yr, lam, 4)
    ref = K.reference_cg_half_step(c.indptr, c.indices, c.data, Xr, Yr, np.diag(lam), 4)
    np.testing.assert_allclose(out, ref, atol=2e-4)


@pytest.mark.parametrize("kernel", [K.cg_half_step, K.cholesky_half_step, K.row_loss])
def test_kernels_release_the_gil(kernel):
    # serving retrains in a background thread while request threads keep answering
    assert kernel.targetoptions.get("nogil") is True
    assert kernel.targetoptions.get("parallel") and kernel.targetoptions.get("fastmath")


def test_kernels_with_a_per_row_penalty_match_the_references(system):
    """ALS-WR: ``extra[u]`` is added to the diagonal of row ``u``'s system and loss."""
    m, X, Y, A0, reg = system
    n = len(m.indptr) - 1
    extra = np.random.default_rng(5).uniform(0.0, 3.0, n).astype(np.float32)
    out = X.copy()
    K.cholesky_half_step(m.indptr, m.indices, m.data, out, Y, A0, extra, np.zeros(n))
    ref = K.reference_half_step(m.indptr, m.indices, m.data, Y, A0, extra)
    np.testing.assert_allclose(out, ref, atol=1e-5)
    assert not np.allclose(ref, K.reference_half_step(m.indptr, m.indices, m.data, Y, A0))
    Q, lam = K.diagonalise(Y, reg)
    Xr, Yr = X @ Q, Y @ Q
    out = Xr.copy()
    K.cg_half_step(m.indptr, m.indices, m.data, out, Yr, lam, extra, 3, np.zeros(n))
    ref = K.reference_cg_half_step(m.indptr, m.indices, m.data, Xr, Yr, np.diag(lam), 3, extra)
    np.testing.assert_allclose(out, ref, atol=1e-4)
    loss = np.zeros(n)
    K.row_loss(m.indptr, m.indices, m.data, Xr, Yr, lam, extra, loss)
    want = K.reference_row_loss(m.indptr, m.indices, m.data, X, Y, reg, extra)
    np.testing.assert_allclose(loss, want, rtol=1e-4)
