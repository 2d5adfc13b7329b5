"""Scoring shared by the persona models: hard max, mixture of tastes, one persona, blended lists.

A persona model gives user ``u`` persona vectors ``x_up`` (``p < P_u``), each with an attention
key ``c_up`` (a unit vector in item space) and a prior ``pi_up`` (its share of the user's
plays). Over item vectors ``y_i`` (unit ``y^_i``):

* **max** (MaxMF, Weston et al. 2013): ``s_ui = max_p x_up . y_i`` - "play from one taste";
* **mixture of tastes** (Kula 2017): ``s_ui = sum_p a_up(i) x_up . y_i`` with attention
  ``a_up(i) = softmax_p(log pi_up + c_up . y^_i / tau)``; a persona that dislikes an item can
  pull its score down, which a max cannot;
* **one persona** ``p``: that persona's scores (a model may keep them inside its taste);
* **blended lists** (ComiRec, Cen et al. 2020): each persona ranks its own top ``n`` and the
  list is filled from them in proportion to the shares or a mix the listener picks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from deepcuts.exceptions import DeepcutsError
from deepcuts.models import _persona_cluster_kernels as CK
from deepcuts.models import _persona_kernels as K
from deepcuts.models.base import RankContext, apply_rerankers, top_n

__all__ = ["PersonaScoring", "PersonaState", "mixture_scores"]

#: users scored at once inside one call (bounds the (P, b, n_items) temporaries)
CHUNK = 256


@dataclass(frozen=True, eq=False)
class PersonaState:
    """The personas of a batch of users.

    Attributes
    ----------
    U : ndarray of shape (b, P, f) float32
        Persona vectors ``x_up`` (zero past ``n``).
    n : ndarray of shape (b,) int32
        Personas of each user.
    keys : ndarray of shape (b, P, f) float32
        Unit attention keys ``c_up``.
    logprior : ndarray of shape (b, P) float32
        ``log pi_up``; ``-inf`` past ``n``.
    shares : ndarray of shape (b, P) float64
        ``pi_up``, the share of the user's plays (0 past ``n``).
    X : ndarray of shape (b, f) float32 or None
        The user's single vector, for models that blend it in.
    """

    U: np.ndarray
    n: np.ndarray
    keys: np.ndarray
    shares: np.ndarray
    X: np.ndarray | None = None

    @property
    def logprior(self) -> np.ndarray:
        """(b, P) float32 ``log pi_up``, ``-inf`` past ``n``."""
        act = np.arange(self.U.shape[1])[None, :] < self.n[:, None]
        with np.errstate(divide="ignore"):
            lp = np.where(act, np.log(np.maximum(self.shares, 1e-12)), -np.inf)
        return lp.astype(np.float32)


def unit_rows(F: np.ndarray) -> np.ndarray:
    """Rows of ``F`` divided by their norms (zero rows stay zero), float32."""
    F = np.asarray(F, np.float32)
    return (F / np.maximum(np.linalg.norm(F, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


def mixture_scores(state: PersonaState, Y: np.ndarray, Yn: np.ndarray, tau: float):
    """Mixture-of-tastes and max scores of a batch, each of shape (b, n_items) float32.

    Examples
    --------
    >>> import numpy as np
    >>> Y = np.eye(2, dtype=np.float32)
    >>> U = np.array([[[2.0, 0.0], [0.0, 1.0]]], np.float32)
    >>> st = PersonaState(U, np.array([2]), U / np.linalg.norm(U, axis=2, keepdims=True),
    ...                   np.array([[0.5, 0.5]]))
    >>> mix, mx = mixture_scores(st, Y, Y, tau=0.01)
    >>> np.round(mix, 3).tolist(), mx.tolist()
    ([[2.0, 1.0]], [[2.0, 1.0]])
    """
    b, n_items = state.U.shape[0], Y.shape[0]
    P = state.U.shape[1]
    mix = np.empty((b, n_items), np.float32)
    mx = np.empty((b, n_items), np.float32)
    Yt, Ynt = np.ascontiguousarray(Y.T), np.ascontiguousarray(Yn.T)
    for s in range(0, b, CHUNK):
        sl = slice(s, min(b, s + CHUNK))
        m = sl.stop - sl.start
        S = np.empty((P, m, n_items), np.float32)
        A = np.empty((P, m, n_items), np.float32)
        for p in range(P):  # loop over personas (a handful), not users
            np.matmul(state.U[sl, p], Yt, out=S[p])
            np.matmul(state.keys[sl, p], Ynt, out=A[p])
        CK.mixture_combine(S, A, np.ascontiguousarray(state.logprior[sl], np.float32),
                           np.float32(1.0 / tau), mix[sl], mx[sl])  # fmt: skip
    return mix, mx


class PersonaScoring:
    """Mixin of the persona models' scoring and list building.

    A model provides ``item_factors_``, :meth:`_persona_state` and the ``temperature`` of the
    attention; it may override :meth:`_persona_scores` (one persona) and :meth:`_combined`
    (the default list).
    """

    _score_options = ("persona", "persona_mix", "blend", "scoring")

    def _persona_state(self, user_index, user_items) -> PersonaState:  # pragma: no cover
        raise NotImplementedError

    def _unit_items(self) -> np.ndarray:
        cached = getattr(self, "_yn_cache", None)
        if cached is None or cached[0] is not self.item_factors_:
            cached = (self.item_factors_, unit_rows(self.item_factors_))
            self._yn_cache = cached
        return cached[1]

    def _default_scoring(self) -> str:
        return getattr(self, "scoring", "max")

    def _check_scoring(self, scoring) -> str:
        scoring = self._default_scoring() if scoring is None else scoring
        if scoring not in ("max", "mixture"):
            raise DeepcutsError(f"scoring must be 'max' or 'mixture', got {scoring!r}")
        return scoring

    def _check_score_kw(self, kw) -> None:
        unknown = set(kw) - set(self._score_options)
        if unknown:
            raise DeepcutsError(
                f"unknown scoring option(s) {sorted(unknown)} for {type(self).__name__}; use "
                "persona=, scoring='max'|'mixture', blend=True or persona_mix=[...]"
            )

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

    def _persona_scores(self, state: PersonaState, p: int) -> np.ndarray:
        """(b, n_items) scores of persona ``p`` (``-inf`` for users without it)."""
        S = np.asarray(state.U[:, p] @ self.item_factors_.T, np.float32)
        S[state.n <= p] = -np.inf
        return S

    def _combined(self, state: PersonaState, scoring: str) -> np.ndarray:
        """(b, n_items) scores of the default list: max or mixture over the personas."""
        mix, mx = mixture_scores(state, self.item_factors_, self._unit_items(), self.temperature)
        return mx if scoring == "max" else mix

    def _score(self, user_index, user_items, *, persona=None, scoring=None, **kw) -> np.ndarray:
        self._check_score_kw(kw)
        scoring = self._check_scoring(scoring)
        state = self._persona_state(user_index, user_items)
        if persona is not None:
            return self._persona_scores(state, self._check_persona(persona, state.n))
        return self._combined(state, scoring)

    def _personas_for(self, user_index, user_items, item_index, *, persona=None, **kw):
        """Persona credited with each listed item: under ``scoring="max"`` the persona that
        scores it highest, under ``"mixture"`` the one whose attention is highest."""
        b, k = item_index.shape
        if persona is not None:
            return np.full((b, k), int(persona), np.int16)
        scoring = self._check_scoring(kw.get("scoring"))
        st = self._persona_state(user_index, user_items)
        if scoring == "max":
            V = self.item_factors_[np.maximum(item_index, 0)]
            A = np.einsum("bpf,bkf->bpk", st.U, V)
        else:
            V = self._unit_items()[np.maximum(item_index, 0)]  # (b, k, f)
            A = np.einsum("bpf,bkf->bpk", st.keys, V) / np.float32(self.temperature)
            A = A + st.logprior[:, :, None]
        A[np.arange(st.U.shape[1])[None, :] >= st.n[:, None]] = -np.inf
        return np.argmax(A, axis=1).astype(np.int16)

    def _similar_items(self, item_index: np.ndarray) -> np.ndarray:
        Yn = self._unit_items()
        return Yn[np.asarray(item_index)] @ Yn.T

    def rank_index(self, user_index, user_items, n, *, filter_played=True, allow=None,
                   block=None, rerankers=(), **score_kw):  # fmt: skip
        """As :meth:`Recommender.rank_index`; ``blend=True`` or ``persona_mix`` fill the list
        from the personas' own lists in proportion to their shares of the user's plays or to
        the mix (ComiRec-style merge); re-rankers apply to every persona's list.

        In a blended list each item's score is its score under the persona that contributed
        it, so scores need not decrease with rank.
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
        self._check_score_kw(score_kw)
        self._check_fitted()
        user_index = np.asarray(user_index, np.int32)
        user_items = sp.csr_matrix(user_items)
        st = self._persona_state(user_index, user_items)
        b, P = st.U.shape[:2]
        act = np.arange(P)[None, :] < st.n[:, None]
        w = mix_weights(mix, st.shares, act)
        m = min(self.n_items, n * P)
        cand = np.full((b, P, m), -1, np.int64)
        cval = np.full((b, P, m), -np.inf, np.float32)
        rows = np.repeat(np.arange(b), np.diff(user_items.indptr))
        for p in range(P):  # loop over personas (a handful), not users
            S = np.array(self._persona_scores(st, p), np.float32)
            S[~act[:, p]] = -np.inf
            if filter_played:
                S[rows, user_items.indices] = -np.inf
            if allow is not None:
                keep = np.zeros(S.shape[1], bool)
                keep[allow] = True
                S[:, ~keep] = -np.inf
            if block is not None and len(block):
                S[:, block] = -np.inf
            values = S
            if rerankers:  # reported: the persona's real scores (issue 14)
                ctx = RankContext(self, user_index, user_items, n)
                S, values = apply_rerankers(S, rerankers, ctx)
            idx, val = top_n(S, values, m)
            cand[:, p, : idx.shape[1]] = idx
            cval[:, p, : idx.shape[1]] = val
        out_idx = np.empty((b, n), np.int64)
        out_val = np.empty((b, n), np.float32)
        out_per = np.empty((b, n), np.int64)
        K.blend_lists(cand, cval, w, int(n), out_idx, out_val, out_per)
        return out_idx, out_val, out_per.astype(np.int16)


def mix_weights(mix, shares, active) -> np.ndarray:
    """Per-user persona weights of a blend, normalised to sum 1, shape (b, P) float64.

    ``mix`` None: each user's ``shares``; else one weight per persona (1-D, the same for every
    user, or (b, <= P)), zero for personas a user does not have. Raises a clear error for
    negative, non-finite or too many weights, or a blend that weighs none of a user's personas.
    """
    b, P = active.shape
    if mix is None:
        w = np.asarray(shares, np.float64)
    else:
        w = np.asarray(mix, np.float64)
        if w.ndim == 1:
            w = np.broadcast_to(w, (b, len(w)))
        if w.shape[1] > P or not np.all(np.isfinite(w)) or (w < 0).any():
            raise DeepcutsError(
                f"persona_mix must be {P} or fewer non-negative weights (one per persona), "
                f"got {mix!r}"
            )
        w = np.pad(w, ((0, 0), (0, P - w.shape[1])))
    w = np.where(active, w, 0.0)
    tot = w.sum(axis=1, keepdims=True)
    if (tot <= 0).any():
        raise DeepcutsError(
            "persona_mix gives zero weight to every persona a user has; weight at least "
            "one of their personas (see personas(user))"
        )
    return np.ascontiguousarray(w / tot)
