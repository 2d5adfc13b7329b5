"""Implicit-feedback alternating least squares (Hu, Koren, Volinsky 2008).

The model: a user ``u`` and an item ``i`` get factor vectors ``x_u`` and ``y_i`` (``factors``
numbers each) such that ``x_u . y_i`` approximates the preference ``p_ui`` (1 if the user played
the item, 0 otherwise), weighted by a confidence ``c_ui``. Training minimises

    sum_{u,i} c_ui (p_ui - x_u . y_i)^2 + regularization * (sum_u |x_u|^2 + sum_i |y_i|^2)

over *all* user-item pairs (unobserved pairs have ``p_ui = 0`` and ``c_ui = 1``), alternating
between solving every ``x_u`` with the items fixed and every ``y_i`` with the users fixed.

Confidence convention (read this before comparing with other libraries)
----------------------------------------------------------------------
``c_ui = 1 + alpha * w(x_ui)`` where ``x_ui`` is the play count and ``w`` the ``weighting``
(any spec of :func:`deepcuts.data.weighting.apply_weighting` that maps counts to weights, e.g.
``"raw"`` for ``w(x) = x``, Hu et al.'s linear confidence; ``"log"`` for ``log(1 + x)``, their
log confidence; ``"bm25"``). A negative weight (``"mild_negative"``) means an observed dislike:
``p_ui = 0`` with confidence ``1 + alpha * |w|``.
The ``implicit`` package instead takes the matrix values as the confidence itself,
``c_ui = alpha * value``; giving it the matrix ``1 + alpha * w(x)`` with ``alpha=1`` yields the
same objective (this is what ``benchmarks/als.py`` does). Its regularisation is the unscaled
``regularization * I`` with 0.01, which deepcuts names :data:`IMPLICIT_EQUIVALENT`; deepcuts'
default is the activity-scaled penalty (ALS-WR), measured better (see ``reg_scaling``).
"""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import numba
import numpy as np
import pandas as pd
import scipy.sparse as sp

from deepcuts.data.idmap import IdMap
from deepcuts.data.interactions import Interactions
from deepcuts.data.weighting import apply_weighting, parse_weighting
from deepcuts.exceptions import DeepcutsError, DeepcutsWarning
from deepcuts.models import _als_kernels as K
from deepcuts.models._ann import ItemIndex, ann_available, resolve_ann
from deepcuts.models._topk import scored_candidates, topk_rows
from deepcuts.models._training import EpochLoop, check_early_stopping
from deepcuts.models.base import Recommender, _is_batch, per_user_frames

__all__ = ["ALS", "BlasThreadsWarning", "IMPLICIT_EQUIVALENT"]

#: the penalty of ``implicit``'s AlternatingLeastSquares (unscaled, its default 0.01): pass it
#: where a benchmark or test compares with ``implicit`` like for like
IMPLICIT_EQUIVALENT = {"regularization": 0.01, "reg_scaling": "none"}

log = logging.getLogger(__name__)

#: weightings whose value for a (user, item) pair depends only on that pair's count
_ROW_LOCAL = {"raw", "log", "mild_negative"}
#: weighting specs that already are confidences (1 + alpha * ...): not valid for ALS
_ALREADY_CONFIDENCE = {"confidence", "linear"}
#: weightings the kernels compute from the play counts as they read them (no float copy of the
#: matrix; see ``_als_kernels``): name -> kernel confidence mode
_ON_THE_FLY = {"raw": K.CONF_RAW, "log": K.CONF_LOG}


@dataclass(frozen=True)
class _ConfMatrix:
    """A CSR matrix whose stored values the kernels turn into signed confidences (``mode``,
    ``alpha``, ``eta``, ``a0``: see :mod:`deepcuts.models._als_kernels`): play counts, read
    as they are, or precomputed signed confidences (``K.CONF_GIVEN``)."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    shape: tuple[int, int]
    mode: int = K.CONF_GIVEN
    alpha: float = 1.0
    eta: float = 1.0
    a0: float = 1.0

    @classmethod
    def of(cls, m: sp.csr_matrix, **kw) -> _ConfMatrix:
        """Wrap ``m``'s arrays (no copy of the values or column indices when they are float32
        and int32)."""
        return cls(
            np.asarray(m.indptr, np.int64),
            m.indices.astype(np.int32, copy=False),
            m.data.astype(np.float32, copy=False),
            tuple(m.shape),
            **kw,
        )

    def kernel_args(self) -> tuple:
        """The leading arguments of every ALS kernel."""
        return (self.indptr, self.indices, self.data,
                *K.conf_params(self.mode, self.alpha, self.eta, self.a0))  # fmt: skip

    def stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-row positive entries and total confidence (``K.confidence_stats``)."""
        return K.confidence_stats(self.indptr, self.data,
                                  *K.conf_params(self.mode, self.alpha, self.eta, self.a0))  # fmt: skip

    def transpose(self) -> _ConfMatrix:
        """The (n_cols, n_rows) matrix with the same confidences: a CSR copy of the structure
        and stored values (8 bytes per entry), nothing else."""
        t = sp.csr_matrix((self.data, self.indices, self.indptr), shape=self.shape).T.tocsr()
        return _ConfMatrix.of(t, mode=self.mode, alpha=self.alpha, eta=self.eta, a0=self.a0)


