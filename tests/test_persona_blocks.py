"""PostHocPersonas fits its training users in blocks (bounded memory at 1M users, issue 15)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from deepcuts.models import ALS
from deepcuts.models.persona import PostHocPersonas
from deepcuts.testing import planted_blocks


def test_blocks_give_the_personas_of_one_pass():
    x = planted_blocks(90, 40, 3, random_state=0)
    als = ALS(factors=8, iterations=4, random_state=0).fit(x)
    m = PostHocPersonas.from_model(als, min_artists=1, min_share=0.0)
    rows = sp.csr_matrix(x.matrix, dtype=np.float32)
    whole = m._build(rows)
    blocks = m._build_blocks(rows, block=7)  # 13 blocks, the last one short
    assert whole[3].max() > 1  # several personas somewhere, so the padding is exercised
    for a, b in zip(whole, blocks):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # the fitted model (a single block here) holds the same arrays
    np.testing.assert_array_equal(m.user_n_personas_, blocks[3])
