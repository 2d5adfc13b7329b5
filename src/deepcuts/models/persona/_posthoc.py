"""Post-hoc personas from a trained single-vector model (PinnerSage-style).

PinnerSage (Pal et al., KDD 2020, DOI 10.1145/3394486.3403280) keeps the item embeddings of a
trained model fixed, clusters each user's history in that space and gives the user one vector
per cluster. Here:

1. **Base model.** Single-vector implicit ALS (:class:`~deepcuts.models.ALS`), trained as usual
   (or any fitted model with ``item_factors_`` and ``user_factors_``: :meth:`from_model`).
2. **Clusters.** Each user's played items are clustered on their unit item vectors by
   agglomeration stopped at ``threshold`` (:mod:`deepcuts.models._persona_cluster_kernels`):
   the count is chosen per user, a one-taste listener gets one cluster. ``threshold="auto"``
   makes the rule scale-free: the threshold is the ``null_quantile`` quantile of the distance
   between random pairs of training entries (user-item pairs, so items weigh as often as they
   are played), i.e. merging stops where two clusters are no closer than what a listener's
   items would be if drawn at random from everyone's plays. A cluster holding
   under ``min_share`` of the user's plays or fewer than ``min_artists`` items is folded into
   its nearest neighbour, so every persona can be shown.
3. **Persona vectors.** ``persona_vectors="fold_in"``: the ALS fold-in of the user's history
   restricted to the cluster's items, ``x_up = (Y^T C_up Y + reg*I)^-1 Y^T C_up p(up)`` (Hu,
   Koren, Volinsky 2008; the base model's own solve), so every other item - including the
   user's other tastes - counts as unplayed; ``"centroid"``: the cluster's mean unit item
   vector, scaled so that its items score 1 on average.
4. **Scores.** Attention keys are the clusters' unit centroids ``c_up`` and priors their
   shares of plays ``pi_up``. The default list blends the user's own vector with the personas,
   ``s_ui = (1 - lambda) x_u . y_i + lambda m_ui`` where ``m_ui`` is the mixture of tastes
   ``sum_p softmax_p(log pi_up + c_up . y^_i / tau) x_up . y_i`` (``scoring="mixture"``, Kula
   2017) or the hard ``max_p x_up . y_i`` (``"max"``). A persona's own list ranks by its
   scores among the items whose closest centroid is its own (it stays in its taste).
5. **Taste fit** (``taste_fit``, ``beta``): ``beta |x_u| max_p cos(c_up, y_i)`` is added to the
   default list and ``beta |x_u| cos(c_up, y_i)`` to persona ``p``'s list. ALS item norms
   ``|y_i|`` grow with popularity, so ``x_u . y_i`` ranks a popular item above a rare one that
   fits a taste as well; the cosine to a taste's centroid depends on direction only, so rare
   items central to one of the user's tastes reach the list (catalogue coverage). ``|x_u|``
   puts the term on the scale of the user's scores.
6. **Calibration** (``calibration``, ``lambda_c``; Steck, RecSys 2018, with the user's tastes,
   and the depth at which each taste is played, in place of genres): the default list is
   built greedily from the top ``max(CALIBRATION_POOL, 5 n)`` items of the scores above, each
   position taking the item that maximises ``(1 - lambda_c) s_ui / s_u1 - lambda_c KL(p_u ||
   q~)``. The categories are (persona, popularity band) pairs: an item belongs to its nearest
   centroid (the persona credited with it) and to one of ``calibration_bands`` bands of the
   catalogue (head to tail: the most played items holding the first ``1/G`` of the training
   entries, and so on; Abdollahpouri et al. 2021 calibrate lists to a listener's popularity
   profile the same way). The target ``p_u(p, g)`` is the persona's share of plays times the
   share of its training items in band ``g``; ``q`` is the list's mix with the item added and
   ``q~ = 0.99 q + 0.01 p_u``. A minor taste gets about its share of the slots, and a taste
   played deep gets deep items. ``calibration_bands=1`` calibrates the personas only (a
   one-persona listener's list is then unchanged).
7. **Item-side normalisation** (``item_norm``, ``gamma``; Adomavicius & Kwon, TKDE 2012,
   "aggregate diversity"): before the calibration, ``gamma sigma_u z_ui`` is added to the
   default list's score ``s_ui``, with ``z_ui = (x_u . y_i - mu_i) / sd_i`` the item's score
   z-scored over every training user (exact for a factor model: ``mu_i = y_i . xbar`` and
   ``sd_i^2 = y_i^T Cov(X) y_i``, cached at fit time as ``item_mean_`` / ``item_std_``) and
   ``sigma_u`` the standard deviation of the row's top ``ITEM_NORM_TOP`` scores (the term on
   the row's scale). It favours the items that fit this listener better than they fit most
   listeners, so different listeners get different items (catalogue coverage).
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from deepcuts.data.interactions import Interactions
from deepcuts.exceptions import DeepcutsError
from deepcuts.models import _persona_cluster_kernels as CK
from deepcuts.models import _persona_kernels as K
from deepcuts.models._topk import topk_rows
from deepcuts.models.als import ALS
from deepcuts.models.base import Recommender
from deepcuts.models.persona._diagnostics import PersonaDiagnostics
from deepcuts.models.persona._labels import PersonaLabels
from deepcuts.models.persona._scoring import PersonaScoring, PersonaState, unit_rows

__all__ = [
    "PersonaCalibration",
    "PostHocPersonas",
    "item_score_moments",
    "null_threshold",
    "top_spread",
]

#: random pairs of training entries behind ``threshold="auto"``
NULL_PAIRS = 50_000

#: fewest candidates the calibrated list is built from (at least 5 n)
CALIBRATION_POOL = 100

#: fewer rows than this are calibrated on one thread (a parallel launch costs ~10 ms here)
SERIAL_ROWS = 64

#: top scores of a row whose standard deviation puts the item-side z-score on the row's scale
ITEM_NORM_TOP = 200

#: Steck's smoothing of the list's persona mix toward the user's shares
CALIBRATION_ALPHA = 0.01

#: training users clustered and solved per block when fitting: bounds the temporary memory
#: (the keys gather a (pairs of the block, factors) float32 array; 48M pairs at once are 12 GiB)
FIT_BLOCK_USERS = 65_536

log = logging.getLogger(__name__)

#: the base ALS hyperparameters a PostHocPersonas passes through
_ALS_PARAMS = ("factors", "iterations", "regularization", "reg_scaling", "alpha", "weighting",
               "cg_steps", "random_state", "show_progress")  # fmt: skip


def null_threshold(
    rows,
    unit_items: np.ndarray,
    quantile: float,
    linkage: str = "average",
    *,
    n_pairs: int = NULL_PAIRS,
    seed: int | None = 0,
) -> float:
    """The ``quantile`` of the distance between the items of random pairs of training entries.

    Parameters
    ----------
    rows : sparse matrix of shape (n_users, n_items)
        Training plays; each stored entry (a user-item pair) is drawn with equal chance, so an
        item is drawn as often as it has listeners.
    unit_items : ndarray of shape (n_items, f)
        Unit item vectors (the space the personas cluster in).
    quantile : float in [0, 1]
    linkage : {"average", "ward"}
        Units: cosine distance ``1 - cos`` (average), or the Ward height of two single items
        ``|y_a - y_b| = sqrt(2 (1 - cos))`` (ward).
    n_pairs : int, default=50,000
    seed : int or None, default=0
        Seed of the draw (None: 0).

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> Y = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    >>> x = sp.csr_matrix(np.array([[1.0, 1.0]]))
    >>> round(null_threshold(x, Y, 0.9), 3)  # pairs are equal (0) or orthogonal (1)
    1.0
    """
    rows = sp.csr_matrix(rows)
    if rows.nnz == 0:
        raise DeepcutsError("threshold='auto' needs training plays; the interactions are empty")
    rng = np.random.default_rng(0 if seed is None else seed)
    a = rows.indices[rng.integers(0, rows.nnz, n_pairs)]
    b = rows.indices[rng.integers(0, rows.nnz, n_pairs)]
    Y = np.asarray(unit_items, np.float32)
    d = np.maximum(1.0 - np.einsum("pf,pf->p", Y[a], Y[b]), 0.0)
    if linkage == "ward":
        d = np.sqrt(2.0 * d)
    return float(np.quantile(d, quantile))


class PostHocPersonas(PersonaScoring, PersonaLabels, PersonaDiagnostics, Recommender):
    """Personas clustered from a single-vector ALS model's item space (PinnerSage-style).

    Parameters
    ----------
    factors, iterations, regularization, reg_scaling, alpha, weighting, cg_steps
        The base :class:`~deepcuts.models.ALS` (defaults: the project's tuned ALS, 64
        factors, ALS-WR ``reg_scaling="activity"`` with ``regularization=0.3``).
    linkage : {"average", "ward"}, default="average"
        Agglomeration rule; ``threshold`` is a mean cosine distance (average) or a Ward
        height ``sqrt(2 n_a n_b / (n_a + n_b)) |c_a - c_b|`` on unit vectors (ward).
    threshold : float or "auto", default="auto"
        Clusters farther apart than this are not merged (higher: fewer personas). ``"auto"``:
        the ``null_quantile`` quantile of the distance (in the linkage's units) between the
        items of 50,000 seeded random pairs of training entries, so that the rule does not
        depend on the item space's scale (number of factors, catalogue, training data).
    null_quantile : float, default=0.1
        Quantile of the random-pair distance used by ``threshold="auto"`` (higher: fewer
        personas). Picked by ``benchmarks/persona_eval.py`` on generated data with planted
        tastes (seed 1, two scales): the best worse case of planted-taste recovery and
        one-taste-one-persona.
    max_personas : int, default=5
        Most personas per user (merging goes on past the threshold down to this count).
    max_items : int, default=200
        Most played items agglomerated per user; the rest join their nearest cluster.
    min_share : float, default=0.05
        A persona holds at least this share of the user's plays (smaller clusters are merged).
    min_artists : int, default=3
        A persona holds at least this many items.
    persona_vectors : {"fold_in", "centroid"}, default="fold_in"
    scoring : {"mixture", "max"}, default="mixture"
        How the personas' scores combine in the default list.
    blend : float, default=0.0
        ``lambda``: weight of the personas' score against the user's own vector (0 = the
        base model's list, 1 = personas only).
    temperature : float, default=0.1
        ``tau`` of the attention (lower: each item listens to its closest taste only).
    taste_fit : float, default=0.2
        ``beta``: weight of the popularity-free taste fit (module docstring, point 5; 0 =
        none). Picked by ``benchmarks/persona_eval.py`` on validation splits of Last.fm 2K and
        of generated data with planted tastes, by the worse of the two.
    calibration : float in [0, 1), default=0.1
        ``lambda_c``: weight of the calibration of the default list's mix of personas and
        popularity bands to the user's history (module docstring, point 6; 0 = none).
        Picked with ``taste_fit`` by ``benchmarks/persona_eval.py`` (same rule).
    calibration_bands : int, default=2
        Popularity bands of the calibration (2: head and tail, each holding half of the
        training entries; 3: head, mid, tail); 1 = personas only. Picked by the same benchmark.
    item_norm : float, default=0.02
        ``gamma``: weight of the item-side z-score of the default list (module docstring,
        point 7; 0 = none). Picked with ``taste_fit`` and the calibration by
        ``benchmarks/persona_eval.py`` (same rule).
    random_state : int or None, default=None
        Seed of the base model.
    show_progress : bool, default=False

    Attributes
    ----------
    user_factors_ : ndarray of shape (n_users, factors) float32
    item_factors_ : ndarray of shape (n_items, factors) float32
    persona_factors_ : ndarray of shape (n_users, P, factors) float32
        ``P = max(user_n_personas_)``; unused personas are zero.
    persona_keys_ : ndarray of shape (n_users, P, factors) float32
        Unit cluster centroids (attention keys).
    persona_shares_ : ndarray of shape (n_users, P) float32
        Share of the user's plays in each cluster (0 past the user's count).
    user_n_personas_ : ndarray of shape (n_users,) int32
    threshold_ : float
        The agglomeration threshold used (``threshold``, or the ``"auto"`` value).
    train_personas_ : ndarray of shape (nnz,) int8
        Cluster of every stored training pair (CSR order of ``interactions_.matrix``).
    item_mean_, item_std_ : ndarray of shape (n_items,) float32
        Mean and standard deviation of each item's score ``x_u . y_i`` over the training
        users (``item_norm``).

    Examples
    --------
    >>> from deepcuts.testing import planted_blocks
    >>> x = planted_blocks(60, 30, 3, random_state=0)
    >>> m = PostHocPersonas(factors=8, iterations=5, random_state=0).fit(x)
    >>> m.persona_factors_.shape[0], m.persona_factors_.shape[2]
    (60, 8)
    >>> rec = m.recommend("u0", n=3)
    >>> len(rec), rec.to_frame().columns[-1]
    (3, 'persona')
    """

    _state_arrays = (
        "user_factors_",
        "item_factors_",
        "persona_factors_",
        "persona_keys_",
        "persona_shares_",
        "user_n_personas_",
        "train_personas_",
    )
    _state_scalars = ("threshold_",)
    supports_fold_in = True

    def __init__(
        self,
        *,
        factors: int = 64,
        iterations: int = 15,
        regularization: float = 0.3,
        reg_scaling: Literal["none", "activity"] = "activity",
        alpha: float = 1.0,
        weighting="log",
        cg_steps: int = 3,
        linkage: Literal["average", "ward"] = "average",
        threshold: float | Literal["auto"] = "auto",
        null_quantile: float = 0.1,
        max_personas: int = 5,
        max_items: int = 200,
        min_share: float = 0.05,
        min_artists: int = 3,
        persona_vectors: Literal["fold_in", "centroid"] = "fold_in",
        scoring: Literal["mixture", "max"] = "mixture",
        blend: float = 0.0,
        temperature: float = 0.1,
        taste_fit: float = 0.2,
        calibration: float = 0.1,
        calibration_bands: int = 2,
        item_norm: float = 0.02,
        random_state: int | None = None,
        show_progress: bool = False,
    ):
        self.factors = factors
        self.iterations = iterations
        self.regularization = regularization
        self.reg_scaling = reg_scaling
        self.alpha = alpha
        self.weighting = weighting
        self.cg_steps = cg_steps
        self.linkage = linkage
        self.threshold = threshold
        self.null_quantile = null_quantile
        self.max_personas = max_personas
        self.max_items = max_items
        self.min_share = min_share
        self.min_artists = min_artists
        self.persona_vectors = persona_vectors
        self.scoring = scoring
        self.blend = blend
        self.temperature = temperature
        self.taste_fit = taste_fit
        self.calibration = calibration
        self.calibration_bands = calibration_bands
        self.item_norm = item_norm
        self.random_state = random_state
        self.show_progress = show_progress

    # ------------------------------------------------------------------ parameters
    def _check_params(self) -> None:
        for name, allowed in (
            ("linkage", tuple(CK.LINKAGES)),
            ("persona_vectors", ("fold_in", "centroid")),
            ("scoring", ("mixture", "max")),
        ):
            if getattr(self, name) not in allowed:
                raise DeepcutsError(
                    f"{name} must be one of {list(allowed)}, got {getattr(self, name)!r}"
                )
        for name, lo in (("max_personas", 1), ("max_items", 2), ("min_artists", 1),
                         ("calibration_bands", 1)):  # fmt: skip
            v = getattr(self, name)
            if not isinstance(v, int | np.integer) or isinstance(v, bool) or v < lo:
                raise DeepcutsError(f"{name} must be an integer >= {lo}, got {v!r}")
        if isinstance(self.threshold, str) and self.threshold != "auto":
            raise DeepcutsError(
                f'threshold must be a number >= 0 or "auto", got {self.threshold!r}'
            )
        checks = [("null_quantile", 0.0, 1.0), ("min_share", 0.0, 1.0), ("blend", 0.0, 1.0),
                  ("temperature", 1e-6, np.inf), ("taste_fit", 0.0, np.inf),
                  ("calibration", 0.0, 0.999), ("item_norm", 0.0, np.inf)]  # fmt: skip
        if self.threshold != "auto":
            checks.append(("threshold", 0.0, np.inf))
        for name, lo, hi in checks:
            v = getattr(self, name)
            if not isinstance(v, int | float | np.number) or not (lo <= v <= hi):
                raise DeepcutsError(f"{name} must be a number in [{lo}, {hi}], got {v!r}")
        self._base_als()._check_params()

    def _base_als(self) -> ALS:
        return ALS(**{k: getattr(self, k) for k in _ALS_PARAMS})

    # ------------------------------------------------------------------ fitting
    def _fit(self, interactions: Interactions) -> None:
        self._check_params()
        base = self._base_als().fit(interactions)
        self._adopt(base, interactions)

    @classmethod
    def from_model(cls, model, **params) -> PostHocPersonas:
        """Personas on top of an already fitted single-vector model (no retraining).

        Parameters
        ----------
        model : fitted model with ``user_factors_`` (n_users, f) and ``item_factors_``
            (n_items, f), e.g. :class:`~deepcuts.models.ALS` or a ranking-loss model.
        **params
            Hyperparameters of the personas (``threshold``, ``blend``, ...). The fold-in
            uses the ALS loss with this object's ``regularization``, ``reg_scaling``,
            ``alpha`` and ``weighting``.

        Examples
        --------
        >>> from deepcuts.models import ALS
        >>> from deepcuts.testing import planted_blocks
        >>> x = planted_blocks(60, 30, 3, random_state=0)
        >>> als = ALS(factors=8, iterations=5, random_state=0).fit(x)
        >>> PostHocPersonas.from_model(als).persona_factors_.shape[2]
        8
        """
        for attr in ("user_factors_", "item_factors_", "interactions_"):
            if not hasattr(model, attr):
                raise DeepcutsError(
                    f"from_model needs a fitted single-vector model with {attr}; got "
                    f"{type(model).__name__} (fit it first, or use ALS)"
                )
        f = int(np.asarray(model.item_factors_).shape[1])
        keep = {k: getattr(model, k) for k in _ALS_PARAMS if hasattr(model, k)}
        keep["factors"] = f
        m = cls(**{**keep, **params})
        m._check_params()
        m._adopt(model, model.interactions_)
        m.interactions_ = model.interactions_
        return m

    def _adopt(self, base, interactions: Interactions) -> None:
        """Cluster every training user on ``base``'s item space and build the personas."""
        self.item_factors_ = np.ascontiguousarray(base.item_factors_, np.float32)
        self.user_factors_ = np.ascontiguousarray(base.user_factors_, np.float32)
        self.interactions_ = interactions
        self._reset_caches()
        rows = sp.csr_matrix(interactions.matrix, dtype=np.float32)
        self.threshold_ = self._resolve_threshold(rows)
        U, keys, shares, n, labels = self._build_blocks(rows)
        self.persona_factors_, self.persona_keys_ = U, keys
        self.persona_shares_, self.user_n_personas_ = shares, n
        self.train_personas_ = labels.astype(np.int8)
        self.item_mean_, self.item_std_ = item_score_moments(self.user_factors_,
                                                             self.item_factors_)  # fmt: skip
        log.info("post-hoc personas: threshold %.3f, %.2f per user", self.threshold_,
                 float(n.mean()))  # fmt: skip

    def _resolve_threshold(self, rows: sp.csr_matrix) -> float:
        """``threshold``, or for ``"auto"`` the null quantile of random training pairs."""
        if self.threshold != "auto":
            return float(self.threshold)
        return null_threshold(rows, self._unit_items(), float(self.null_quantile),
                              self.linkage, seed=self.random_state)  # fmt: skip

    def _reset_caches(self) -> None:
        self._als_cache = None
        self._yn_cache = None
        self._band_cache = None

    def _after_load(self) -> None:
        for k in ("user_factors_", "item_factors_", "persona_factors_", "persona_keys_",
                  "persona_shares_"):  # fmt: skip
            setattr(self, k, np.ascontiguousarray(getattr(self, k), np.float32))
        self.user_n_personas_ = np.asarray(self.user_n_personas_, np.int32)
        self.train_personas_ = np.asarray(self.train_personas_, np.int8)
        self._reset_caches()

    def _extra_arrays(self) -> dict[str, np.ndarray]:
        return {"item_mean_": self.item_mean_, "item_std_": self.item_std_}

    def _load_extra(self, extra: dict, arrays: dict[str, np.ndarray]) -> None:
        if "item_mean_" in arrays and "item_std_" in arrays:
            self.item_mean_ = np.asarray(arrays["item_mean_"], np.float32)
            self.item_std_ = np.asarray(arrays["item_std_"], np.float32)
        else:  # a file saved before item_norm: the moments follow from the saved factors
            self.item_mean_, self.item_std_ = item_score_moments(self.user_factors_,
                                                                 self.item_factors_)  # fmt: skip

    def _solver(self) -> ALS:
        """The base ALS with this model's item factors: its exact fold-in solves personas."""
        als = getattr(self, "_als_cache", None)
        if als is None:
            als = self._base_als()
            als.interactions_ = self.interactions_
            als.item_factors_ = self.item_factors_
            als.user_factors_ = self.user_factors_
            als._reset_caches()
            self._als_cache = als
        return als

    # ------------------------------------------------------------------ clustering
    def cluster(self, rows) -> tuple[np.ndarray, np.ndarray]:
        """Cluster each history row's items in the unit item space.

        Parameters
        ----------
        rows : csr_matrix of shape (b, n_items)
            Play counts.

        Returns
        -------
        labels : ndarray of shape (nnz,) int32
            Persona of each stored entry (CSR order), 0 = most plays.
        n_personas : ndarray of shape (b,) int32
        """
        self._check_fitted_factors()
        rows = sp.csr_matrix(rows, dtype=np.float32)
        labels = np.zeros(rows.nnz, np.int32)
        n = np.zeros(rows.shape[0], np.int32)
        CK.cluster_users(
            rows.indptr.astype(np.int64), rows.indices.astype(np.int64),
            rows.data.astype(np.float64), self._unit_items(), float(self._threshold()),
            CK.LINKAGES[self.linkage], int(self.max_items), float(self.min_share),
            int(self.min_artists), int(self.max_personas), labels, n,
        )  # fmt: skip
        return labels, n

    def _threshold(self) -> float:
        t = getattr(self, "threshold_", None)
        if t is None:  # a model saved before threshold_ existed: a numeric threshold
            t = float(self.threshold)
        return float(t)

    def _check_fitted_factors(self) -> None:
        if not hasattr(self, "item_factors_"):
            self._check_fitted()

    def _build_blocks(self, rows: sp.csr_matrix, block: int | None = None):
        """:meth:`_build` on blocks of ``block`` users (default :data:`FIT_BLOCK_USERS`), with a
        progress bar under ``show_progress``: the same personas, in bounded memory."""
        block = int(block or FIT_BLOCK_USERS)
        b = rows.shape[0]
        if b <= block:
            return self._build(rows)
        f = self.item_factors_.shape[1]
        P = int(self.max_personas)
        U = np.zeros((b, P, f), np.float32)
        keys = np.zeros((b, P, f), np.float32)
        shares = np.zeros((b, P), np.float32)
        n = np.zeros(b, np.int32)
        labels = np.zeros(rows.nnz, np.int32)
        starts = range(0, b, block)
        for s in tqdm(starts, desc="personas", unit="block", disable=not self.show_progress):
            e = min(s + block, b)
            Ub, kb, sb, nb, lb = self._build(rows[s:e])
            q = Ub.shape[1]
            U[s:e, :q], keys[s:e, :q], shares[s:e, :q], n[s:e] = Ub, kb, sb, nb
            labels[rows.indptr[s] : rows.indptr[e]] = lb
        q = max(int(n.max(initial=1)), 1)
        if q < P:
            U, keys = np.ascontiguousarray(U[:, :q]), np.ascontiguousarray(keys[:, :q])
            shares = np.ascontiguousarray(shares[:, :q])
        return U, keys, shares, n, labels

    def _build(self, rows: sp.csr_matrix):
        """Persona vectors, keys, shares, counts and labels of history rows."""
        rows = sp.csr_matrix(rows, dtype=np.float32)
        labels, n = self.cluster(rows)
        b = rows.shape[0]
        P = max(int(n.max(initial=1)), 1)
        f = self.item_factors_.shape[1]
        r = np.repeat(np.arange(b), np.diff(rows.indptr))
        pr = r * P + labels
        pseudo = sp.csr_matrix((rows.data, (pr, rows.indices)), shape=(b * P, rows.shape[1]))
        pseudo.sort_indices()
        Yn = self._unit_items()
        # keys: unit centroid of each cluster's unit item vectors
        keys = np.zeros((b * P, f), np.float32)
        np.add.at(keys, pr, Yn[rows.indices])
        keys = unit_rows(keys).reshape(b, P, f)
        shares = np.bincount(pr, weights=rows.data, minlength=b * P).reshape(b, P)
        shares = (shares / np.maximum(shares.sum(axis=1, keepdims=True), 1e-12)).astype(np.float32)
        if self.persona_vectors == "fold_in":
            U = self._solver().fold_in(pseudo).reshape(b, P, f)
        else:
            # centroid direction scaled so that the cluster's own items score 1 on average
            own = np.einsum("rf,rf->r", keys.reshape(-1, f)[pr], self.item_factors_[rows.indices])
            cnt = np.bincount(pr, minlength=b * P)
            mean = np.bincount(pr, weights=own, minlength=b * P) / np.maximum(cnt, 1)
            U = (keys.reshape(-1, f) / np.maximum(mean, 1e-6)[:, None]).reshape(b, P, f)
        act = np.arange(P)[None, :] < n[:, None]
        U = np.ascontiguousarray(np.where(act[:, :, None], U, 0.0), np.float32)
        keys = np.ascontiguousarray(np.where(act[:, :, None], keys, 0.0), np.float32)
        return U, keys, shares, n.astype(np.int32), labels

    def fold_in(self, user_items) -> tuple[np.ndarray, np.ndarray]:
        """Persona vectors of new histories (item factors fixed): clustered and solved.

        Parameters
        ----------
        user_items : csr_matrix of shape (b, n_items)

        Returns
        -------
        personas : ndarray of shape (b, P, factors) float32
        n_personas : ndarray of shape (b,) int32
        """
        self._check_fitted()
        rows = self._check_rows(user_items)
        U, _, _, n, _ = self._build(rows)
        return U, n

    def _check_rows(self, user_items) -> sp.csr_matrix:
        rows = sp.csr_matrix(user_items, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[1] != self.n_items:
            raise DeepcutsError(
                f"user_items must have {self.n_items} columns (one per item), got {rows.shape}"
            )
        if rows.nnz and rows.data.min() < 0:
            raise DeepcutsError("play counts in user_items must be >= 0")
        return rows

    # ------------------------------------------------------------------ scoring
    def _persona_state(self, user_index, user_items) -> PersonaState:
        user_index = np.asarray(user_index, np.int64)
        b = len(user_index)
        P, f = self.persona_factors_.shape[1:]
        known = user_index >= 0
        U = np.zeros((b, P, f), np.float32)
        keys = np.zeros((b, P, f), np.float32)
        shares = np.zeros((b, P), np.float32)
        n = np.ones(b, np.int32)
        X = np.zeros((b, f), np.float32)
        ku = user_index[known]
        U[known], keys[known] = self.persona_factors_[ku], self.persona_keys_[ku]
        shares[known], n[known] = self.persona_shares_[ku], self.user_n_personas_[ku]
        X[known] = self.user_factors_[ku]
        if (~known).any():
            sel = np.flatnonzero(~known)
            rows = self._check_rows(sp.csr_matrix(user_items)[sel])
            Ub, kb, sb, nb, _ = self._build(rows)
            if Ub.shape[1] > P:  # a new history with more personas than any training user
                pad = Ub.shape[1] - P
                U = np.pad(U, ((0, 0), (0, pad), (0, 0)))
                keys = np.pad(keys, ((0, 0), (0, pad), (0, 0)))
                shares = np.pad(shares, ((0, 0), (0, pad)))
                P += pad
            q = Ub.shape[1]
            U[sel, :q], keys[sel, :q], shares[sel, :q], n[sel] = Ub, kb, sb, nb
            X[sel] = self._solver().fold_in(rows)
        return PersonaState(U, n, keys, shares.astype(np.float64), X)

    def _regions(self, state: PersonaState) -> np.ndarray:
        """(b, n_items) persona whose centroid is closest to each item (its taste region)."""
        A = np.einsum("bpf,if->bpi", state.keys, self._unit_items())
        A[np.arange(A.shape[1])[None, :] >= state.n[:, None]] = -np.inf
        return np.argmax(A, axis=1)

    def _persona_scores(self, state: PersonaState, p: int) -> np.ndarray:
        lam = float(self.blend)
        S = np.asarray(state.U[:, p] @ self.item_factors_.T, np.float32)
        if lam < 1.0:
            S = (1.0 - lam) * (state.X @ self.item_factors_.T) + lam * S
        beta = float(getattr(self, "taste_fit", 0.0))
        if beta > 0.0:
            cos = state.keys[:, p] @ self._unit_items().T
            S = S + beta * np.linalg.norm(state.X, axis=1, keepdims=True) * cos
        S = np.asarray(S, np.float32)
        # a persona's list stays in its taste: items closer to another persona's centroid drop
        S[self._regions(state) != p] = -np.inf
        S[state.n <= p] = -np.inf
        return S

    def _combined(self, state: PersonaState, scoring: str) -> np.ndarray:
        own = np.asarray(state.X @ self.item_factors_.T, np.float32)
        lam = float(self.blend)
        S = own if lam == 0.0 else (1.0 - lam) * own + lam * super()._combined(state, scoring)
        beta = float(getattr(self, "taste_fit", 0.0))
        if beta > 0.0:
            S = S + beta * self._taste_fit(state)
        gamma = float(getattr(self, "item_norm", 0.0))
        if gamma > 0.0:
            S = S + gamma * top_spread(S, ITEM_NORM_TOP)[:, None] * self._item_z(own)
        return np.asarray(S, np.float32)

    def _item_z(self, own: np.ndarray) -> np.ndarray:
        """(b, n_items) ``(x_u . y_i - mu_i) / sd_i`` of the rows' own scores ``own``
        (0 for an item whose score does not vary over the training users)."""
        sd = np.asarray(self.item_std_, np.float32)
        inv = np.where(
            sd > 1e-6 * max(float(sd.max(initial=0.0)), 1e-30), 1.0 / np.maximum(sd, 1e-30), 0.0
        )
        return ((own - self.item_mean_) * inv.astype(np.float32)).astype(np.float32)

    def _taste_fit(self, state: PersonaState) -> np.ndarray:
        """(b, n_items) ``|x_u| max_p cos(c_up, y_i)`` over each user's personas."""
        Ynt = np.ascontiguousarray(self._unit_items().T)
        fit = np.full((state.U.shape[0], Ynt.shape[1]), -np.inf, np.float32)
        for p in range(state.U.shape[1]):  # loop over personas (a handful), not users
            cp = np.asarray(state.keys[:, p] @ Ynt, np.float32)
            cp[state.n <= p] = -np.inf
            np.maximum(fit, cp, out=fit)
        return fit * np.linalg.norm(state.X, axis=1, keepdims=True).astype(np.float32)

    def rank_index(self, user_index, user_items, n, *, rerankers=(), **score_kw):
        """As :meth:`PersonaScoring.rank_index`; with ``calibration > 0`` the default list is
        calibrated to the user's mix of personas and popularity bands, after the other
        re-rankers (module docstring, point 6). A persona's own list and the blended lists are
        not."""
        lam = float(getattr(self, "calibration", 0.0))
        own_list = (score_kw.get("persona") is None and score_kw.get("persona_mix") is None
                    and not score_kw.get("blend", False))  # fmt: skip
        if lam > 0.0 and own_list:
            rerankers = (*tuple(rerankers), PersonaCalibration(lam))
        return super().rank_index(user_index, user_items, n, rerankers=rerankers, **score_kw)

    def _item_bands(self) -> np.ndarray:
        """(n_items,) int32 popularity band of every item, 0 = head (module docstring, 6)."""
        G = int(getattr(self, "calibration_bands", 1))
        cached = getattr(self, "_band_cache", None)
        if cached is not None and cached[0] == G:
            return cached[1]
        pop = np.asarray(self.interactions_.matrix.getnnz(axis=0), np.float64)
        band = item_bands(pop, G)
        self._band_cache = (G, band)
        return band

    def _calibration_target(self, state: PersonaState, user_index, user_items) -> np.ndarray:
        """(b, P * G) float32 target mix of (persona, band): the persona's share of plays times
        the share of its training items in each band."""
        G = int(getattr(self, "calibration_bands", 1))
        b, P = state.shares.shape
        shares = np.asarray(state.shares, np.float64)
        if G == 1:
            return np.ascontiguousarray(shares, np.float32)
        user_index = np.asarray(user_index, np.int64)
        band = self._item_bands()
        M = self.interactions_.matrix
        lo, hi = M.indptr[np.maximum(user_index, 0)], M.indptr[np.maximum(user_index, 0) + 1]
        known = user_index >= 0
        cnt = np.where(known, hi - lo, 0)
        pos = np.repeat(lo - np.concatenate([[0], np.cumsum(cnt)[:-1]]), cnt) + np.arange(cnt.sum())
        rows = np.repeat(np.arange(b), cnt)
        labels = self.train_personas_[pos].astype(np.int64)
        items = M.indices[pos]
        if (~known).any():
            sel = np.flatnonzero(~known)
            hist = self._check_rows(sp.csr_matrix(user_items)[sel])
            lab, _ = self.cluster(hist)
            rows = np.concatenate([rows, np.repeat(sel, np.diff(hist.indptr))])
            labels = np.concatenate([labels, lab.astype(np.int64)])
            items = np.concatenate([items, hist.indices])
        T = np.bincount((rows * P + labels) * G + band[items], minlength=b * P * G)
        T = T.reshape(b, P, G).astype(np.float64)
        T /= np.maximum(T.sum(axis=2, keepdims=True), 1e-12)
        return np.ascontiguousarray((T * shares[:, :, None]).reshape(b, P * G), np.float32)

    def _members(self, state: PersonaState, items: np.ndarray) -> np.ndarray:
        """(b, k) int32 persona whose centroid is closest to each item (``items`` (b, k))."""
        V = self._unit_items()[np.maximum(items, 0)]
        A = np.einsum("bpf,bkf->bpk", state.keys, V)
        A[np.arange(state.keys.shape[1])[None, :] >= state.n[:, None]] = -np.inf
        return np.argmax(A, axis=1).astype(np.int32)

    def _personas_for(self, user_index, user_items, item_index, *, persona=None, **kw):
        """Persona credited with each listed item: its taste region (closest centroid)."""
        b, k = item_index.shape
        if persona is not None:
            return np.full((b, k), int(persona), np.int16)
        st = self._persona_state(user_index, user_items)
        return self._members(st, item_index).astype(np.int16)

    # ------------------------------------------------------------------ description
    def _assignments(self, u: int, row: sp.csr_matrix) -> tuple[np.ndarray, int]:
        """Persona of each of a user's items (CSR order of ``row``) and the count."""
        if u >= 0:
            x = self.interactions_.matrix
            lo, hi = x.indptr[u], x.indptr[u + 1]
            return self.train_personas_[lo:hi].astype(np.int64), int(self.user_n_personas_[u])
        labels, n = self.cluster(row)
        return labels.astype(np.int64), int(n[0])


def item_score_moments(X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation over the rows of ``X`` of every item's score ``x . y_i``,
    exactly: ``mu_i = y_i . xbar`` and ``sd_i^2 = y_i^T Cov(X) y_i`` (population covariance).

    Both (n_items,) float32; ``O(n_users f^2 + n_items f^2)``, no (users, items) matrix.

    Examples
    --------
    >>> X = np.array([[1.0, 0.0], [3.0, 2.0]])
    >>> mu, sd = item_score_moments(X, np.array([[1.0, 1.0], [0.0, 2.0]]))
    >>> mu.tolist(), sd.tolist()
    ([3.0, 2.0], [2.0, 2.0])
    """
    X = np.asarray(X, np.float64)
    Y = np.asarray(Y, np.float64)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[1] != Y.shape[1] or len(X) == 0:
        raise DeepcutsError(
            f"item_score_moments needs user factors (n_users >= 1, f) and item factors "
            f"(n_items, f) of one width f, got {X.shape} and {Y.shape}"
        )
    xbar = X.mean(axis=0)
    Xc = X - xbar
    C = Xc.T @ Xc / len(X)
    var = np.einsum("if,if->i", Y @ C, Y)
    return (Y @ xbar).astype(np.float32), np.sqrt(np.maximum(var, 0.0)).astype(np.float32)


def top_spread(S: np.ndarray, k: int) -> np.ndarray:
    """(b,) float32 standard deviation of each row's ``k`` largest finite values of ``S``
    (all of them where a row has fewer; 0 for a row with none), vectorised over the rows.

    Examples
    --------
    >>> top_spread(np.array([[0.0, 4.0, 2.0, -np.inf]], np.float32), 2).tolist()
    [1.0]
    """
    S = np.asarray(S, np.float32)
    k = max(1, min(int(k), S.shape[1]))
    top = np.partition(S, S.shape[1] - k, axis=1)[:, S.shape[1] - k :]
    fin = np.isfinite(top)
    cnt = np.maximum(fin.sum(axis=1), 1)
    mean = np.where(fin, top, 0.0).sum(axis=1, dtype=np.float64) / cnt
    dev = np.where(fin, top - mean[:, None], 0.0)
    return np.sqrt((dev * dev).sum(axis=1, dtype=np.float64) / cnt).astype(np.float32)


def item_bands(popularity: np.ndarray, bands: int) -> np.ndarray:
    """Popularity band of every item: items sorted by ``popularity`` (descending, ties by index)
    are cut where the cumulative share of the total crosses ``1/bands``, ``2/bands``, ...

    Examples
    --------
    >>> item_bands(np.array([1.0, 6.0, 2.0, 1.0]), 2).tolist()
    [1, 0, 1, 1]
    """
    pop = np.asarray(popularity, np.float64)
    order = np.argsort(-pop, kind="stable")
    before = np.concatenate([[0.0], np.cumsum(pop[order])[:-1]]) / max(pop.sum(), 1e-12)
    band = np.empty(len(pop), np.int32)
    band[order] = np.minimum((before * bands).astype(np.int64), bands - 1)
    return band


class PersonaCalibration:
    """The calibration step of :class:`PostHocPersonas`'s default list, as a re-ranker of a
    (b, C) score block (dense or candidates; module docstring, point 6).

    It only re-orders (the list reports the model's scores): the calibrated list's items get
    levels above every other item, in their calibrated order.
    """

    reorders_only = True

    def __init__(self, weight: float):
        self.weight = float(weight)

    def rerank(self, scores: np.ndarray, ctx) -> np.ndarray:
        model, n = ctx.model, int(ctx.n)
        scores = np.asarray(scores, np.float32)
        b, W = scores.shape
        pool = min(W, max(CALIBRATION_POOL, 5 * n))
        pos, rel = topk_rows(scores, pool)
        items = (
            pos
            if ctx.candidates is None
            else np.where(
                pos >= 0, np.take_along_axis(ctx.candidates, np.maximum(pos, 0), axis=1), -1
            )
        )
        state = model._persona_state(ctx.user_index, ctx.user_items)
        G = int(getattr(model, "calibration_bands", 1))
        member = model._members(state, items)
        if G > 1:
            member = member * G + model._item_bands()[np.maximum(items, 0)]
        target = model._calibration_target(state, ctx.user_index, ctx.user_items)
        chosen = np.empty((b, min(n, pool)), np.int32)
        kernel = K.calibrate_lists if b >= SERIAL_ROWS else K.calibrate_lists_serial
        kernel(np.ascontiguousarray(rel, np.float32), np.ascontiguousarray(member, np.int32),
               target, np.float32(self.weight), np.float32(CALIBRATION_ALPHA),
               int(chosen.shape[1]), chosen)  # fmt: skip
        finite = np.isfinite(scores)
        top = np.max(np.where(finite, scores, -np.inf), axis=1, keepdims=True)
        out = np.where(finite, scores - np.where(np.isfinite(top), top, 0.0) - 1.0, -np.inf)
        out = out.astype(np.float32)
        rows, slots = np.nonzero(chosen >= 0)
        cols = pos[rows, chosen[rows, slots]]
        out[rows, cols] = (chosen.shape[1] - slots).astype(np.float32)
        return out