class BlasThreadsWarning(DeepcutsWarning):
    """The BLAS library could not be limited to one thread around the ALS kernels.

    A multi-threaded BLAS running inside threaded ALS code competes with it for the same cores
    and can make training several times slower; set ``OPENBLAS_NUM_THREADS=1`` (or
    ``MKL_NUM_THREADS=1`` / ``OMP_NUM_THREADS=1``) before starting Python.
    """


_warned_blas = False

#: blocks of rows handed to a thread at a time (dynamic scheduling: with power-law row
#: lengths a static split leaves one thread idle while another finishes the heavy rows)
_CHUNK = 4


_blas_controller = None


@contextmanager
def _single_threaded_blas():
    """Limit BLAS to one thread while the parallel kernels run (warns once if impossible).

    The threadpoolctl controller (which scans the loaded libraries) is created once per
    process; entering and leaving the limit afterwards costs microseconds.
    """
    global _warned_blas, _blas_controller
    if _blas_controller is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - threadpoolctl is a dependency
            yield
            return
        _blas_controller = ThreadpoolController()
    with _blas_controller.limit(limits=1, user_api="blas"):
        if not _warned_blas:
            _warned_blas = True
            blas = _blas_controller.select(user_api="blas").info()
            busy = [i for i in blas if i.get("num_threads", 1) > 1]
            if busy:
                warnings.warn(
                    f"could not limit {busy[0].get('internal_api')} to one thread during ALS "
                    "training; a multi-threaded BLAS inside the parallel ALS kernels can make "
                    "training several times slower. Set OPENBLAS_NUM_THREADS=1 (or "
                    "MKL_NUM_THREADS=1) before starting Python.",
                    BlasThreadsWarning,
                    stacklevel=4,
                )
        yield


