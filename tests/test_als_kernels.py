"""ALS kernels against their NumPy references (issue 3)."""

import numpy as np
import pytest
import scipy.sparse as sp

from deepcuts.models import _als_kernels as K

#: the kernels' confidence arguments when the matrix holds signed confidences
GIVEN = K.conf_params(K.CONF_GIVEN)


def _no_extra(m):
    """No per-row penalty (the kernels' ``extra`` argument) for the rows of ``m``."""
    return np.zeros(len(m.indptr) - 1, np.float32)


def _cg(m, X, Y, lam, steps, loss=None):
    """``cg_half_step`` on ``m``, in place on ``X``, without a per-row penalty."""
    loss = np.zeros(len(m.indptr) - 1) if loss is None else loss
    K.cg_half_step(m.indptr, m.indices, m.data, *GIVEN, X, Y, lam, _no_extra(m), steps, loss)


def _chol(m, X, Y, A0, loss=None):
    """``cholesky_half_step`` on ``m``, in place on ``X``, without a per-row penalty."""
    loss = np.zeros(len(m.indptr) - 1) if loss is None else loss
    K.cholesky_half_step(m.indptr, m.indices, m.data, *GIVEN, X, Y, A0, _no_extra(m), loss)


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
        K.row_loss(m.indptr, m.indices, m.data, *GIVEN, Xr, Yr, lam, _no_extra(m), loss)
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


@pytest.mark.parametrize(
    "kernel", [K.cg_half_step, K.cholesky_half_step, K.row_loss, K.confidence_stats]
)
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
    K.cholesky_half_step(m.indptr, m.indices, m.data, *GIVEN, out, Y, A0, extra, np.zeros(n))
    ref = K.reference_half_step(m.indptr, m.indices, m.data, Y, A0, extra)
    np.testing.assert_allclose(out, ref, atol=1e-5)
    assert not np.allclose(ref, K.reference_half_step(m.indptr, m.indices, m.data, Y, A0))
    Q, lam = K.diagonalise(Y, reg)
    Xr, Yr = X @ Q, Y @ Q
    out = Xr.copy()
    K.cg_half_step(m.indptr, m.indices, m.data, *GIVEN, out, Yr, lam, extra, 3, np.zeros(n))
    ref = K.reference_cg_half_step(m.indptr, m.indices, m.data, Xr, Yr, np.diag(lam), 3, extra)
    np.testing.assert_allclose(out, ref, atol=1e-4)
    loss = np.zeros(n)
    K.row_loss(m.indptr, m.indices, m.data, *GIVEN, Xr, Yr, lam, extra, loss)
    want = K.reference_row_loss(m.indptr, m.indices, m.data, X, Y, reg, extra)
    np.testing.assert_allclose(loss, want, rtol=1e-4)


_MODES = [(K.CONF_RAW, 1.0, 1.0, 1.0), (K.CONF_RAW, 2.5, 1.0, 0.3), (K.CONF_LOG, 1.0, 1.0, 1.0),
          (K.CONF_LOG, 40.0, 0.5, 0.1)]  # fmt: skip


def _counts(seed=7, n=60, m=40):
    c = sp.random(n, m, density=0.15, random_state=seed, format="csr", dtype=np.float32)
    c.data = np.floor(1 + 30 * c.data).astype(np.float32)  # play counts 1..30
    c.data[::9] = 0.25  # listening-time fractions: log(0.25 + 0.5) < 0 is a dislike
    return c


@pytest.mark.parametrize("mode", _MODES)
def test_confidences_on_the_fly_match_the_numpy_reference(mode):
    """Each stored value's signed confidence, as the kernels compute it, equals the NumPy
    reference exactly (one entry per row makes ``confidence_stats`` return it)."""
    c = _counts()
    ones = np.arange(c.nnz + 1, dtype=np.int64)
    npos, total = K.confidence_stats(ones, c.data, *K.conf_params(*mode))
    ref = K.reference_confidence(c.data, *mode)
    np.testing.assert_array_equal(total, np.abs(ref))
    np.testing.assert_array_equal(npos, ref > 0)
    # and the per-row statistics of the matrix itself
    npos, total = K.confidence_stats(c.indptr, c.data, *K.conf_params(*mode))
    rows = np.repeat(np.arange(c.shape[0]), np.diff(c.indptr))
    np.testing.assert_array_equal(npos, np.bincount(rows[ref > 0], minlength=c.shape[0]))
    np.testing.assert_allclose(total, np.bincount(rows, np.abs(ref), minlength=c.shape[0]))
    if mode[0] == K.CONF_LOG and mode[2] < 1:
        assert (ref < 0).any()  # the dislike branch is exercised


