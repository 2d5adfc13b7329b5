"""Diversity re-ranking: maximal marginal relevance over item vectors."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from deepcuts.exceptions import DeepcutsError
from deepcuts.models._topk import topk_rows
from deepcuts.rerank import _mmr_kernels as K
from deepcuts.rerank._common import _cached, block_items, check_number, row_range

__all__ = ["DIVERSITY_RANGE", "MMR", "promote"]

#: valid values of ``diversity`` (inclusive); 0 leaves the ranking unchanged
DIVERSITY_RANGE = (0.0, 1.0)


def _normalised_dense(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return np.ascontiguousarray(v / np.maximum(norms, np.float32(1e-12)), dtype=np.float32)


def _normalised_sparse(v) -> sp.csr_matrix:
    v = sp.csr_matrix(v, dtype=np.float32)
    norms = np.sqrt(np.asarray(v.multiply(v).sum(axis=1)).ravel())
    inv = 1.0 / np.maximum(norms, 1e-12)
    out = sp.csr_matrix(sp.diags(inv.astype(np.float32)) @ v, dtype=np.float32)
    out.sort_indices()  # the merge in the kernel needs sorted indices
    return out


def promote(scores: np.ndarray, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Move columns ``items`` (b, m) to the top of their rows in the given order (-1 = skip).

    The j-th item of a row gets ``hi + (m - j) * step`` with ``hi`` the row's largest finite
    score, so it outranks every other item; other entries keep their scores. Returns float32.
    """
    out = np.array(scores, dtype=np.float32, copy=True)
    b, m = items.shape
    if m == 0 or b == 0:
        return out
    _, hi, _ = row_range(out)
    step = np.maximum(1.0, np.abs(hi)) * 1e-2
    level = hi[:, None] + (m - np.arange(m))[None, :] * step[:, None]
    valid = items >= 0
    r = np.broadcast_to(rows[:, None], items.shape)
    out[r[valid], items[valid]] = level[valid].astype(np.float32)
    return out


class MMR:
    """Maximal marginal relevance (Carbonell & Goldstein 1998) over item vectors.

    From the user's top ``pool`` eligible items, the first ``n`` list positions are filled
    greedily with ``argmax (1 - diversity) * rel(i) - diversity * max_{j picked} cos(v_i, v_j)``
    where ``rel`` is the score min-max scaled to [0, 1] over the pool. The picks are moved to the
    top of the score block in pick order; no item loses eligibility, so a list still has ``n``
    items whenever ``n`` are eligible.

    Parameters
    ----------
    diversity : float, default=0.3
        ``lambda`` in [0, 1]: 0 keeps the model's order (no-op), 1 ignores relevance after the
        first pick.
    pool : int, optional
        Candidates per user; default ``max(5 * n, 50)``.
    item_vectors : ndarray (n_items, d), sparse matrix or "auto", default="auto"
        Vectors whose cosine measures redundancy. ``"auto"``: the model's ``item_factors_``
        when it has them (ALS, persona models), else the item columns of the training matrix
        (binary: cosine = co-listening overlap).

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> vecs = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], np.float32)
    >>> ctx = SimpleNamespace(model=None, n=2)
    >>> s = np.array([[1.0, 0.9, 0.1]], np.float32)
    >>> out = MMR(0.5, item_vectors=vecs).rerank(s, ctx)
    >>> np.argsort(-out[0])[:2].tolist()  # item 1 duplicates item 0: item 2 comes second
    [0, 2]
    """

    #: only re-orders: reported scores stay the model's (``Recommender.rank_index``)
    reorders_only = True

    def __init__(self, diversity: float = 0.3, *, pool: int | None = None, item_vectors="auto"):
        self.diversity = check_number(
            "diversity", diversity, *DIVERSITY_RANGE, hint="0 = model order, 1 = most diverse"
        )
        if pool is not None and (
            isinstance(pool, bool) or not isinstance(pool, int | np.integer) or pool < 1
        ):
            raise DeepcutsError(f"pool must be a positive integer or None, got {pool!r}")
        self.pool = pool
        if isinstance(item_vectors, str) and item_vectors != "auto":
            raise DeepcutsError(
                f"item_vectors must be 'auto', an (n_items, d) array or a sparse matrix, "
                f"got {item_vectors!r}"
            )
        self.item_vectors = item_vectors

    def __repr__(self) -> str:
        return f"MMR(diversity={self.diversity:g}, pool={self.pool!r})"

    def _vectors(self, ctx, n_items: int):
        v = self.item_vectors
        if isinstance(v, str):  # "auto"
            model = ctx.model
            factors = getattr(model, "item_factors_", None)
            if factors is not None and np.ndim(factors) == 2 and len(factors) == n_items:
                hit = _cached(model, "mmr_dense", lambda: [None, None])
                if hit[0] is not factors:  # refitted since: normalise the new factors
                    hit[:] = [factors, _normalised_dense(factors)]
                return hit[1]
            x = model.interactions_
            return _cached(x, "mmr_columns",
                           lambda: _normalised_sparse((x.matrix.T > 0).astype(np.float32)))  # fmt: skip
        if getattr(self, "_prepared", None) is None:
            self._prepared = _normalised_sparse(v) if sp.issparse(v) else _normalised_dense(v)
        if self._prepared.shape[0] != n_items:
            raise DeepcutsError(
                f"item_vectors has {self._prepared.shape[0]} rows but the model has {n_items} "
                "items; pass one vector per item in the model's item order"
            )
        return self._prepared

    def rerank(self, scores: np.ndarray, ctx) -> np.ndarray:
        """Scores with the MMR picks moved to the top, shape (b, C) float32.

        ``C`` is ``n_items`` or the number of candidates (``ctx.candidates``: the pool is taken
        among them and their vectors are looked up by item id).
        """
        scores = np.asarray(scores, dtype=np.float32)
        b, width = scores.shape
        n = int(ctx.n)
        if self.diversity == 0.0 or b == 0 or width == 0:
            return scores
        ids = block_items(ctx, scores)
        n_items = width if ids is None else int(ctx.model.n_items)
        pool = min(width, self.pool or max(5 * n, 50))
        m = min(n, pool)
        vectors = self._vectors(ctx, n_items)
        cols, vals = topk_rows(scores, pool)
        valid = cols >= 0
        lo = np.where(valid, vals, np.inf).min(axis=1, initial=np.inf)
        hi = np.where(valid, vals, -np.inf).max(axis=1, initial=-np.inf)
        span = np.where(hi > lo, hi - lo, 1.0)
        with np.errstate(invalid="ignore"):
            rel = np.where(valid, (vals - lo[:, None]) / span[:, None], 0.0)
        rel = np.ascontiguousarray(rel, dtype=np.float32)
        # the kernels look vectors up by item id: map the pool's columns to their items
        cand = cols if ids is None else np.where(valid, ids[np.arange(b)[:, None], cols], -1)
        cand = np.ascontiguousarray(cand, dtype=np.int64)
        lam = np.float32(self.diversity)
        if sp.issparse(vectors):
            picks = K.mmr_sparse(cand, rel, vectors.indptr, vectors.indices, vectors.data, lam, m)
        else:
            picks = K.mmr_dense(cand, rel, vectors, lam, m)
        picked = np.where(picks >= 0, np.take_along_axis(cols, np.maximum(picks, 0), axis=1), -1)
        return promote(scores, np.arange(b), picked)
