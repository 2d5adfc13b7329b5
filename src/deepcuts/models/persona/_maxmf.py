"""Multi-persona implicit ALS: a mixture of tastes per listener, picked at prediction time.

Each user ``u`` has up to ``P`` persona vectors ``x_up`` and the score of an item is the best
persona's, ``s_ui = max_p x_up . y_i`` (MaxMF: Weston, Weiss, Yee, "Nonlinear latent factorization
by embedding multiple user interests", RecSys 2013, DOI 10.1145/2507157.2507209). Training is an
extension of implicit-feedback ALS (Hu, Koren, Volinsky 2008) that alternates three steps:

1. **Assign** every observed (user, item) pair to the user's persona that scores it highest,
   ``a_ui = argmax_p x_up . y_i``, with an optional anti-collapse penalty (below) and the rule
   that no persona of a user with at least ``P_u`` items stays empty.
2. **Solve personas.** Persona ``(u, p)`` is a *pseudo-user* whose observed items are the ones
   assigned to it; it is solved with the implicit-ALS loss

       sum_{i in A_up} c_ui (1 - x_up . y_i)^2 + sum_{i not in A_up} (x_up . y_i)^2 + reg |x_up|^2

   *Unobserved items* count for every persona as in ALS (preference 0, confidence 1): under the
   max, any persona scoring an unplayed item high would rank it. *Items assigned to a sibling
   persona* count for ``p`` like unobserved ones (preference 0, confidence 1): a persona is not
   asked to cover its siblings' tastes, the max still ranks those items through the sibling, and
   the mild push keeps personas specialised. This choice makes one persona's normal equations
   touch only its own items, so a training iteration costs about the same as single-vector ALS.
3. **Solve items** with every active (user, persona) as a pseudo-user: item ``i`` is observed by
   pseudo-user ``(u, a_ui)`` with confidence ``c_ui`` and unobserved by all others.

Loss terms (each with its weight; ``tests/test_persona.py`` shows each doing what it claims):

* ``regularization`` - L2 ``reg (sum |x_up|^2 + sum |y_i|^2)``.
* ``distinct_weight`` - persona distinctness ``w sum_u sum_{p<q} exp(-d(x_up, x_uq)^2 / s)``
  (``s = distinct_scale``; ``d^2`` = mean squared difference of the two personas' scores over
  played items, ``(x_up - x_uq)^T G (x_up - x_uq)`` with ``G = Y^T diag(pop) Y / sum pop``): bounded by ``w P (P-1) / 2`` per user, unlike the founding notes'
  ``1 / d^2``, so it cannot diverge when two personas coincide and its pull fades when they are
  far apart. Its gradient is linearised at the current factors inside the persona solve.
* ``popularity_exponent`` ``t`` - observed cells weighted by ``1 / log(e + pop_i)^t`` (``pop_i``
  = number of training users of item ``i``), rescaled so the weights average 1 over observed
  cells: rare items matter more, the total weight of observed cells stays the same.
* ``collapse_weight`` - anti-collapse ``w n_u sum_p (share_up - 1/P_u)^2`` on the share of the
  user's items each persona holds, minimised in the assignment step (coordinate ascent).

The number of personas of a user is ``n_personas`` (``persona_count="fixed"``, at most the
number of the user's items) or chosen per user (``"auto"``): ``P_u = clip(min(n_u //
min_items_per_persona, round(exp(H_u))), 1, n_personas)`` with ``H_u`` the entropy of the
user's plays over k-means clusters of the items, so a user with 3 artists gets 1 persona and a
user who plays one cluster only gets 1 however much they play.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from typing import Literal

import numpy as np
import scipy.sparse as sp

from deepcuts.data.interactions import Interactions
from deepcuts.data.weighting import apply_weighting, parse_weighting
from deepcuts.exceptions import DeepcutsError
from deepcuts.models import _persona_kernels as K
from deepcuts.models._training import EpochLoop
from deepcuts.models.als import _ROW_LOCAL, _single_threaded_blas
from deepcuts.models.base import Recommender
from deepcuts.models.persona._diagnostics import PersonaDiagnostics
from deepcuts.models.persona._labels import PersonaLabels
from deepcuts.models.persona._scoring import PersonaScoring, PersonaState, unit_rows

__all__ = ["PersonaALS"]

log = logging.getLogger(__name__)


class PersonaALS(PersonaScoring, PersonaLabels, PersonaDiagnostics, Recommender):
    """Implicit ALS with several persona vectors per user, scored by their maximum (MaxMF).

    Parameters
    ----------
    factors : int, default=32
        Length of every persona and item vector.
    n_personas : int, default=3
        Personas per user (``persona_count="fixed"``) or the most a user gets (``"auto"``).
    persona_count : {"fixed", "auto"}, default="fixed"
        ``"auto"``: per user from the amount and variety of their listening (module docstring).
    min_items_per_persona : int, default=10
        ``"auto"`` gives a user at most ``n_items_u // min_items_per_persona`` personas.
    iterations : int, default=10
        Alternations of assign / personas / items.
    regularization : float, default=0.01
        L2 weight on persona and item vectors.
    reg_scaling : {"none", "activity"}, default="none"
        ``"activity"``: each persona vector's penalty is ``regularization`` times the number
        of the user's artists assigned to that persona, each item vector's times its number of
        listeners (ALS-WR, as :class:`~deepcuts.models.ALS` ``reg_scaling``).
    alpha : float, default=1.0
        Confidence slope, ``c_ui = 1 + alpha * w(x_ui)`` as in :class:`~deepcuts.models.ALS`.
    weighting : str, default="log"
        Count transform ``w`` (see :func:`deepcuts.data.weighting.apply_weighting`).
    distinct_weight : float, default=0.0
        Weight of the bounded distinctness penalty ``exp(-|x_up - x_uq|^2 / distinct_scale)``.
    distinct_scale : float, default=1.0
        Squared distance at which the distinctness penalty has fallen to ``1/e``, measured as
        the mean squared difference of the two personas' scores over played items (so it is in
        score units, independent of how ALS splits the scale between users and items).
    popularity_exponent : float, default=0.0
        ``t`` of the observed-cell weight ``1 / log(e + pop_i)^t`` (0 = off).
    collapse_weight : float, default=0.0
        Weight of the anti-collapse penalty on persona shares in the assignment step.
    collapse_rounds : int, default=3
        Coordinate-ascent sweeps of the penalised assignment.
    tie_weight : float, default=0.0
        Weight ``tau`` of ``tau sum_p |x_up - mean_q x_uq|^2``, a pull of each persona towards
        the user's mean persona (users with several personas). Large ``tau`` makes the personas
        one vector fitted to all the user's items (single-vector ALS); 0 leaves them free.
    sibling_weight : float, default=1.0
        How a persona counts the items the user's *other* personas hold: preference 0 with
        ``sibling_weight`` times the confidence of an unobserved item (1 = like unobserved, the
        cheap default; 0 = ignored, exact MaxMF where only the best persona's score matters).
        Values other than 1 make every persona's solve visit all the user's items.
    split_negatives : {True, "share", False}, default=True
        How a user's weight on unobserved items is split between their personas. ``True``:
        each persona counts them with confidence ``1 / P_u``; ``"share"``: with the persona's
        smoothed share of the user's items, ``(n_up + 1) / (n_u + P_u)``, recomputed after each
        assignment. Both keep the user's total weight on unobserved items equal to
        single-vector ALS's (so ``P_u = 1`` is exactly ALS). ``False``: confidence 1 for every
        persona (``P_u`` times ALS's weight).
    init : {"als", "kmeans"}, default="als"
        ``"als"``: every persona starts as the user's single-vector ALS vector plus Gaussian
        noise (``init_noise`` times its norm); ``"kmeans"``: items are clustered (k-means on
        their ALS vectors) and persona ``p`` starts from the user's ``p``-th most played cluster
        (the items closest to it are assigned to it and it is solved exactly).
    init_iterations : int, default=5
        Iterations of the single-vector ALS pre-fit that provides the starting item vectors.
    init_noise : float, default=0.3
        Relative perturbation of the copied vectors for ``init="als"``.
    n_clusters : int, default=24
        k-means clusters of item vectors (``init="kmeans"`` and ``persona_count="auto"``).
    nonnegative : bool, default=False
        Project every solve onto non-negative factors (NMF-style, interpretable factors).
    scoring : {"max", "mixture"}, default="max"
        Default list: the best persona's score (MaxMF) or the mixture of tastes (attention
        ``softmax_p(log share_p + cos(x_p, y_i) / temperature)``); ``recommend(...,
        scoring=...)`` overrides it.
    temperature : float, default=0.1
        Attention temperature of ``scoring="mixture"``.
    solver : {"cg", "cholesky"}, default="cg"
    cg_steps : int, default=3
    random_state : int or None, default=None
    show_progress : bool, default=False

    Attributes
    ----------
    persona_factors_ : ndarray of shape (n_users, n_personas, factors) float32
        Unused personas (``p >= user_n_personas_[u]``) are zero.
    item_factors_ : ndarray of shape (n_items, factors) float32
    user_n_personas_ : ndarray of shape (n_users,) int32
    item_clusters_ : ndarray of shape (n_items,) int32
        k-means cluster of each item (-1 when no clustering was needed).
    loss_history_ : ndarray of shape (iterations,) float64
        Total loss (data + L2 + penalties) after each iteration, per unit of confidence.
    n_iterations_ : int

    Examples
    --------
    >>> from deepcuts.testing import planted_blocks
    >>> x = planted_blocks(60, 30, 3, random_state=0)
    >>> m = PersonaALS(factors=8, n_personas=2, iterations=4, random_state=0).fit(x)
    >>> m.persona_factors_.shape
    (60, 2, 8)
    >>> rec = m.recommend("u0", n=3)
    >>> len(rec), rec.to_frame().columns[-1]
    (3, 'persona')
    """

    _state_arrays = (
        "persona_factors_",
        "item_factors_",
        "user_n_personas_",
        "item_clusters_",
        "loss_history_",
    )
    _state_scalars = ("n_iterations_",)
    supports_fold_in = True
    #: set while training holds BLAS at one thread for the whole loop (see ``_solve``)
    _pinned = False

    def __init__(
        self,
        *,
        factors: int = 32,
        n_personas: int = 3,
        persona_count: Literal["fixed", "auto"] = "fixed",
        min_items_per_persona: int = 10,
        iterations: int = 10,
        regularization: float = 0.01,
        reg_scaling: Literal["none", "activity"] = "none",
        alpha: float = 1.0,
        weighting="log",
        distinct_weight: float = 0.0,
        distinct_scale: float = 1.0,
        popularity_exponent: float = 0.0,
        collapse_weight: float = 0.0,
        collapse_rounds: int = 3,
        tie_weight: float = 0.0,
        sibling_weight: float = 1.0,
        split_negatives: bool | str = True,
        init: Literal["als", "kmeans"] = "als",
        init_iterations: int = 5,
        init_noise: float = 0.3,
        n_clusters: int = 24,
        nonnegative: bool = False,
        scoring: Literal["max", "mixture"] = "max",
        temperature: float = 0.1,
        solver: Literal["cg", "cholesky"] = "cg",
        cg_steps: int = 3,
        random_state: int | None = None,
        show_progress: bool = False,
    ):
        self.factors = factors
        self.n_personas = n_personas
        self.persona_count = persona_count
        self.min_items_per_persona = min_items_per_persona
        self.iterations = iterations
        self.regularization = regularization
        self.reg_scaling = reg_scaling
        self.alpha = alpha
        self.weighting = weighting
        self.distinct_weight = distinct_weight
        self.distinct_scale = distinct_scale
        self.popularity_exponent = popularity_exponent
        self.collapse_weight = collapse_weight
        self.collapse_rounds = collapse_rounds
        self.split_negatives = split_negatives
        self.tie_weight = tie_weight
        self.sibling_weight = sibling_weight
        self.init = init
        self.init_iterations = init_iterations
        self.init_noise = init_noise
        self.n_clusters = n_clusters
        self.nonnegative = nonnegative
        self.scoring = scoring
        self.temperature = temperature
        self.solver = solver
        self.cg_steps = cg_steps
        self.random_state = random_state
        self.show_progress = show_progress

    # ------------------------------------------------------------------ parameters
    def _check_params(self) -> None:
        def integer(name, minimum):
            v = getattr(self, name)
            if not isinstance(v, int | np.integer) or isinstance(v, bool) or v < minimum:
                raise DeepcutsError(f"{name} must be an integer >= {minimum}, got {v!r}")

        if self.reg_scaling not in ("none", "activity"):
            raise DeepcutsError(
                f"reg_scaling must be 'none' or 'activity', got {self.reg_scaling!r}"
            )
        integer("factors", 1)
        integer("n_personas", 1)
        integer("min_items_per_persona", 1)
        integer("iterations", 0)
        integer("collapse_rounds", 0)
        integer("init_iterations", 0)
        integer("n_clusters", 1)
        integer("cg_steps", 1)
        for name in (
            "regularization",
            "alpha",
            "distinct_weight",
            "popularity_exponent",
            "collapse_weight",
            "tie_weight",
            "sibling_weight",
            "init_noise",
        ):
            v = getattr(self, name)
            if not isinstance(v, int | float | np.number) or not np.isfinite(v) or v < 0:
                raise DeepcutsError(f"{name} must be a finite number >= 0, got {v!r}")
        if not isinstance(self.temperature, int | float | np.number) or not (self.temperature > 0):
            raise DeepcutsError(f"temperature must be > 0, got {self.temperature!r}")
        if not isinstance(self.distinct_scale, int | float | np.number) or not (
            self.distinct_scale > 0
        ):
            raise DeepcutsError(f"distinct_scale must be > 0, got {self.distinct_scale!r}")
        if self.split_negatives not in (True, False, "share"):
            raise DeepcutsError(
                f"split_negatives must be True, False or 'share', got {self.split_negatives!r}"
            )
        for name, allowed in (
            ("persona_count", ("fixed", "auto")),
            ("init", ("als", "kmeans")),
            ("solver", ("cg", "cholesky")),
            ("scoring", ("max", "mixture")),
        ):
            if getattr(self, name) not in allowed:
                raise DeepcutsError(
                    f"{name} must be one of {list(allowed)}, got {getattr(self, name)!r}"
                )
        if callable(self.weighting) or not isinstance(self.weighting, str):
            raise DeepcutsError(
                "PersonaALS takes a weighting name such as 'log', 'raw' or 'bm25:k1=1.2', "
                f"got {self.weighting!r}"
            )
        name, _ = parse_weighting(self.weighting)
        if name in ("confidence", "linear"):
            raise DeepcutsError(
                f"weighting={self.weighting!r} already is a confidence; use 'log' or 'raw' "
                "(PersonaALS builds c = 1 + alpha * w(x) itself)"
            )

    # ------------------------------------------------------------------ confidence
    def _popularity_weights(self, train: sp.csr_matrix) -> np.ndarray:
        """Per-item factor ``1 / log(e + pop)^t`` normalised to mean 1 over observed cells."""
        pop = np.diff(sp.csc_matrix(train).indptr).astype(np.float64)
        t = float(self.popularity_exponent)
        w = np.log(np.e + pop) ** (-t)
        mean = float((w * pop).sum() / max(pop.sum(), 1.0))
        return (w / mean).astype(np.float32)

    def _confidence(self, rows: sp.csr_matrix, train: sp.csr_matrix | None = None):
        """Signed, popularity-weighted confidences of ``rows`` (float32 CSR)."""
        rows = sp.csr_matrix(rows, dtype=np.float32)
        name = parse_weighting(self.weighting)[0]
        if train is None or name in _ROW_LOCAL:
            w = apply_weighting(rows, self.weighting)
        else:  # corpus-statistic weightings: weigh together with the training rows
            w = apply_weighting(sp.vstack([train, rows], format="csr"), self.weighting)
            w = sp.csr_matrix(w[train.shape[0] :])
        d = w.data.astype(np.float64)
        conf = np.where(d < 0, -(1.0 + self.alpha * -d), 1.0 + self.alpha * d)
        base = train if train is not None else rows
        if self.popularity_exponent > 0:
            conf = conf * self._popularity_weights(base)[w.indices]
        return sp.csr_matrix(
            (conf.astype(np.float32), w.indices.astype(np.int32), w.indptr.astype(np.int64)),
            shape=w.shape,
        )

    # ------------------------------------------------------------------ pieces of training
    def _solve(
        self, C, X, Y, *, extra=None, active=None, exact=False, loss=None, rw=None, cw=None,
        reg=None,
    ):  # fmt: skip
        """Solve every row of ``X`` against ``Y`` (unobserved confidence ``rw_r * cw_j``)."""
        n, f = X.shape
        if extra is None:
            extra = np.zeros((n, f), np.float32)
        if active is None:
            active = np.ones(n, bool)
        if loss is None:
            loss = np.zeros(n, np.float64)
        rw = np.ones(n, np.float32) if rw is None else np.asarray(rw, np.float32)
        # the Gram matrix is computed with BLAS pinned to one thread too: a multi-threaded BLAS
        # call right after numba's parallel region waits for busy cores (measured 50x slower on
        # a loaded 2-core machine)
        with nullcontext() if self._pinned else _single_threaded_blas():
            if cw is None:
                cw = np.ones(len(Y), np.float32)
                A0 = Y.T @ Y
            else:
                cw = np.asarray(cw, np.float32)
                A0 = (Y * cw[:, None]).T @ Y
            A0 = np.ascontiguousarray(A0, np.float32)
            K.solve_rows(
                C.indptr,
                C.indices,
                C.data,
                X,
                Y,
                A0,
                self._scaled_reg(C, reg),
                rw,
                cw,
                extra,
                active,
                int(self.cg_steps),
                bool(exact or self.solver == "cholesky"),
                bool(self.nonnegative),
                loss,
            )
        return loss

    def _scaled_reg(self, C, reg=None) -> np.ndarray:
        """Per-row L2 weight of a solve: ``reg`` (default ``regularization``), whose shared
        ``regularization`` becomes ``regularization * max(n_pos, 1)`` under
        ``reg_scaling="activity"`` (``n_pos``: the row's positive entries)."""
        n = C.shape[0]
        out = np.full(n, self.regularization, np.float32) if reg is None else reg
        if self.reg_scaling == "activity":
            rows = np.repeat(np.arange(n), np.diff(C.indptr))
            npos = np.bincount(rows[C.data > 0], minlength=n)
            out = out + np.float32(self.regularization) * (np.maximum(npos, 1) - 1)
        return np.ascontiguousarray(out, np.float32)

    def _assign(self, C, U, Y, n_act, collapse_weight=None) -> np.ndarray:
        out = np.zeros(C.nnz, np.int32)
        cw = self.collapse_weight if collapse_weight is None else collapse_weight
        K.assign_personas(
            C.indptr, C.indices, U, Y, n_act.astype(np.int32), float(cw),
            int(self.collapse_rounds), out,
        )  # fmt: skip
        return out

    def _pseudo_rows(self, C: sp.csr_matrix, a: np.ndarray, P: int, n_act, rw_p) -> sp.csr_matrix:
        """(n_users * P, n_items) CSR: row ``u*P + p`` holds the items assigned to ``p``.

        With ``sibling_weight != 1`` the row also holds the items of ``u``'s other personas,
        with preference 0 and confidence ``sibling_weight`` times that of unobserved items.
        """
        n_users = C.shape[0]
        user = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(C.indptr))
        if self.sibling_weight == 1.0:
            rows, indices, data = user * P + a, C.indices, C.data
        else:
            reps = np.asarray(n_act, np.int64)[user]
            e = np.repeat(np.arange(C.nnz), reps)
            p = np.arange(len(e)) - np.repeat(np.cumsum(reps) - reps, reps)
            rows, indices = user[e] * P + p, C.indices[e]
            sib = -float(self.sibling_weight) * rw_p[rows]
            data = np.where(p == a[e], C.data[e], sib).astype(np.float32)
        order = np.argsort(rows, kind="stable")
        indptr = np.zeros(n_users * P + 1, np.int64)
        np.cumsum(np.bincount(rows, minlength=n_users * P), out=indptr[1:])
        return sp.csr_matrix((data[order], indices[order], indptr), shape=(n_users * P, C.shape[1]))

    def _item_rows(self, Ct, ct_user, to_c, a, P, n_act, rw_p) -> sp.csr_matrix:
        """(n_items, n_users * P) CSR of the item step (columns = (user, persona) pairs)."""
        n_items = Ct.shape[0]
        if self.sibling_weight == 1.0:
            return sp.csr_matrix(
                (Ct.data, (ct_user * P + a[to_c]).astype(np.int32), Ct.indptr),
                shape=(n_items, len(n_act) * P),
            )
        reps = np.asarray(n_act, np.int64)[ct_user]
        e = np.repeat(np.arange(Ct.nnz), reps)
        p = np.arange(len(e)) - np.repeat(np.cumsum(reps) - reps, reps)
        cols = ct_user[e] * P + p
        data = np.where(p == a[to_c][e], Ct.data[e], -float(self.sibling_weight) * rw_p[cols])
        indptr = np.zeros(n_items + 1, np.int64)
        item = np.repeat(np.arange(n_items), np.diff(Ct.indptr))
        np.cumsum(np.bincount(item, weights=reps, minlength=n_items).astype(np.int64),
                  out=indptr[1:])  # fmt: skip
        return sp.csr_matrix(
            (data.astype(np.float32), cols.astype(np.int32), indptr),
            shape=(n_items, len(n_act) * P),
        )

    def _counts_for(self, C: sp.csr_matrix, clusters: np.ndarray | None) -> np.ndarray:
        """Personas per row of ``C`` (fixed or from amount and variety of listening)."""
        n_items_u = np.diff(C.indptr)
        P = int(self.n_personas)
        fixed = np.clip(n_items_u, 1, P)
        if self.persona_count == "fixed" or clusters is None:
            return fixed.astype(np.int32)
        k = int(clusters.max()) + 1
        rows = np.repeat(np.arange(C.shape[0]), n_items_u)
        mass = np.abs(C.data).astype(np.float64)
        M = sp.csr_matrix((mass, (rows, clusters[C.indices])), shape=(C.shape[0], k)).toarray()
        prob = M / np.maximum(M.sum(axis=1, keepdims=True), 1e-12)
        with np.errstate(divide="ignore", invalid="ignore"):
            H = -np.nansum(np.where(prob > 0, prob * np.log(prob), 0.0), axis=1)
        variety = np.rint(np.exp(H)).astype(np.int64)
        amount = n_items_u // int(self.min_items_per_persona)
        return np.clip(np.minimum(amount, variety), 1, P).astype(np.int32)

    def _kmeans(self, Y: np.ndarray, weights: np.ndarray):
        from sklearn.cluster import KMeans

        Yn = Y / np.maximum(np.linalg.norm(Y, axis=1, keepdims=True), 1e-12)
        k = int(min(self.n_clusters, len(Y)))
        km = KMeans(n_clusters=k, n_init=3, random_state=self._seed(), max_iter=100)
        labels = km.fit_predict(Yn.astype(np.float64), sample_weight=np.maximum(weights, 1e-3))
        cent = km.cluster_centers_.astype(np.float32)
        cent /= np.maximum(np.linalg.norm(cent, axis=1, keepdims=True), 1e-12)
        return labels.astype(np.int32), cent, Yn.astype(np.float32)

    def _seed(self) -> int:
        return 0 if self.random_state is None else int(self.random_state)

    def _kmeans_assignment(self, C, n_act, labels, cent, Yn) -> np.ndarray:
        """Initial assignment: persona p <- the user's p-th most played cluster."""
        n_users = C.shape[0]
        P = int(self.n_personas)
        k = cent.shape[0]
        rows = np.repeat(np.arange(n_users), np.diff(C.indptr))
        M = sp.csr_matrix(
            (np.abs(C.data).astype(np.float64), (rows, labels[C.indices])), shape=(n_users, k)
        ).toarray()
        top = np.argsort(-M, axis=1, kind="stable")[:, :P]  # (n_users, P) cluster ids
        sims = np.einsum("nf,npf->np", Yn[C.indices], cent[top[rows]])  # (nnz, P)
        sims[np.arange(P)[None, :] >= n_act[rows][:, None]] = -np.inf
        return np.argmax(sims, axis=1).astype(np.int32)

    # ------------------------------------------------------------------ training
    def _fit(self, interactions: Interactions) -> None:
        self._check_params()
        # pin BLAS to one thread once for the whole training (entering threadpoolctl's limit
        # costs milliseconds, more than a solve of a small model)
        with _single_threaded_blas():
            self._pinned = True
            try:
                self._train(interactions)
            finally:
                self._pinned = False

    def _train(self, interactions: Interactions) -> None:
        train = sp.csr_matrix(interactions.matrix, dtype=np.float32)
        C = self._confidence(train, None)
        Ct = C.T.tocsr()
        # position in C of every entry of Ct (C.T.tocsr() keeps entries of one item in user order)
        perm = sp.csr_matrix(
            (np.arange(C.nnz, dtype=np.float64) + 1.0, C.indices, C.indptr), shape=C.shape
        ).T.tocsr()
        to_c = (perm.data - 1.0).astype(np.int64)
        ct_user = Ct.indices.astype(np.int64)
        n_users, n_items = C.shape
        f, P = int(self.factors), int(self.n_personas)
        rng = np.random.default_rng(self.random_state)
        neg = float(n_users) * n_items * (P if self.split_negatives is False else 1)
        norm = neg + float(np.abs(C.data).sum()) - C.nnz

        # single-vector ALS pre-fit: starting item vectors (and user vectors for init="als")
        X0 = rng.random((n_users, f), dtype=np.float32) * np.float32(0.01)
        Y = rng.random((n_items, f), dtype=np.float32) * np.float32(0.01)
        for _ in range(int(self.init_iterations)):
            self._solve(C, X0, Y)
            self._solve(Ct, Y, X0)

        pop_all = np.diff(Ct.indptr).astype(np.float64)
        need_clusters = self.init == "kmeans" or self.persona_count == "auto"
        labels = np.full(n_items, -1, np.int32)
        if need_clusters:
            pop = np.diff(Ct.indptr).astype(np.float64)
            labels, cent, Yn = self._kmeans(Y, pop)
        n_act = self._counts_for(C, labels if need_clusters else None)
        act = np.arange(P)[None, :] < n_act[:, None]  # (n_users, P)
        rw_p = self._negative_weights(n_act)

        U = np.zeros((n_users, P, f), np.float32)
        a = None
        if self.init == "kmeans":
            a = self._kmeans_assignment(C, n_act, labels, cent, Yn)
            rw_p = self._negative_weights(n_act, C, a)
            rows = self._pseudo_rows(C, a, P, n_act, rw_p)
            self._solve(rows, U.reshape(-1, f), Y, active=act.ravel(), exact=True, rw=rw_p)
        else:
            scale = np.linalg.norm(X0, axis=1)[:, None, None] / np.sqrt(f)
            noise = rng.standard_normal((n_users, P, f)).astype(np.float32)
            U[:] = X0[:, None, :] + np.float32(self.init_noise) * scale * noise
            U[~act] = 0.0
        if self.nonnegative:
            np.abs(U, out=U)
            np.abs(Y, out=Y)

        loss_p = np.zeros(n_users * P, np.float64)
        loss_i = np.zeros(n_items, np.float64)
        losses: list[float] = []
        loop = EpochLoop("PersonaALS", self.iterations, show_progress=self.show_progress)
        for it in loop:
            if it > 0 or a is None:
                a = self._assign(C, U, Y, n_act)
            rw_p = self._negative_weights(n_act, C, a)
            rows = self._pseudo_rows(C, a, P, n_act, rw_p)
            extra, pen_d, reg_p = self._persona_terms(U, act, n_act, Y, pop_all)
            self._solve(
                rows, U.reshape(-1, f), Y, extra=extra, active=act.ravel(), loss=loss_p,
                rw=rw_p, reg=reg_p,
            )  # fmt: skip
            item_rows = self._item_rows(Ct, ct_user, to_c, a, P, n_act, rw_p)
            self._solve(item_rows, Y, U.reshape(-1, f), loss=loss_i, cw=rw_p)
            y_pen = float(
                (self._scaled_reg(item_rows) * np.einsum("ij,ij->i", Y, Y, dtype=np.float64)).sum()
            )
            losses.append(
                (float(loss_p.sum()) + y_pen + pen_d + self._collapse_penalty(C, a, n_act)) / norm
            )
            loop.progress(loss=f"{losses[-1]:.5f}")

        # final assignment; personas left without items (users with fewer items) are dropped
        if a is None or int(self.iterations) > 0:
            a = self._assign(C, U, Y, n_act)
        held = np.zeros((n_users, P), bool)
        held[np.repeat(np.arange(n_users), np.diff(C.indptr)), a] = True
        act &= held
        act[:, 0] = True
        U[~act] = 0.0
        self.persona_factors_ = U
        self.item_factors_ = Y
        self.user_n_personas_ = act.sum(axis=1).astype(np.int32)
        self.item_clusters_ = labels
        self.loss_history_ = np.asarray(losses, np.float64)
        self.n_iterations_ = int(self.iterations)
        log.info(
            "PersonaALS trained %d iterations; mean personas per user %.2f",
            self.n_iterations_,
            float(self.user_n_personas_.mean()),
        )

    def _persona_terms(self, U, act, n_act, Y, pop):
        """Extra linear term, distinctness penalty value and per-row L2 of the persona solve.

        Distinctness adds its linearised push (:func:`~deepcuts.models._persona_kernels.
        distinct_push`); the tie ``tau |x_up - m_u|^2`` (``m_u`` = the user's current mean
        persona, held fixed during the solve) adds ``tau`` to the row's L2 weight and
        ``tau m_u`` to its right-hand side.
        """
        n, P, f = U.shape
        extra = np.zeros((n, P, f), np.float32)
        pen = 0.0
        if self.distinct_weight > 0:
            push, pen = K.distinct_push(
                U, act, float(self.distinct_weight), float(self.distinct_scale),
                self._score_metric(Y, pop),
            )  # fmt: skip
            extra += push
        reg = np.full((n, P), self.regularization, np.float32)
        if self.tie_weight > 0:
            multi = n_act > 1
            mean = U.sum(axis=1) / np.maximum(n_act, 1)[:, None]
            tau = np.float32(self.tie_weight)
            extra[multi] += tau * mean[multi][:, None, :]
            reg[multi] += tau
        return extra.reshape(n * P, f), pen, reg.reshape(-1)

    def _negative_weights(self, n_act: np.ndarray, C=None, a=None) -> np.ndarray:
        """(n_users * P,) confidence of unobserved cells for each (user, persona)."""
        P = int(self.n_personas)
        mode = self.split_negatives
        if mode is False:
            return np.ones(len(n_act) * P, np.float32)
        if mode == "share" and a is not None:
            # (n_up + 1) / (n_u + P_u): each persona's smoothed share of the user's items
            user = np.repeat(np.arange(len(n_act)), np.diff(C.indptr))
            cnt = np.bincount(user * P + a, minlength=len(n_act) * P).reshape(-1, P)
            act = np.arange(P)[None, :] < n_act[:, None]
            w = np.where(act, cnt + 1.0, 0.0)
            w /= np.maximum(w.sum(axis=1, keepdims=True), 1.0)
            return w.ravel().astype(np.float32)
        return np.repeat(1.0 / n_act, P).astype(np.float32)

    @staticmethod
    def _score_metric(Y: np.ndarray, pop: np.ndarray) -> np.ndarray:
        """``G = Y^T W Y / sum W`` (``W`` = item popularity): mean squared score metric."""
        w = np.asarray(pop, np.float32)
        G = (Y * (w / max(float(w.sum()), 1.0))[:, None]).T @ Y
        return np.ascontiguousarray(G, np.float32)

    def _collapse_penalty(self, C, a, n_act) -> float:
        if self.collapse_weight <= 0:
            return 0.0
        n_users, P = C.shape[0], int(self.n_personas)
        rows = np.repeat(np.arange(n_users), np.diff(C.indptr))
        cnt = np.bincount(rows * P + a, minlength=n_users * P).reshape(n_users, P)
        n_u = np.maximum(cnt.sum(axis=1, keepdims=True), 1)
        act = np.arange(P)[None, :] < n_act[:, None]
        dev = np.where(act, cnt / n_u - 1.0 / n_act[:, None], 0.0)
        return float(self.collapse_weight * (n_u[:, 0] * (dev**2).sum(axis=1)).sum())

    def _after_load(self) -> None:
        self.persona_factors_ = np.ascontiguousarray(self.persona_factors_, np.float32)
        self.item_factors_ = np.ascontiguousarray(self.item_factors_, np.float32)
        self.user_n_personas_ = np.asarray(self.user_n_personas_, np.int32)
        self.item_clusters_ = np.asarray(self.item_clusters_, np.int32)

    # ------------------------------------------------------------------ fold-in
    def fold_in(self, user_items, *, rounds: int = 3) -> tuple[np.ndarray, np.ndarray]:
        """Persona vectors for new listening histories, item vectors fixed.

        Each history gets its persona count by the model's rule, starts from its exact
        single-vector solve copied to every persona plus seeded noise, then runs ``rounds`` of
        assignment and exact persona solves (with the distinctness term).

        Parameters
        ----------
        user_items : csr_matrix of shape (b, n_items)
            Play counts (training item indices).
        rounds : int, default=3

        Returns
        -------
        personas : ndarray of shape (b, n_personas, factors) float32
        n_personas : ndarray of shape (b,) int32

        Examples
        --------
        >>> from deepcuts.testing import planted_blocks
        >>> x = planted_blocks(60, 30, 3, random_state=0)
        >>> m = PersonaALS(factors=8, n_personas=2, iterations=3, random_state=0).fit(x)
        >>> U, n = m.fold_in(x.matrix[:2])
        >>> U.shape, n.tolist()
        ((2, 2, 8), [2, 2])
        """
        self._check_fitted()
        rows = sp.csr_matrix(user_items, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[1] != self.n_items:
            raise DeepcutsError(
                f"user_items must have {self.n_items} columns (one per item), got {rows.shape}"
            )
        if rows.nnz and rows.data.min() < 0:
            raise DeepcutsError("play counts in user_items must be >= 0")
        Y = self.item_factors_
        b, (P, f) = rows.shape[0], self.persona_factors_.shape[1:]
        C = self._confidence(rows, sp.csr_matrix(self.interactions_.matrix, dtype=np.float32))
        x0 = np.zeros((b, f), np.float32)
        self._solve(C, x0, Y, exact=True)
        has_clusters = self.item_clusters_.size and self.item_clusters_.min() >= 0
        n_act = self._counts_for(C, self.item_clusters_ if has_clusters else None)
        act = np.arange(P)[None, :] < n_act[:, None]
        rng = np.random.default_rng(self._seed())
        scale = np.linalg.norm(x0, axis=1)[:, None, None] / np.sqrt(f)
        noise = rng.standard_normal((b, P, f)).astype(np.float32)
        U = np.ascontiguousarray(
            x0[:, None, :] + np.float32(max(self.init_noise, 0.1)) * scale * noise
        )
        if self.nonnegative:
            np.abs(U, out=U)
        U[~act] = 0.0
        a = np.zeros(C.nnz, np.int32)
        for _ in range(max(int(rounds), 1)):
            a = self._assign(C, U, Y, n_act)
            rw_p = self._negative_weights(n_act, C, a)
            extra, _, reg_p = self._persona_terms(
                U, act, n_act, Y, self.interactions_.item_popularity()
            )
            self._solve(
                self._pseudo_rows(C, a, P, n_act, rw_p), U.reshape(-1, f), Y, extra=extra,
                active=act.ravel(), exact=True, rw=rw_p, reg=reg_p,
            )  # fmt: skip
        held = np.zeros((b, P), bool)
        held[np.repeat(np.arange(b), np.diff(C.indptr)), a] = True
        act &= held
        act[:, 0] = True
        U[~act] = 0.0
        return U, act.sum(axis=1).astype(np.int32)

    # ------------------------------------------------------------------ scoring
    def _user_personas(self, user_index, user_items) -> tuple[np.ndarray, np.ndarray]:
        """(b, P, f) persona vectors and (b,) counts; fold-in for index -1."""
        user_index = np.asarray(user_index, np.int64)
        U = np.zeros((len(user_index),) + self.persona_factors_.shape[1:], np.float32)
        n = np.ones(len(user_index), np.int32)
        known = user_index >= 0
        U[known] = self.persona_factors_[user_index[known]]
        n[known] = self.user_n_personas_[user_index[known]]
        if (~known).any():
            sel = np.flatnonzero(~known)
            U[sel], n[sel] = self.fold_in(sp.csr_matrix(user_items)[sel])
        return U, n

    def _persona_state(self, user_index, user_items) -> PersonaState:
        """Personas, unit persona vectors as attention keys, log shares of plays as priors."""
        U, n = self._user_personas(user_index, user_items)
        sh = self._shares(U, n, sp.csr_matrix(user_items))
        return PersonaState(U, n, unit_rows(U), sh)

    def _shares(self, U, n, rows: sp.csr_matrix) -> np.ndarray:
        """(b, P) share of each row's play counts assigned to each persona (MaxMF rule)."""
        rows = sp.csr_matrix(rows, dtype=np.float32)
        a = self._assign(rows, U, self.item_factors_, n, collapse_weight=0.0)
        b, P = U.shape[:2]
        r = np.repeat(np.arange(b), np.diff(rows.indptr))
        sh = np.bincount(r * P + a, weights=rows.data, minlength=b * P).reshape(b, P)
        return sh / np.maximum(sh.sum(axis=1, keepdims=True), 1e-12)
