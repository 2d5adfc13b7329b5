"""RP3beta: a three-step random walk on the user-item graph with a popularity penalty.

Paudel, Christoffel, Newell, Bernstein (2017), "Updatable, accurate, diverse, and scalable
recommendations for interactive applications", ACM TiiS; the formulation of Dacrema, Cremonesi,
Jannach (2019), "Are we really making much progress?", RecSys (their ``RP3betaRecommender``):

    P_ui = (x_ui / sum_j x_uj) ** alpha       (user -> item transition probabilities)
    P_iu = (x_ui / sum_v x_vi) ** alpha       (item -> user)
    W_ij = (P_iu P_ui)_ij / pop_j ** beta     (j != i; pop_j = number of listeners of j)

on the binarised matrix ``X``; each row of ``W`` keeps its ``neighbors`` largest entries and is
then divided by its sum. A user's scores are ``x_u W``.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

from deepcuts.data.interactions import Interactions
from deepcuts.exceptions import DeepcutsError
from deepcuts.models._knn_kernels import item_neighbours
from deepcuts.models.base import Recommender
from deepcuts.models.ease import _binary

__all__ = ["RP3beta"]

log = logging.getLogger(__name__)


def _row_normalised(m: sp.csr_matrix) -> sp.csr_matrix:
    s = np.asarray(m.sum(axis=1), np.float64).ravel()
    inv = np.divide(1.0, s, out=np.zeros_like(s), where=s > 0)
    return sp.csr_matrix(sp.diags(inv) @ m)


def rp3beta_transitions(x: sp.csr_matrix, alpha: float, beta: float):
    """``P_ui ** alpha`` (users x items), ``P_iu ** alpha`` (items x users) and the column
    penalty ``pop_j ** -beta`` (0 for items without listeners) of a binary matrix ``x``."""
    x = sp.csr_matrix(x, dtype=np.float64)
    p_ui = _row_normalised(x)
    p_iu = _row_normalised(x.T.tocsr())
    if alpha != 1.0:
        p_ui.data **= alpha
        p_iu.data **= alpha
    pop = np.diff(x.tocsc().indptr).astype(np.float64)
    penalty = np.zeros_like(pop)
    np.power(pop, -beta, out=penalty, where=pop > 0)
    return p_ui, p_iu, penalty


class RP3beta(Recommender):
    """Graph random walk with a popularity penalty (Paudel et al. 2017; Dacrema et al. 2019).

    Parameters
    ----------
    alpha : float, default=1.0
        Exponent of the transition probabilities (``alpha = 1``: a plain random walk).
    beta : float, default=0.6
        Popularity penalty: the walk's arrival probability at item ``j`` is divided by
        ``pop_j ** beta`` (``beta = 0``: P3alpha, no penalty).
    neighbors : int, default=100
        Neighbours kept per item (the top-k of each row of ``W``).
    normalize : bool, default=True
        Divide each row of the pruned ``W`` by its sum (Dacrema et al.'s
        ``normalize_similarity``).

    Attributes
    ----------
    similarity_ : csr_matrix of shape (n_items, n_items) float32
        ``W``: row ``i`` holds item ``i``'s neighbours (the item itself excluded).

    Examples
    --------
    >>> from deepcuts.testing import planted_blocks
    >>> x = planted_blocks(60, 30, 3, random_state=0)
    >>> model = RP3beta(alpha=1.0, beta=0.5, neighbors=10).fit(x)
    >>> bool(model.similarity_.getnnz(axis=1).max() <= 10)
    True
    >>> len(model.recommend("u0", n=3))
    3
    """

    _state_arrays = ("similarity_",)
    supports_fold_in = True

    def __init__(
        self,
        *,
        alpha: float = 1.0,
        beta: float = 0.6,
        neighbors: int = 100,
        normalize: bool = True,
    ):
        self.alpha = alpha
        self.beta = beta
        self.neighbors = neighbors
        self.normalize = normalize

    def _check_params(self) -> None:
        for name in ("alpha", "beta"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float | np.number):
                raise DeepcutsError(f"{name} must be a number >= 0, got {v!r}")
            if not np.isfinite(v) or v < 0:
                raise DeepcutsError(f"{name} must be a finite number >= 0, got {v!r}")
        k = self.neighbors
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise DeepcutsError(f"neighbors must be a positive integer, got {k!r}")
        if not isinstance(self.normalize, bool | np.bool_):
            raise DeepcutsError(f"normalize must be True or False, got {self.normalize!r}")

    def _fit(self, interactions: Interactions) -> None:
        self._check_params()
        x = _binary(interactions.matrix)
        n = x.shape[1]
        p_ui, p_iu, penalty = rp3beta_transitions(x, float(self.alpha), float(self.beta))
        # W = P_iu P_ui diag(pop^-beta), top-k per row: the compiled sparse kernel of item-kNN
        indptr, indices, data = item_neighbours(
            p_ui, int(self.neighbors), cosine=False, left=p_iu, col_scale=penalty
        )
        w = sp.csr_matrix((data, indices, indptr), shape=(n, n), dtype=np.float32)
        if self.normalize:
            w = sp.csr_matrix(_row_normalised(w), dtype=np.float32)
        self.similarity_ = w
        log.info("RP3beta: %d items, %d neighbour links", n, w.nnz)

    def _score(self, user_index: np.ndarray, user_items: sp.csr_matrix, **kw) -> np.ndarray:
        # s_u = x_u W on the binarised history
        return np.asarray((_binary(user_items) @ self.similarity_).toarray(), dtype=np.float32)

    def _similar_items(self, item_index: np.ndarray) -> np.ndarray:
        rows = self.similarity_[np.asarray(item_index)]
        out = np.full(rows.shape, -np.inf, dtype=np.float32)
        r = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))
        out[r, rows.indices] = rows.data
        return out
