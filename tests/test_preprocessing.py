"""'Heard it on the radio' penalty (issue 5) and ALS training on it."""

import numpy as np
import pytest
import scipy.sparse as sp

from deepcuts.data.preprocessing import radio_mask
from deepcuts.data.weighting import apply_weighting, radio_penalty
from deepcuts.exceptions import DeepcutsError
from deepcuts.models import ALS
from deepcuts.testing import planted_blocks


def test_radio_mask_marks_short_listens_of_popular_items():
    # item 0: 4 listeners, item 1: 2, item 2: 1
    m = sp.csr_matrix(np.array([[1, 1, 0], [2, 0, 0], [3, 7, 0], [9, 0, 1]], dtype=np.float32))
    mask = radio_mask(m, max_plays=2, popular_quantile=0.6)
    # stored order: (0,0)=1 (0,1)=1 (1,0)=2 (2,0)=3 (2,1)=7 (3,0)=9 (3,2)=1
    assert mask.tolist() == [True, False, True, False, False, False, False]
    assert radio_mask(m, max_plays=1, popular_quantile=0.6).tolist() == [
        True, False, False, False, False, False, False]  # fmt: skip
    # quantile 0: every played item counts as popular
    assert radio_mask(m, max_plays=1, popular_quantile=0.0).sum() == 3


def test_radio_penalty_values_and_base():
    m = sp.csr_matrix(np.array([[1, 1, 0], [2, 0, 0], [3, 7, 0], [9, 0, 1]], np.float32))
    w = radio_penalty(m, popular_quantile=0.6, value=-0.25)
    expect = np.log1p(m.data)
    expect[[0, 2]] = -0.25
    np.testing.assert_allclose(w.data, expect, rtol=1e-6)
    np.testing.assert_array_equal(w.indices, m.indices)
    # as a registered weighting spec
    w2 = apply_weighting(m, "radio:popular_quantile=0.6,value=-0.25")
    np.testing.assert_allclose(w2.data, w.data)
    w3 = radio_penalty(m, popular_quantile=0.6, base="raw")
    assert w3.data.tolist() == [-0.5, 1, -0.5, 3, 7, 9, 1]


@pytest.mark.parametrize(
    "kw, msg",
    [
        ({"value": 0.5}, "mild negative"),
        ({"value": -20}, "mild negative"),
        ({"max_plays": 0}, "max_plays"),
        ({"popular_quantile": 1.0}, "popular_quantile"),
        ({"base": "radio"}, "another weighting"),
    ],
)
def test_radio_penalty_validation(kw, msg):
    with pytest.raises(DeepcutsError, match=msg):
        radio_penalty(sp.csr_matrix(np.ones((2, 2), np.float32)), **kw)


def test_als_trains_on_radio_penalty_and_scores_penalised_pairs_lower():
    x = planted_blocks(80, 30, 3, density=0.5, random_state=4)
    spec = "radio:max_plays=2,popular_quantile=0.5,value=-1"
    mask = radio_mask(x.matrix, max_plays=2, popular_quantile=0.5)
    assert mask.sum() >= 10
    pen = ALS(factors=8, iterations=8, weighting=spec, random_state=0).fit(x)
    plain = ALS(factors=8, iterations=8, weighting="log", random_state=0).fit(x)
    # signed confidence: negative (p = 0) exactly on the penalised pairs, 1 + alpha*|value|
    conf = pen._signed_confidence(pen._weights(x.matrix))
    np.testing.assert_array_equal(conf.data < 0, mask)
    np.testing.assert_allclose(conf.data[mask], -2.0)
    rows = np.repeat(np.arange(x.n_users), np.diff(x.matrix.indptr))
    cols = x.matrix.indices

    def pair_scores(model):
        return np.einsum("pf,pf->p", model.user_factors_[rows], model.item_factors_[cols])

    d = pair_scores(pen) - pair_scores(plain)
    assert d[mask].mean() < -0.2
    assert d[mask].mean() < d[~mask].mean() - 0.2
    # folding in a new listener works with the corpus-level weighting
    recs = pen.recommend_history({"i0": 1, "i3": 12, "i6": 30}, n=5)
    assert len(recs.items) == 5