def test_reference_confidence_is_the_weighting_modules_confidence():
    from deepcuts.data.weighting import confidence, raw

    c = _counts()
    want = confidence(c, alpha=3.0, eps=1.0).data
    np.testing.assert_allclose(K.reference_confidence(c.data, K.CONF_LOG, 3.0), want, rtol=1e-6)
    np.testing.assert_array_equal(K.reference_confidence(raw(c).data, K.CONF_GIVEN), c.data)
    with pytest.raises(ValueError, match="mode"):
        K.conf_params(7)


@pytest.mark.parametrize("mode", _MODES)
def test_kernels_on_counts_equal_kernels_on_precomputed_confidences(mode):
    c = _counts()
    given = sp.csr_matrix((K.reference_confidence(c.data, *mode), c.indices, c.indptr), c.shape)
    rng = np.random.default_rng(2)
    f, n = 6, c.shape[0]
    X = (rng.standard_normal((n, f)) * 0.3).astype(np.float32)
    Y = (rng.standard_normal((c.shape[1], f)) * 0.3).astype(np.float32)
    extra = rng.uniform(0, 1, n).astype(np.float32)
    Q, lam = K.diagonalise(Y, 0.1)
    Xr, Yr = X @ Q, Y @ Q
    A0 = (Y.T @ Y + 0.1 * np.eye(f)).astype(np.float32)
    args = K.conf_params(*mode)
    for kernel, side, fixed, dense, tail in (
        (K.cg_half_step, Xr, Yr, lam, (3,)),
        (K.cholesky_half_step, X, Y, A0, ()),
        (K.row_loss, Xr, Yr, lam, ()),
    ):
        a, b = side.copy(), side.copy()
        la, lb = np.zeros(n), np.zeros(n)
        kernel(c.indptr, c.indices, c.data, *args, a, fixed, dense, extra, *tail, la)
        kernel(given.indptr, given.indices, given.data, *GIVEN, b, fixed, dense, extra, *tail, lb)
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(la, lb, rtol=1e-6)
    # and against the dense NumPy loss on the reference confidences
    ref = K.reference_row_loss(given.indptr, given.indices, given.data, X, Y, 0.1, extra)
    np.testing.assert_allclose(la, ref, rtol=1e-4)


def test_rows_longer_than_the_gather_buffer():
    """A row with more than ``GATHER`` entries reads the rest of its ``y_i`` in place: same
    iterates as the reference CG."""
    rng = np.random.default_rng(4)
    f, m_cols = 4, K.GATHER + 300
    lens = np.array([m_cols, K.GATHER, K.GATHER + 1, 3, 0])
    rows = np.repeat(np.arange(len(lens)), lens)
    cols = np.concatenate([rng.choice(m_cols, k, replace=False) for k in lens])
    c = sp.csr_matrix((1 + rng.random(len(rows)) * 3, (rows, cols)), shape=(len(lens), m_cols))
    c = sp.csr_matrix(c, dtype=np.float32)
    Y = (rng.standard_normal((m_cols, f)) * 0.05).astype(np.float32)
    X = (rng.standard_normal((len(lens), f)) * 0.05).astype(np.float32)
    Xr, Yr, lam, _ = _rotated(X, Y, 0.05)
    out, loss = Xr.copy(), np.zeros(len(lens))
    _cg(c, out, Yr, lam, 3, loss=loss)
    ref = K.reference_cg_half_step(c.indptr, c.indices, c.data, Xr, Yr, np.diag(lam), 3)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(loss, K.reference_row_loss(c.indptr, c.indices, c.data, X, Y, 0.05),
                               rtol=1e-4)  # fmt: skip