class ALS(Recommender):
    """Implicit-feedback matrix factorisation by alternating least squares.

    Parameters
    ----------
    factors : int, default=64
        Length of each user and item vector.
    iterations : int, default=15
        Alternations (each solves all users, then all items).
    regularization : float, default=0.3
        L2 penalty ``reg`` (see ``reg_scaling``). The defaults, ``reg_scaling="activity"`` with
        ``0.3``, are the best setting measured on Last.fm 2K (+11% NDCG@10 and +25% coverage
        over ``implicit``'s unscaled ``0.01``, ``benchmarks/als_reg_scaling.py``). For a
        like-for-like comparison with ``implicit`` pass :data:`IMPLICIT_EQUIVALENT`
        (``regularization=0.01, reg_scaling="none"``), e.g. ``ALS(**IMPLICIT_EQUIVALENT)``.
    reg_scaling : {"none", "activity", "frequency"}, default="activity"
        ``"none"``: every vector gets ``reg |x|^2`` (Hu et al. 2008, ``implicit``).
        ``"activity"``: each vector's penalty is scaled by its number of positive entries,
        ``reg * n_u |x_u|^2`` and ``reg * n_i |y_i|^2`` (ALS-WR, Zhou et al. 2008; Spark
        MLlib's convention), so heavy listeners and popular items are regularised more. Its
        ``reg`` lives on another scale: ~0.1-1 rather than 0.01 (see docs/als.md).
        ``"frequency"``: tuned iALS (Rendle et al. 2022, "Revisiting the performance of iALS
        on item recommendation benchmarks"): ``reg * (n_u + alpha0 * n_items) ** nu`` for a
        user with ``n_u`` observed items and ``reg * (n_i + alpha0 * n_users) ** nu`` for an
        item, with ``alpha0 = unobserved_weight`` and ``nu = reg_exponent``.
    unobserved_weight : float, default=1.0
        ``alpha0``, the weight of every unobserved pair: the loss is
        ``sum_observed c_ui (p_ui - x_u.y_i)^2 + alpha0 sum_unobserved (x_u.y_i)^2`` (Rendle
        et al. 2022; 1 is Hu et al.'s model). Small values (0.001-0.3) suit large catalogues.
        Solved exactly as the objective divided by ``alpha0``: confidences ``c_ui / alpha0``
        and penalties ``reg / alpha0`` in the usual solver (same minimiser).
    reg_exponent : float, default=1.0
        ``nu`` of ``reg_scaling="frequency"`` (0 gives the unscaled penalty).
    init_scale : float or None, default=None
        ``None``: initial factors uniform in [0, 0.01). A number ``s``: normal with standard
        deviation ``s / sqrt(factors)`` (Rendle et al. 2022 use ``s = 0.1``).
    alpha : float, default=1.0
        Confidence slope: ``c_ui = 1 + alpha * w(x_ui)``.
    weighting : str or callable, default="log"
        Count transform ``w`` (see :func:`deepcuts.data.weighting.apply_weighting`): ``"raw"``
        (Hu et al.'s linear confidence), ``"log"`` (their log confidence, ``log(1 + x)``),
        ``"bm25"``, ``"tfidf"``, ``"mild_negative"``, ``"radio"`` (chance listens of popular
        items as a mild negative, :func:`deepcuts.data.weighting.radio_penalty`) or
        ``"name:key=value"``. The weighting
        module's ``"confidence"`` and ``"linear"`` already add 1 and are refused here.
    solver : {"cg", "cholesky"}, default="cg"
        ``"cg"``: ``cg_steps`` conjugate-gradient steps per vector, warm-started from the
        previous iteration (Takacs, Pilaszy, Tikk 2011); fast. ``"cholesky"``: exact solve of
        each vector's normal equations; ``factors`` times slower per stored entry.
    cg_steps : int, default=3
        Conjugate-gradient steps per vector and half-iteration.
    random_state : int or None, default=None
        Seed of the initial factors (see ``init_scale``); same seed, same model.
    show_progress : bool, default=False
        Show a progress bar over iterations.
    ann : {"auto", True, False}, default="auto"
        Approximate top-k (:mod:`deepcuts.models._ann`, faiss inverted-file index over the item
        vectors): the index proposes ``ann_candidates`` items per user, which are then scored
        exactly, filtered and re-ranked as usual. ``"auto"`` switches it on at 50,000 items or
        more when faiss is installed (``pip install deepcuts[ann]``) and scores exactly
        otherwise; ``True`` requires faiss; ``False`` always scores every item. The index is
        built after ``fit`` and saved with the model.
    ann_candidates : int, default=300
        Candidates per user from the index (raised to ``n`` plus the user's number of played
        items when that is larger). Re-rankers such as the discovery knob choose among them.
    validation : Interactions or csr_matrix, optional
        Held-out plays of the training users (same user and item maps, e.g. the test part of a
        split). NDCG@10 on it is recorded after each iteration in ``validation_history_``.
    early_stopping_rounds : int, optional
        With ``validation``: stop when NDCG@10 has not improved for this many iterations and
        keep the best iteration's factors.

    Attributes
    ----------
    user_factors_ : ndarray of shape (n_users, factors) float32
    item_factors_ : ndarray of shape (n_items, factors) float32
    loss_history_ : ndarray of shape (n_iterations_,) float64
        Training loss after each iteration, divided by the total confidence (all pairs).
    validation_history_ : ndarray of shape (n_iterations_,) float64
        NDCG@10 on ``validation`` after each iteration (empty without validation).
    n_iterations_ : int
        Iterations run (fewer than ``iterations`` after early stopping).

    Examples
    --------
    >>> from deepcuts.testing import planted_blocks
    >>> x = planted_blocks(60, 30, 3, random_state=0)
    >>> model = ALS(factors=8, iterations=5, random_state=0).fit(x)
    >>> model.user_factors_.shape, model.item_factors_.shape
    ((60, 8), (30, 8))
    >>> bool(model.loss_history_[-1] < model.loss_history_[0])
    True
    >>> len(model.recommend("u0", n=3))
    3
    """

    _state_arrays = (
        "user_factors_",
        "item_factors_",
        "loss_history_",
        "validation_history_",
    )
    _state_scalars = ("n_iterations_",)
    supports_fold_in = True

    def __init__(
        self,
        *,
        factors: int = 64,
        iterations: int = 15,
        regularization: float = 0.3,
        reg_scaling: Literal["none", "activity", "frequency"] = "activity",
        unobserved_weight: float = 1.0,
        reg_exponent: float = 1.0,
        init_scale: float | None = None,
        alpha: float = 1.0,
        weighting="log",
        solver: Literal["cg", "cholesky"] = "cg",
        cg_steps: int = 3,
        random_state: int | None = None,
        show_progress: bool = False,
        ann="auto",
        ann_candidates: int = 300,
        validation=None,
        early_stopping_rounds: int | None = None,
    ):
        self.factors = factors
        self.iterations = iterations
        self.regularization = regularization
        self.reg_scaling = reg_scaling
        self.unobserved_weight = unobserved_weight
        self.reg_exponent = reg_exponent
        self.init_scale = init_scale
        self.alpha = alpha
        self.weighting = weighting
        self.solver = solver
        self.cg_steps = cg_steps
        self.random_state = random_state
        self.show_progress = show_progress
        self.ann = ann
        self.ann_candidates = ann_candidates
        self.validation = validation
        self.early_stopping_rounds = early_stopping_rounds

    def save(self, path) -> str:
        """Save to ``<path>.npz`` + ``<path>.json`` (``validation`` data is not stored)."""
        if callable(self.weighting):
            raise DeepcutsError(
                "cannot save an ALS whose weighting is a function; use a weighting name such "
                "as 'log' or 'bm25:k1=1.2' to make the model saveable"
            )
        held = self.validation
        try:
            self.validation = None
            return super().save(path)
        finally:
            self.validation = held

    # ------------------------------------------------------------------ validation of params
    def _check_params(self) -> None:
        def positive_int(name, value, minimum=1):
            if (
                not isinstance(value, int | np.integer)
                or isinstance(value, bool)
                or value < minimum
            ):
                raise DeepcutsError(f"{name} must be an integer >= {minimum}, got {value!r}")

        positive_int("factors", self.factors)
        positive_int("iterations", self.iterations, 0)
        positive_int("cg_steps", self.cg_steps)
        positive_int("ann_candidates", self.ann_candidates)
        if not (self.ann is True or self.ann is False or self.ann == "auto"):
            raise DeepcutsError(f"ann must be 'auto', True or False, got {self.ann!r}")
        for name in ("regularization", "alpha"):
            v = getattr(self, name)
            if not isinstance(v, int | float | np.number) or not np.isfinite(v) or v < 0:
                raise DeepcutsError(f"{name} must be a finite number >= 0, got {v!r}")
        if self.regularization == 0 and self.solver == "cholesky":
            log.debug("regularization=0 with the Cholesky solver may be ill-conditioned")
        if self.reg_scaling not in ("none", "activity", "frequency"):
            raise DeepcutsError(
                f"reg_scaling must be 'none', 'activity' or 'frequency', got {self.reg_scaling!r}"
            )
        for name, low in (("unobserved_weight", 0.0), ("reg_exponent", None)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float | np.number):
                raise DeepcutsError(f"{name} must be a number, got {v!r}")
            if not np.isfinite(v) or (low is not None and v <= low):
                raise DeepcutsError(
                    f"{name} must be a finite number{'' if low is None else ' > 0'}, got {v!r}"
                )
        v = self.init_scale
        if v is not None and (
            isinstance(v, bool)
            or not isinstance(v, int | float | np.number)
            or not np.isfinite(v)
            or v <= 0
        ):
            raise DeepcutsError(f"init_scale must be a number > 0 or None, got {v!r}")
        if self.solver not in ("cg", "cholesky"):
            raise DeepcutsError(f"solver must be 'cg' or 'cholesky', got {self.solver!r}")
        check_early_stopping(self.early_stopping_rounds, self.validation)
        if isinstance(self.weighting, str):
            name, _ = parse_weighting(self.weighting)
            if name in _ALREADY_CONFIDENCE:
                raise DeepcutsError(
                    f"weighting={self.weighting!r} already is a confidence (1 + alpha*...), but "
                    "ALS builds c = 1 + alpha * w(x) itself; use weighting='raw' for linear "
                    "confidence or weighting='log' for log confidence"
                )

    # ------------------------------------------------------------------ confidence
    def _weights(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        counts = sp.csr_matrix(counts, dtype=np.float32)
        w = apply_weighting(counts, self.weighting)
        if np.shares_memory(w.data, counts.data):  # e.g. a callable returning its input
            w = sp.csr_matrix((w.data.copy(), w.indices, w.indptr), shape=w.shape)
        return w

    def _signed_confidence(self, w: sp.csr_matrix) -> sp.csr_matrix:
        """Signed confidences ``sign(w) * (1 + alpha |w|)`` (kernel convention), float32 CSR.

        Computed in place on ``w``'s values when ``w`` owns them (the weighting functions
        return fresh matrices), so building the confidences costs no extra copy.
        """
        d = w.data
        if d.dtype != np.float32 or not d.flags.writeable:
            d = d.astype(np.float32)
        neg = d < 0
        np.abs(d, out=d)
        d *= np.float32(self.alpha)
        d += np.float32(1.0)
        if self.unobserved_weight != 1.0:
            # unobserved weight alpha0: the objective divided by alpha0 has unobserved weight 1,
            # confidences c_ui / alpha0 and penalties reg / alpha0 (same minimiser)
            d /= np.float32(self.unobserved_weight)
        np.negative(d, out=d, where=neg)
        return sp.csr_matrix(
            (d, w.indices.astype(np.int32, copy=False), w.indptr.astype(np.int64, copy=False)),
            shape=w.shape,
        )

    def _confidences(self, counts: sp.csr_matrix) -> _ConfMatrix:
        """The training confidences of a play-count matrix, for the kernels.

        ``"raw"`` and ``"log"`` (the default) are computed by the kernels from the counts as
        they read them: the count matrix itself is passed, with no float copy. Other
        weightings (bm25, tfidf, mild_negative, callables...) need statistics of the whole
        matrix and are precomputed as signed confidences (:meth:`_signed_confidence`).
        """
        spec = "raw" if self.weighting is None else self.weighting
        if isinstance(spec, str):
            name, params = parse_weighting(spec)
            if name in _ON_THE_FLY and set(params) <= ({"eta"} if name == "log" else set()):
                eta = float(params.get("eta", 1.0))
                if name == "log" and eta <= 0:
                    raise DeepcutsError(f"eta must be > 0, got {eta}")
                return _ConfMatrix.of(
                    sp.csr_matrix(counts),
                    mode=_ON_THE_FLY[name],
                    alpha=float(self.alpha),
                    eta=eta,
                    a0=float(self.unobserved_weight),
                )
        return _ConfMatrix.of(self._signed_confidence(self._weights(counts)))

    def _row_confidence(self, rows: sp.csr_matrix) -> sp.csr_matrix:
        """Confidences of history rows as if they belonged to the training data."""
        rows = sp.csr_matrix(rows, dtype=np.float32)
        name = parse_weighting(self.weighting)[0] if isinstance(self.weighting, str) else None
        if self.weighting is None or name in _ROW_LOCAL:
            return self._signed_confidence(self._weights(rows))
        # weightings with corpus statistics (bm25, tfidf, callables): weigh the rows together
        # with the training matrix so that document frequencies match training
        train = self.interactions_.matrix
        w = self._weights(sp.vstack([train, rows], format="csr"))
        return self._signed_confidence(w[train.shape[0] :])

    # ------------------------------------------------------------------ training
    def _gram(self, F: np.ndarray) -> np.ndarray:
        """``F^T F + reg*I`` in float32 (BLAS, multi-threaded); ``reg`` = :meth:`_base_reg`."""
        A = F.T @ F
        A[np.diag_indices_from(A)] += np.float32(self._base_reg())
        return np.ascontiguousarray(A, dtype=np.float32)

    def _base_reg(self) -> float:
        """The penalty every vector shares (0 when it is scaled per vector), divided by the
        unobserved weight ``alpha0`` (see ``unobserved_weight``)."""
        if self.reg_scaling != "none":
            return 0.0
        return self.regularization / self.unobserved_weight

    def _row_reg(self, C, npos: np.ndarray | None = None) -> np.ndarray:
        """Per-row penalty on top of :meth:`_base_reg`, float32 (n_rows,), divided by
        ``alpha0``: zeros; ``reg * max(n_pos, 1)`` with ``n_pos`` the row's positive entries
        (ALS-WR); or ``reg * (n_obs + alpha0 * n_cols) ** nu`` (tuned iALS, Rendle et al.
        2022) with ``n_obs`` the row's observed entries and ``n_cols`` the other side's size.

        ``C``: signed confidences (csr_matrix) or a :class:`_ConfMatrix`; ``npos``: its
        per-row positive entries when already known (``confidence_stats``)."""
        n = C.shape[0]
        if self.reg_scaling == "none":
            return np.zeros(n, np.float32)
        a0 = float(self.unobserved_weight)
        if self.reg_scaling == "frequency":
            nobs = np.diff(C.indptr).astype(np.float64)
            reg = self.regularization * (nobs + a0 * C.shape[1]) ** float(self.reg_exponent)
            return (reg / a0).astype(np.float32)
        if npos is None:
            npos = _as_conf(C).stats()[0]
        return (self.regularization * np.maximum(npos, 1) / a0).astype(np.float32)

    def _penalty(self, F: np.ndarray, extra: np.ndarray) -> float:
        """``sum_r (base + extra_r) |f_r|^2`` of the side whose per-row penalties are ``extra``."""
        sq = np.einsum("ij,ij->i", F, F, dtype=np.float64)
        return float(((self._base_reg() + extra.astype(np.float64)) * sq).sum())

    def _half_step(
        self,
        C,
        X: np.ndarray,
        Y: np.ndarray,
        loss: np.ndarray,
        *,
        exact: bool = False,
        extra: np.ndarray | None = None,
    ) -> None:
        """Solve every row of ``X`` (in place) against the fixed ``Y``.

        ``C``: signed confidences (csr_matrix) or a :class:`_ConfMatrix`; ``extra``: its
        per-row penalties (:meth:`_row_reg`, computed here when not given).

        The CG solver first rotates *both* ``X`` and ``Y`` (in place) into the eigenbasis of
        ``Y^T Y`` (scores ``x_u . y_i`` do not change), where the kernel's dense products are
        diagonal; the exact solver leaves the basis alone.
        """
        C = _as_conf(C)
        if extra is None:
            extra = self._row_reg(C)
        if exact or self.solver == "cholesky":
            A0 = self._gram(Y)
            with _single_threaded_blas():
                K.cholesky_half_step(*C.kernel_args(), X, Y, A0, extra, loss)
            return
        Q, lam = K.diagonalise(Y, self._base_reg())
        K.rotate_(X, Q)
        K.rotate_(Y, Q)
        with _single_threaded_blas(), numba.parallel_chunksize(_CHUNK):
            K.cg_half_step(*C.kernel_args(), X, Y, lam, extra, int(self.cg_steps), loss)

    def _fit(self, interactions: Interactions) -> None:
        self._check_params()
        # the kernels read confidences off the counts (no float copy of the matrix); the
        # transpose holds the counts again in item order (8 bytes per pair)
        Cui = self._confidences(interactions.matrix)
        Ciu = Cui.transpose()
        n_users, n_items = Cui.shape
        f = int(self.factors)
        rng = np.random.default_rng(self.random_state)
        if self.init_scale is None:
            X = rng.random((n_users, f), dtype=np.float32)
            Y = rng.random((n_items, f), dtype=np.float32)
            scale = np.float32(0.01)
        else:  # N(0, (s / sqrt(f))^2), Rendle et al. 2022
            X = rng.standard_normal((n_users, f), dtype=np.float32)
            Y = rng.standard_normal((n_items, f), dtype=np.float32)
            scale = np.float32(self.init_scale / np.sqrt(f))
        X *= scale  # in place: no second copy of the factors
        Y *= scale
        # statistics of the confidences, once per fit: positive entries per user and per item
        # (ALS-WR's penalties) and the total confidence
        npos_u, conf_u = Cui.stats()
        npos_i = Ciu.stats()[0] if self.reg_scaling == "activity" else None
        extra_u = self._row_reg(Cui, npos_u)
        extra_i = self._row_reg(Ciu, npos_i)
        del npos_u, npos_i
        # total weight of all pairs, the loss normaliser (as implicit's calculate_loss)
        norm = float(n_users) * n_items + float(conf_u.sum()) - len(Cui.data)
        del conf_u
        valid = _validation_matrix(self.validation, interactions)

        loss_u = np.zeros(n_users, np.float64)
        loss_i = np.zeros(n_items, np.float64)
        losses: list[float] = []
        loop = EpochLoop(
            "ALS", self.iterations, show_progress=self.show_progress,
            early_stopping_rounds=self.early_stopping_rounds,
        )  # fmt: skip
        for it in loop:
            y_pen = self._penalty(Y, extra_i)
            self._half_step(Cui, X, Y, loss_u, extra=extra_u)
            if it > 0:  # the user step measured the loss of the previous iteration's model
                losses.append((float(loss_u.sum()) + y_pen) / norm)
            self._half_step(Ciu, Y, X, loss_i, extra=extra_i)
            if valid is not None and loop.validate(
                it, _ndcg_at_k(X, Y, interactions.matrix, valid, 10), lambda: (X.copy(), Y.copy())
            ):
                break
            if losses:
                loop.progress(loss=f"{losses[-1]:.5f}")
        scores = loop.scores
        n_run = len(scores) if valid is not None else int(self.iterations)
        if loop.kept is not None:
            X, Y = loop.kept
            n_run = loop.best_epoch + 1
            losses = losses[:n_run]
            scores = scores[:n_run]
        if n_run > 0 and len(losses) < n_run:
            Q, lam = K.diagonalise(Y, self._base_reg())
            K.rotate_(X, Q)
            K.rotate_(Y, Q)
            with _single_threaded_blas():
                K.row_loss(*Cui.kernel_args(), X, Y, lam, extra_u, loss_u)
            y_pen = self._penalty(Y, extra_i)
            losses.append((float(loss_u.sum()) + y_pen) / norm)
        self.user_factors_ = X
        self.item_factors_ = Y
        self.loss_history_ = np.asarray(losses, np.float64)
        self.validation_history_ = np.asarray(scores, np.float64)
        self.n_iterations_ = int(n_run)
        self._reset_caches()
        self._ann_index = None
        if resolve_ann(self.ann, n_items):
            self._ann_index = ItemIndex(random_state=self.random_state or 0).build(Y)
        log.info("ALS trained %d iterations; final loss %s", n_run, losses[-1] if losses else None)

    def _reset_caches(self) -> None:
        self._item_factors_t = None
        self._item_norms = None
        self._user_norms = None

    def _after_load(self) -> None:
        self.user_factors_ = np.ascontiguousarray(self.user_factors_, np.float32)
        self.item_factors_ = np.ascontiguousarray(self.item_factors_, np.float32)
        self._reset_caches()
        self._ann_index = None

    # ------------------------------------------------------------------ approximate top-k
    def _extra_manifest(self) -> dict:
        index = getattr(self, "_ann_index", None)
        return {} if index is None else {"ann_index": index.params()}

    def _extra_arrays(self) -> dict[str, np.ndarray]:
        index = getattr(self, "_ann_index", None)
        return {} if index is None else {"ann_index": index.to_array()}

    def _load_extra(self, extra: dict, arrays: dict[str, np.ndarray]) -> None:
        if "ann_index" in arrays and resolve_ann(self.ann, self.n_items) and ann_available():
            self._ann_index = ItemIndex.from_array(arrays["ann_index"], extra["ann_index"])

    def item_index(self) -> ItemIndex | None:
        """The approximate top-k index in use, or None when scoring is exact (see ``ann``).

        Built on first use when ``ann`` asks for one and none was trained or loaded (e.g. after
        ``set_params(ann=True)``)."""
        self._check_fitted()
        if not resolve_ann(self.ann, self.n_items):
            return None
        index = getattr(self, "_ann_index", None)
        if index is None or index.n_items != self.n_items:
            index = self._ann_index = ItemIndex(random_state=self.random_state or 0).build(
                self.item_factors_
            )
        return index

    def vector_candidates(self, vectors: np.ndarray, k) -> tuple[np.ndarray, np.ndarray] | None:
        """The index's candidates for user vectors with their exact scores, or None.

        For callers that hold user vectors rather than users (the service's folded-in
        histories, :meth:`rank_index` for known users).

        Parameters
        ----------
        vectors : ndarray of shape (b, factors)
            User vectors ``x_u``.
        k : int or array-like of shape (b,)
            The fewest candidates each row needs (``n`` plus the row's played items); every row
            gets at least ``ann_candidates``, rows needing more are searched apart.

        Returns
        -------
        None when scoring is exact (see ``ann``), else a candidate block
        (:func:`~deepcuts.models.base.candidate_block`): ``candidates`` (b, C) int32 ascending
        per row, ``-1`` padded, and ``scores`` (b, C) float32, the exact ``x_u . y_i`` (``-inf``
        on pads), ready for :func:`~deepcuts.models.base.rank_candidates`.
        """
        index = self.item_index()
        if index is None:
            return None
        U = np.ascontiguousarray(vectors, np.float32)
        base = int(self.ann_candidates)
        need = np.maximum(np.broadcast_to(np.asarray(k, np.int64), (len(U),)), base)
        heavy = np.flatnonzero(need > base)  # heavy listeners: more candidates, searched apart
        Y = self.item_factors_
        cand = index.search(U, base)
        if len(heavy):
            more = index.search(U[heavy], int(need[heavy].max()))
            wide = np.full((len(U), max(more.shape[1], cand.shape[1])), -1, np.int64)
            wide[:, : cand.shape[1]] = cand
            wide[heavy, : more.shape[1]] = more
            cand = wide
        # exact x_u . y_i for each candidate, sorted into a candidate block in one compiled pass
        return scored_candidates(U, Y, cand)

    def _ann_candidates(self, user_index, user_items, k: int, **score_kw):
        if self.item_index() is None:
            return None
        return self.vector_candidates(self._user_vectors(user_index, user_items), k)

    # ------------------------------------------------------------------ fold-in & updates
    def fold_in(self, user_items) -> np.ndarray:
        """User vectors for listening histories, without retraining (exact solve).

        The equivalent of ``implicit``'s ``recalculate_user``: ``x = (Y^T C Y + reg*I)^-1 Y^T C
        p`` for each history row, with the item factors fixed.

        Parameters
        ----------
        user_items : csr_matrix of shape (b, n_items)
            Play counts per history (same item indices as the training data).

        Returns
        -------
        ndarray of shape (b, factors) float32

        Examples
        --------
        >>> from deepcuts.testing import planted_blocks
        >>> x = planted_blocks(60, 30, 3, random_state=0)
        >>> m = ALS(factors=8, iterations=5, random_state=0).fit(x)
        >>> m.fold_in(x.matrix[:2]).shape
        (2, 8)
        """
        self._check_fitted()
        rows = sp.csr_matrix(user_items)
        if rows.ndim != 2 or rows.shape[1] != self.n_items:
            raise DeepcutsError(
                f"user_items must have {self.n_items} columns (one per item), got shape {rows.shape}"
            )
        if rows.nnz and rows.data.min() < 0:
            raise DeepcutsError("play counts in user_items must be >= 0")
        C = self._row_confidence(rows)
        X = np.zeros((rows.shape[0], self.item_factors_.shape[1]), np.float32)
        self._half_step(C, X, self.item_factors_, np.zeros(rows.shape[0]), exact=True)
        return X

    def partial_fit(self, interactions: Interactions, *, rounds: int = 2) -> ALS:
        """Add new plays (new users, new items or both) without retraining everything.

        The plays are added to the training counts (summed where a pair already exists). New
        users and items get vectors; the users who appear in ``interactions`` and the new items
        are then solved exactly ``rounds`` times in alternation (users, then items), every
        other vector staying fixed.

        Parameters
        ----------
        interactions : Interactions
            The new plays, with their own id maps (external ids are matched to the model's).
        rounds : int, default=2
            Alternations over the touched rows.

        Returns
        -------
        self
        """
        self._check_fitted()
        if not isinstance(interactions, Interactions):
            raise TypeError("partial_fit expects deepcuts.data.Interactions")
        old = self.interactions_
        user_map = old.user_map.extend(interactions.user_map.ids)
        item_map = old.item_map.extend(interactions.item_map.ids)
        n_users, n_items = len(user_map), len(item_map)
        coo = interactions.matrix.tocoo()
        rows = user_map.index(interactions.user_map.external(coo.row))
        cols = item_map.index(interactions.item_map.external(coo.col))
        base = sp.csr_matrix(
            (old.matrix.data, old.matrix.indices, old.matrix.indptr),
            shape=(old.n_users, n_items),
        )
        base = sp.vstack([base, sp.csr_matrix((n_users - old.n_users, n_items), dtype=np.float32)])
        add = sp.csr_matrix((coo.data, (rows, cols)), shape=(n_users, n_items), dtype=np.float32)
        matrix = sp.csr_matrix(base + add, dtype=np.float32)
        items = _merge_item_meta(old, interactions, item_map)
        merged = Interactions(matrix, user_map, item_map, items=items, meta=dict(old.meta))

        f = self.user_factors_.shape[1]
        X = np.zeros((n_users, f), np.float32)
        X[: old.n_users] = self.user_factors_
        Y = np.zeros((n_items, f), np.float32)
        Y[: old.n_items] = self.item_factors_
        self.interactions_ = merged
        touched_u = np.unique(rows).astype(np.int64)
        new_i = np.arange(old.n_items, n_items, dtype=np.int64)
        Cui = self._signed_confidence(self._weights(matrix))
        Ciu = Cui.T.tocsr()
        for _ in range(max(1, int(rounds))):
            sub = Cui[touched_u]
            Xt = np.zeros((len(touched_u), f), np.float32)
            self._half_step(sub, Xt, Y, np.zeros(len(touched_u)), exact=True)
            X[touched_u] = Xt
            if len(new_i):
                subi = Ciu[new_i]
                Yt = np.zeros((len(new_i), f), np.float32)
                self._half_step(subi, Yt, X, np.zeros(len(new_i)), exact=True)
                Y[new_i] = Yt
        self.user_factors_ = X
        self.item_factors_ = Y
        self._reset_caches()
        # old items keep their vectors: the index stays valid; new items are added to it
        index = getattr(self, "_ann_index", None)
        if index is not None and len(new_i):
            index.add(Y[new_i])
        return self

    # ------------------------------------------------------------------ scoring
    def _user_vectors(self, user_index: np.ndarray, user_items: sp.csr_matrix) -> np.ndarray:
        user_index = np.asarray(user_index, np.int64)
        U = np.empty((len(user_index), self.item_factors_.shape[1]), np.float32)
        known = user_index >= 0
        U[known] = self.user_factors_[user_index[known]]
        if (~known).any():
            U[~known] = self.fold_in(sp.csr_matrix(user_items)[np.flatnonzero(~known)])
        return U

    def _score(self, user_index: np.ndarray, user_items: sp.csr_matrix, **kw) -> np.ndarray:
        Yt = getattr(self, "_item_factors_t", None)
        if Yt is None:  # row-major (f, n_items): a plain GEMM, ~1.7x faster for small batches
            Yt = self._item_factors_t = np.ascontiguousarray(self.item_factors_.T)
        return self._user_vectors(user_index, user_items) @ Yt

    def _normed(self, which: str) -> np.ndarray:
        attr = f"_{which}_norms"
        if getattr(self, attr, None) is None:
            F = self.item_factors_ if which == "item" else self.user_factors_
            norms = np.linalg.norm(F, axis=1, keepdims=True)
            setattr(self, attr, F / np.maximum(norms, 1e-12))
        return getattr(self, attr)

    def _similar_items(self, item_index: np.ndarray) -> np.ndarray:
        Yn = self._normed("item")
        return Yn[np.asarray(item_index)] @ Yn.T

    def similar_users(self, users, n: int = 10, *, missing: str = "raise") -> pd.DataFrame:
        """The ``n`` users whose vectors are closest (cosine) to each query user's.

        Returns
        -------
        DataFrame with columns query, user, score, rank
            ``n`` rows per known query user, best first (the query itself excluded).
        """
        self._check_fitted()
        ids, uidx = self._user_rows(users, missing)
        Xn = self._normed("user")
        scores = Xn[uidx] @ Xn.T
        scores[np.arange(len(uidx)), uidx] = -np.inf
        idx, val = topk_rows(scores, n)
        valid = idx >= 0
        return pd.DataFrame(
            {
                "query": np.repeat(ids, valid.sum(axis=1)),
                "user": self.interactions_.user_map.external(idx[valid]),
                "score": val[valid],
                "rank": np.cumsum(valid, axis=1)[valid].astype(np.int32),
            }
        )

    def explain(self, user, item, n: int = 10) -> pd.DataFrame:
        """Which played items made ``item`` score high for ``user`` (as implicit's ``explain``).

        With ``W_u = (Y^T C_u Y + reg*I)^-1`` the exact score is
        ``x_u . y_i = sum_j c_uj p_uj (y_i^T W_u y_j)`` over the user's played items ``j``
        (Hu, Koren, Volinsky 2008, section 5); each term is item ``j``'s contribution.

        Parameters
        ----------
        user : user id, or a list of user ids
        item : item id, or a list of item ids (one per user)
        n : int, default=10
            Number of played items to return.

        Returns
        -------
        DataFrame with columns item, name, count, contribution
            The top ``n`` contributors, largest first. ``df.attrs["score"]`` holds the sum of
            all contributions (the exact-solve score, which a CG-trained ``x_u . y_i`` approaches).
            For a list of users: the same with a ``user`` column first and a ``target``
            column (the explained item), and ``df.attrs[user]["score"]`` per user.
        """
        self._check_fitted()
        if _is_batch(user):
            users = list(user)
            targets = list(item) if _is_batch(item) else [item] * len(users)
            if len(targets) != len(users):
                raise DeepcutsError(
                    f"explain: {len(users)} users but {len(targets)} items; give one item for "
                    "all users or one item per user"
                )
            nxt = iter(targets)

            def one(u):
                t = next(nxt)
                return self.explain(u, t, n).assign(target=t)

            return per_user_frames(users, one)
        x = self.interactions_
        u = int(x.user_map.index([user])[0])
        i = int(x.item_map.index([item])[0])
        row = x.matrix[u]
        C = self._row_confidence(row)
        Y = self.item_factors_.astype(np.float64)
        c = C.data.astype(np.float64)
        pu = (c > 0).astype(np.float64)
        c = np.abs(c)
        Yu = Y[C.indices]
        reg = self._base_reg() + float(self._row_reg(C)[0])
        A = Y.T @ Y + reg * np.eye(Y.shape[1]) + (Yu * (c - 1.0)[:, None]).T @ Yu
        w = np.linalg.solve(A, Y[i])  # W_u y_i
        contrib = c * pu * (Yu @ w)
        order = np.argsort(-contrib, kind="stable")[: max(int(n), 0)]
        df = pd.DataFrame(
            {
                "item": x.item_map.external(C.indices[order]),
                "name": x.item_names(C.indices[order]),
                "count": row.data[order],
                "contribution": contrib[order].astype(np.float32),
            }
        )
        df.attrs["score"] = float(contrib.sum())
        return df


def _as_conf(C) -> _ConfMatrix:
    """``C`` as a :class:`_ConfMatrix`: a csr_matrix holds signed confidences."""
    return C if isinstance(C, _ConfMatrix) else _ConfMatrix.of(sp.csr_matrix(C))


def _merge_item_meta(old: Interactions, new: Interactions, item_map: IdMap) -> pd.DataFrame:
    frames = [f for f in (old.items, new.items) if f is not None]
    if not frames:
        return None
    meta = pd.concat(frames, ignore_index=True).drop_duplicates("item")
    return Interactions._align_items(meta, item_map, "item")


def _validation_matrix(v, interactions: Interactions) -> sp.csr_matrix | None:
    """The ``validation`` argument of ALS and the ranking-loss models as a float32 CSR matrix
    aligned with ``interactions`` (``None`` stays ``None``); a clear error otherwise."""
    if v is None:
        return None
    if isinstance(v, Interactions):
        if v.user_map != interactions.user_map or v.item_map != interactions.item_map:
            raise DeepcutsError(
                "validation must use the training data's user and item maps; build it "
                "with interactions.with_matrix(held_out_matrix) (e.g. from a split)"
            )
        v = v.matrix
    if not sp.issparse(v) or v.shape != interactions.shape:
        raise DeepcutsError(
            f"validation must be Interactions or a sparse matrix of shape {interactions.shape}"
        )
    return sp.csr_matrix(v, dtype=np.float32)


def _ndcg_at_k(X, Y, train: sp.csr_matrix, valid: sp.csr_matrix, k: int, batch: int = 1024):
    """Mean NDCG@k (binary relevance) over users with held-out items; played items excluded."""
    users = np.flatnonzero(np.diff(valid.indptr) > 0)
    if len(users) == 0:
        return 0.0
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    total = 0.0
    for start in range(0, len(users), batch):
        ub = users[start : start + batch]
        scores = X[ub] @ Y.T
        tr = train[ub]
        scores[np.repeat(np.arange(len(ub)), np.diff(tr.indptr)), tr.indices] = -np.inf
        idx, _ = topk_rows(scores, k)
        rel = valid[ub].toarray() > 0
        hits = np.take_along_axis(rel, np.maximum(idx, 0), axis=1) & (idx >= 0)
        dcg = hits @ discounts[: hits.shape[1]]
        n_rel = np.minimum(rel.sum(axis=1), k)
        idcg = np.cumsum(discounts)[n_rel - 1]
        total += float((dcg / idcg).sum())
    return total / len(users)
