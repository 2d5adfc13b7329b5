"""RP3beta (issue 16): the compiled top-k against a dense NumPy reference of Dacrema et al.'s
formulation, fold-in, save/load and the registry."""

from __future__ import annotations

import numpy as np
import pytest

from deepcuts.exceptions import DeepcutsError
from deepcuts.models import RP3beta, load_model, make_model
from deepcuts.models._knn_kernels import topk_per_row_reference
from deepcuts.testing import RecommenderContract, planted_blocks


class TestRP3betaContract(RecommenderContract):
    def make_model(self):
        return RP3beta(alpha=0.8, beta=0.4, neighbors=20)


def _reference(x: np.ndarray, alpha: float, beta: float, k: int, normalize: bool) -> np.ndarray:
    """Dense NumPy RP3beta (Paudel et al. 2017 as in Dacrema et al. 2019)."""
    x = (x > 0).astype(np.float64)
    p_ui = x / np.maximum(x.sum(axis=1, keepdims=True), 1e-300)
    p_iu = x.T / np.maximum(x.T.sum(axis=1, keepdims=True), 1e-300)
    pop = x.sum(axis=0)
    w = (p_iu**alpha) @ (p_ui**alpha)
    w = w * np.where(pop > 0, pop, 1.0) ** -beta
    np.fill_diagonal(w, 0.0)
    w = topk_per_row_reference(w, k)
    if normalize:
        s = w.sum(axis=1, keepdims=True)
        w = np.divide(w, s, out=np.zeros_like(w), where=s > 0)
    return w


@pytest.mark.parametrize(
    "alpha,beta,k,normalize", [(1.0, 0.0, 5, True), (0.7, 0.5, 8, True), (1.3, 0.3, 100, False)]
)
def test_matches_dense_reference(alpha, beta, k, normalize):
    x = planted_blocks(70, 35, 3, noise=0.1, random_state=4)
    m = RP3beta(alpha=alpha, beta=beta, neighbors=k, normalize=normalize).fit(x)
    ref = _reference(x.matrix.toarray(), alpha, beta, k, normalize)
    np.testing.assert_allclose(m.similarity_.toarray(), ref, rtol=1e-5, atol=1e-7)
    assert (m.similarity_.getnnz(axis=1) <= k).all()
    ui = x.matrix[:3].toarray() > 0
    np.testing.assert_allclose(m.score_index(np.arange(3)), ui @ ref, rtol=1e-4, atol=1e-6)


def test_fold_in_save_load_and_errors(tmp_path):
    x = planted_blocks(60, 30, 3, random_state=0)
    m = make_model("rp3beta", alpha="0.9", beta="0.5", neighbors="15").fit(x)
    row = x.matrix[7]
    history = dict(zip(x.item_map.external(row.indices), row.data))
    u = x.user_map.external(np.array([7]))[0]
    assert m.recommend(u, n=5).items.tolist() == m.recommend_history(history, n=5).items.tolist()
    back = load_model(m.save(tmp_path / "rp3"))
    assert isinstance(back, RP3beta) and back.neighbors == 15
    assert (back.similarity_ != m.similarity_).nnz == 0
    with pytest.raises(DeepcutsError, match="beta"):
        make_model("rp3beta", beta="-1")
    with pytest.raises(DeepcutsError, match="neighbors"):
        RP3beta(neighbors=0).fit(x)
