"""Item-item nearest-neighbour recommender (cosine or BM25 similarity)."""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import scipy.sparse as sp

from deepcuts.data.interactions import Interactions
from deepcuts.data.weighting import bm25 as bm25_weighting
from deepcuts.models._knn_kernels import topk_per_row
from deepcuts.models.base import Recommender

__all__ = ["ItemKNN"]

log = logging.getLogger(__name__)

_BLOCK_ITEMS = 2048


class ItemKNN(Recommender):
    """Item-based k-nearest-neighbour collaborative filtering (Sarwar et al. 2001).

    Items are compared by their listener columns; each item keeps its ``k`` most similar
    items. A user's score for item ``j`` is ``s_uj = sum_i r_ui * S_ij`` over the items ``i``
    the user played (``r_ui`` = play count), i.e. ``scores = user_items @ S``. Users outside
    the training data are scored the same way from their history (fold-in).

    Parameters
    ----------
    k : int, default=100
        Neighbours kept per item.
    similarity : {"cosine", "bm25"}, default="cosine"
        ``"cosine"``: ``S_ij = <x_i, x_j> / (||x_i|| ||x_j|| + shrink)`` on raw play-count
        columns ``x_i``. ``"bm25"``: ``S_ij = <w_i, w_j>`` on BM25-weighted columns, items
        taken as documents and listeners as terms (:func:`deepcuts.data.weighting.bm25` on
        the items x users matrix), as implicit's ``BM25Recommender`` does.
    shrink : float, default=0.0
        Shrinkage added to the cosine denominator (damps similarities resting on few common
        listeners). Cosine only.
    bm25_k1, bm25_b : float, default=1.2, 0.75
        BM25 saturation and length-normalisation parameters.

    Attributes
    ----------
    similarity_ : csr_matrix of shape (n_items, n_items) float32
        Row ``i`` holds item ``i``'s neighbours (at most ``k``; the item itself excluded).

    Examples
    --------
    >>> from deepcuts.data import load_lastfm2k
    >>> x = load_lastfm2k()
    >>> model = ItemKNN(k=50, similarity="bm25").fit(x)
    >>> model.similar_items(289, n=3).names.tolist()  # artist id 289: Britney Spears
    ['Lady Gaga', 'Rihanna', 'Christina Aguilera']
    """

    _state_arrays = ("similarity_",)
    supports_fold_in = True

    def __init__(
        self,
        *,
        k: int = 100,
        similarity: Literal["cosine", "bm25"] = "cosine",
        shrink: float = 0.0,
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
    ):
        self.k = k
        self.similarity = similarity
        self.shrink = shrink
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b

    def _check_params(self) -> None:
        if not isinstance(self.k, int | np.integer) or self.k < 1:
            raise ValueError(f"k must be a positive integer, got {self.k!r}")
        if self.similarity not in ("cosine", "bm25"):
            raise ValueError(f"similarity must be 'cosine' or 'bm25', got {self.similarity!r}")
        if self.shrink < 0:
            raise ValueError(f"shrink must be >= 0, got {self.shrink!r}")
        if self.shrink and self.similarity != "cosine":
            raise ValueError("shrink applies to cosine similarity only; set shrink=0 for bm25")
        if self.bm25_k1 < 0 or not 0 <= self.bm25_b <= 1:
            raise ValueError(
                f"need bm25_k1 >= 0 and 0 <= bm25_b <= 1, got {self.bm25_k1}, {self.bm25_b}"
            )

    def _fit(self, interactions: Interactions) -> None:
        self._check_params()
        x = interactions.matrix
        if self.similarity == "bm25":
            w = bm25_weighting(x.T.tocsr(), k1=self.bm25_k1, b=self.bm25_b).T
        else:
            w = x
        w = sp.csc_matrix(w, dtype=np.float64)  # users x items, column access per block
        w_t = sp.csr_matrix(w.T)  # items x users
        norms = np.sqrt(np.asarray(w.multiply(w).sum(axis=0)).ravel())
        n_items = w.shape[1]
        parts = []
        for start in range(0, n_items, _BLOCK_ITEMS):
            stop = min(start + _BLOCK_ITEMS, n_items)
            block = sp.csr_matrix(w_t[start:stop] @ w)  # (block, n_items) dot products
            block.sum_duplicates()
            block.sort_indices()
            rows = np.repeat(np.arange(start, stop), np.diff(block.indptr))
            if self.similarity == "cosine":
                denom = norms[rows] * norms[block.indices] + self.shrink
                block.data = np.divide(
                    block.data, denom, out=np.zeros_like(block.data), where=denom > 0
                )
            block.data[block.indices == rows] = 0.0  # an item is not its own neighbour
            block.data[~np.isfinite(block.data)] = 0.0
            block.eliminate_zeros()
            indptr, indices, data = topk_per_row(
                block.indptr, block.indices, block.data.astype(np.float32), int(self.k)
            )
            parts.append(sp.csr_matrix((data, indices, indptr), shape=(stop - start, n_items)))
        self.similarity_ = sp.csr_matrix(sp.vstack(parts, format="csr"), dtype=np.float32)
        log.info("item-kNN: %d items, %d neighbour links", n_items, self.similarity_.nnz)

    def _score(self, user_index: np.ndarray, user_items: sp.csr_matrix, **kw) -> np.ndarray:
        ui = sp.csr_matrix(user_items, dtype=np.float32)
        return np.asarray((ui @ self.similarity_).toarray(), dtype=np.float32)

    def _similar_items(self, item_index: np.ndarray) -> np.ndarray:
        rows = self.similarity_[np.asarray(item_index)]
        out = np.full(rows.shape, -np.inf, dtype=np.float32)
        r = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))
        out[r, rows.indices] = rows.data
        return out
