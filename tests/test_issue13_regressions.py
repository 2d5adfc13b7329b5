"""Tests that catch the bugs issue 13 planted in copies of the code (point 9): independent
references, boundary cases and stored data read back. ``benchmarks/mutation_check.py``
re-plants each bug and checks that a test here (or elsewhere) fails."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from deepcuts.data import generate_listening
from deepcuts.data.weighting import apply_weighting
from deepcuts.evaluation.metrics.accuracy import map_at_k, ndcg_at_k, recall_at_k
from deepcuts.models import ALS, ItemKNN, PersonaALS
from deepcuts.models import _persona_kernels as K
from deepcuts.rerank import RarityKnob
from deepcuts.rerank.rarity import shifted_log


@pytest.fixture(scope="module")
def listening():
    return generate_listening(120, 80, random_state=3).interactions


# ---------------------------------------------------------------------- fold-in weighting
def test_bm25_fold_in_uses_the_corpus_statistics(listening):
    """An independent NumPy solve with bm25 weights from the training corpus: the folded-in
    vector of a training user's history must give that user's scores (the issue's bug,
    weighting the history on its own row, moved one listener's error from 0.003 to 0.2)."""
    x = listening
    m = ALS(factors=8, iterations=6, regularization=0.1, reg_scaling="none", weighting="bm25",
            random_state=0)  # fmt: skip
    m.fit(x)
    Y = m.item_factors_.astype(np.float64)
    W = apply_weighting(sp.csr_matrix(x.matrix, dtype=np.float32), "bm25")
    worst = 0.0
    for u in range(0, x.n_users, 7):
        row = W[u]
        Yi = Y[row.indices]
        c = 1.0 + m.alpha * row.data.astype(np.float64)  # c_ui = 1 + alpha w_ui, p_ui = 1
        A = Y.T @ Y + Yi.T @ ((c - 1.0)[:, None] * Yi) + m.regularization * np.eye(Y.shape[1])
        ref = np.linalg.solve(A, Yi.T @ c)  # x_u = (Y^T C_u Y + reg I)^-1 Y^T C_u p(u)
        got = m.fold_in(x.matrix[u]).astype(np.float64)[0]
        s_ref, s_got = Y @ ref, Y @ got
        worst = max(worst, np.abs(s_ref - s_got).max() / np.abs(s_ref).max())
    # the fold-in weighs the row within train + row: one document more than the reference
    assert worst < 0.02, worst


# ---------------------------------------------------------------------- rarity and zeros
def test_rarity_shift_keeps_zero_scores():
    s = np.array([[2.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 3.0]], np.float32)
    out = shifted_log(s)
    assert np.isfinite(out).all()  # a zero score is a candidate, not -inf
    assert (np.argsort(-out, axis=1, kind="stable") == np.argsort(-s, axis=1, kind="stable")).all()


def test_rarity_knob_keeps_the_list_length_of_a_sparse_scorer(listening):
    """ItemKNN(k=3) scores most items 0: the knob must re-order them, not drop them."""
    m = ItemKNN(k=3).fit(listening)
    users = listening.user_map.ids[:30]
    plain = m.recommend(users, n=20).to_frame()
    knob = m.recommend(users, n=20, rerankers=[RarityKnob(0.5)]).to_frame()
    assert (knob.groupby("user").size() == plain.groupby("user").size()).all()
    assert (plain.groupby("user").size() == 20).all()


# ---------------------------------------------------------------------- metrics, |rel| > k
def test_metrics_with_more_relevant_items_than_k():
    test = sp.csr_matrix(np.array([[1, 1, 1, 1, 1, 0, 0]], np.float32))  # 5 relevant
    hit_all = np.array([[0, 1]])  # k = 2: a perfect list
    np.testing.assert_allclose(ndcg_at_k(hit_all, test, 2), [1.0])
    np.testing.assert_allclose(map_at_k(hit_all, test, 2), [1.0])
    np.testing.assert_allclose(recall_at_k(hit_all, test, 2), [2 / 5])
    half = np.array([[5, 0]])  # a miss, then a hit at rank 2
    idcg = 1 + 1 / np.log2(3)
    np.testing.assert_allclose(ndcg_at_k(half, test, 2), [(1 / np.log2(3)) / idcg])
    np.testing.assert_allclose(map_at_k(half, test, 2), [(1 / 2) / 2])


# ---------------------------------------------------------------------- personas
def test_one_persona_is_als_to_float_precision():
    """P = 1 is single-vector ALS: the same solves from the same start (real difference
    ~5e-6; a doubled persona penalty moves it by ~1e-2)."""
    x = generate_listening(80, 50, random_state=1).interactions
    kw = dict(factors=6, regularization=0.1, reg_scaling="none", solver="cholesky", random_state=0)
    m = PersonaALS(n_personas=1, iterations=2, init_iterations=2, init_noise=0.0, **kw).fit(x)
    als = ALS(iterations=4, **kw).fit(x)
    s1 = m.persona_factors_[:, 0] @ m.item_factors_.T
    s2 = als.user_factors_ @ als.item_factors_.T
    assert np.abs(s1 - s2).max() < 1e-3 * np.abs(s2).max()


def test_assignment_fills_every_persona_at_the_boundary():
    """Users with exactly as many items as personas (m == P_u), every item preferring
    persona 0: each persona must end with one item, the weakest items moving first."""
    f, P = 2, 3
    Y = np.array([[1.0, 0.1], [0.9, 0.1], [0.8, 0.1], [0.7, 0.1], [0.6, 0.1]], np.float32)
    U = np.zeros((3, P, f), np.float32)
    U[:, 0] = [1.0, 0.0]  # persona 0 scores every item highest
    U[:, 1] = [0.0, -1.0]
    U[:, 2] = [0.0, -2.0]
    rows = [[0, 1, 2], [2, 3], [0, 1, 2, 3, 4]]  # m = 3 = P, m = 2 = P_u, m = 5 > P
    n_act = np.array([3, 2, 3], np.int32)
    indptr = np.cumsum([0] + [len(r) for r in rows]).astype(np.int64)
    indices = np.concatenate(rows).astype(np.int32)
    out = np.zeros(len(indices), np.int32)
    K.assign_personas(indptr, indices, U, Y, n_act, 0.0, 2, out)
    for u in range(len(rows)):
        a = out[indptr[u] : indptr[u + 1]]
        assert set(a.tolist()) == set(range(n_act[u])), (u, a)
    # the strongest item of user 0 stays with persona 0
    assert out[0] == 0


# ---------------------------------------------------------------------- stored listens
def test_stored_listens_read_back_as_posted(tmp_path):
    pytest.importorskip("sqlalchemy")
    from sqlalchemy import select

    from deepcuts.serving import schema as S
    from deepcuts.serving.store import Listen, Store, default_url

    store = Store(default_url(tmp_path))
    store.add_listens(
        [
            Listen("ann", "Artist A", "t1", 1_234_567_890, 0.0),  # a skip
            Listen("ann", "Artist A", "t2", 1_234_567_891, 0.5),
            Listen("ann", "Artist B", None, 7, None),
        ]
    )
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(S.listens.c.listened_at, S.listens.c.fraction).order_by(S.listens.c.id)
        ).all()
    assert [tuple(r) for r in rows] == [(1_234_567_890, 0.0), (1_234_567_891, 0.5), (7, None)]
    assert store.history("ann") == {"artist a": 0.5, "artist b": 1.0}
