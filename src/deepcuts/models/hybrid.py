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
import scipy.sparse as sp

from deepcuts.data.features import FeatureTable
from deepcuts.exceptions import DeepcutsError, NotFittedError
from deepcuts.models._io import read_model_files, write_model_files
from deepcuts.models._results import Recommendations
from deepcuts.models._topk import topk_rows

__all__ = ["FeatureToFactors", "best_persona"]

log = logging.getLogger(__name__)

DEFAULT_ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)
DEFAULT_NEIGHBORS = (10, 20, 50, 100, 200)
DEFAULT_POWERS = (1.0, 4.0)
_BLOCK = 2048
_CV_K = 20
_MANIFEST_ATTRS = (
    "method_",
    "params_",
    "cv_score_",
    "scoring_",
    "cv_r2_",
    "cv_results_",
    "n_train_",
    "feature_columns_",
)
_ARRAY_ATTRS = (
    "coef_",
    "intercept_",
    "train_features_",
    "train_factors_",
    "feature_mean_",
    "feature_scale_",
)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def _ridge(x: np.ndarray, v: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form ridge with an unpenalised intercept: ``W = (Xc^T Xc + alpha I)^-1 Xc^T Vc``."""
    xm, vm = x.mean(axis=0), v.mean(axis=0)
    xc = x - xm
    w = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ (v - vm))
    return w, vm - xm @ w


def _knn_map(
    q: np.ndarray, x_unit: np.ndarray, v: np.ndarray, k: int, power: float, fallback: np.ndarray
) -> np.ndarray:
    """kNN regression: similarity-weighted mean of the factors of the k most similar rows."""
    q = _unit(q)
    k = min(int(k), len(x_unit))
    out = np.empty((len(q), v.shape[1]), np.float32)
    for s in range(0, len(q), _BLOCK):
        sims = q[s : s + _BLOCK] @ x_unit.T  # (b, n)
        if k < len(x_unit):
            idx = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        else:
            idx = np.broadcast_to(np.arange(len(x_unit)), sims.shape)
        w = np.maximum(np.take_along_axis(sims, idx, axis=1), 0.0) ** power  # (b, k)
        total = w.sum(axis=1)
        agg = np.einsum("bk,bkf->bf", w, v[idx]) / np.where(total > 0, total, 1.0)[:, None]
        agg[total <= 0] = fallback  # no similar warm item: the mean vector
        out[s : s + _BLOCK] = agg
    return out


def _fit_predict(method: str, params: dict, x_tr, v_tr, x_te) -> np.ndarray:
    if method == "ridge":
        w, b = _ridge(x_tr, v_tr, params["alpha"])
        return x_te @ w + b
    return _knn_map(
        x_te, _unit(x_tr), v_tr.astype(np.float32), params["k"], params["power"], v_tr.mean(axis=0)
    )


def _r2(true: np.ndarray, pred: np.ndarray, mean: np.ndarray) -> float:
    den = float(((true - mean) ** 2).sum())
    return 1.0 - float(((true - pred) ** 2).sum()) / den if den > 0 else 0.0


def _fold_recall(users: np.ndarray, plays: sp.csc_matrix, pred: np.ndarray) -> float:
    """Mean recall@20 of the fold items each user played when ranked by ``u . v_pred``."""
    m = sp.csr_matrix(plays)
    m.eliminate_zeros()
    rows = np.flatnonzero(np.diff(m.indptr) > 0)
    if len(rows) == 0:
        return float("nan")
    total = 0.0
    vp = np.asarray(pred, np.float32)
    for s in range(0, len(rows), _BLOCK):
        r = rows[s : s + _BLOCK]
        idx, _ = topk_rows(users[r] @ vp.T, _CV_K)
        played = m[r].toarray() > 0
        hits = np.take_along_axis(played, np.maximum(idx, 0), axis=1) & (idx >= 0)
        total += float((hits.sum(axis=1) / played.sum(axis=1)).sum())
    return total / len(rows)


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
    """Map standardised content features to a factor model's item factors (cold start).

    Two maps, chosen by ``method`` (``"auto"`` picks the one with the better cross-validated
    score):

    - **ridge**: ``v = W^T x + b`` with ``W = (X^T X + alpha I)^-1 X^T (V - mean(V))``
      (closed form, features already standardised).
    - **knn** (kNN regression in the latent space): ``v = sum_j w_j v_j / sum_j w_j`` over the
      ``k`` warm items ``j`` whose standardised features have the highest cosine similarity
      ``s_j`` to ``x``, with ``w_j = max(s_j, 0) ** power``. Non-linear, and it keeps the
      length (popularity) of real item vectors instead of shrinking every cold item to the mean.

    Hyperparameters (``alphas`` for ridge, ``neighbors`` x ``powers`` for knn) are chosen by
    K-fold cross-validation over the warm items. ``scoring="recall"`` (used when :meth:`fit`
    sees the model's users and plays) scores a fold by how well the *predicted* vectors of its
    items rank those items' actual listeners: the users of the fold rank the fold's items by
    ``u . v_pred`` and recall@20 of the items they played is averaged, which is the cold-start
    task itself. ``scoring="r2"`` (always used by :meth:`fit_arrays` without ``users``) is the
    uniform R^2 of the predicted factors.

    Parameters
    ----------
    method : {"auto", "knn", "ridge"}, default="auto"
    alphas : sequence of float, default=(0.1, 1, 10, 100, 1000, 10000)
        Ridge penalties tried.
    neighbors : sequence of int, default=(10, 20, 50, 100, 200)
        Neighbour counts tried by knn.
    powers : sequence of float, default=(1, 4)
        Similarity exponents tried by knn (higher: the closest neighbours dominate).
    scoring : {"recall", "r2"}, default="recall"
    cv : int, default=5
        Folds of the (shuffled, seeded) K-fold cross-validation.
    match : {"name", "id"}, default="name"
        How feature rows are aligned to the model's items.
    min_users : int, default=1
        Train only on items with at least this many listeners in the model's training data;
        items below it have unreliable factors.
    random_state : int, default=0
        Seed of the cross-validation shuffle.

    Attributes
    ----------
    method_ : str
        "ridge" or "knn".
    params_ : dict
        Chosen hyperparameters (``alpha``, or ``k`` and ``power``).
    cv_score_ : float
        Mean cross-validated score of the chosen configuration (``scoring_``).
    scoring_ : str
        The score actually used ("recall" needs users and plays, else "r2").
    cv_r2_ : float
        Mean cross-validated R^2 of the chosen configuration.
    cv_results_ : list of dict
        One entry per configuration tried: method, params, score, r2.
    coef_ : ndarray of shape (d, f) float32
        Ridge weights (zeros for knn).
    intercept_ : ndarray of shape (f,) float32
        Ridge intercept; for knn the mean warm vector (used when no neighbour is similar).
    train_features_ : ndarray of shape (n_train, d) float32
        Unit-length standardised features of the warm items (knn; empty for ridge).
    train_factors_ : ndarray of shape (n_train, f) float32
        Their item factors (knn; empty for ridge).
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
    >>> m = FeatureToFactors(method="ridge", alphas=(0.01, 1.0)).fit_arrays(x, v)
    >>> bool(m.cv_r2_ > 0.99), m.params_
    (True, {'alpha': 0.01})
    """

    def __init__(
        self,
        *,
        method: str = "auto",
        alphas: Sequence[float] = DEFAULT_ALPHAS,
        neighbors: Sequence[int] = DEFAULT_NEIGHBORS,
        powers: Sequence[float] = DEFAULT_POWERS,
        scoring: str = "recall",
        cv: int = 5,
        match: str = "name",
        min_users: int = 1,
        random_state: int = 0,
    ):
        self.method = method
        self.alphas = tuple(float(a) for a in alphas)
        self.neighbors = tuple(int(k) for k in neighbors)
        self.powers = tuple(float(p) for p in powers)
        self.scoring = scoring
        self.cv = cv
        self.match = match
        self.min_users = min_users
        self.random_state = random_state

    def _params(self) -> dict:
        return {
            "method": self.method,
            "alphas": list(self.alphas),
            "neighbors": list(self.neighbors),
            "powers": list(self.powers),
            "scoring": self.scoring,
            "cv": self.cv,
            "match": self.match,
            "min_users": self.min_users,
            "random_state": self.random_state,
        }

    def __repr__(self) -> str:
        return (
            "FeatureToFactors("
            + ", ".join(
                f"{k}={tuple(v) if isinstance(v, list) else v!r}" for k, v in self._params().items()
            )
            + ")"
        )

    # ------------------------------------------------------------------ fitting
    def _configs(self) -> list[tuple[str, dict]]:
        if self.method not in ("auto", "knn", "ridge"):
            raise DeepcutsError(f"method must be 'auto', 'knn' or 'ridge', got {self.method!r}")
        out: list[tuple[str, dict]] = []
        if self.method in ("auto", "ridge"):
            if not self.alphas or min(self.alphas) <= 0:
                raise DeepcutsError(f"alphas must be positive numbers, got {self.alphas!r}")
            out += [("ridge", {"alpha": a}) for a in self.alphas]
        if self.method in ("auto", "knn"):
            if not self.neighbors or min(self.neighbors) < 1:
                raise DeepcutsError(f"neighbors must be positive integers, got {self.neighbors!r}")
            if not self.powers or min(self.powers) <= 0:
                raise DeepcutsError(f"powers must be positive numbers, got {self.powers!r}")
            out += [("knn", {"k": k, "power": p}) for k in self.neighbors for p in self.powers]
        return out

    def fit_arrays(
        self,
        x: np.ndarray,
        v: np.ndarray,
        *,
        users: np.ndarray | None = None,
        plays: sp.spmatrix | None = None,
    ) -> FeatureToFactors:
        """Fit on standardised features ``x`` (n, d) and factors ``v`` (n, f) directly.

        Parameters
        ----------
        x : ndarray of shape (n, d)
        v : ndarray of shape (n, f)
        users : ndarray of shape (n_users, f), optional
            User factors; with ``plays`` they enable ``scoring="recall"``.
        plays : sparse matrix of shape (n_users, n), optional
            Which user played which of the ``n`` items (non-zero = played).
        """
        x = np.asarray(x, np.float64)
        v = np.asarray(v, np.float64)
        if x.ndim != 2 or v.ndim != 2 or len(x) != len(v):
            raise DeepcutsError(
                f"x (n, d) and v (n, f) must have the same n; got {x.shape}, {v.shape}"
            )
        configs = self._configs()
        if self.scoring not in ("recall", "r2"):
            raise DeepcutsError(f"scoring must be 'recall' or 'r2', got {self.scoring!r}")
        if not isinstance(self.cv, int) or self.cv < 2:
            raise DeepcutsError(f"cv must be an integer >= 2, got {self.cv!r}")
        if len(x) < max(self.cv, 2) * 2:
            raise DeepcutsError(
                f"only {len(x)} items have both features and factors; need at least "
                f"{2 * self.cv} to learn the map"
            )
        use_recall = self.scoring == "recall" and users is not None and plays is not None
        if use_recall:
            users = np.asarray(users, np.float32)
            plays = sp.csc_matrix(plays)
            if plays.shape != (len(users), len(x)) or users.shape[1] != v.shape[1]:
                raise DeepcutsError(
                    f"users {users.shape} and plays {plays.shape} do not fit x {x.shape} / "
                    f"v {v.shape}; need users (n_users, f) and plays (n_users, n)"
                )
        from sklearn.model_selection import KFold

        folds = list(KFold(self.cv, shuffle=True, random_state=self.random_state).split(x))
        results = []
        for method, params in configs:
            scores, r2s = [], []
            for tr, te in folds:
                pred = _fit_predict(method, params, x[tr], v[tr], x[te])
                r2s.append(_r2(v[te], pred, v[tr].mean(axis=0)))
                if use_recall:
                    scores.append(_fold_recall(users, plays[:, te], pred))
            r2 = float(np.mean(r2s))
            score = float(np.nanmean(scores)) if use_recall else r2
            results.append({"method": method, "params": params, "score": score, "r2": r2})
        best = max(results, key=lambda r: r["score"])  # first best wins ties
        self.cv_results_ = results
        self.method_ = best["method"]
        self.params_ = dict(best["params"])
        self.cv_score_ = best["score"]
        self.cv_r2_ = best["r2"]
        self.scoring_ = "recall" if use_recall else "r2"
        d, f = x.shape[1], v.shape[1]
        if self.method_ == "ridge":
            coef, intercept = _ridge(x, v, self.params_["alpha"])
            self.coef_ = coef.astype(np.float32)
            self.intercept_ = intercept.astype(np.float32)
            self.train_features_ = np.zeros((0, d), np.float32)
            self.train_factors_ = np.zeros((0, f), np.float32)
        else:
            self.coef_ = np.zeros((d, f), np.float32)
            self.intercept_ = v.mean(axis=0).astype(np.float32)
            self.train_features_ = _unit(x)
            self.train_factors_ = v.astype(np.float32)
        self.n_train_ = len(x)
        if not hasattr(self, "feature_columns_"):
            self.feature_columns_ = [f"x{k}" for k in range(x.shape[1])]
            self.feature_mean_ = np.zeros(x.shape[1])
            self.feature_scale_ = np.ones(x.shape[1])
        log.info(
            "feature->factor map on %d items: %s %s, CV %s=%.4f, CV R^2=%.3f",
            len(x),
            self.method_,
            self.params_,
            self.scoring_,
            self.cv_score_,
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

        With ``scoring="recall"`` the model's ``user_factors_`` and training plays score the
        cross-validation folds (see the class docstring).
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
        uf = getattr(model, "user_factors_", None)
        users = None if uf is None or np.ndim(uf) != 2 else np.asarray(uf, np.float32)
        plays = sp.csc_matrix(model.interactions_.matrix)[:, np.flatnonzero(warm)]
        self.fit_arrays(x[warm], v[warm], users=users, plays=plays)
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
        if self.method_ == "knn":
            return _knn_map(
                x,
                self.train_features_,
                self.train_factors_,
                self.params_["k"],
                self.params_["power"],
                self.intercept_,
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
            "params": self._params(),
            **{k: getattr(self, k) for k in _MANIFEST_ATTRS},
        }
        arrays = {k: getattr(self, k) for k in _ARRAY_ATTRS}
        return str(write_model_files(path, manifest, arrays))

    @classmethod
    def load(cls, path) -> FeatureToFactors:
        """Load a map saved with :meth:`save`."""
        manifest, arrays = read_model_files(path)
        if manifest.get("class") != "FeatureToFactors":
            raise DeepcutsError(f"{path}: holds a {manifest.get('class')}, not a FeatureToFactors")
        m = cls(**manifest["params"])
        missing = [k for k in (*_MANIFEST_ATTRS, *_ARRAY_ATTRS) if k not in {**manifest, **arrays}]
        if missing:
            raise DeepcutsError(
                f"{path}: not a complete FeatureToFactors save (missing {missing}); "
                "save the map again with this version"
            )
        for k in _MANIFEST_ATTRS:
            setattr(m, k, manifest[k])
        for k in _ARRAY_ATTRS:
            setattr(m, k, arrays[k])
        return m
