"""Ranking-loss models trained by SGD: single-vector ``BPR`` and ``MixtureOfTastes``.

Both optimise a pairwise ranking loss over sampled triples ``(u, i, j)`` (``i`` played by ``u``,
``j`` not): BPR, ``-log sigmoid(s_ui - s_uj)`` (Rendle, Freudenthaler, Gantner, Schmidt-Thieme,
UAI 2009), or WARP (Weston, Bengio, Usunier, IJCAI 2011), which keeps drawing negatives until
one scores within a margin of the positive and weighs the step by the estimated rank. ALS
(:class:`~deepcuts.models.ALS`) instead fits a weighted squared loss over all pairs.

``MixtureOfTastes`` (Kula 2017, "Mixture-of-tastes models for representing users with diverse
interests", arXiv:1711.08379) gives each user ``P`` taste vectors ``x_up`` and ``P`` attention
vectors ``a_up``; the score of item ``i`` is ``sum_p softmax_p(a_up . y_i) (x_up . y_i) + b_i``:
soft attention per item, so a taste can be switched off for items it would score wrongly,
which the hard maximum ``max_p x_up . y_i`` (MaxMF, :class:`~deepcuts.models.PersonaALS`)
cannot express. Playing "from one taste" ranks by ``x_up . y_i`` alone.

Persona loss terms (defined as in :class:`~deepcuts.models.PersonaALS`):

* ``popularity_exponent`` ``t`` - each positive pair is weighted by ``1 / log(e + pop_i)^t``
  (``pop_i``: the item's number of training users), normalised to mean 1 over the played
  pairs: rarer items weigh more, the total weight stays the same.
* ``distinct_weight`` ``w`` - persona distinctness ``w sum_{p<q} exp(-|x_up - x_uq|^2 / s)``
  (``s = distinct_scale``) on a user's taste vectors, a bounded penalty that pushes coinciding
  tastes apart and fades when they are far apart; applied at each of the user's samples.

Training is stratified parallel SGD: deterministic, same seed same model whatever the number of
threads (see :mod:`deepcuts.models._rank_kernels` for the scheme).
"""

from __future__ import annotations

import time
from typing import ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from deepcuts.data.interactions import Interactions
from deepcuts.exceptions import DeepcutsError
from deepcuts.models import _persona_kernels as PK
from deepcuts.models import _rank_kernels as K
from deepcuts.models._topk import topk_rows
from deepcuts.models._training import EpochLoop, check_early_stopping
from deepcuts.models.als import _ndcg_at_k, _validation_matrix
from deepcuts.models.base import Recommender
from deepcuts.models.persona import PersonaALS
from deepcuts.models.persona._scoring import mix_weights

__all__ = ["BPR", "MixtureOfTastes"]

_LOSSES = {"bpr": K.BPR_LOSS, "warp": K.WARP_LOSS}
#: an item block holds at least this many items (room to draw negatives from)
_MIN_BLOCK_ITEMS = 32


