"""ALS kernels against their NumPy references (issue 3)."""

import numpy as np
import pytest
import scipy.sparse as sp

from deepcuts.models import _als_kernels as K


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
    K.cholesky_half_step(m.indptr, m.indices, m.data, out, Y, A0, np.zeros(80))
    ref = K.reference_half_step(m.indptr, m.indices, m.data, Y, A0)
    np.testing.assert_allclose(out, ref, atol=1e-5)


def test_cg_matches_reference_cg(system):
    m, X, Y, A0, _ = system
    out = X.copy()
    K.cg_half_step(m.indptr, m.indices, m.data, out, Y, A0, 3, np.zeros(80))
    ref = K.reference_cg_half_step(m.indptr, m.indices, m.data, X, Y, A0, 3)
    np.testing.assert_allclose(out, ref, atol=1e-4)


def test_cg_converges_to_exact_solve(system):
    m, X, Y, A0, _ = system
    out = X.copy()
    for _ in range(8):
        K.cg_half_step(m.indptr, m.indices, m.data, out, Y, A0, 3, np.zeros(80))
    ref = K.reference_half_step(m.indptr, m.indices, m.data, Y, A0)
    np.testing.assert_allclose(out, ref, atol=1e-4)
    # a single step of 3 CG iterations is already much closer than the start
    one = X.copy()
    K.cg_half_step(m.indptr, m.indices, m.data, one, Y, A0, 3, np.zeros(80))
    assert np.abs(one - ref).max() < 0.5 * np.abs(X - ref).max()


@pytest.mark.parametrize("kernel", ["cg", "cholesky", "row_loss"])
def test_loss_matches_dense_reference(system, kernel):
    m, X, Y, A0, reg = system
    loss = np.zeros(80)
    Xc = X.copy()
    if kernel == "cg":
        K.cg_half_step(m.indptr, m.indices, m.data, Xc, Y, A0, 3, loss)
    elif kernel == "cholesky":
        K.cholesky_half_step(m.indptr, m.indices, m.data, Xc, Y, A0, loss)
    else:
        K.row_loss(m.indptr, m.indices, m.data, Xc, Y, A0, loss)
    ref = K.reference_row_loss(m.indptr, m.indices, m.data, X, Y, reg)
    np.testing.assert_allclose(loss, ref, rtol=1e-4)


def test_empty_rows_get_zero_vectors():
    m = sp.csr_matrix((3, 4), dtype=np.float32)
    Y = np.ones((4, 2), np.float32)
    A0 = (Y.T @ Y + 0.1 * np.eye(2)).astype(np.float32)
    X = np.full((3, 2), 0.5, np.float32)
    K.cholesky_half_step(m.indptr, m.indices, m.data, X, Y, A0, np.zeros(3))
    np.testing.assert_allclose(X, 0.0, atol=1e-7)
