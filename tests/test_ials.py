"""Tuned-iALS options of ALS (issue 16; Rendle et al. 2022): unobserved weight alpha0,
frequency-scaled regularisation and the initial scale, against the NumPy reference solver."""

from __future__ import annotations

import numpy as np
import pytest

from deepcuts.exceptions import DeepcutsError
from deepcuts.models import ALS, make_model
from deepcuts.models import _als_kernels as K
from deepcuts.testing import planted_blocks


@pytest.fixture(scope="module")
def data():
    return planted_blocks(50, 24, 3, noise=0.1, random_state=5)


def _freq_reg(lam, a0, nu, C):
    return lam * (np.diff(C.indptr) + a0 * C.shape[1]) ** nu


def _signed_conf(model, m):
    """Hu et al.'s c_ui = 1 + alpha * log(1 + x), unscaled."""
    return (1.0 + model.alpha * np.log1p(m.toarray())) * (m.toarray() > 0)


@pytest.mark.parametrize("a0,nu", [(0.05, 1.0), (0.3, 0.5), (1.0, 0.0)])
def test_cholesky_training_matches_reference(data, a0, nu):
    f, lam, s, seed = 6, 0.02, 0.1, 3
    m = ALS(
        factors=f,
        iterations=2,
        solver="cholesky",
        regularization=lam,
        reg_scaling="frequency",
        unobserved_weight=a0,
        reg_exponent=nu,
        init_scale=s,
        random_state=seed,
    ).fit(data)
    # the same initial factors, then two exact alternations written out in NumPy
    rng = np.random.default_rng(seed)
    sd = np.float32(s / np.sqrt(f))
    X = (rng.standard_normal((data.n_users, f), dtype=np.float32) * sd).astype(np.float64)
    Y = (rng.standard_normal((data.n_items, f), dtype=np.float32) * sd).astype(np.float64)
    import scipy.sparse as sp

    C = sp.csr_matrix(_signed_conf(m, data.matrix))
    Ct = C.T.tocsr()
    for _ in range(2):
        X = K.reference_ials_half_step(
            C.indptr, C.indices, C.data, Y, a0, _freq_reg(lam, a0, nu, C)
        )
        Y = K.reference_ials_half_step(
            Ct.indptr, Ct.indices, Ct.data, X, a0, _freq_reg(lam, a0, nu, Ct)
        )
    np.testing.assert_allclose(m.user_factors_ @ m.item_factors_.T, X @ Y.T, atol=2e-3)
    # (the factors themselves may differ by a common rotation: the final loss is measured in
    # the eigenbasis of Y^T Y)
    # fold-in of histories uses the same per-row system
    fold = m.fold_in(data.matrix[:4])
    ref = K.reference_ials_half_step(
        C.indptr, C.indices, C.data, m.item_factors_, a0, _freq_reg(lam, a0, nu, C)
    )[:4]
    np.testing.assert_allclose(fold, ref, rtol=2e-3, atol=2e-4)


def test_cg_solver_solves_the_same_system(data):
    # with as many CG steps as factors, CG solves each row's system exactly
    kw = dict(factors=6, iterations=2, regularization=0.05, unobserved_weight=0.1, random_state=0)
    exact = ALS(solver="cholesky", **kw).fit(data)
    cg = ALS(solver="cg", cg_steps=12, **kw).fit(data)
    np.testing.assert_allclose(
        cg.user_factors_ @ cg.item_factors_.T,
        exact.user_factors_ @ exact.item_factors_.T,
        atol=5e-3,
    )


def test_defaults_keep_todays_model(data):
    base = ALS(factors=6, iterations=3, random_state=1).fit(data)
    same = ALS(
        factors=6,
        iterations=3,
        random_state=1,
        unobserved_weight=1.0,
        reg_exponent=1.0,
        init_scale=None,
    ).fit(data)
    np.testing.assert_array_equal(base.user_factors_, same.user_factors_)
    kw = dict(factors=6, iterations=3, random_state=1, solver="cholesky")
    plain = ALS(reg_scaling="none", **kw).fit(data)  # nu = 0 is the unscaled penalty
    nu0 = ALS(reg_scaling="frequency", reg_exponent=0.0, **kw).fit(data)
    np.testing.assert_allclose(
        nu0.user_factors_ @ nu0.item_factors_.T,
        plain.user_factors_ @ plain.item_factors_.T,
        atol=2e-4,
    )


def test_init_scale_and_validation(data):
    m = ALS(factors=64, iterations=0, init_scale=0.1, random_state=0).fit(data)
    assert abs(float(m.item_factors_.std()) - 0.1 / 8) < 0.002
    for bad in ({"unobserved_weight": 0}, {"reg_exponent": float("nan")}, {"init_scale": -1}):
        with pytest.raises(DeepcutsError, match=next(iter(bad))):
            ALS(**bad).fit(data)
    with pytest.raises(DeepcutsError, match="frequency"):
        make_model("als", reg_scaling="inverse")
    assert make_model("als", unobserved_weight="0.01").unobserved_weight == 0.01