def _balanced_blocks(weight: np.ndarray, T: int, rng: np.random.Generator) -> np.ndarray:
    """Random block (0..T-1) of each row, balanced by ``weight``.

    Rows are sorted by weight (largest first) and every run of ``T`` consecutive rows is dealt a
    random permutation of the blocks, so each block gets about the same total weight.
    """
    n = len(weight)
    order = np.argsort(-weight, kind="stable")
    groups = -(-n // T)
    deal = np.argsort(rng.random((groups, T)), axis=1).ravel()[:n]
    out = np.empty(n, np.int64)
    out[order] = deal
    return out


def _ndcg_of(score, train: sp.csr_matrix, valid: sp.csr_matrix, k: int, batch: int = 1024):
    """Mean NDCG@k (binary relevance) of ``score(users) -> (b, n_items)``; played items excluded."""
    users = np.flatnonzero(np.diff(valid.indptr) > 0)
    if len(users) == 0:
        return 0.0
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    total = 0.0
    for start in range(0, len(users), batch):
        ub = users[start : start + batch]
        scores = score(ub)
        tr = train[ub]
        scores[np.repeat(np.arange(len(ub)), np.diff(tr.indptr)), tr.indices] = -np.inf
        idx, _ = topk_rows(scores, k)
        rel = valid[ub].toarray() > 0
        hits = np.take_along_axis(rel, np.maximum(idx, 0), axis=1) & (idx >= 0)
        dcg = hits @ discounts[: hits.shape[1]]
        idcg = np.cumsum(discounts)[np.minimum(rel.sum(axis=1), k) - 1]
        total += float((dcg / idcg).sum())
    return total / len(users)


def _epoch_plan(rows, indices, user_w, item_w, T: int, rng: np.random.Generator):
    """Strata of one epoch: (order, strat_ptr, blk_items, blk_ptr, seeds) of ``sgd_epoch``.

    Users and items get fresh balanced random blocks every epoch (so no item is always
    contrasted with the same block of negatives); the stored entries are sorted by stratum
    ``user_block * T + item_block`` and every (sub-epoch, block) pair gets a seed.
    """
    ub = _balanced_blocks(user_w, T, rng)
    ib = _balanced_blocks(item_w, T, rng)
    key = ub[rows] * T + ib[indices]
    key = key.astype(np.uint16 if T * T <= 65536 else np.int64)
    order = np.argsort(key, kind="stable")  # a radix sort for 16-bit keys
    strat_ptr = np.zeros(T * T + 1, np.int64)
    np.cumsum(np.bincount(key, minlength=T * T), out=strat_ptr[1:])
    blk_items = np.argsort(ib, kind="stable").astype(np.int32)
    blk_ptr = np.zeros(T + 1, np.int64)
    np.cumsum(np.bincount(ib, minlength=T), out=blk_ptr[1:])
    seeds = rng.integers(0, 2**63 - 1, size=(T, T), dtype=np.int64).astype(np.uint64)
    return order, strat_ptr, blk_items, blk_ptr, seeds


class _RankingModel(Recommender):
    """Shared training loop, parameters and fold-in of the ranking-loss models."""

    _n_tastes: ClassVar[bool] = False  # subclasses with several vectors per user set True
    supports_fold_in = True

    # ------------------------------------------------------------------ parameters
    def _check_params(self) -> None:
        def integer(name, minimum):
            v = getattr(self, name)
            if not isinstance(v, int | np.integer) or isinstance(v, bool) or v < minimum:
                raise DeepcutsError(f"{name} must be an integer >= {minimum}, got {v!r}")

        def number(name, positive=False):
            v = getattr(self, name)
            ok = isinstance(v, int | float | np.number) and not isinstance(v, bool)
            if not ok or not np.isfinite(v) or v < 0 or (positive and v == 0):
                bound = "> 0" if positive else ">= 0"
                raise DeepcutsError(f"{name} must be a finite number {bound}, got {v!r}")

        integer("factors", 1)
        integer("iterations", 0)
        integer("max_trials", 1)
        integer("n_blocks", 1)
        integer("fold_in_epochs", 1)
        number("learning_rate", positive=True)
        number("regularization")
        number("popularity_exponent")
        number("init_scale", positive=True)
        if self.optimizer not in ("adagrad", "sgd"):
            raise DeepcutsError(f"optimizer must be 'adagrad' or 'sgd', got {self.optimizer!r}")
        if self.loss not in _LOSSES:
            raise DeepcutsError(f"loss must be 'bpr' or 'warp', got {self.loss!r}")
        check_early_stopping(self.early_stopping_rounds, self.validation)

    def _tastes(self) -> int:
        return 1

    def _ada(self) -> bool:
        return self.optimizer == "adagrad"

    def _distinct(self) -> tuple[float, float]:
        return 0.0, 1.0

    def _manifest_params(self) -> dict:
        params = self.get_params()
        params["validation"] = None  # held-out data is not part of the model
        return params

    # ------------------------------------------------------------------ training
    def _popularity_weights(self, train: sp.csr_matrix) -> np.ndarray:
        """Per-item factor ``1 / log(e + pop)^t`` normalised to mean 1 over played pairs."""
        pop = np.diff(sp.csc_matrix(train).indptr).astype(np.float64)
        w = np.log(np.e + pop) ** (-float(self.popularity_exponent))
        mean = float((w * pop).sum() / max(pop.sum(), 1.0))
        return (w / mean).astype(np.float32)

    def _n_strata(self, n_users: int, n_items: int) -> int:
        return int(max(1, min(int(self.n_blocks), n_users, n_items // _MIN_BLOCK_ITEMS)))

    def _train(self, interactions: Interactions):
        """Run the SGD epochs; returns (X, A, Y, B) with X, A of shape (n_users, P, f)."""
        self._check_params()
        C = sp.csr_matrix(interactions.matrix, dtype=np.float32)
        C.eliminate_zeros()
        C.sort_indices()
        if C.nnz and C.data.min() < 0:
            raise DeepcutsError(f"{type(self).__name__} needs play counts >= 0")
        indptr = C.indptr.astype(np.int64)
        indices = C.indices.astype(np.int32)
        n_users, n_items = C.shape
        rows = np.repeat(np.arange(n_users, dtype=np.int32), np.diff(indptr))
        f, P = int(self.factors), self._tastes()
        rng = np.random.default_rng(self.random_state)
        std = np.float32(float(self.init_scale) / np.sqrt(f))
        X = rng.standard_normal((n_users, P, f), dtype=np.float32) * std
        A = (
            rng.standard_normal((n_users, P, f), dtype=np.float32) * std
            if P > 1
            else np.zeros((n_users, 1, f), np.float32)
        )
        Y = rng.standard_normal((n_items, f), dtype=np.float32) * std
        B = np.zeros(n_items, np.float32)
        GX, GA, GY, GB = (np.zeros_like(v) for v in (X, A, Y, B))
        rho = self._popularity_weights(C)
        T = self._n_strata(n_users, n_items)
        user_w = np.diff(indptr).astype(np.float64)
        item_w = np.bincount(indices, minlength=n_items).astype(np.float64)
        dw, ds = self._distinct()
        valid = _validation_matrix(self.validation, interactions)
        losses, seconds = [], []
        elapsed = 0.0
        loop = EpochLoop(
            type(self).__name__, self.iterations, show_progress=self.show_progress,
            early_stopping_rounds=self.early_stopping_rounds,
        )  # fmt: skip
        for it in loop:
            t0 = time.perf_counter()
            order, strat_ptr, blk_items, blk_ptr, seeds = _epoch_plan(
                rows, indices, user_w, item_w, T, rng
            )
            out_loss = np.zeros((T, T), np.float64)
            K.sgd_epoch(
                indptr, indices, rows, X, A, Y, B, GX, GA, GY, GB, order, strat_ptr, blk_items,
                blk_ptr, rho, seeds, float(self.learning_rate), float(self.regularization),
                _LOSSES[self.loss], int(self.max_trials), float(dw), float(ds), self._ada(),
                out_loss,
            )  # fmt: skip
            elapsed += time.perf_counter() - t0
            seconds.append(elapsed)
            losses.append(float(out_loss.sum()) / max(C.nnz, 1))
            loop.progress(loss=f"{losses[-1]:.4f}")
            if not np.isfinite(losses[-1]):
                raise DeepcutsError(
                    f"{type(self).__name__} diverged (loss {losses[-1]}) at iteration {it + 1}; "
                    f"lower learning_rate (now {self.learning_rate}) or raise regularization"
                )
            if valid is not None and loop.validate(
                it, self._validation_ndcg(X, A, Y, B, C, valid),
                lambda: (X.copy(), A.copy(), Y.copy(), B.copy()),
            ):  # fmt: skip
                break
        scores = loop.scores
        n_run = len(losses)
        if loop.kept is not None:
            X, A, Y, B = loop.kept
            n_run = loop.best_epoch + 1
        self.loss_history_ = np.asarray(losses[:n_run], np.float64)
        self.validation_history_ = np.asarray(scores[:n_run], np.float64)
        self.train_seconds_ = np.asarray(seconds[:n_run], np.float64)
        self.n_iterations_ = int(n_run)
        self.n_strata_ = int(T)
        return X, A, Y, B

    def _validation_ndcg(self, X, A, Y, B, train, valid) -> float:
        if X.shape[1] == 1:  # x . y + b as one product: append the bias as a factor
            Xb = np.concatenate([X[:, 0], np.ones((len(X), 1), np.float32)], axis=1)
            return _ndcg_at_k(Xb, np.concatenate([Y, B[:, None]], axis=1), train, valid, 10)
        return _ndcg_of(lambda ub: K.mixture_scores(X[ub], A[ub], Y, B), train, valid, 10)

    # ------------------------------------------------------------------ fold-in
    def _fold(self, user_items) -> tuple[np.ndarray, np.ndarray]:
        """(b, P, f) tastes and attentions for history rows, the items fixed (SGD)."""
        self._check_fitted()
        rows = sp.csr_matrix(user_items, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[1] != self.n_items:
            raise DeepcutsError(
                f"user_items must have {self.n_items} columns (one per item), got shape {rows.shape}"
            )
        if rows.nnz and rows.data.min() < 0:
            raise DeepcutsError("play counts in user_items must be >= 0")
        rows.eliminate_zeros()
        rows.sort_indices()
        b = rows.shape[0]
        f, P = self.item_factors_.shape[1], self._tastes()
        rng = np.random.default_rng(self.random_state)
        std = np.float32(float(self.init_scale) / np.sqrt(f))
        X = rng.standard_normal((b, P, f), dtype=np.float32) * std
        A = rng.standard_normal((b, P, f), dtype=np.float32) * std
        seeds = rng.integers(0, 2**63 - 1, size=b, dtype=np.int64).astype(np.uint64)
        dw, ds = self._distinct()
        K.fold_in_rows(
            rows.indptr.astype(np.int64), rows.indices.astype(np.int32), X, A,
            self.item_factors_, self.item_biases_, np.zeros_like(X), np.zeros_like(A),
            np.arange(self.n_items, dtype=np.int32),
            self._popularity_weights(self.interactions_.matrix), seeds,
            int(self.fold_in_epochs), float(self.learning_rate), float(self.regularization),
            _LOSSES[self.loss], int(self.max_trials), float(dw), float(ds), self._ada(),
        )  # fmt: skip
        return X, A

    def _similar_items(self, item_index: np.ndarray) -> np.ndarray:
        Y = self.item_factors_
        Yn = Y / np.maximum(np.linalg.norm(Y, axis=1, keepdims=True), 1e-12)
        return Yn[np.asarray(item_index)] @ Yn.T


class BPR(_RankingModel):
    """Single-vector matrix factorisation trained with a ranking loss (BPR or WARP) by SGD.

    The score is ``s_ui = x_u . y_i + b_i``. Training draws ``nnz`` (user, played item) samples
    per iteration, each with a negative item (module docstring). The class is named after the
    pairwise-ranking family; its default loss is WARP and its defaults (learning rate 0.02,
    regularization 0.5) come from a validation split of Last.fm 2K, where WARP beat BPR
    (docs/ranking_loss.md).

    Parameters
    ----------
    factors : int, default=64
        Length of each user and item vector.
    iterations : int, default=40
        Epochs of SGD.
    learning_rate : float, default=0.02
    regularization : float, default=0.5
        L2 term ``-reg * theta`` in the step of every parameter a sample touches.
    loss : {"bpr", "warp"}, default="warp"
    optimizer : {"adagrad", "sgd"}, default="adagrad"
        Per-coordinate Adagrad steps ``lr * g / sqrt(sum g^2)`` or plain SGD ``lr * g``.
    max_trials : int, default=50
        WARP: negatives drawn per positive before giving up.
    popularity_exponent : float, default=0.0
        ``t`` of the positive-pair weight ``1 / log(e + pop_i)^t`` (0 = off).
    init_scale : float, default=0.1
        Initial vectors are Gaussian with norm about ``init_scale``.
    n_blocks : int, default=8
        ``T``, blocks of users and of items of the stratified SGD; the model depends on it
        (and on the seed) but not on the number of threads. At most ``n_items // 32``.
    fold_in_epochs : int, default=20
        SGD passes over a new listener's history in :meth:`fold_in`.
    random_state : int or None, default=None
    show_progress : bool, default=False
    validation : Interactions or csr_matrix, optional
        Held-out plays of the training users; NDCG@10 after each iteration goes to
        ``validation_history_``.
    early_stopping_rounds : int, optional
        With ``validation``: stop after this many iterations without improvement and keep the
        best iteration.

    Attributes
    ----------
    user_factors_ : ndarray of shape (n_users, factors) float32
    item_factors_ : ndarray of shape (n_items, factors) float32
    item_biases_ : ndarray of shape (n_items,) float32
    loss_history_ : ndarray of shape (n_iterations_,) float64
        Mean loss per sample of each iteration.
    validation_history_ : ndarray of shape (n_iterations_,) float64
    train_seconds_ : ndarray of shape (n_iterations_,) float64
        Cumulative training time after each iteration (validation excluded).
    n_iterations_ : int

    Examples
    --------
    >>> from deepcuts.testing import planted_blocks
    >>> x = planted_blocks(60, 30, 3, random_state=0)
    >>> m = BPR(factors=8, iterations=20, random_state=0).fit(x)
    >>> m.user_factors_.shape, m.item_biases_.shape
    ((60, 8), (30,))
    >>> bool(m.loss_history_[-1] < m.loss_history_[0])
    True
    >>> len(m.recommend("u0", n=3))
    3
    """

    _state_arrays = (
        "user_factors_",
        "item_factors_",
        "item_biases_",
        "loss_history_",
        "validation_history_",
        "train_seconds_",
    )
    _state_scalars = ("n_iterations_", "n_strata_")

    def __init__(
        self,
        *,
        factors: int = 64,
        iterations: int = 40,
        learning_rate: float = 0.02,
        regularization: float = 0.5,
        loss: str = "warp",
        optimizer: str = "adagrad",
        max_trials: int = 50,
        popularity_exponent: float = 0.0,
        init_scale: float = 0.1,
        n_blocks: int = 8,
        fold_in_epochs: int = 20,
        random_state: int | None = None,
        show_progress: bool = False,
        validation=None,
        early_stopping_rounds: int | None = None,
    ):
        self.factors = factors
        self.iterations = iterations
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.loss = loss
        self.optimizer = optimizer
        self.max_trials = max_trials
        self.popularity_exponent = popularity_exponent
        self.init_scale = init_scale
        self.n_blocks = n_blocks
        self.fold_in_epochs = fold_in_epochs
        self.random_state = random_state
        self.show_progress = show_progress
        self.validation = validation
        self.early_stopping_rounds = early_stopping_rounds

    def _fit(self, interactions: Interactions) -> None:
        X, _, Y, B = self._train(interactions)
        self.user_factors_ = np.ascontiguousarray(X[:, 0])
        self.item_factors_ = Y
        self.item_biases_ = B
        self._item_t = None

    def _after_load(self) -> None:
        self.user_factors_ = np.ascontiguousarray(self.user_factors_, np.float32)
        self.item_factors_ = np.ascontiguousarray(self.item_factors_, np.float32)
        self.item_biases_ = np.ascontiguousarray(self.item_biases_, np.float32)
        self._item_t = None

    def fold_in(self, user_items) -> np.ndarray:
        """User vectors for listening histories, the item vectors fixed (seeded SGD).

        Parameters
        ----------
        user_items : csr_matrix of shape (b, n_items)

        Returns
        -------
        ndarray of shape (b, factors) float32

        Examples
        --------
        >>> from deepcuts.testing import planted_blocks
        >>> x = planted_blocks(60, 30, 3, random_state=0)
        >>> m = BPR(factors=8, iterations=5, random_state=0).fit(x)
        >>> m.fold_in(x.matrix[:2]).shape
        (2, 8)
        """
        return np.ascontiguousarray(self._fold(user_items)[0][:, 0])

    def _score(self, user_index, user_items, **kw) -> np.ndarray:
        if kw:
            raise DeepcutsError(f"unknown scoring option(s) {sorted(kw)} for BPR")
        user_index = np.asarray(user_index, np.int64)
        U = np.empty((len(user_index), self.item_factors_.shape[1]), np.float32)
        known = user_index >= 0
        U[known] = self.user_factors_[user_index[known]]
        if (~known).any():
            U[~known] = self.fold_in(sp.csr_matrix(user_items)[np.flatnonzero(~known)])
        if getattr(self, "_item_t", None) is None:
            self._item_t = np.ascontiguousarray(self.item_factors_.T)
        return U @ self._item_t + self.item_biases_[None, :]


class MixtureOfTastes(_RankingModel):
    """Mixture-of-tastes model (Kula 2017) trained with a ranking loss, with persona tabs.

    User ``u`` has ``n_personas`` taste vectors ``x_up`` and attention vectors ``a_up``; the
    score is ``s_ui = sum_p softmax_p(a_up . y_i) (x_up . y_i) + b_i`` (``scoring="soft"``) or
    ``max_p x_up . y_i + b_i`` over the user's shown personas (``scoring="max"``). Persona
    ``p``'s own list (``recommend(..., persona=p)``) ranks by ``x_up . y_i``.

    After training, each of a user's plays is credited to the taste that scores it highest
    (``argmax_p x_up . y_i``); the tastes are ordered by their share of the user's play counts
    and those holding at least ``min_share`` of the plays and ``min_items`` items are *shown*
    (``user_n_personas_``, at least 1). Hidden tastes still take part in the soft score.

    Parameters
    ----------
    factors : int, default=32
    n_personas : int, default=3
        ``P``, tastes per user.
    iterations : int, default=40
    learning_rate : float, default=0.02
    regularization : float, default=0.5
    loss : {"bpr", "warp"}, default="warp"
    optimizer : {"adagrad", "sgd"}, default="adagrad"
    max_trials : int, default=50
    distinct_weight : float, default=0.0
        ``w`` of the distinctness penalty ``w sum_{p<q} exp(-|x_up - x_uq|^2 / s)``.
    distinct_scale : float, default=0.1
        ``s``, squared distance (in factor units) at which the penalty has fallen to ``1/e``.
    popularity_exponent : float, default=0.0
    scoring : {"soft", "max"}, default="soft"
        Default scoring of the combined list (also a ``recommend`` keyword).
    min_share : float, default=0.05
        A taste is shown as a persona when it holds at least this share of the user's plays...
    min_items : int, default=3
        ...and at least this many of the user's items.
    init_scale : float, default=0.1
    n_blocks : int, default=8
    fold_in_epochs : int, default=20
    random_state : int or None, default=None
    show_progress : bool, default=False
    validation : Interactions or csr_matrix, optional
    early_stopping_rounds : int, optional

    Attributes
    ----------
    persona_factors_ : ndarray of shape (n_users, n_personas, factors) float32
        Taste vectors, ordered by share (shown personas first).
    attention_factors_ : ndarray of shape (n_users, n_personas, factors) float32
    item_factors_ : ndarray of shape (n_items, factors) float32
    item_biases_ : ndarray of shape (n_items,) float32
    user_n_personas_ : ndarray of shape (n_users,) int32
        Shown personas per user.
    loss_history_, validation_history_, train_seconds_, n_iterations_
        As :class:`BPR`.

    Examples
    --------
    >>> from deepcuts.testing import planted_blocks
    >>> x = planted_blocks(60, 30, 3, random_state=0)
    >>> m = MixtureOfTastes(factors=8, n_personas=2, iterations=10, random_state=0).fit(x)
    >>> m.persona_factors_.shape
    (60, 2, 8)
    >>> rec = m.recommend("u0", n=3)
    >>> len(rec), rec.to_frame().columns[-1]
    (3, 'persona')
    """

    _state_arrays = (
        "persona_factors_",
        "attention_factors_",
        "item_factors_",
        "item_biases_",
        "user_n_personas_",
        "loss_history_",
        "validation_history_",
        "train_seconds_",
    )
    _state_scalars = ("n_iterations_", "n_strata_")
    #: ``recommend`` keywords (``_taste``: internal, one taste's list for the blend)
    _score_options = ("persona", "persona_mix", "blend", "scoring", "_taste")

    def __init__(
        self,
        *,
        factors: int = 32,
        n_personas: int = 3,
        iterations: int = 40,
        learning_rate: float = 0.02,
        regularization: float = 0.5,
        loss: str = "warp",
        optimizer: str = "adagrad",
        max_trials: int = 50,
        distinct_weight: float = 0.0,
        distinct_scale: float = 0.1,
        popularity_exponent: float = 0.0,
        scoring: str = "soft",
        min_share: float = 0.05,
        min_items: int = 3,
        init_scale: float = 0.1,
        n_blocks: int = 8,
        fold_in_epochs: int = 20,
        random_state: int | None = None,
        show_progress: bool = False,
        validation=None,
        early_stopping_rounds: int | None = None,
    ):
        self.factors = factors
        self.n_personas = n_personas
        self.iterations = iterations
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.loss = loss
        self.optimizer = optimizer
        self.max_trials = max_trials
        self.distinct_weight = distinct_weight
        self.distinct_scale = distinct_scale
        self.popularity_exponent = popularity_exponent
        self.scoring = scoring
        self.min_share = min_share
        self.min_items = min_items
        self.init_scale = init_scale
        self.n_blocks = n_blocks
        self.fold_in_epochs = fold_in_epochs
        self.random_state = random_state
        self.show_progress = show_progress
        self.validation = validation
        self.early_stopping_rounds = early_stopping_rounds

    def _check_params(self) -> None:
        super()._check_params()
        v = self.n_personas
        if not isinstance(v, int | np.integer) or isinstance(v, bool) or v < 1:
            raise DeepcutsError(f"n_personas must be an integer >= 1, got {v!r}")
        v = self.min_items
        if not isinstance(v, int | np.integer) or isinstance(v, bool) or v < 1:
            raise DeepcutsError(f"min_items must be an integer >= 1, got {v!r}")
        for name in ("distinct_weight", "distinct_scale", "min_share"):
            v = getattr(self, name)
            if not isinstance(v, int | float | np.number) or not np.isfinite(v) or v < 0:
                raise DeepcutsError(f"{name} must be a finite number >= 0, got {v!r}")
        if not self.distinct_scale > 0:
            raise DeepcutsError(f"distinct_scale must be > 0, got {self.distinct_scale!r}")
        if not self.min_share <= 1:
            raise DeepcutsError(f"min_share must be in [0, 1], got {self.min_share!r}")
        self._check_scoring(self.scoring)

    @staticmethod
    def _check_scoring(scoring) -> str:
        if scoring not in ("soft", "max"):
            raise DeepcutsError(f"scoring must be 'soft' or 'max', got {scoring!r}")
        return scoring

    def _tastes(self) -> int:
        return int(self.n_personas)

    def _distinct(self) -> tuple[float, float]:
        return float(self.distinct_weight), float(self.distinct_scale)

    # ------------------------------------------------------------------ training
    def _fit(self, interactions: Interactions) -> None:
        X, A, Y, B = self._train(interactions)
        self.item_factors_ = Y
        self.item_biases_ = B
        X, A, n = self._order_tastes(X, A, interactions.matrix)
        self.persona_factors_ = X
        self.attention_factors_ = A
        self.user_n_personas_ = n

    def _order_tastes(self, X, A, rows: sp.csr_matrix):
        """Sort each row's tastes by share of plays (largest first); count the shown ones."""
        rows = sp.csr_matrix(rows, dtype=np.float32)
        b, P = X.shape[:2]
        allp = np.full(b, P, np.int32)
        sh = PersonaALS._shares(self, X, allp, rows)  # (b, P) share of play counts
        r = np.repeat(np.arange(b), np.diff(rows.indptr))
        a = self._assign(rows, X, self.item_factors_, allp)
        cnt = np.bincount(r * P + a, minlength=b * P).reshape(b, P)
        shown = (sh >= float(self.min_share)) & (cnt >= int(self.min_items))
        # shown tastes first, each group by share (largest first)
        order = np.argsort(-(sh + 2.0 * shown), axis=1, kind="stable")
        X = np.ascontiguousarray(np.take_along_axis(X, order[:, :, None], axis=1))
        A = np.ascontiguousarray(np.take_along_axis(A, order[:, :, None], axis=1))
        n = np.maximum(shown.sum(axis=1), 1).astype(np.int32)
        return X, A, n

    def _assign(self, C, U, Y, n_act, collapse_weight=None) -> np.ndarray:
        """Taste of each stored entry of ``C``: ``argmax_p x_up . y_i`` over the first
        ``n_act[u]`` tastes (no taste of a user with enough items left empty)."""
        C = sp.csr_matrix(C)
        out = np.zeros(C.nnz, np.int32)
        PK.assign_personas(
            C.indptr, C.indices, np.ascontiguousarray(U, np.float32), self.item_factors_,
            np.asarray(n_act, np.int32), 0.0, 0, out,
        )  # fmt: skip
        return out

    _shares = PersonaALS._shares
    _tag_idf = PersonaALS._tag_idf

    def _after_load(self) -> None:
        for k in ("persona_factors_", "attention_factors_", "item_factors_", "item_biases_"):
            setattr(self, k, np.ascontiguousarray(getattr(self, k), np.float32))
        self.user_n_personas_ = np.asarray(self.user_n_personas_, np.int32)

    # ------------------------------------------------------------------ fold-in
    def fold_in(self, user_items, *, return_attention: bool = False):
        """Tastes (and attentions) of new listening histories, the items fixed (seeded SGD).

        Parameters
        ----------
        user_items : csr_matrix of shape (b, n_items)
        return_attention : bool, default=False

        Returns
        -------
        tastes : ndarray of shape (b, n_personas, factors) float32
            Ordered by share of the history, as ``persona_factors_``.
        attention : ndarray of shape (b, n_personas, factors) float32
            Only with ``return_attention=True``.
        n : ndarray of shape (b,) int32
            Shown personas per history.

        Examples
        --------
        >>> from deepcuts.testing import planted_blocks
        >>> x = planted_blocks(60, 30, 3, random_state=0)
        >>> m = MixtureOfTastes(factors=8, n_personas=2, iterations=5, random_state=0).fit(x)
        >>> U, n = m.fold_in(x.matrix[:2])
        >>> U.shape, n.shape
        ((2, 2, 8), (2,))
        """
        X, A = self._fold(user_items)
        X, A, n = self._order_tastes(X, A, user_items)
        return (X, A, n) if return_attention else (X, n)

    # ------------------------------------------------------------------ scoring
    def _user_vectors(self, user_index, user_items):
        """(b, P, f) tastes and attentions and (b,) shown counts; fold-in for index -1."""
        user_index = np.asarray(user_index, np.int64)
        shape = (len(user_index),) + self.persona_factors_.shape[1:]
        X = np.zeros(shape, np.float32)
        A = np.zeros(shape, np.float32)
        n = np.ones(len(user_index), np.int32)
        known = user_index >= 0
        X[known] = self.persona_factors_[user_index[known]]
        A[known] = self.attention_factors_[user_index[known]]
        n[known] = self.user_n_personas_[user_index[known]]
        if (~known).any():
            sel = np.flatnonzero(~known)
            X[sel], A[sel], n[sel] = self.fold_in(
                sp.csr_matrix(user_items)[sel], return_attention=True
            )
        return X, A, n

    def _check_persona(self, persona, n) -> int:
        P = self.persona_factors_.shape[1]
        if not isinstance(persona, int | np.integer) or isinstance(persona, bool):
            raise DeepcutsError(f"persona must be an integer 0..{P - 1}, got {persona!r}")
        if persona < 0 or persona >= n.min():
            raise DeepcutsError(
                f"persona={persona} does not exist for every requested user (they have "
                f"{int(n.min())} to {int(n.max())} personas); use 0..{int(n.min()) - 1} or "
                "call personas(user) to list them"
            )
        return int(persona)

    def _score(self, user_index, user_items, *, persona=None, scoring=None, _taste=None, **kw):
        if _taste is not None:
            return self._user_vectors(user_index, user_items)[0][:, _taste] @ self.item_factors_.T
        if kw:
            raise DeepcutsError(
                f"unknown scoring option(s) {sorted(kw)} for MixtureOfTastes; use persona= or "
                "scoring='soft'|'max'"
            )
        scoring = self._check_scoring(self.scoring if scoring is None else scoring)
        X, A, n = self._user_vectors(user_index, user_items)
        Y, B = self.item_factors_, self.item_biases_
        if persona is not None:
            return X[:, self._check_persona(persona, n)] @ Y.T
        if scoring == "soft":
            return K.mixture_scores(X, A, Y, B)
        S = X[:, 0] @ Y.T
        for p in range(1, X.shape[1]):  # loop over tastes, not users
            on = n > p
            S[on] = np.maximum(S[on], X[on, p] @ Y.T)
        return S + B[None, :]

    def _personas_for(self, user_index, user_items, item_index, *, persona=None, _taste=None,
                      **kw):  # fmt: skip
        b, k = item_index.shape
        if _taste is not None:
            return None
        if persona is not None:
            return np.full((b, k), int(persona), np.int16)
        X, _, n = self._user_vectors(user_index, user_items)
        V = self.item_factors_[np.maximum(item_index, 0)]  # (b, k, f)
        S = np.einsum("bpf,bkf->bpk", X, V)
        S[np.arange(X.shape[1])[None, :] >= n[:, None]] = -np.inf
        return np.argmax(S, axis=1).astype(np.int16)

    def rank_index(self, user_index, user_items, n, *, filter_played=True, allow=None,
                   block=None, rerankers=(), **score_kw):  # fmt: skip
        """As :meth:`Recommender.rank_index`; ``blend=True`` or ``persona_mix=[w0, w1, ...]``
        fill the list from the shown personas' own lists (each ranked by ``x_up . y_i``) in
        proportion to their shares of the user's plays or to the mix (as
        :meth:`PersonaALS.rank_index`). Scores of a blended list are the contributing
        persona's, so they need not decrease with rank.
        """
        mix = score_kw.pop("persona_mix", None)
        blend = bool(score_kw.pop("blend", False))
        if mix is None and not blend:
            return super().rank_index(
                user_index, user_items, n, filter_played=filter_played, allow=allow,
                block=block, rerankers=rerankers, **score_kw,
            )  # fmt: skip
        if score_kw.get("persona") is not None:
            raise DeepcutsError("persona= and blend/persona_mix cannot be combined")
        self._check_fitted()
        user_index = np.asarray(user_index, np.int32)
        user_items = sp.csr_matrix(user_items)
        X, _, cnt = self._user_vectors(user_index, user_items)
        b, P = X.shape[:2]
        act = np.arange(P)[None, :] < cnt[:, None]
        shares = self._shares(X, cnt, user_items) if mix is None else None
        w = mix_weights(mix, shares, act)
        m = min(self.n_items, n * P)
        cand = np.full((b, P, m), -1, np.int64)
        cval = np.full((b, P, m), -np.inf, np.float32)
        for p in range(P):  # loop over tastes, not users
            idx, val, _ = super().rank_index(
                user_index, user_items, m, filter_played=filter_played, allow=allow,
                block=block, rerankers=rerankers, persona=None, _taste=p,
            )  # fmt: skip
            idx[~act[:, p]] = -1
            cand[:, p, : idx.shape[1]] = idx
            cval[:, p, : idx.shape[1]] = val
        out_idx = np.empty((b, n), np.int64)
        out_val = np.empty((b, n), np.float32)
        out_per = np.empty((b, n), np.int64)
        PK.blend_lists(cand, cval, w, int(n), out_idx, out_val,
                       out_per)  # fmt: skip
        return out_idx, out_val, out_per.astype(np.int16)

    # ------------------------------------------------------------------ persona API
    def personas(self, user, *, n_artists: int = 5, n_tags: int = 3) -> pd.DataFrame:
        """Describe one user's shown personas (same frame as :meth:`PersonaALS.personas`).

        Each play is credited to the shown taste that scores it highest, ``argmax_p x_up .
        y_i``; the labels are the personas' top idf-weighted tags.

        Returns
        -------
        DataFrame with one row per persona
            Columns persona, share, n_items, label, top_artists, top_tags.

        Examples
        --------
        >>> from deepcuts.testing import planted_blocks
        >>> x = planted_blocks(60, 30, 3, random_state=0)
        >>> m = MixtureOfTastes(factors=8, n_personas=2, iterations=5, random_state=0).fit(x)
        >>> df = m.personas("u0")
        >>> round(float(df.share.sum()), 6)
        1.0
        """
        return PersonaALS.personas(self, user, n_artists=n_artists, n_tags=n_tags)

    def persona_health(self, users=None, *, k: int = 20, collapse_share: float = 0.9,
                       batch_size: int = 512) -> pd.DataFrame:  # fmt: skip
        """Health diagnostics of the shown personas (see :meth:`PersonaALS.persona_health`).

        Returns
        -------
        DataFrame with one row per user
            Columns user, n_personas, max_share, min_share, collapsed, max_cosine,
            list_overlap; ``df.attrs["summary"]`` holds the means.
        """
        return PersonaALS.persona_health(
            self, users, k=k, collapse_share=collapse_share, batch_size=batch_size
        )
