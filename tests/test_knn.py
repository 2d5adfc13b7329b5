import numpy as np
import pytest
import scipy.sparse as sp

from deepcuts.data import load_lastfm2k
from deepcuts.data.weighting import bm25
from deepcuts.exceptions import DeepcutsError
from deepcuts.models import ItemKNN, make_model
from deepcuts.models._knn_kernels import item_neighbours, topk_per_row_reference
from deepcuts.testing import RecommenderContract, planted_blocks


class TestItemKNNCosine(RecommenderContract):
    def make_model(self):
        return ItemKNN(k=20, similarity="cosine")


class TestItemKNNBM25Implicit(RecommenderContract):
    def make_model(self):
        return ItemKNN(k=20)  # default: similarity="bm25-implicit"


class TestItemKNNBM25(RecommenderContract):
    def make_model(self):
        return ItemKNN(k=20, similarity="bm25")


def _dense_reference(x: np.ndarray, k: int, similarity: str, shrink: float = 0.0) -> np.ndarray:
    """Item-kNN similarity in plain dense NumPy."""
    if similarity == "bm25":
        w = bm25(sp.csr_matrix(x.T)).toarray().T.astype(np.float64)
        s = w.T @ w
    else:
        w = x.astype(np.float64)
        norms = np.linalg.norm(w, axis=0)
        s = (w.T @ w) / (np.outer(norms, norms) + shrink)
    np.fill_diagonal(s, 0.0)
    return topk_per_row_reference(s, k)


@pytest.mark.parametrize("similarity,shrink", [("cosine", 0.0), ("cosine", 5.0), ("bm25", 0.0)])
def test_matches_dense_reference(similarity, shrink):
    x = planted_blocks(50, 30, 3, random_state=2)
    model = ItemKNN(k=7, similarity=similarity, shrink=shrink).fit(x)
    ref = _dense_reference(x.matrix.toarray(), 7, similarity, shrink)
    np.testing.assert_allclose(model.similarity_.toarray(), ref, rtol=1e-5, atol=1e-6)
    assert (model.similarity_.getnnz(axis=1) <= 7).all()
    # scores are user_items @ S
    ui = x.matrix[:5]
    np.testing.assert_allclose(
        model.score_index(np.arange(5)), ui.toarray() @ ref, rtol=1e-4, atol=1e-4
    )


def test_neighbour_kernel_matches_reference():
    rng = np.random.default_rng(0)
    w = sp.csr_matrix(rng.integers(0, 4, size=(40, 30)) * (rng.random((40, 30)) < 0.3))
    w = sp.vstack([w, sp.csr_matrix(np.ones((1, 30)))]).tocsr()  # many exact ties
    dense = w.toarray().astype(np.float64)
    for cosine, shrink in ((True, 0.0), (True, 2.0), (False, 0.0)):
        s = dense.T @ dense
        if cosine:
            n = np.linalg.norm(dense, axis=0)
            s = s / (np.outer(n, n) + shrink)
        np.fill_diagonal(s, 0.0)
        for k in (1, 3, 8, 100):
            indptr, indices, data = item_neighbours(w, k, cosine=cosine, shrink=shrink)
            got = sp.csr_matrix((data, indices, indptr), shape=(30, 30)).toarray()
            np.testing.assert_allclose(got, topk_per_row_reference(s, k), rtol=1e-6)


def test_fold_in_matches_known_user():
    x = planted_blocks(60, 30, 3, random_state=0)
    model = ItemKNN(k=10, similarity="cosine").fit(x)
    hist = x.user_items("u4")
    a = model.recommend("u4", n=5).to_frame()
    b = model.recommend_history(dict(zip(hist["item"], hist["count"])), n=5).to_frame()
    assert a["item"].tolist() == b["item"].tolist()
    np.testing.assert_allclose(a["score"], b["score"], rtol=1e-5)


def test_similar_items_on_lastfm():
    x = load_lastfm2k()
    model = ItemKNN(k=30, similarity="bm25").fit(x)
    sims = model.similar_items(289, n=40).to_frame()  # Britney Spears
    assert len(sims) == 30  # only stored neighbours, never filler items
    assert 289 not in set(sims["item"])
    assert "Christina Aguilera" in sims["name"].head(5).tolist()


def test_bad_params():
    with pytest.raises(DeepcutsError, match="similarity"):
        make_model("itemknn", similarity="jaccard")
    with pytest.raises(DeepcutsError, match="shrink"):
        make_model("itemknn", similarity="bm25", shrink="3")
    with pytest.raises(DeepcutsError, match="must be of type int"):
        make_model("itemknn", k="many")
    with pytest.raises(DeepcutsError, match="no parameter"):
        make_model("itemknn", neighbours=3)
    with pytest.raises(DeepcutsError, match="unknown model"):
        make_model("svd")
    with pytest.raises(ValueError, match="k must be"):
        ItemKNN(k=0).fit(planted_blocks(10, 6, random_state=0))


def test_make_model_coerces_command_line_strings():
    m = make_model("als", factors="8", regularization="0.1", random_state="3")
    assert (m.factors, m.regularization, m.random_state) == (8, 0.1, 3)
    assert make_model("als", random_state="none").random_state is None
    assert make_model("popularity", by="plays").by == "plays"
