"""Hybrid cold start: map content features into a collaborative model's latent space.

A ridge regression ``v_i ~ W^T x_i + b`` is learned from the standardised content features
``x_i`` to the item factors ``v_i`` of a fitted factor model (ALS, persona ALS; anything with
``item_factors_`` and ``user_factors_``) on the items that have both features and plays. An item
nobody has played then gets a vector ``W^T x + b``: it can be scored for users
(``u . v``), recommended among other new items, written into a copy of the model so that the
model's own ``recommend`` ranks it, and placed into a user's best-matching persona.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from deepcuts.data.features import FeatureTable
from deepcuts.exceptions import DeepcutsError, NotFittedError
from deepcuts.models._io import read_model_files, write_model_files
from deepcuts.models._results import Recommendations
from deepcuts.models._topk import topk_rows

__all__ = ["FeatureToFactors", "best_persona"]

log = logging.getLogger(__name__)

DEFAULT_ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)


def _factors(model, name: str) -> np.ndarray:
    arr = getattr(model, name, None)
    if arr is None:
        raise DeepcutsError(
            f"{type(model).__name__} has no {name}; the hybrid needs a fitted factor model "
            "(e.g. deepcuts.models.ALS) with item_factors_ and user_factors_"
        )
    return np.asarray(arr, np.float32)


def best_persona(model, user_index, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which of a user's personas a new item vector fits best, and the persona's score.

    Feature-detected on ``model``: ``persona_factors_`` of shape (n_users, P, f) (persona models;
    an all-zero persona row counts as unused), otherwise ``user_factors_`` of shape
    (n_users, f) as a single persona 0.

    Parameters
    ----------
    model : fitted factor model
    user_index : array-like of shape (b,) int
        Internal user indices.
    vectors : ndarray of shape (m, f)
        Item vectors (for example :meth:`FeatureToFactors.transform` output).

    Returns
    -------
    persona : ndarray of shape (b, m) int16
    score : ndarray of shape (b, m) float32
        ``max_p U[u, p] . v`` (MaxMF scoring).

    Examples
    --------
    >>> class M:
    ...     persona_factors_ = np.array([[[1.0, 0.0], [0.0, 1.0]]], dtype=np.float32)
    >>> p, s = best_persona(M(), [0], np.array([[0.2, 0.9], [1.0, 0.1]], dtype=np.float32))
    >>> p.tolist(), s.astype(float).round(2).tolist()
    ([[1, 0]], [[0.9, 1.0]])
    """
    uidx = np.asarray(user_index, dtype=np.int64)
    v = np.asarray(vectors, np.float32)
    pf = getattr(model, "persona_factors_", None)
    if pf is not None and np.ndim(pf) == 3:
        pf = np.asarray(pf, np.float32)[uidx]  # (b, P, f)
        if pf.shape[2] != v.shape[1]:
            raise DeepcutsError(f"vectors have {v.shape[1]} factors, the personas {pf.shape[2]}")
        s = np.einsum("bpf,mf->bpm", pf, v)
        unused = ~np.any(pf != 0, axis=2)  # (b, P)
        s[np.broadcast_to(unused[:, :, None], s.shape)] = -np.inf
        return s.argmax(axis=1).astype(np.int16), s.max(axis=1).astype(np.float32)
    u = _factors(model, "user_factors_")[uidx]
    if u.shape[1] != v.shape[1]:
        raise DeepcutsError(f"vectors have {v.shape[1]} factors, the users {u.shape[1]}")
    s = (u @ v.T).astype(np.float32)
    return np.zeros(s.shape, np.int16), s


