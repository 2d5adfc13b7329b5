"""Weighting of play counts against hand-computed values (issue 2)."""

import numpy as np
import pytest
import scipy.sparse as sp

from deepcuts.data.weighting import (
    WEIGHTINGS,
    apply_weighting,
    bm25,
    confidence,
    linear_confidence,
    log_scale,
    mild_negative,
    parse_weighting,
    raw,
    tfidf,
)
from deepcuts.exceptions import DeepcutsError

# 3 users x 3 items; user 0 has 2 items, user 1 has 1, user 2 has 3 (avg length 2)
X = sp.csr_matrix(np.array([[1.0, 3.0, 0.0], [0.0, 0.0, 7.0], [2.0, 1.0, 1.0]]))


def dense(m):
    return np.asarray(m.toarray(), np.float64)


def test_raw_and_log():
    np.testing.assert_array_equal(dense(raw(X)), dense(X))
    np.testing.assert_allclose(dense(log_scale(X))[0], [np.log(2), np.log(4), 0], rtol=1e-6)
    np.testing.assert_allclose(dense(log_scale(X, eta=0.5))[1, 2], np.log(7.5), rtol=1e-6)


def test_confidence_hu_koren_volinsky():
    # c = 1 + alpha * log(1 + x / eps)
    got = dense(confidence(X, alpha=2.0, eps=3.0))
    np.testing.assert_allclose(got[0, :2], [1 + 2 * np.log(4 / 3), 1 + 2 * np.log(2)], rtol=1e-6)
    np.testing.assert_allclose(got[1, 2], 1 + 2 * np.log(1 + 7 / 3), rtol=1e-6)
    np.testing.assert_allclose(dense(linear_confidence(X, alpha=10.0))[1, 2], 71.0)


def test_bm25_hand_values():
    k1, b = 1.2, 0.75
    # idf(i) = log(n_users / df(i)); df = [2, 2, 2] -> log(3/2) for every item
    idf = np.log(3 / 2)
    got = dense(bm25(X, k1=k1, b=b))

    def w(x, length):
        return idf * x * (k1 + 1) / (x + k1 * (1 - b + b * length / 2.0))

    np.testing.assert_allclose(got[0, :2], [w(1, 2), w(3, 2)], rtol=1e-6)
    np.testing.assert_allclose(got[1, 2], w(7, 1), rtol=1e-6)
    np.testing.assert_allclose(got[2], [w(2, 3), w(1, 3), w(1, 3)], rtol=1e-6)
    # b = 0: no length normalisation; saturation: w -> idf * (k1 + 1) as x grows
    big = dense(bm25(sp.csr_matrix([[1e9, 0.0], [0.0, 1.0]]), k1=k1, b=0.0))
    np.testing.assert_allclose(big[0, 0], np.log(2) * (k1 + 1), rtol=1e-5)


def test_tfidf_hand_values():
    got = dense(tfidf(X))
    idf = np.log(3 / 2)
    np.testing.assert_allclose(got[0, :2], [idf, np.sqrt(3) * idf], rtol=1e-6)
    np.testing.assert_allclose(got[1, 2], np.sqrt(7) * idf, rtol=1e-6)


def test_mild_negative():
    # log2(x + 0.1) - 2: one play is a mild negative, four plays about neutral
    got = mild_negative(sp.csr_matrix([[1.0, 4.0, 100.0]])).data.astype(np.float64)
    np.testing.assert_allclose(got, np.log2([1.1, 4.1, 100.1]) - 2, rtol=1e-6)
    assert got[0] < 0 < got[2]
    assert abs(got[1]) < 0.05
    custom = mild_negative(sp.csr_matrix([[1.0]]), shift=1.0, offset=0.5, base=10.0).data
    np.testing.assert_allclose(custom, [np.log10(2) - 0.5], rtol=1e-6)


@pytest.mark.parametrize("name", sorted(WEIGHTINGS))
def test_same_pattern_float32(name):
    w = apply_weighting(X, name)
    assert w.dtype == np.float32
    np.testing.assert_array_equal(w.indptr, X.indptr)
    np.testing.assert_array_equal(w.indices, X.indices)
    np.testing.assert_array_equal(X.data, [1, 3, 7, 2, 1, 1])  # input untouched


def test_specs_and_errors():
    assert parse_weighting("confidence:alpha=40,eps=2") == (
        "confidence",
        {"alpha": 40.0, "eps": 2.0},
    )
    np.testing.assert_allclose(
        dense(apply_weighting(X, "log:eta=0.5")), dense(log_scale(X, eta=0.5))
    )
    np.testing.assert_allclose(dense(apply_weighting(X, None)), dense(X))
    with pytest.raises(DeepcutsError, match="unknown weighting"):
        apply_weighting(X, "sqrt")
    with pytest.raises(DeepcutsError, match="must be a number"):
        parse_weighting("log:eta=big")
    with pytest.raises(DeepcutsError, match="bad parameter"):
        apply_weighting(X, "tfidf:alpha=3")
    with pytest.raises(DeepcutsError, match="eta"):
        log_scale(X, eta=0)
