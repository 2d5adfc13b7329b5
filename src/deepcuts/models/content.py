"""Content-based recommendations: cosine k-nearest neighbours on standardised audio features."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from deepcuts.data.features import FeatureTable
from deepcuts.data.interactions import Interactions
from deepcuts.exceptions import DeepcutsError
from deepcuts.models._topk import topk_rows
from deepcuts.models.base import Recommender

__all__ = ["ContentKNN", "feature_neighbors"]

_BLOCK = 2048


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norm > 0, norm, 1.0)).astype(np.float32)


def _cosine_topk(
    q: np.ndarray, x: np.ndarray, k: int, *, self_index: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` cosine neighbours in ``x`` of each row of ``q`` (both unit rows), blockwise.

    ``self_index[r]`` (when given) is the row of ``x`` that query ``r`` itself is, left out.
    Returns (m, k) int64 indices (-1 padded) and float32 similarities.
    """
    idx_out = np.empty((len(q), min(k, len(x))), np.int64)
    val_out = np.empty(idx_out.shape, np.float32)
    for s in range(0, len(q), _BLOCK):
        sims = q[s : s + _BLOCK] @ x.T
        if self_index is not None:
            rows = np.arange(sims.shape[0])
            sims[rows, self_index[s : s + _BLOCK]] = -np.inf
        idx_out[s : s + _BLOCK], val_out[s : s + _BLOCK] = topk_rows(sims, k)
    return idx_out, val_out


def feature_neighbors(table: FeatureTable, n: int = 10, *, queries=None) -> pd.DataFrame:
    """ "More like this" within a feature table: the ``n`` nearest rows by cosine similarity of
    the standardised features, the query itself left out.

    Parameters
    ----------
    table : FeatureTable
        Tracks or artists with features (no listening data needed).
    n : int, default=10
        Neighbours per query.
    queries : array-like of ids, optional
        Rows to query (``table.ids``); default every row.

    Returns
    -------
    DataFrame
        Columns ``query``, ``rank`` (1-based), ``neighbor``, ``score`` (cosine), and
        ``query_label`` / ``neighbor_label`` when the table has labels.

    Examples
    --------
    >>> df = pd.DataFrame({"id": list("abcd"), "x": [0.0, 0.1, 5.0, 5.2], "y": [1.0, 1.1, 0, 0.1]})
    >>> t = FeatureTable.from_frame(df, id_col="id")
    >>> feature_neighbors(t, 1)["neighbor"].tolist()
    ['b', 'a', 'd', 'c']
    """
    if not isinstance(n, int | np.integer) or n < 1:
        raise DeepcutsError(f"n must be a positive integer, got {n!r}")
    x = _unit_rows(table.values)
    if queries is None:
        qrows = np.arange(len(table))
    else:
        pos = pd.Index(table.ids).get_indexer(np.atleast_1d(np.asarray(queries, dtype=object)))
        if (pos < 0).any():
            bad = np.atleast_1d(np.asarray(queries, dtype=object))[pos < 0][:5].tolist()
            raise DeepcutsError(f"unknown feature table id(s) {bad}")
        qrows = pos
    idx, val = _cosine_topk(x[qrows], x, n, self_index=qrows)
    valid = idx >= 0
    out = pd.DataFrame(
        {
            "query": np.repeat(table.ids[qrows], valid.sum(axis=1)),
            "rank": np.cumsum(valid, axis=1)[valid].astype(np.int32),
            "neighbor": table.ids[idx[valid]],
            "score": val[valid],
        }
    )
    if table.labels is not None:
        out["query_label"] = np.repeat(table.labels[qrows], valid.sum(axis=1))
        out["neighbor_label"] = table.labels[idx[valid]]
    return out


