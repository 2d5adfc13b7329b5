"""Exact fold-in of one listening history into an ALS model, fast enough for a request.

``ALS.fold_in`` is built for batches (a compiled parallel kernel, BLAS thread limits and the
Gram matrix recomputed per call: tens of milliseconds for one user). One history needs one
small dense solve (Hu, Koren, Volinsky 2008, eq. 4):

    x_u = (Y^T Y + reg*I + Y_u^T (C_u - I) Y_u)^-1  Y_u^T C_u p(u)

with ``Y^T Y + reg*I`` computed once per model. ``C_u`` comes from the model's own confidence
transform, so the vector equals ``ALS.fold_in`` (tested). The same factorisation gives the
exact per-artist decomposition of any score (``ALS.explain`` for a history).

:meth:`ALSFoldIn.scores` scores a block of folded-in user vectors with the model's row-major
copy of the item factors (the one ``ALS._score`` uses), so a group of folded-in users costs one
matrix product, like a group of users of the training data.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["ALSFoldIn"]


class ALSFoldIn:
    """Single-history fold-in for a fitted :class:`~deepcuts.models.ALS`.

    Examples
    --------
    >>> from deepcuts.models import ALS
    >>> from deepcuts.testing import planted_blocks
    >>> x = planted_blocks(60, 30, 3, random_state=0)
    >>> m = ALS(factors=8, iterations=5, random_state=0).fit(x)
    >>> fold = ALSFoldIn(m)
    >>> v = fold.solve(x.matrix[0])[0]
    >>> bool(np.allclose(v, m.fold_in(x.matrix[:1])[0], atol=1e-4))
    True
    >>> fold.scores(v[None, :]).shape
    (1, 30)
    """

    def __init__(self, model):
        self.model = model
        Y = np.asarray(model.item_factors_, np.float64)
        self.gram = Y.T @ Y + float(model._base_reg()) * np.eye(Y.shape[1])
        Yt = getattr(model, "_item_factors_t", None)
        if Yt is None:  # the copy ALS._score builds on first use: build it now, share it
            Yt = model._item_factors_t = np.ascontiguousarray(model.item_factors_.T)
        #: (f, n_items) row-major item factors: ``X @ Yt`` is a plain GEMM
        self.item_factors_t = Yt

    def scores(self, vectors: np.ndarray) -> np.ndarray:
        """Scores ``x_u . y_i`` of user vectors (b, f) for every item: (b, n_items) float32."""
        return np.asarray(vectors, np.float32) @ self.item_factors_t

    def solve(self, row: sp.csr_matrix):
        """``(x_u float32 (f,), A_u (f, f), played item indices, c_ui, p_ui)`` of one row."""
        C = self.model._row_confidence(sp.csr_matrix(row, dtype=np.float32))
        idx = C.indices.astype(np.int64)
        c = C.data.astype(np.float64)
        p = (c > 0).astype(np.float64)  # a negative weight is an observed dislike: p = 0
        c = np.abs(c)
        Yu = np.asarray(self.model.item_factors_[idx], np.float64)
        A = self.gram + (Yu * (c - 1.0)[:, None]).T @ Yu
        A[np.diag_indices_from(A)] += float(self.model._row_reg(C)[0])  # ALS-WR: reg * n_u
        x = np.linalg.solve(A, Yu.T @ (c * p)) if len(idx) else np.zeros(len(A))
        return x.astype(np.float32), A, idx, c, p

    def contributions(self, row: sp.csr_matrix, item: int) -> tuple[np.ndarray, np.ndarray]:
        """Played item indices and each one's exact share of the score of ``item``."""
        _, A, idx, c, p = self.solve(row)
        Y = self.model.item_factors_
        w = np.linalg.solve(A, np.asarray(Y[item], np.float64))
        return idx, c * p * (np.asarray(Y[idx], np.float64) @ w)
