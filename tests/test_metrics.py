"""Metrics against hand-computed values, kernel vs reference, and Hypothesis properties."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from deepcuts.evaluation.metrics import (
    arp,
    catalogue_coverage,
    gini_exposure,
    hit_matrix,
    intra_list_diversity,
    item_vectors_from_matrix,
    map_at_k,
    ndcg_at_k,
    novelty,
    precision_at_k,
    recall_at_k,
)
from deepcuts.evaluation.metrics._kernels import ild_sparse, ild_sparse_reference

# three users, six items; user 2 has no test items
TEST = sp.csr_matrix(
    np.array(
        [
            [1, 0, 1, 0, 0, 1],  # relevant: 0, 2, 5
            [0, 3, 0, 0, 0, 0],  # relevant: 1 (count 3 is ignored: binary relevance)
            [0, 0, 0, 0, 0, 0],
        ],
        dtype=np.float32,
    )
)
REC = np.array([[2, 1, 0, 4], [3, 4, 0, 1], [0, 1, 2, 3]])


def test_hits():
    assert hit_matrix(REC, TEST).tolist() == [
        [True, False, True, False],
        [False, False, False, True],
        [False, False, False, False],
    ]


def test_precision_recall_hand_values():
    p = precision_at_k(REC, TEST, 3)
    r = recall_at_k(REC, TEST, 3)
    np.testing.assert_allclose(p[:2], [2 / 3, 0.0])
    np.testing.assert_allclose(r[:2], [2 / 3, 0.0])
    assert np.isnan(p[2]) and np.isnan(r[2])
    np.testing.assert_allclose(recall_at_k(REC, TEST, 4)[:2], [2 / 3, 1.0])
    np.testing.assert_allclose(precision_at_k(REC, TEST, 4)[:2], [0.5, 0.25])


def test_ndcg_hand_values():
    # user 0: hits at ranks 1 and 3, |rel| = 3 -> IDCG@3 = 1 + 1/log2(3) + 1/2
    dcg = 1 + 1 / np.log2(4)
    idcg = 1 + 1 / np.log2(3) + 1 / np.log2(4)
    # user 1: one hit at rank 4, |rel| = 1 -> IDCG@4 = 1
    got = ndcg_at_k(REC, TEST, 4)
    np.testing.assert_allclose(got[:2], [dcg / idcg, 1 / np.log2(5)])
    assert np.isnan(got[2])
    # perfect list
    perfect = ndcg_at_k(np.array([[5, 0, 2]]), TEST[:1], 3)
    np.testing.assert_allclose(perfect, [1.0])


def test_map_hand_values():
    # user 0, k=4: P@1 = 1, P@3 = 2/3 -> (1 + 2/3) / min(4, 3)
    # user 1: P@4 = 1/4 -> 0.25 / 1
    np.testing.assert_allclose(map_at_k(REC, TEST, 4)[:2], [(1 + 2 / 3) / 3, 0.25])
    # k=2 cuts user 0's second hit: 1 / min(2, 3)
    np.testing.assert_allclose(map_at_k(REC, TEST, 2)[:1], [0.5])


def test_padding_counts_as_miss():
    rec = np.array([[0, -1, -1]])
    np.testing.assert_allclose(precision_at_k(rec, TEST[:1], 3), [1 / 3])
    np.testing.assert_allclose(recall_at_k(rec, TEST[:1], 3), [1 / 3])


def test_beyond_accuracy_hand_values():
    pop = np.array([4, 2, 1, 0, 1, 4])  # training users per item, n_users = 4
    rec = np.array([[0, 1], [2, 3], [0, -1]])
    # self-information: item0 0 bits, item1 1 bit, item2 2, item3 (unseen -> pop 1) 2
    np.testing.assert_allclose(novelty(rec, pop, 4), [0.5, 2.0, 0.0])
    np.testing.assert_allclose(arp(rec, pop, 4), [0.75, 0.125, 1.0])
    assert catalogue_coverage(rec, 6) == pytest.approx(4 / 6)
    assert catalogue_coverage(rec, 6, k=1) == pytest.approx(2 / 6)
    # exposure sorted: [0, 0, 1, 1, 1, 2] over 6 items, total 5
    e = np.array([0, 0, 1, 1, 1, 2], float)
    j = np.arange(1, 7)
    assert gini_exposure(rec, 6) == pytest.approx(((2 * j - 7) * e).sum() / (6 * 5))


def test_diversity_from_matrix_hand_values():
    # items 0 and 1 share listener 0; item 2 has a disjoint listener
    m = sp.csr_matrix(np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 2.0]]))
    cos01 = 1 / np.sqrt(2)
    got = intra_list_diversity(np.array([[0, 1], [0, 2], [0, 1, 2][:2]]), matrix=m)
    np.testing.assert_allclose(got, [1 - cos01, 1.0, 1 - cos01])
    three = intra_list_diversity(np.array([[0, 1, 2]]), matrix=m)
    np.testing.assert_allclose(three, [((1 - cos01) + 1 + 1) / 3])
    # the dense-vector path agrees with the sparse kernel
    dense = intra_list_diversity(np.array([[0, 1, 2]]), item_vectors=m.T.toarray())
    np.testing.assert_allclose(dense, three)


def test_ild_kernel_matches_reference():
    rng = np.random.default_rng(0)
    m = sp.random(40, 25, density=0.2, random_state=1, format="csr")
    rows = item_vectors_from_matrix(m)
    rec = rng.integers(-1, 25, size=(30, 6))
    np.testing.assert_allclose(ild_sparse(rec, rows), ild_sparse_reference(rec, rows), atol=1e-9)


# ----------------------------------------------------------------------------- properties
N_ITEMS = 12


@st.composite
def lists_and_tests(draw):
    b = draw(st.integers(1, 6))
    n = draw(st.integers(1, 8))
    rec = np.array([draw(st.permutations(range(N_ITEMS)))[:n] for _ in range(b)])
    # pad the tail of some lists with -1 (fewer eligible items)
    pad = draw(st.lists(st.integers(0, n - 1), min_size=b, max_size=b))
    for u, p in enumerate(pad):
        rec[u, n - p :] = -1
    test = np.array(
        [draw(st.lists(st.booleans(), min_size=N_ITEMS, max_size=N_ITEMS)) for _ in range(b)]
    )
    return rec, sp.csr_matrix(test.astype(np.float32)), draw(st.integers(1, n))


@settings(max_examples=60, deadline=None)
@given(lists_and_tests())
def test_accuracy_metrics_in_unit_interval(args):
    rec, test, k = args
    has = test.getnnz(axis=1) > 0
    for f in (precision_at_k, recall_at_k, ndcg_at_k, map_at_k):
        v = f(rec, test, k)
        assert np.isnan(v[~has]).all()
        assert ((v[has] >= 0) & (v[has] <= 1 + 1e-12)).all()
    # recall never decreases with k; NDCG of the ideal list is 1
    if k < rec.shape[1]:
        assert (recall_at_k(rec, test, k + 1)[has] >= recall_at_k(rec, test, k)[has]).all()


@settings(max_examples=40, deadline=None)
@given(lists_and_tests(), st.integers(1, 50))
def test_beyond_accuracy_ranges(args, n_users):
    rec, _, k = args
    pop = np.arange(N_ITEMS) % (n_users + 1)
    assert 0 <= catalogue_coverage(rec, N_ITEMS, k) <= 1
    g = gini_exposure(rec, N_ITEMS, k)
    assert np.isnan(g) or 0 <= g <= 1
    a = arp(rec, pop, n_users, k)
    assert ((a[~np.isnan(a)] >= 0) & (a[~np.isnan(a)] <= 1)).all()
    nov = novelty(rec, pop, n_users, k)
    ok = nov[~np.isnan(nov)]
    assert ((ok >= 0) & (ok <= np.log2(n_users) + 1e-12)).all()
    m = sp.random(20, N_ITEMS, density=0.3, random_state=k, format="csr")
    d = intra_list_diversity(rec, matrix=m, k=k)
    ok = d[~np.isnan(d)]
    assert ((ok >= -1e-9) & (ok <= 1 + 1e-9)).all()


def test_ideal_ranking_ndcg_is_one():
    rng = np.random.default_rng(3)
    test = sp.csr_matrix((rng.random((20, 30)) < 0.2).astype(np.float32))
    scores = test.toarray() + rng.random((20, 30)) * 0.5
    rec = np.argsort(-scores, axis=1)[:, :10]
    has = test.getnnz(axis=1) > 0
    np.testing.assert_allclose(ndcg_at_k(rec, test, 10)[has], 1.0)
    np.testing.assert_allclose(map_at_k(rec, test, 10)[has], 1.0)


# ------------------------------------------------------------------ issue 11: deep-cut metrics


def test_long_tail_mask_and_recall_hand_computed():
    from deepcuts.evaluation.metrics import long_tail_mask, long_tail_recall

    pop = np.array([10, 8, 8, 5, 2, 1, 0, 0, 0, 0])
    # head = 20% of 10 items = 2: items more popular than the 2nd (8) -> only item 0
    # (item 2 ties with the cut and stays in the tail, so the head never exceeds 20%)
    lt = long_tail_mask(pop, 0.2)
    assert lt.tolist() == [False] + [True] * 9
    test = sp.csr_matrix(np.array([[1, 1, 0, 1, 0, 1, 0, 0, 0, 0],
                                   [1, 0, 0, 0, 0, 0, 0, 0, 0, 0]], np.float32))  # fmt: skip
    rec = np.array([[0, 3, 9, -1], [0, 1, 2, 3]])
    # user 0: long-tail test items {1, 3, 5}; item 3 found in the top 4 -> 1/3
    # user 1: no long-tail test item -> NaN
    got = long_tail_recall(rec, test, lt, 4)
    assert got[0] == pytest.approx(1 / 3) and np.isnan(got[1])
    assert long_tail_recall(rec, test, lt, 1)[0] == 0.0
    with pytest.raises(ValueError, match="head_share"):
        long_tail_mask(pop, 1.0)


def test_thin_share_hand_computed():
    from deepcuts.evaluation.metrics import thin_share

    pop = np.array([1, 2, 3, 50])
    rec = np.array([[0, 1, 2, 3], [3, 2, -1, -1], [-1, -1, -1, -1]])
    got = thin_share(rec, pop, floor=3)
    assert got[:2].tolist() == [0.5, 0.0] and np.isnan(got[2])
    assert thin_share(rec, pop, floor=2, k=2)[0] == 0.5  # items 0 (1 listener), 1 (2)
    assert thin_share(rec, pop, floor=51).tolist()[:2] == [1.0, 1.0]


def test_genre_fit_hand_computed():
    from deepcuts.evaluation.metrics import genre_fit, tag_matrix

    tags = tag_matrix([["rock"], ["rock", "pop"], ["jazz"], [], ["pop"], ["metal"], ["jazz"]])
    # user 0 plays 0 (9x), 1 (5x), 2 (1x): tag weights rock 14, pop 5, jazz 1
    # user 1 plays nothing tagged -> NaN
    history = sp.csr_matrix(np.array([[9, 5, 1, 0, 0, 0, 0], [0, 0, 0, 4, 0, 0, 0]]))
    rec = np.array([[4, 5, 3, 6], [0, 1, -1, -1]])
    # top_tags=2 -> {rock, pop}: item 4 (pop) fits, 5 (metal) not, 3 untagged (skipped),
    # 6 (jazz) not -> 1/3
    got = genre_fit(rec, history, tags, top_tags=2)
    assert got[0] == pytest.approx(1 / 3) and np.isnan(got[1])
    # top_tags=3 adds jazz: 2/3; top_artists=1 keeps only item 0 (rock): 0/3
    assert genre_fit(rec, history, tags, top_tags=3)[0] == pytest.approx(2 / 3)
    assert genre_fit(rec, history, tags, top_artists=1)[0] == 0.0


def test_evaluate_reports_the_deep_cut_metrics():
    from deepcuts.data import generate_listening
    from deepcuts.evaluation import evaluate, user_holdout_split
    from deepcuts.models import Popularity

    x = generate_listening(200, 600, random_state=0).interactions
    train, test = user_holdout_split(x, test_fraction=0.2, random_state=0)
    _, means = evaluate(Popularity(), train, test, k=10,
                        metrics=["longtail_recall", "thin", "genre_fit"])  # fmt: skip
    assert means["longtail_recall@10"] == 0.0  # the most popular items are the head
    assert means["thin@10"] == 0.0
    assert 0.0 < means["genre_fit@10"] <= 1.0