class FeatureToFactors:
    """Ridge regression from standardised content features to a factor model's item factors.

    Parameters
    ----------
    alphas : sequence of float, default=(0.1, 1, 10, 100, 1000, 10000)
        Ridge penalties tried; the one with the best cross-validated R^2 is kept.
    cv : int, default=5
        Folds of the (shuffled, seeded) K-fold cross-validation that picks ``alpha``.
    match : {"name", "id"}, default="name"
        How feature rows are aligned to the model's items.
    min_users : int, default=1
        Train only on items with at least this many listeners in the model's training data;
        items below it have unreliable factors.
    random_state : int, default=0
        Seed of the cross-validation shuffle.

    Attributes
    ----------
    coef_ : ndarray of shape (d, f) float32
    intercept_ : ndarray of shape (f,) float32
    alpha_ : float
        Chosen penalty.
    cv_r2_ : float
        Mean cross-validated R^2 of the chosen penalty (uniform over factors).
    n_train_ : int
        Items the map was learned on.
    feature_columns_ : list of str
    feature_mean_, feature_scale_ : ndarray of shape (d,)
        The feature table's standardisation, so raw rows can be mapped later.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((200, 4))
    >>> v = x @ rng.standard_normal((4, 3))
    >>> m = FeatureToFactors(alphas=(0.01, 1.0)).fit_arrays(x, v)
    >>> bool(m.cv_r2_ > 0.99)
    True
    """

    def __init__(
        self,
        *,
        alphas: Sequence[float] = DEFAULT_ALPHAS,
        cv: int = 5,
        match: str = "name",
        min_users: int = 1,
        random_state: int = 0,
    ):
        self.alphas = tuple(float(a) for a in alphas)
        self.cv = cv
        self.match = match
        self.min_users = min_users
        self.random_state = random_state

    def __repr__(self) -> str:
        return (
            f"FeatureToFactors(alphas={self.alphas}, cv={self.cv}, match={self.match!r}, "
            f"min_users={self.min_users}, random_state={self.random_state})"
        )

    # ------------------------------------------------------------------ fitting
    def fit_arrays(self, x: np.ndarray, v: np.ndarray) -> FeatureToFactors:
        """Fit on standardised features ``x`` (n, d) and factors ``v`` (n, f) directly."""
        from sklearn.linear_model import Ridge
        from sklearn.model_selection import GridSearchCV, KFold

        x = np.asarray(x, np.float64)
        v = np.asarray(v, np.float64)
        if x.ndim != 2 or v.ndim != 2 or len(x) != len(v):
            raise DeepcutsError(
                f"x (n, d) and v (n, f) must have the same n; got {x.shape}, {v.shape}"
            )
        if not self.alphas or min(self.alphas) <= 0:
            raise DeepcutsError(f"alphas must be positive numbers, got {self.alphas!r}")
        if not isinstance(self.cv, int) or self.cv < 2:
            raise DeepcutsError(f"cv must be an integer >= 2, got {self.cv!r}")
        if len(x) < max(self.cv, 2) * 2:
            raise DeepcutsError(
                f"only {len(x)} items have both features and factors; need at least "
                f"{2 * self.cv} to learn the map"
            )
        folds = KFold(self.cv, shuffle=True, random_state=self.random_state)
        search = GridSearchCV(Ridge(), {"alpha": list(self.alphas)}, cv=folds, scoring="r2")
        search.fit(x, v)
        best = search.best_estimator_
        self.alpha_ = float(search.best_params_["alpha"])
        self.cv_r2_ = float(search.best_score_)
        self.coef_ = np.asarray(best.coef_.T, np.float32)  # (d, f)
        self.intercept_ = np.asarray(best.intercept_, np.float32).reshape(-1)
        self.n_train_ = len(x)
        if not hasattr(self, "feature_columns_"):
            self.feature_columns_ = [f"x{k}" for k in range(x.shape[1])]
            self.feature_mean_ = np.zeros(x.shape[1])
            self.feature_scale_ = np.ones(x.shape[1])
        log.info(
            "feature->factor ridge on %d items: alpha=%g, CV R^2=%.3f",
            len(x),
            self.alpha_,
            self.cv_r2_,
        )
        return self

    def fit(self, model, features: FeatureTable) -> FeatureToFactors:
        """Learn the map on the items of fitted ``model`` that have features and listeners.

        Parameters
        ----------
        model : fitted factor model
            Needs ``item_factors_`` (n_items, f) and ``interactions_``.
        features : FeatureTable
            Content features, aligned to the model's items by ``match``.
        """
        if not hasattr(model, "interactions_"):
            raise NotFittedError(f"{type(model).__name__} is not fitted yet; call fit first")
        if not isinstance(features, FeatureTable):
            raise DeepcutsError("features must be a deepcuts.data.features.FeatureTable")
        v = _factors(model, "item_factors_")
        x, has = features.aligned_values(model.interactions_, by=self.match)
        warm = has & (model.interactions_.item_popularity() >= self.min_users)
        self.feature_columns_ = list(features.columns)
        self.feature_mean_ = np.asarray(features.mean_, np.float64)
        self.feature_scale_ = np.asarray(features.scale_, np.float64)
        self.fit_arrays(x[warm], v[warm])
        return self

    def _check(self):
        if not hasattr(self, "coef_"):
            raise NotFittedError("this FeatureToFactors is not fitted yet; call fit first")

    # ------------------------------------------------------------------ mapping
    def transform(self, x: np.ndarray) -> np.ndarray:
        """Item vectors (m, f) float32 for standardised features ``x`` (m, d)."""
        self._check()
        x = np.asarray(x, np.float32)
        if x.ndim != 2 or x.shape[1] != self.coef_.shape[0]:
            raise DeepcutsError(
                f"expected standardised features of shape (m, {self.coef_.shape[0]}), got {x.shape}"
            )
        return x @ self.coef_ + self.intercept_

    def item_vectors(self, features: FeatureTable, ids=None) -> np.ndarray:
        """Vectors (m, f) for rows ``ids`` of ``features`` (default all rows), in that order."""
        self._check()
        if list(features.columns) != self.feature_columns_:
            raise DeepcutsError(
                "the feature table's columns differ from those the map was fitted on "
                f"({self.feature_columns_[:4]}...); use a table with the same columns"
            )
        # standardise with the scaler of the table the map was trained on
        raw = features.raw if ids is None else features.raw[self._rows(features, ids)]
        return self.transform((raw - self.feature_mean_) / self.feature_scale_)

    @staticmethod
    def _rows(features: FeatureTable, ids) -> np.ndarray:
        ids = np.atleast_1d(np.asarray(ids, dtype=object))
        pos = pd.Index(features.ids).get_indexer(ids)
        if (pos < 0).any():
            raise DeepcutsError(f"unknown feature table id(s) {ids[pos < 0][:5].tolist()}")
        return pos

    # ------------------------------------------------------------------ using the vectors
    def recommend(
        self,
        model,
        users,
        features: FeatureTable,
        n: int = 10,
        *,
        candidates=None,
        missing: str = "raise",
    ) -> Recommendations:
        """Rank new (unplayed) items from ``features`` for known users of ``model``.

        Scores are ``u . v`` (for persona models ``max_p U[u, p] . v``, and the persona is
        reported).

        Parameters
        ----------
        model : fitted factor model
        users : id or array-like of ids
            External user ids of ``model``.
        features : FeatureTable
            Where the new items are described; result ids are its ids.
        n : int, default=10
        candidates : array-like of ids, optional
            Rows of ``features`` to rank (default every row).
        missing : {"raise", "ignore"}, default="raise"
            Unknown users.
        """
        self._check()
        if not isinstance(n, int | np.integer) or n < 1:
            raise DeepcutsError(f"n must be a positive integer, got {n!r}")
        rows = np.arange(len(features)) if candidates is None else self._rows(features, candidates)
        vec = self.item_vectors(features, features.ids[rows])
        ids = np.atleast_1d(np.asarray(users, dtype=object if isinstance(users, str) else None))
        uidx = model.interactions_.user_map.index(ids, missing=missing)
        ids, uidx = ids[uidx >= 0], uidx[uidx >= 0]
        persona, scores = best_persona(model, uidx, vec)
        idx, val = topk_rows(scores, n)
        valid = idx >= 0
        flat = idx[valid]
        has_personas = getattr(model, "persona_factors_", None) is not None
        per = np.take_along_axis(persona, np.maximum(idx, 0), axis=1)[valid]
        return Recommendations(
            queries=np.repeat(np.asarray(ids, dtype=object), valid.sum(axis=1)),
            items=features.ids[rows[flat]],
            scores=val[valid].astype(np.float32),
            ranks=np.cumsum(valid, axis=1)[valid].astype(np.int32),
            item_index=rows[flat].astype(np.int32),
            names=features.names[rows[flat]],
            personas=per.astype(np.int16) if has_personas else None,
        )

    def fill_cold_items(self, model, features: FeatureTable, *, max_users: int = 0):
        """A shallow copy of ``model`` whose cold items get mapped vectors.

        Items of the model with a feature row and at most ``max_users`` listeners in its
        training data (0: never played) get ``item_factors_`` rows from the map, so the
        copy's own ``recommend`` / ``similar_items`` can return them. The original model is
        not changed.
        """
        self._check()
        x, has = features.aligned_values(model.interactions_, by=self.match)
        cold = has & (model.interactions_.item_popularity() <= max_users)
        out = copy.copy(model)
        v = np.array(_factors(model, "item_factors_"), copy=True)
        raw = x[cold].astype(np.float64) * features.scale_ + features.mean_
        v[cold] = self.transform((raw - self.feature_mean_) / self.feature_scale_)
        out.item_factors_ = v
        if hasattr(out, "_reset_caches"):  # derived state (e.g. ALS's normalised factors)
            out._reset_caches()
        log.info("filled %d cold items with mapped vectors", int(cold.sum()))
        return out

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> str:
        """Save to ``<path>.npz`` + ``<path>.json`` (atomic, no pickle)."""
        self._check()
        manifest = {
            "class": "FeatureToFactors",
            "params": {
                "alphas": list(self.alphas),
                "cv": self.cv,
                "match": self.match,
                "min_users": self.min_users,
                "random_state": self.random_state,
            },
            "alpha_": self.alpha_,
            "cv_r2_": self.cv_r2_,
            "n_train_": self.n_train_,
            "feature_columns_": self.feature_columns_,
        }
        arrays = {
            "coef_": self.coef_,
            "intercept_": self.intercept_,
            "feature_mean_": self.feature_mean_,
            "feature_scale_": self.feature_scale_,
        }
        return str(write_model_files(path, manifest, arrays))

    @classmethod
    def load(cls, path) -> FeatureToFactors:
        """Load a map saved with :meth:`save`."""
        manifest, arrays = read_model_files(path)
        if manifest.get("class") != "FeatureToFactors":
            raise DeepcutsError(f"{path}: holds a {manifest.get('class')}, not a FeatureToFactors")
        m = cls(**manifest["params"])
        for k in ("alpha_", "cv_r2_", "n_train_", "feature_columns_"):
            setattr(m, k, manifest[k])
        for k, a in arrays.items():
            setattr(m, k, a)
        return m