class ContentKNN(Recommender):
    """Recommend by sound: cosine k-nearest neighbours on standardised content features.

    ``similar_items`` gives "more like this track / artist": the items whose standardised
    features have the highest cosine similarity to the query's. A user's score for item ``i`` is
    the play-weighted mean similarity of ``i`` to the user's played items::

        score(u, i) = sum_j w_uj * s_k(i, j) / sum_j w_uj

    over played items ``j`` that have features, where ``s_k(i, j)`` is the cosine similarity if
    ``j`` is among the ``k`` nearest neighbours of ``i`` and 0 otherwise (``k=None``: every item,
    which reduces to the cosine with the user's play-weighted feature profile).

    Items without a feature row are not recommendable (score ``-inf``) and cannot be the query
    of ``similar_items``. A user none of whose played items has features gets the featured items
    ranked by popularity, with scores in [0, 1e-3] so that they read as "no content signal".

    Parameters
    ----------
    features : FeatureTable
        Content features of the items (read with :mod:`deepcuts.data.features`). Used at fit
        time only: the aligned, normalised features are stored in the fitted model, so a loaded
        model has ``features=None``.
    match : {"name", "id"}, default="name"
        Align table rows to items by normalised name or by exact id.
    k : int or None, default=50
        Neighbours per item used for user scores.
    weighting : {"plays", "log", "binary"}, default="plays"
        Weight of a played item: its play count, ``log1p`` of it, or 1.

    Attributes
    ----------
    item_features_ : ndarray of shape (n_items, d) float32
        Unit-length standardised features (zero rows for items without features).
    has_features_ : ndarray of shape (n_items,) bool
    neighbors_ : csr_matrix of shape (n_items, n_items) float32
        Row ``i`` holds the ``k`` nearest featured items of ``i`` and their cosine similarity.

    Examples
    --------
    >>> from deepcuts.testing.synthetic import planted_blocks
    >>> x = planted_blocks(30, 12, 3, random_state=1)
    >>> block = np.array([int(i[1:]) % 3 for i in x.item_map.ids])  # item "i<k>" is in block k % 3
    >>> feats = pd.DataFrame({"item": x.item_map.ids, "b0": block == 0, "b1": block == 1})
    >>> table = FeatureTable.from_frame(feats.astype({"b0": float, "b1": float}), id_col="item")
    >>> model = ContentKNN(features=table, match="id", k=5).fit(x)
    >>> sorted(model.similar_items("i0", n=3).items.tolist())
    ['i3', 'i6', 'i9']
    """

    _state_arrays = ("item_features_", "has_features_", "neighbors_", "fallback_")
    supports_fold_in = True

    def __init__(
        self,
        *,
        features: FeatureTable | None = None,
        match: Literal["name", "id"] = "name",
        k: int | None = 50,
        weighting: Literal["plays", "log", "binary"] = "plays",
    ):
        self.features = features
        self.match = match
        self.k = k
        self.weighting = weighting

    def _manifest_params(self) -> dict:
        # the table is training data, not a hyperparameter; its aligned values are saved state
        return {**self.get_params(), "features": None}

    def _extra_manifest(self) -> dict:
        cols = self.features.columns if self.features is not None else []
        return {"feature_columns": list(cols), "n_with_features": int(self.has_features_.sum())}

    def _fit(self, interactions: Interactions) -> None:
        if not isinstance(self.features, FeatureTable):
            raise DeepcutsError(
                "ContentKNN needs features=FeatureTable(...); read one with "
                "deepcuts.data.features.read_feature_table (or read_spotify_artists, "
                "read_gtzan_features)"
            )
        if self.weighting not in ("plays", "log", "binary"):
            raise DeepcutsError(
                f"weighting must be 'plays', 'log' or 'binary', got {self.weighting!r}"
            )
        if self.k is not None and (not isinstance(self.k, int | np.integer) or self.k < 1):
            raise DeepcutsError(f"k must be a positive integer or None, got {self.k!r}")
        values, has = self.features.aligned_values(interactions, by=self.match)
        if not has.any():
            raise DeepcutsError(
                f"no item matches a feature row by {self.match}; check that the table describes "
                "these items (or try match='id' / match='name')"
            )
        self.item_features_ = _unit_rows(values)
        self.has_features_ = has
        n = interactions.n_items
        if self.k is None:
            self.neighbors_ = sp.csr_matrix((n, n), dtype=np.float32)
        else:
            feat = np.flatnonzero(has)
            x = self.item_features_[feat]
            idx, val = _cosine_topk(x, x, int(self.k), self_index=np.arange(len(feat)))
            valid = idx >= 0
            rows = np.repeat(feat, valid.sum(axis=1))
            self.neighbors_ = sp.csr_matrix(
                (val[valid], (rows, feat[idx[valid]])), shape=(n, n), dtype=np.float32
            )
        pop = interactions.item_popularity().astype(np.float64)
        pop = np.where(has, pop / max(pop[has].max(), 1.0), 0.0)
        self.fallback_ = (1e-3 * pop).astype(np.float32)

    def _weights(self, user_items: sp.csr_matrix) -> sp.csr_matrix:
        w = sp.csr_matrix(user_items, dtype=np.float32, copy=True)
        if self.weighting == "log":
            w.data = np.log1p(w.data)
        elif self.weighting == "binary":
            w.data = np.ones_like(w.data)
        # only played items with features carry a content signal
        w = w @ sp.diags(self.has_features_.astype(np.float32))
        return sp.csr_matrix(w)

    def _score(self, user_index: np.ndarray, user_items: sp.csr_matrix, **kw) -> np.ndarray:
        w = self._weights(user_items)
        total = np.asarray(w.sum(axis=1), np.float32).ravel()
        if self.k is None:
            profile = np.asarray(w @ self.item_features_, np.float32)
            scores = profile @ self.item_features_.T
        else:
            scores = np.asarray((w @ self.neighbors_.T).todense(), np.float32)
        empty = total <= 0
        scores /= np.where(empty, 1.0, total)[:, None]
        scores[empty] = self.fallback_
        scores[:, ~self.has_features_] = -np.inf
        return scores

    def _similar_items(self, item_index: np.ndarray) -> np.ndarray:
        lacking = item_index[~self.has_features_[item_index]]
        if len(lacking):
            ids = self.interactions_.item_map.external(lacking[:5]).tolist()
            raise DeepcutsError(
                f"item(s) {ids} have no content features, so ContentKNN cannot find similar "
                f"items; {int(self.has_features_.sum())} of {len(self.has_features_)} items do"
            )
        scores = self.item_features_[item_index] @ self.item_features_.T
        scores[:, ~self.has_features_] = -np.inf
        return scores
