"""Next-track (session) recommenders: what to play after the tracks of the current session.

:class:`SessionCooccurrence` learns from past sessions (:class:`deepcuts.data.sessions.Sessions`,
e.g. a listen log cut by inactivity gap) which tracks are listened to close to each other, and
scores candidates for the current session from its recent, listened-through tracks. When a
session's tracks have no learned co-occurrences it falls back, in this order, to co-occurrence
of their *artists* (denser), to external item neighbours (content or ALS ``similar_items``) and
finally to tracks by overall listening weight.

Baselines with the same interface: :class:`RandomNext`, :class:`PopularNext` and
:class:`StickyArtist`.

All four implement ``next_tracks(history, times, users=None, n=1)`` on a batch of sessions
(internal int item indices), which is what :class:`deepcuts.evaluation.simulator.ListeningSimulator`
calls, and ``recommend_next`` for external ids.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import scipy.sparse as sp

from deepcuts.data.idmap import IdMap
from deepcuts.data.sessions import Sessions
from deepcuts.exceptions import DeepcutsError, NotFittedError
from deepcuts.models import _session_kernels as K
from deepcuts.models._io import read_model_files, write_model_files

__all__ = [
    "PopularNext",
    "RandomNext",
    "SessionCooccurrence",
    "StickyArtist",
    "factor_neighbors",
    "history_matrix",
    "session_item_matrix",
]

log = logging.getLogger(__name__)


def _check_batch(history, times, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    h = np.asarray(history)
    if h.ndim != 2:
        raise DeepcutsError(f"history must have shape (b, length), got {h.shape}")
    t = np.ones(h.shape, np.float32) if times is None else np.asarray(times, np.float32)
    if t.shape != h.shape:
        raise DeepcutsError(f"times must have the shape of history {h.shape}, got {t.shape}")
    if h.size and h.max() >= n_items:
        raise DeepcutsError(f"history holds item index {int(h.max())} >= n_items={n_items}")
    return h.astype(np.int64), t


def history_matrix(history, weights, n_items: int) -> sp.csr_matrix:
    """Sparse (b, n_items) matrix of summed ``weights`` per played item; -1 entries are padding.

    Every played item is stored, also with weight 0 (so it can be excluded from
    recommendations).

    Examples
    --------
    >>> history_matrix(np.array([[2, 0, -1]]), np.array([[0.5, 0.0, 1.0]]), 3).toarray()
    array([[0. , 0. , 0.5]], dtype=float32)
    """
    h = np.asarray(history, np.int64)
    w = np.asarray(weights, np.float32)
    b, length = h.shape
    valid = h >= 0
    rows = np.repeat(np.arange(b), length).reshape(b, length)[valid]
    m = sp.csr_matrix((w[valid], (rows, h[valid])), shape=(b, n_items), dtype=np.float32)
    m.sum_duplicates()  # keeps explicit zeros: played but not listened to
    return m


def session_item_matrix(sessions: Sessions) -> sp.csr_matrix:
    """(n_sessions, n_items) matrix of summed listen weights, e.g. to train ALS on sessions.

    Examples
    --------
    >>> from deepcuts.data.idmap import IdMap
    >>> s = Sessions(IdMap(["a", "b"]), np.array([0, 2, 3]), np.array([0, 1, 1], np.int32),
    ...              np.array([1.0, 0.5, 1.0], np.float32), np.array([1, 1], object),
    ...              np.array([0.0, 99.0]))
    >>> session_item_matrix(s).toarray()
    array([[1. , 0.5],
           [0. , 1. ]], dtype=float32)
    """
    rows = np.repeat(np.arange(sessions.n_sessions), sessions.lengths())
    m = sp.csr_matrix(
        (sessions.weights, (rows, sessions.items)),
        shape=(sessions.n_sessions, sessions.n_items),
        dtype=np.float32,
    )
    m.sum_duplicates()
    m.eliminate_zeros()
    return m


def factor_neighbors(factors, k: int = 20, *, block: int = 2048) -> sp.csr_matrix:
    """(n_items, n_items) CSR of each item's ``k`` most cosine-similar items (itself excluded).

    For the ``neighbors`` fallback of :class:`SessionCooccurrence`, e.g. from
    ``ALS(...).fit(...).item_factors_`` or standardised content features. Items with a zero
    vector get no neighbours; only positive similarities are kept.

    Examples
    --------
    >>> f = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    >>> factor_neighbors(f, 1).toarray().round(2)
    array([[0.  , 0.99, 0.  ],
           [0.99, 0.  , 0.  ],
           [0.  , 0.11, 0.  ]], dtype=float32)
    """
    from deepcuts.models._topk import topk_rows

    f = np.asarray(factors, np.float32)
    norm = np.linalg.norm(f, axis=1, keepdims=True)
    f = f / np.where(norm > 0, norm, 1.0)
    n = len(f)
    k = int(min(k, max(n - 1, 1)))
    rows, cols, vals = [], [], []
    for s in range(0, n, block):  # blocks of items bound the (block, n) similarity matrix
        sims = f[s : s + block] @ f.T
        sims[np.arange(len(sims)), np.arange(s, s + len(sims))] = -np.inf
        idx, val = topk_rows(sims, k)
        ok = (idx >= 0) & (val > 0)
        rows.append(np.repeat(np.arange(s, s + len(sims)), ok.sum(axis=1)))
        cols.append(idx[ok])
        vals.append(val[ok])
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n, n),
        dtype=np.float32,
    )


class _NextTrackBase:
    """Shared plumbing: item map, external-id wrapper, parameter repr."""

    def _check_fitted(self):
        if not hasattr(self, "item_map_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit first")

    @property
    def n_items(self) -> int:
        self._check_fitted()
        return len(self.item_map_)

    def recommend_next(self, sessions, n: int = 10, *, weights=None) -> pd.DataFrame:
        """Next-track lists for sessions given as sequences of external item ids.

        Parameters
        ----------
        sessions : sequence of sequences
            Each the session so far, oldest first. Unknown items are ignored.
        n : int, default=10
        weights : sequence of sequences of float, optional
            Listened fraction of each track (default 1).

        Returns
        -------
        DataFrame
            Columns ``session`` (position in ``sessions``), ``rank`` (1-based), ``item``,
            ``score``.
        """
        self._check_fitted()
        if not isinstance(n, int | np.integer) or n < 1:
            raise DeepcutsError(f"n must be a positive integer, got {n!r}")
        seqs = [list(s) for s in sessions]
        lens = np.array([len(s) for s in seqs], np.int64)
        hist = np.full((len(seqs), max(int(lens.max(initial=0)), 1)), -1, np.int64)
        tim = np.zeros(hist.shape, np.float32)
        if lens.sum():
            flat = np.asarray([i for s in seqs for i in s], dtype=object)
            rows = np.repeat(np.arange(len(seqs)), lens)
            cols = np.arange(len(flat)) - np.repeat(np.cumsum(lens) - lens, lens)
            hist[rows, cols] = self.item_map_.index(flat, missing="ignore")
            if weights is None:
                tim[rows, cols] = 1.0
            else:
                wl = [np.asarray(w, np.float32).ravel() for w in weights]
                if [len(w) for w in wl] != lens.tolist():
                    raise DeepcutsError("weights must give one value per track of each session")
                tim[rows, cols] = np.concatenate(wl)
        tim[hist < 0] = 0
        idx, val = self._next(hist, tim, None, n)
        ok = idx >= 0
        return pd.DataFrame(
            {
                "session": np.repeat(np.arange(len(seqs)), ok.sum(axis=1)),
                "rank": np.cumsum(ok, axis=1)[ok].astype(np.int32),
                "item": self.item_map_.external(idx[ok]),
                "score": val[ok],
            }
        )

    def next_tracks(self, history, times=None, users=None, n: int = 1) -> np.ndarray:
        """Next ``n`` item indices for a batch of sessions, never repeating a played item.

        Parameters
        ----------
        history : ndarray of shape (b, length) int
            Item indices played so far, oldest first (-1 = padding).
        times : ndarray of shape (b, length) float, optional
            Listened fraction of each (default 1).
        users : ndarray of shape (b,), optional
            Not used by these models (they are session-based); part of the policy interface.
        n : int, default=1

        Returns
        -------
        ndarray of shape (b,) int32 for ``n=1``, else (b, n); -1 where nothing is left.
        """
        self._check_fitted()
        h, t = _check_batch(history, times, self.n_items)
        idx, _ = self._next(h, t, users, n)
        return idx[:, 0] if n == 1 else idx


class SessionCooccurrence(_NextTrackBase):
    """Next-track recommender from time-decayed co-occurrence of tracks within sessions.

    Training counts, over all training sessions, every pair of listens ``a`` then ``b`` at most
    ``window`` listens apart::

        C[a, b] += decay^(d - 1) * w_a * w_b        (d = distance, w = listen weight)

    (symmetrised with ``symmetric=True``). The same is counted for the items' groups (artists)
    in ``G``. For a session with history ``h_1..h_L`` (newest last) and listened fractions
    ``t_j`` the score of a candidate ``b`` is::

        s(b) = sum_j r^(L - j) * t'_j * (C[h_j, b] + group_weight * G[g(h_j), g(b)] * p(b)
               + neighbor_weight * N[h_j, b])

    with ``r = recency``, ``t'_j`` the track's weight by ``history_weights``, ``p(b)`` the item's share of its group's listening weight and ``N``
    optional external neighbours (e.g. ``ContentKNN`` or ``ALS`` similar items). Played items
    are never recommended; when no candidate scores above zero the list is filled by overall
    listening weight. Tracks skipped early (small ``t_j``) hardly count: the session's taste
    is what was listened to.

    Parameters
    ----------
    window : int, default=5
        Largest distance between co-occurring listens.
    decay : float, default=0.8
        Weight factor per extra step of distance.
    symmetric : bool, default=True
        Count ``b`` before ``a`` too (tracks that go together in either order).
    recency : float, default=0.9
        Weight factor per step back in the current session.
    group_weight : float, default=0.1
        Weight of the artist-level co-occurrence (0 disables; needs ``item_groups`` in fit).
    group_neighbors : int, default=20
        Artist-level co-occurrence keeps each artist's this many strongest partners.
    neighbor_weight : float, default=0.01
        Weight of external neighbours (needs ``neighbors`` in fit).
    min_weight : float, default=0.0
        Listens with a smaller weight are ignored in training (e.g. 0.1 drops near-skips).
    centered : bool, default=False
        Train on ``max(w - mean_w(session), 0)``: how much more of a track was heard than of
        the session's other tracks. A listener who plays everything through then teaches
        nothing, one who skips a lot teaches what they did not skip. Only for logs whose
        weights vary (listened fractions); with all weights 1 nothing would be learned.
    history_weights : {"time", "centered", "signed"}, default="time"
        How the current session's tracks weigh when scoring: their listened fraction ``t_j``;
        ``t_j`` minus the session's mean fraction clipped at 0; or unclipped, so that tracks
        co-listened with *skipped* tracks are pushed down. The last two need varying
        fractions (with all fractions equal every score is 0 and lists come from the
        fallback order).

    Attributes
    ----------
    item_map_ : IdMap
    cooc_ : csr_matrix of shape (n_items, n_items) float32
    group_cooc_ : csr_matrix of shape (n_groups, n_groups) float32
    item_groups_ : ndarray of shape (n_items,) int32
    group_share_ : ndarray of shape (n_items,) float32
        ``p(b)``.
    neighbors_ : csr_matrix of shape (n_items, n_items) float32
    item_weight_ : ndarray of shape (n_items,) float32
        Total listening weight per item in training.
    fill_order_ : ndarray of shape (n_items,) int32
        Items by decreasing ``item_weight_``.

    Examples
    --------
    >>> from deepcuts.data.sessions import sessionize
    >>> log = pd.DataFrame({"user": [1] * 6, "item": list("abcabc"),
    ...                     "timestamp": [0, 60, 120, 9000, 9060, 9120]})
    >>> model = SessionCooccurrence(window=1, symmetric=False).fit(sessionize(log))
    >>> model.recommend_next([["a"], ["a", "b"]], n=1)["item"].tolist()
    ['b', 'c']
    """

    def __init__(
        self,
        *,
        window: int = 5,
        decay: float = 0.8,
        symmetric: bool = True,
        recency: float = 0.9,
        group_weight: float = 0.1,
        group_neighbors: int = 20,
        neighbor_weight: float = 0.01,
        min_weight: float = 0.0,
        centered: bool = False,
        history_weights: str = "time",
    ):
        self.window = window
        self.decay = decay
        self.symmetric = symmetric
        self.recency = recency
        self.group_weight = group_weight
        self.group_neighbors = group_neighbors
        self.neighbor_weight = neighbor_weight
        self.min_weight = min_weight
        self.centered = centered
        self.history_weights = history_weights

    def get_params(self) -> dict:
        return {
            "window": self.window,
            "decay": self.decay,
            "symmetric": self.symmetric,
            "recency": self.recency,
            "group_weight": self.group_weight,
            "group_neighbors": self.group_neighbors,
            "neighbor_weight": self.neighbor_weight,
            "min_weight": self.min_weight,
            "centered": self.centered,
            "history_weights": self.history_weights,
        }

    def __repr__(self) -> str:
        return (
            f"SessionCooccurrence({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"
        )

    def _check_params(self):
        for name in ("window", "group_neighbors"):
            v = getattr(self, name)
            if not isinstance(v, int | np.integer) or v < 1:
                raise DeepcutsError(f"{name} must be a positive integer, got {v!r}")
        for name in ("decay", "recency"):
            v = getattr(self, name)
            if not 0 < v <= 1:
                raise DeepcutsError(f"{name} must be in (0, 1], got {v!r}")
        if self.history_weights not in ("time", "centered", "signed"):
            raise DeepcutsError(
                "history_weights must be 'time', 'centered' or 'signed', got "
                f"{self.history_weights!r}"
            )
        for name in ("group_weight", "neighbor_weight", "min_weight"):
            if getattr(self, name) < 0:
                raise DeepcutsError(f"{name} must be >= 0, got {getattr(self, name)!r}")

    def fit(self, sessions: Sessions, *, item_groups=None, neighbors=None) -> SessionCooccurrence:
        """Count co-occurrences in ``sessions``.

        Parameters
        ----------
        sessions : Sessions
            Training sessions (:func:`deepcuts.data.sessions.sessionize`).
        item_groups : array-like of shape (n_items,), optional
            Group (artist) of each item of ``sessions.item_map``, any hashable labels; enables
            the artist-level fallback.
        neighbors : sparse matrix of shape (n_items, n_items), optional
            External item-to-item similarities in ``sessions.item_map`` order.
        """
        self._check_params()
        if not isinstance(sessions, Sessions):
            raise DeepcutsError(
                "fit needs deepcuts.data.sessions.Sessions; build them from a listen log with "
                "deepcuts.data.sessions.sessionize(log, gap=...)"
            )
        n = sessions.n_items
        w = np.where(sessions.weights >= self.min_weight, sessions.weights, 0).astype(np.float32)
        if self.centered and len(w):
            lens = sessions.lengths()
            nonempty = lens > 0
            sums = np.zeros(sessions.n_sessions, np.float64)
            sums[nonempty] = np.add.reduceat(w.astype(np.float64), sessions.indptr[:-1][nonempty])
            mean = np.repeat(sums / np.maximum(lens, 1), lens)
            w = np.maximum(w - mean, 0).astype(np.float32)
        r, c, v = K.pair_weights(
            sessions.indptr,
            sessions.items,
            w,
            window=int(self.window),
            decay=float(self.decay),
            symmetric=bool(self.symmetric),
        )
        cooc = sp.csr_matrix((v, (r, c)), shape=(n, n), dtype=np.float32)
        cooc.eliminate_zeros()
        self.cooc_ = cooc
        self.item_weight_ = np.bincount(sessions.items, weights=w, minlength=n).astype(np.float32)
        # most listened first; never-listened items last, by index
        self.fill_order_ = np.lexsort((np.arange(n), -self.item_weight_)).astype(np.int32)
        if item_groups is None:
            groups = np.arange(n, dtype=np.int32)
            self.has_groups_ = False
        else:
            labels = np.asarray(item_groups)
            if labels.shape != (n,):
                raise DeepcutsError(
                    f"item_groups must have one label per item ({n}), got shape {labels.shape}"
                )
            groups = pd.factorize(pd.Series(labels))[0].astype(np.int32)
            self.has_groups_ = True
        self.item_groups_ = groups
        n_groups = int(groups.max()) + 1 if n else 0
        gr = sp.csr_matrix(
            (np.ones(n, np.float32), (np.arange(n), groups)), shape=(n, n_groups)
        )  # item -> group indicator
        gc = sp.csr_matrix(gr.T @ cooc @ gr, dtype=np.float32)
        gc.setdiag(0)  # same-artist pairs: already in C, and repeating an artist is discounted
        gc.eliminate_zeros()
        self.group_cooc_ = K.keep_top_per_row(gc, int(self.group_neighbors))
        gw = np.bincount(groups, weights=self.item_weight_, minlength=n_groups)
        self.group_share_ = np.where(
            gw[groups] > 0, self.item_weight_ / np.where(gw[groups] > 0, gw[groups], 1), 0
        ).astype(np.float32)
        if neighbors is None:
            self.neighbors_ = sp.csr_matrix((n, n), dtype=np.float32)
        else:
            nb = sp.csr_matrix(neighbors, dtype=np.float32)
            if nb.shape != (n, n):
                raise DeepcutsError(f"neighbors must have shape ({n}, {n}), got {nb.shape}")
            self.neighbors_ = nb
        self.item_map_ = sessions.item_map
        self._gr = gr
        log.info(
            "session co-occurrence: %d sessions, %d items, %d item pairs, %d group pairs",
            sessions.n_sessions,
            n,
            self.cooc_.nnz,
            self.group_cooc_.nnz,
        )
        return self

    def _scores(self, h: np.ndarray, t: np.ndarray) -> sp.csr_matrix:
        b, length = h.shape
        if self.history_weights != "time" and length:
            valid = h >= 0
            mean = (t * valid).sum(axis=1, keepdims=True) / np.maximum(
                valid.sum(axis=1, keepdims=True), 1
            )
            t = t - mean
            if self.history_weights == "centered":
                t = np.maximum(t, 0)
            t = t.astype(np.float32)
        age = (length - 1 - np.arange(length)).astype(np.float32)
        w = t * (np.float32(self.recency) ** age)[None, :]
        hw = history_matrix(h, w, self.n_items)
        s = hw @ self.cooc_
        if self.group_weight > 0 and self.has_groups_:
            gs = (hw @ self._gr) @ self.group_cooc_  # (b, n_groups)
            expand = sp.csr_matrix(self._gr.multiply(self.group_share_[:, None]).T)
            s = s + self.group_weight * (gs @ expand)
        if self.neighbor_weight > 0 and self.neighbors_.nnz:
            s = s + self.neighbor_weight * (hw @ self.neighbors_)
        return sp.csr_matrix(s, dtype=np.float32)

    def _next(self, h, t, users, n):
        scores = self._scores(h, t)
        hist = history_matrix(h, np.ones(h.shape, np.float32), self.n_items)
        return K.topn_excluding(scores, hist, n, self.fill_order_)

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> str:
        """Save to ``<path>.npz`` + ``<path>.json`` (atomic, no pickle)."""
        self._check_fitted()
        arrays = {"item_ids": self.item_map_.to_array()}
        for name in ("cooc_", "group_cooc_", "neighbors_"):
            m = getattr(self, name)
            arrays[f"{name}indptr"] = m.indptr
            arrays[f"{name}indices"] = m.indices
            arrays[f"{name}data"] = m.data
        for name in ("item_groups_", "group_share_", "item_weight_", "fill_order_"):
            arrays[name] = getattr(self, name)
        manifest = {
            "class": "SessionCooccurrence",
            "params": self.get_params(),
            "shapes": {k: list(getattr(self, k).shape) for k in ("cooc_", "group_cooc_")},
            "has_groups_": bool(self.has_groups_),
        }
        return str(write_model_files(path, manifest, arrays))

    @classmethod
    def load(cls, path) -> SessionCooccurrence:
        """Load a model saved with :meth:`save`."""
        manifest, a = read_model_files(path)
        if manifest.get("class") != "SessionCooccurrence":
            raise DeepcutsError(
                f"{path}: holds a {manifest.get('class')}, not a SessionCooccurrence"
            )
        m = cls(**manifest["params"])
        m.item_map_ = IdMap(a["item_ids"], name="item")
        n = len(m.item_map_)
        shapes = {"cooc_": (n, n), "neighbors_": (n, n), **manifest["shapes"]}
        for name in ("cooc_", "group_cooc_", "neighbors_"):
            mat = sp.csr_matrix(
                (a[f"{name}data"], a[f"{name}indices"], a[f"{name}indptr"]),
                shape=tuple(shapes.get(name, (n, n))),
            )
            setattr(m, name, mat)
        for name in ("item_groups_", "group_share_", "item_weight_", "fill_order_"):
            setattr(m, name, a[name])
        m.has_groups_ = manifest["has_groups_"]
        n_groups = m.group_cooc_.shape[0]
        m._gr = sp.csr_matrix(
            (np.ones(n, np.float32), (np.arange(n), m.item_groups_)), shape=(n, n_groups)
        )
        return m


class RandomNext(_NextTrackBase):
    """Baseline: a uniformly random track not played in the session.

    Parameters
    ----------
    random_state : int, default=0

    Examples
    --------
    >>> m = RandomNext(random_state=0).fit(IdMap(["a", "b", "c"]))
    >>> m.recommend_next([["a", "b"]], n=1)["item"].tolist()
    ['c']
    """

    def __init__(self, *, random_state: int = 0):
        self.random_state = random_state

    def fit(self, item_map: IdMap) -> RandomNext:
        """Remember the catalogue (``item_map``) and reset the random stream."""
        self.item_map_ = item_map
        self.rng_ = np.random.default_rng(self.random_state)
        return self

    def _next(self, h, t, users, n):
        b = len(h)
        out = self.rng_.integers(0, self.n_items, size=(b, n)).astype(np.int32)
        # redraw the (rare) collisions with the history or within the list, vectorised
        for _ in range(20):
            bad = (out[:, :, None] == h[:, None, :]).any(axis=2)
            for k in range(1, n):  # a later position repeating an earlier one
                bad[:, k] |= (out[:, k : k + 1] == out[:, :k]).any(axis=1)
            if not bad.any():
                break
            out[bad] = self.rng_.integers(0, self.n_items, size=int(bad.sum()))
        return out, np.zeros(out.shape, np.float32)


class PopularNext(_NextTrackBase):
    """Baseline: the most popular tracks not yet played in the session (TopPop).

    Fit on training :class:`Sessions` (popularity = total listening weight) or on an explicit
    order with :meth:`fit_order` (e.g. Botify's ``top_tracks.json``).

    Examples
    --------
    >>> m = PopularNext().fit_order(IdMap(["a", "b", "c"]), [2, 0, 1])
    >>> m.recommend_next([["c"]], n=2)["item"].tolist()
    ['a', 'b']
    """

    def fit(self, sessions: Sessions) -> PopularNext:
        if not isinstance(sessions, Sessions):
            raise DeepcutsError("fit needs deepcuts.data.sessions.Sessions")
        n = sessions.n_items
        weight = np.bincount(sessions.items, weights=sessions.weights, minlength=n)
        self.item_map_ = sessions.item_map
        self.order_ = np.lexsort((np.arange(n), -weight)).astype(np.int32)
        return self

    def fit_order(self, item_map: IdMap, order) -> PopularNext:
        """Use ``order`` (item indices, most popular first) directly."""
        order = np.asarray(order, np.int64)
        if order.ndim != 1 or (len(order) and (order.min() < 0 or order.max() >= len(item_map))):
            raise DeepcutsError("order must be a 1-d array of item indices of item_map")
        self.item_map_ = item_map
        self.order_ = order.astype(np.int32)
        return self

    def _next(self, h, t, users, n):
        b = len(h)
        empty = sp.csr_matrix((b, self.n_items), dtype=np.float32)
        hist = history_matrix(h, np.ones(h.shape, np.float32), self.n_items)
        return K.topn_excluding(empty, hist, n, self.order_)


class StickyArtist(_NextTrackBase):
    """Baseline: another (random) track by the artist of the previous track.

    Falls back to a random track when the artist has no unplayed track left.

    Parameters
    ----------
    random_state : int, default=0

    Examples
    --------
    >>> m = StickyArtist().fit(IdMap(["a1", "a2", "b1"]), ["A", "A", "B"])
    >>> m.recommend_next([["a1"]], n=1)["item"].tolist()
    ['a2']
    """

    def __init__(self, *, random_state: int = 0):
        self.random_state = random_state

    def fit(self, item_map: IdMap, item_groups) -> StickyArtist:
        """``item_groups``: the artist of each item of ``item_map`` (shape (n_items,))."""
        labels = np.asarray(item_groups)
        if labels.shape != (len(item_map),):
            raise DeepcutsError(
                f"item_groups must have one label per item ({len(item_map)}), got {labels.shape}"
            )
        groups = pd.factorize(pd.Series(labels))[0]
        order = np.argsort(groups, kind="stable")
        self.item_map_ = item_map
        self.groups_ = groups.astype(np.int32)
        self.members_ = order.astype(np.int32)  # items grouped by artist
        self.group_ptr_ = np.concatenate([[0], np.cumsum(np.bincount(groups))]).astype(np.int64)
        self.rng_ = np.random.default_rng(self.random_state)
        self._random = RandomNext(random_state=self.random_state).fit(item_map)
        return self

    def _next(self, h, t, users, n):
        b, length = h.shape
        last = h[:, -1] if length else np.full(b, -1)
        out = np.full((b, n), -1, np.int32)
        has = last >= 0
        g = np.where(has, self.groups_[np.maximum(last, 0)], 0)
        lo, hi = self.group_ptr_[g], self.group_ptr_[g + 1]
        size = hi - lo
        for k in range(n):  # n is the list length, not a loop over users
            for _ in range(8):  # a few vectorised draws; artists have few tracks
                need = has & (out[:, k] < 0)
                if not need.any():
                    break
                pick = self.members_[lo + (self.rng_.random(b) * size).astype(np.int64)]
                ok = need & ~(pick[:, None] == h).any(axis=1) & ~(pick[:, None] == out).any(axis=1)
                out[ok, k] = pick[ok]
        missing = out < 0
        if missing.any():
            rows = np.flatnonzero(missing.any(axis=1))
            fill, _ = self._random._next(
                np.concatenate([h[rows], out[rows]], axis=1), None, None, n
            )
            out[rows] = np.where(out[rows] < 0, fill, out[rows])
        return out, np.zeros(out.shape, np.float32)
