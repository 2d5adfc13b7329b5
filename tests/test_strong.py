"""Strong generalisation (issue 16; Liang et al. 2018): held-out users, fold-in on 80% of
their items, scored on the rest."""

from __future__ import annotations

import numpy as np
import pytest

from deepcuts.evaluation import StrongSplit, evaluate_strong, strong_generalization_split
from deepcuts.exceptions import DeepcutsError
from deepcuts.models import ALS, EASE, Popularity
from deepcuts.testing import planted_blocks


@pytest.fixture(scope="module")
def data():
    return planted_blocks(200, 40, 4, density=0.5, random_state=2)


def test_split_partitions_held_out_users(data):
    s = strong_generalization_split(data, heldout_users=0.25, random_state=1)
    assert isinstance(s, StrongSplit)
    assert s.train.n_users == 150 and s.fold_in.n_users == s.test.n_users == 50
    assert s.fold_in.user_map == s.test.user_map and s.fold_in.item_map == s.train.item_map
    held = set(s.fold_in.user_map.ids.tolist())
    assert held.isdisjoint(s.train.user_map.ids.tolist())
    assert (s.fold_in.matrix.multiply(s.test.matrix)).nnz == 0  # disjoint plays
    n = s.fold_in.matrix.getnnz(axis=1) + s.test.matrix.getnnz(axis=1)
    np.testing.assert_array_equal(
        s.test.matrix.getnnz(axis=1), np.maximum(np.floor(0.2 * n), 1).astype(int)
    )
    assert s.train.nnz + s.fold_in.nnz + s.test.nnz == data.nnz
    again = strong_generalization_split(data, heldout_users=0.25, random_state=1)
    assert (again.test.matrix != s.test.matrix).nnz == 0  # seeded


def test_recall_uses_min_k_n_test_and_models_fold_in(data):
    s = strong_generalization_split(data, heldout_users=40, random_state=0)
    per_user, means = evaluate_strong(EASE(regularization=5.0), s, k=(1, 5))
    assert len(per_user) == 40 and set(means) == {"recall@1", "recall@5", "ndcg@1", "ndcg@5"}
    # a user whose test items all rank first has recall 1 at k = 1 even with several test items
    assert means["recall@1"] == pytest.approx(per_user["recall@1"].mean())
    assert per_user["recall@1"].max() <= 1.0 and (per_user["n_test"] > 1).any()
    _, pop = evaluate_strong(Popularity(), s, k=5)
    _, als = evaluate_strong(ALS(factors=8, iterations=6, random_state=0), s, k=5)
    assert means["recall@5"] > pop["recall@5"] + 0.2 and als["recall@5"] > pop["recall@5"]


def test_errors(data):
    with pytest.raises(DeepcutsError, match="heldout_users"):
        strong_generalization_split(data, heldout_users=1.5)
    with pytest.raises(DeepcutsError, match="fewer"):
        strong_generalization_split(data, heldout_users=10_000)
    s = strong_generalization_split(data, heldout_users=20)
    other = Popularity().fit(data)
    with pytest.raises(DeepcutsError, match="refit"):
        evaluate_strong(other, s)
