"""User/item filters and k-core (issue 2)."""

import numpy as np
import pandas as pd
import pytest

from deepcuts.data import Interactions, filter_interactions, load_lastfm2k
from deepcuts.exceptions import DeepcutsError


def random_interactions(seed=0, n_users=80, n_items=50, nnz=400):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "user": rng.integers(n_users, size=nnz),
            "item": (rng.pareto(1.0, size=nnz) * 3).astype(int) % n_items,
            "count": rng.integers(1, 10, size=nnz),
            "t": rng.integers(0, 10**6, size=nnz),
        }
    )
    return Interactions.from_frame(df, time_col="t")


def test_one_pass_matches_reference():
    x = random_interactions()
    y = filter_interactions(x, min_items_per_user=3, min_users_per_item=2)
    dense = x.matrix.toarray()
    users = (dense > 0).sum(1) >= 3
    d2 = dense[users]
    items = (d2 > 0).sum(0) >= 2
    assert y.user_map.ids.tolist() == x.user_map.ids[users].tolist()
    assert y.item_map.ids.tolist() == x.item_map.ids[items].tolist()
    np.testing.assert_array_equal(y.matrix.toarray(), d2[:, items])
    assert y.meta["filtered"]["dropped_users"] == int((~users).sum())
    assert len(y.timestamps) == y.nnz


def test_kcore_is_fixed_point():
    x = random_interactions(seed=1)
    y = filter_interactions(x, min_items_per_user=3, min_users_per_item=3, iterate=True)
    assert y.n_users > 0
    assert (np.diff(y.matrix.indptr) >= 3).all()
    assert (y.item_popularity() >= 3).all()
    # the k-core is the largest such subgraph: filtering again changes nothing
    z = filter_interactions(y, min_items_per_user=3, min_users_per_item=3, iterate=True)
    assert z.shape == y.shape and z.meta["filtered"]["rounds"] == 1


def test_lastfm2k_single_artist_users():
    x = load_lastfm2k()
    y = filter_interactions(x, min_items_per_user=2)
    n_single = int((np.diff(x.matrix.indptr) < 2).sum())
    assert y.n_users == x.n_users - n_single
    assert y.items is not None and len(y.items) == y.n_items


def test_bad_thresholds():
    with pytest.raises(DeepcutsError, match="min_items_per_user"):
        filter_interactions(random_interactions(), min_items_per_user=-1)
