"""The depth knob: deep cuts a listener can trust, calibrated on the catalogue's popularity.

:class:`DepthKnob` takes ``depth`` from 0 (the model's own ranking, unchanged) to 1 (the
deepest lists) and means the same on every data set. Three parts:

* **Evidence.** ``n_i`` = distinct training listeners of item ``i``. Items with ``n_i < floor``
  (default 3) are ineligible once ``depth > 0``; the other items' scores are shrunk toward the
  user's mean score by their support ``n_i / (n_i + shrinkage)``, so one or two listeners'
  worth of evidence does not outrank a well-supported match.
* **Calibration.** The log-popularity of the eligible items is summarised by its mean ``mu``
  and spread ``sigma``; an item's *popularity percentile* is its percentile in that fitted
  log-normal, conditioned on clearing the floor, at a fixed point of its listener-count bin
  (:class:`DepthCatalogue`), so 0 is the floor and 100 the most listened, on every data set. Depth ``d`` sets the target percentile ``T(d) = 100 (1 -
  d)`` and the deep share ``p(d) = (1 + d) / 2`` (:func:`depth_targets`).
* **Ranking.** The list starts with the best match; after it every prefix holds a share
  ``p(d)`` of *deep* items (at or below ``T(d)``), each the best remaining deep item, and the
  other positions take the best remaining eligible items (a prefix quota, FA*IR, Zehlike et
  al. 2017). With ``p >= 1/2`` the
  list's median percentile is at most ``T(d)`` whatever the data set, and the positions left to
  the best matches keep the list about the listener.

``DepthKnob(d)`` (``deep="tail-first"``, the default) fills the deep slots from the
catalogue's long tail first: a share ``d`` of the list (position 1 stays the best match) goes
to eligible long-tail items (:func:`tail_level`), chosen from the row's best deep items by a
blend of the base score and the listener's **taste evidence** (``taste``, default 0.5): how
much the item's training listeners (at most 32) resemble this listener, the mean cosine of
their histories with the listener's (user-kNN evidence, :func:`taste_similarity`), and, where
the catalogue's items carry tags, how close the item's tags are to the listener's
(:func:`item_content`; ``content``, default 0.7, is their share of the evidence). A rare item
is worth recommending when the people who play it play what you play, or when it carries the
tags of what you play: tags do not depend on how few listeners the item has. The deep slots are the
``min(floor(d n), n - 1)`` positions of a list of ``n`` after the first (which is reserved for
the best match by design), so every 0.1 step of ``d`` changes their count for ``n = 20`` (2,
4, ..., 18, 19) while a list of 10 has only 9 such positions for 10 non-zero steps and ``d =
0.9`` and ``1.0`` both fill all of them (identical lists, measured on Last.fm 2K and on
generated data).

``DepthKnob(d, deep="tail")`` is the same arrangement ordered by the base score alone (taste
0): a share ``d`` of the list (growing
from 0, so shallow settings change few positions) goes to the best eligible items of the
catalogue's long tail (outside its 20% most listened items, :func:`tail_level`). It trades
accuracy for held-out deep cuts more efficiently at shallow settings, but its list median
jumps near ``d = 1/2`` instead of following ``T(d)``; see ``docs/rarity.md``.

``depth="mine"`` uses the median percentile of the listener's own history as the target
(calibrated popularity, Steck 2018); ``"mine+0.2"`` goes 0.2 deeper than it. See
``docs/rarity.md`` for the measurements, and how ``depth`` relates to the expert ``rarity``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.special import ndtr

from deepcuts.data.features import tag_matrix
from deepcuts.exceptions import DeepcutsError
from deepcuts.rerank import _depth_kernels as K
from deepcuts.rerank._common import _cached, block_items, item_popularity

__all__ = [
    "DEPTH_RANGE",
    "DepthCatalogue",
    "DepthKnob",
    "depth_catalogue",
    "depth_targets",
    "item_content",
    "item_evidence",
    "parse_depth",
    "tail_level",
    "taste_listeners",
    "taste_similarity",
]

#: valid numeric values of ``depth`` (inclusive); 0 is neutral
DEPTH_RANGE = (0.0, 1.0)
#: default evidence floor: items with fewer training listeners are ineligible
DEFAULT_FLOOR = 3
#: seed of the fixed per-item position within its listener-count bin (DepthCatalogue)
JITTER_SEED = 0
#: share of the catalogue's items that form its head (the rest is the long tail), deep="tail"
HEAD_SHARE = 0.2
#: the arrangements of deep slots (DepthKnob ``deep``); the first is the default
DEEP_MODES = ("tail-first", "calibrated", "tail")
#: default weight of the taste evidence in the deep slots (deep="tail-first")
DEFAULT_TASTE = 0.5
#: at most this many of an item's training listeners make its taste evidence
TASTE_LISTENERS = 32
#: seed of the sample of an item's listeners when it has more than TASTE_LISTENERS
TASTE_SEED = 0
#: default share of the taste evidence given to item content (tags) where the catalogue has it
DEFAULT_CONTENT = 0.7
#: default shrinkage ``k`` of ``n_i / (n_i + k)`` (picked on a validation split, docs/rarity.md)
DEFAULT_SHRINKAGE = 1.0

_MINE = re.compile(r"^\s*mine\s*(?:([+-])\s*([0-9]*\.?[0-9]+)\s*)?$", re.IGNORECASE)
_HINT = 'a number in [0, 1] (0 = neutral, 1 = deepest), "mine" or "mine+0.2"'


def parse_depth(value) -> tuple[str, float]:
    """``depth`` as ``("fixed", d)`` or ``("mine", delta)``; bad values raise naming the knob.

    Examples
    --------
    >>> parse_depth(0.6), parse_depth("0.25"), parse_depth("mine"), parse_depth("mine+0.2")
    (('fixed', 0.6), ('fixed', 0.25), ('mine', 0.0), ('mine', 0.2))
    >>> parse_depth(2)
    Traceback (most recent call last):
    ...
    deepcuts.exceptions.DeepcutsError: depth must be a number in [0, 1] (0 = neutral, 1 = deepest), "mine" or "mine+0.2", got 2
    """
    if isinstance(value, str):
        hit = _MINE.match(value)
        if hit:
            delta = float(hit.group(2) or 0.0) * (-1.0 if hit.group(1) == "-" else 1.0)
            if not -1.0 <= delta <= 1.0:
                raise DeepcutsError(f"depth {value!r}: the step after 'mine' must be in [-1, 1]")
            return "mine", delta
        try:
            v = float(value)
        except ValueError:
            v = math.nan
    elif isinstance(value, bool) or value is None:
        v = math.nan
    else:
        try:
            v = float(value)
        except (TypeError, ValueError):
            v = math.nan
    if not math.isfinite(v) or not DEPTH_RANGE[0] <= v <= DEPTH_RANGE[1]:
        raise DeepcutsError(f"depth must be {_HINT}, got {value!r}")
    return "fixed", v


def depth_targets(depth) -> tuple[np.ndarray, np.ndarray]:
    """Target percentile ``T = 100 (1 - d)`` and deep share ``p = (1 + d) / 2`` (0 at d = 0).

    Examples
    --------
    >>> t, p = depth_targets(np.array([0.0, 0.2, 1.0]))
    >>> t.tolist(), p.tolist()
    ([100.0, 80.0, 0.0], [0.0, 0.6, 1.0])
    """
    d = np.clip(np.asarray(depth, dtype=np.float64), 0.0, 1.0)
    return 100.0 * (1.0 - d), np.where(d > 0, 0.5 * (1.0 + d), 0.0)


@dataclass(frozen=True, eq=False)
class DepthCatalogue:
    """Popularity statistics of a catalogue for one evidence floor.

    Attributes
    ----------
    listeners : ndarray of shape (n_items,) int64
        Distinct training listeners ``n_i``.
    eligible : ndarray of shape (n_items,) bool
        ``n_i >= floor``.
    mu, sigma : float
        Mean and standard deviation of ``log n_i`` over eligible items.
    percentile : ndarray of shape (n_items,) float32
        Popularity percentile among the eligible items (0 for the others): with ``F`` the
        fitted log-normal CDF conditioned on clearing the floor, ``F(x) = (Phi((x - mu) /
        sigma) - Phi(z_f)) / (1 - Phi(z_f))``, ``z_f = (log(floor - 1/2) - mu) / sigma``, an
        item with ``n`` listeners sits at ``100 (F(lo) + v (F(hi) - F(lo)))``, ``lo, hi =
        log(n -/+ 1/2)`` and ``v`` uniform in [0, 1], fixed per item (seed 0): the randomised
        probability integral transform of a count.
    floor_top : float
        Percentile of the upper edge of the floor's bin: targets below it are raised to it,
        so the deepest setting still has deep items (all items at the floor).
    """

    listeners: np.ndarray
    eligible: np.ndarray
    mu: float
    sigma: float
    percentile: np.ndarray
    floor_top: float


def tail_level(catalogue: DepthCatalogue, head_share: float = HEAD_SHARE) -> float:
    """Percentile at or below which the eligible items lie in the catalogue's long tail.

    The head holds the items more listened than the item at rank ``ceil(head_share *
    n_items)`` (rank 1 = most listened; ties with it are in the tail), the usual long-tail cut
    (Abdollahpouri et al. 2019). Returns the largest percentile of an eligible tail item, or
    the top of the floor's bin when every eligible item is in the head.

    Examples
    --------
    >>> pop = np.array([9, 7, 3, 3, 1, 1, 1, 1, 1, 1])  # ten items: the head is the top two
    >>> pct = np.array([90, 70, 20, 30, 0, 0, 0, 0, 0, 0], np.float32)
    >>> cat = DepthCatalogue(pop, pop >= 3, 0.0, 1.0, pct, 10.0)
    >>> tail_level(cat)  # items 1-3 (the item at rank 2 and its ties are in the tail)
    70.0
    """
    # cached per catalogue: a sort of every item's listeners (7 ms at 384k songs) per request
    # was most of a served request's time (issue 15)
    return _cached(catalogue, ("tail_level", float(head_share)),
                   lambda: _tail_level(catalogue, head_share))  # fmt: skip


def _tail_level(catalogue: DepthCatalogue, head_share: float) -> float:
    pop = catalogue.listeners
    rank = int(math.ceil(float(head_share) * len(pop)))
    cut = np.partition(pop, len(pop) - max(rank, 1))[len(pop) - max(rank, 1)]
    tail = catalogue.eligible & (pop <= cut)
    if not tail.any():
        return float(catalogue.floor_top)
    return float(max(catalogue.percentile[tail].max(), catalogue.floor_top))


def depth_catalogue(interactions, floor: int = DEFAULT_FLOOR) -> DepthCatalogue:
    """:class:`DepthCatalogue` of ``interactions`` (cached per Interactions and floor).

    Examples
    --------
    >>> import pandas as pd
    >>> from deepcuts.data import Interactions
    >>> x = Interactions.from_frame(pd.DataFrame({"user": [0, 1, 2, 0, 1, 0],
    ...                                           "item": [0, 0, 0, 1, 1, 2], "count": 1}))
    >>> c = depth_catalogue(x, floor=2)
    >>> c.eligible.tolist(), round(c.mu, 3), c.percentile.astype(float).round(1).tolist()
    ([True, True, False], 0.896, [80.7, 14.5, 0.0])
    """

    def make():
        pop = np.asarray(item_popularity(interactions), dtype=np.int64)
        eligible = pop >= floor
        if not eligible.any():
            raise DeepcutsError(
                f"no item has at least floor={floor} training listeners; lower the floor "
                f"(the most listened item has {int(pop.max(initial=0))})"
            )
        lp = np.log(pop[eligible].astype(np.float64))
        mu, sigma = float(lp.mean()), float(lp.std())
        sigma = sigma if sigma > 1e-9 else 1.0
        base = ndtr((math.log(floor - 0.5) - mu) / sigma)

        def cdf(log_n):  # fitted CDF conditioned on clearing the floor, in [0, 1]
            return np.clip((ndtr((log_n - mu) / sigma) - base) / max(1.0 - base, 1e-12), 0, 1)

        # randomised probability integral transform for counts (Brockwell 2007): an item with
        # n listeners sits at a fixed point of its bin [n - 1/2, n + 1/2], so percentiles are
        # continuous and a target percentile selects that share of the catalogue on any data
        n = np.maximum(pop, 1).astype(np.float64)
        lo, hi = cdf(np.log(n - 0.5)), cdf(np.log(n + 0.5))
        v = np.random.default_rng(JITTER_SEED).random(len(pop))
        pct = np.where(eligible, 100.0 * (lo + v * (hi - lo)), 0.0).astype(np.float32)
        floor_top = float(100.0 * cdf(math.log(floor + 0.5)))
        return DepthCatalogue(pop, eligible, mu, sigma, pct, floor_top)

    return _cached(interactions, ("depth_catalogue", int(floor)), make)


def _unit(name: str, value, meaning: str) -> float:
    """``value`` as a float in [0, 1]; anything else raises naming the argument."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if isinstance(value, bool) or not 0.0 <= v <= 1.0:
        raise DeepcutsError(f"{name} must be a number in [0, 1] ({meaning}), got {value!r}")
    return v


class DepthKnob:
    """Re-rank toward deep cuts with evidence, calibrated on catalogue popularity.

    See the module docstring for the model; in short, for ``depth = d > 0``: items with fewer
    than ``floor`` training listeners are ineligible, scores are shrunk by support, and every
    prefix of the top ``n`` holds at least a share ``(1 + d) / 2`` of the best items at or
    below the ``100 (1 - d)``-th popularity percentile. ``depth = 0`` returns the scores
    unchanged.

    Parameters
    ----------
    depth : float in [0, 1] or str, default=0
        0 = neutral, 1 = deepest; ``"mine"`` = the popularity level of the listener's own
        history (``ctx.user_items``), ``"mine+0.2"`` = 0.2 deeper than it (``"mine-0.1"``
        shallower), clipped to [0, 1] per listener.
    floor : int, default=3
        Fewest training listeners an item needs (>= 1); lower it to let thinner items in.
    shrinkage : float, default=1.0
        ``k`` of the support weight ``n_i / (n_i + k)`` (>= 0; 0 = no shrinkage).
    deep : {"tail-first", "calibrated", "tail"}, default="tail-first"
        ``"tail-first"``: a share ``d`` of the list from the catalogue's long tail
        (:func:`tail_level`), picked by base score blended with taste evidence.
        ``"calibrated"``: a share ``(1 + d) / 2`` of the list at or below percentile ``100 (1 -
        d)``. ``"tail"``: as ``"tail-first"`` by base score only. With ``"mine"``, the long-tail
        arrangements take the long-tail share of the listener's history (plus the step).
    taste : float in [0, 1], default=0.5
        ``deep="tail-first"``: weight of the taste evidence against the base score (both
        min-max scaled over the row's deep pool) when filling the deep slots.
    content : float in [0, 1], default=0.7
        ``deep="tail-first"``, catalogues whose items carry tags (item metadata column
        ``tags``): share of the taste evidence that is the similarity of the item's tags to the
        listener's (:func:`item_content`); the rest is the co-listener evidence. 0 = listeners
        only; without tags it has no effect.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from types import SimpleNamespace
    >>> from deepcuts.data import Interactions
    >>> rows = [(u, 0) for u in range(8)] + [(u, 1) for u in range(4)] + [(u, 2) for u in range(3)]
    >>> frame = pd.DataFrame(rows + [(0, 3)], columns=["user", "item"]).assign(count=1)
    >>> x = Interactions.from_frame(frame)
    >>> ctx = SimpleNamespace(model=SimpleNamespace(interactions_=x), n=2, user_items=None)
    >>> s = np.array([[4.0, 3.0, 2.0, 9.0]], np.float32)  # item 3: one listener
    >>> # calibrated, depth 1: the best match first, then the deep slot takes item 2 (3
    >>> # listeners: the floor); item 3 (one listener) is ineligible
    >>> np.argsort(-DepthKnob(1.0, deep="calibrated").rerank(s, ctx)[0])[:2].tolist()
    [0, 2]
    >>> DepthKnob(0.0).rerank(s, ctx).tolist()  # neutral: unchanged
    [[4.0, 3.0, 2.0, 9.0]]
    """

    #: the arranged positions carry made-up levels; lists report the scores before the knob
    #: (items under the floor are still left out: they are ``-inf`` in the order)
    reorders_only = True

    def __init__(
        self,
        depth=0.0,
        *,
        floor: int = DEFAULT_FLOOR,
        shrinkage=DEFAULT_SHRINKAGE,
        deep: str = DEEP_MODES[0],
        taste=DEFAULT_TASTE,
        content=DEFAULT_CONTENT,
    ):
        if deep not in DEEP_MODES:
            raise DeepcutsError(f"deep must be one of {DEEP_MODES}, got {deep!r}")
        self.deep = deep
        self.taste = _unit("taste", taste, "0 = base score only, 1 = taste evidence only")
        self.content = _unit(
            "content",
            content,
            "share of the taste evidence from the items' tags; 0 = co-listeners only",
        )
        self.mode, self.value = parse_depth(depth)
        self.depth = depth if self.mode == "mine" else self.value
        if (
            isinstance(floor, bool)
            or not isinstance(floor, int | np.integer)
            or not 1 <= int(floor) <= 1_000_000
        ):
            raise DeepcutsError(
                f"floor must be an integer >= 1 (fewest training listeners), got {floor!r}"
            )
        self.floor = int(floor)
        try:
            k = float(shrinkage)
        except (TypeError, ValueError):
            k = math.nan
        if not math.isfinite(k) or k < 0:
            raise DeepcutsError(f"shrinkage must be a number >= 0, got {shrinkage!r}")
        self.shrinkage = k

    def __repr__(self) -> str:
        d = f"{self.depth!r}" if self.mode == "mine" else f"{self.value:g}"
        extra = f", deep={self.deep!r}" if self.deep != DEEP_MODES[0] else ""
        if self.deep == "tail-first" and self.taste != DEFAULT_TASTE:
            extra += f", taste={self.taste:g}"
        if self.deep == "tail-first" and self.content != DEFAULT_CONTENT:
            extra += f", content={self.content:g}"
        return f"DepthKnob(depth={d}, floor={self.floor}, shrinkage={self.shrinkage:g}{extra})"

    @property
    def neutral(self) -> bool:
        """True when the knob leaves every list unchanged (``depth=0``)."""
        return self.mode == "fixed" and self.value == 0.0

    def catalogue(self, interactions) -> DepthCatalogue:
        """The :class:`DepthCatalogue` this knob uses for ``interactions``."""
        return depth_catalogue(interactions, self.floor)

    def row_depths(self, ctx, b: int) -> np.ndarray:
        """Depth of each of the ``b`` rows, shape (b,) float64 in [0, 1]."""
        if self.mode == "fixed":
            return np.full(b, self.value)
        cat = self.catalogue(ctx.model.interactions_)
        if self.deep in ("tail", "tail-first"):
            return np.clip(history_tail_share(ctx.user_items, cat) + self.value, 0, 1)
        return np.clip(1.0 - history_percentile(ctx.user_items, cat) / 100.0 + self.value, 0, 1)

    def weights(self, interactions) -> np.ndarray:
        """Support weights ``n_i / (n_i + shrinkage)``, shape (n_items,) float32."""
        cat = self.catalogue(interactions)

        def make():
            n = cat.listeners.astype(np.float64)
            if self.shrinkage == 0:
                return np.ones(len(n), np.float32)
            return (n / (n + self.shrinkage)).astype(np.float32)

        return _cached(interactions, ("depth_weights", self.floor, self.shrinkage), make)

    def rerank(self, scores: np.ndarray, ctx) -> np.ndarray:
        """Re-scored block of shape (b, C) float32; ``-inf`` entries stay ``-inf``.

        ``C`` is ``n_items`` or the number of candidates (``ctx.candidates``): the kernel reads
        each column's listeners and percentile by item id, and the user's mean score (the
        shrinkage prior) is taken over the block's eligible entries.
        """
        scores = np.asarray(scores, dtype=np.float32)
        if self.neutral or scores.shape[0] == 0:
            return scores
        cand = block_items(ctx, scores)
        x = ctx.model.interactions_
        cat = self.catalogue(x)
        d = self.row_depths(ctx, scores.shape[0])
        if self.deep == "calibrated":
            target, share = depth_targets(d)
            target = np.maximum(target, cat.floor_top)
        else:
            target, share = np.full(len(d), tail_level(cat)), d
        if self.deep != "tail-first":
            return K.depth_rows(
                scores, cat.eligible, cat.percentile, self.weights(x), target, share,
                int(ctx.n), cand,
            )  # fmt: skip
        history = _history(ctx, scores.shape[0], x.shape[1])
        return K.tail_first_rows(
            scores, cat.eligible, cat.percentile, self.weights(x), target, share, int(ctx.n),
            deep_pool(int(ctx.n)), self.taste, history, taste_listeners(x), _train_csr(x),
            _item_users(x), cand, item_content(x), self.content,
        )  # fmt: skip


#: deep items the tail-first arrangement weighs for a list of ``n``: ``max(DEEP_POOL * n, 40)``
DEEP_POOL = 4


def deep_pool(n: int) -> int:
    """Size of the deep pool whose taste evidence is computed for a list of ``n`` items."""
    return max(DEEP_POOL * int(n), 40)


def _kernel_csr(m: sp.csr_matrix) -> sp.csr_matrix:
    """``m`` with int64 indptr and int32 indices, the kernels' types: a cached matrix is then
    passed without a per-request copy (``_depth_kernels._csr_arrays``)."""
    m.indptr = np.ascontiguousarray(m.indptr, dtype=np.int64)
    m.indices = np.ascontiguousarray(m.indices, dtype=np.int32)
    return m


def _train_csr(interactions) -> sp.csr_matrix:
    return _cached(interactions, "csr", lambda: _kernel_csr(sp.csr_matrix(interactions.matrix)))


def _item_users(interactions) -> sp.csr_matrix:
    """Every item's training listeners, shape (n_items, n_users) (cached per Interactions)."""
    return _cached(interactions, "item_users",
                   lambda: _kernel_csr(sp.csr_matrix(_train_csr(interactions).T)))  # fmt: skip


def item_content(interactions) -> sp.csr_matrix | None:
    """Unit-length tf-idf tag vectors of the items, shape (n_items, n_tags) float32, or None.

    From the item metadata column ``tags`` (lists of tags; untagged items get empty rows);
    ``None`` when the catalogue has no tags. A tag carried by ``df`` of the ``n`` items weighs
    ``log(n / df)``, so a tag every item carries says nothing. Cached per Interactions.

    Examples
    --------
    >>> import pandas as pd
    >>> from deepcuts.data import Interactions
    >>> plays = pd.DataFrame({"user": [0, 0, 1], "item": [0, 1, 2], "count": 1})
    >>> item_content(Interactions.from_frame(plays)) is None
    True
    >>> tags = pd.DataFrame({"item": [0, 1, 2], "tags": [["rock", "indie"], ["rock"], []]})
    >>> x = Interactions.from_frame(plays, items=tags)
    >>> item_content(x).toarray().astype(float).round(3).tolist()  # rock: 2 of 3 items
    [[0.346, 0.938], [1.0, 0.0], [0.0, 0.0]]
    """

    def make():
        items = getattr(interactions, "items", None)
        if items is None or "tags" not in items.columns:
            return None
        t = sp.csr_matrix(tag_matrix(items["tags"].tolist()), dtype=np.float64)
        if t.nnz == 0:
            return None
        df = np.maximum(np.asarray(t.getnnz(axis=0)), 1)
        t = sp.csr_matrix(t @ sp.diags(np.log(t.shape[0] / df)))
        norm = np.sqrt(np.asarray(t.multiply(t).sum(axis=1)).ravel())
        t = sp.csr_matrix(sp.diags(np.where(norm > 0, 1.0 / np.where(norm > 0, norm, 1), 0)) @ t)
        t.eliminate_zeros()
        return _kernel_csr(t.astype(np.float32))

    return _cached(interactions, "item_content", make)


def _history(ctx, b: int, n_items: int) -> sp.csr_matrix:
    """The rows' histories (``ctx.user_items``), or empty rows when the context has none."""
    ui = getattr(ctx, "user_items", None)
    if ui is None:
        return sp.csr_matrix((b, n_items), dtype=np.float32)
    ui = sp.csr_matrix(ui)
    ui.sort_indices()
    return ui


def taste_listeners(interactions, k: int = TASTE_LISTENERS) -> sp.csr_matrix:
    """At most ``k`` training listeners of each item (a seeded sample of the larger items').

    Returns a pattern matrix of shape (n_items, n_users), cached per Interactions: row ``i``
    holds the listeners ``L_i`` whose histories make the item's taste evidence
    (:func:`taste_similarity`). Items with at most ``k`` listeners keep all of them.

    Examples
    --------
    >>> import pandas as pd
    >>> from deepcuts.data import Interactions
    >>> x = Interactions.from_frame(pd.DataFrame({"user": [0, 1, 2, 0], "item": [0, 0, 0, 1],
    ...                                           "count": 1}))
    >>> taste_listeners(x, k=2).getnnz(axis=1).tolist()
    [2, 1]
    """

    def make():  # the item's listeners in user order, a seeded sample of k when more
        return _kernel_csr(K.sample_rows(_item_users(interactions), k, TASTE_SEED))

    return _cached(interactions, ("taste_listeners", int(k)), make)


def taste_similarity(interactions, items, history) -> np.ndarray:
    """Taste evidence of ``items`` for listeners with ``history`` (the knob's ``taste`` term).

    For item ``i`` and listener ``u``: the mean cosine similarity between the listener's
    history ``H_u`` and the histories of the item's training listeners ``L_i`` (at most 32,
    :func:`taste_listeners`): ``e_ui = 1/|L_i| sum_v |H_v ∩ H_u| / sqrt(|H_v| |H_u|)``
    (user-kNN evidence, Herlocker et al. 1999). 0 = none of its listeners shares anything with
    the listener; 1 = they all played exactly what the listener played.

    Parameters
    ----------
    interactions : Interactions
        The model's training data.
    items : int array of shape (b, c)
        Items per listener (-1 = none).
    history : sparse matrix of shape (b, n_items)
        The listeners' plays.

    Returns
    -------
    ndarray of shape (b, c) float32

    Examples
    --------
    >>> import pandas as pd, scipy.sparse as sp
    >>> from deepcuts.data import Interactions
    >>> x = Interactions.from_frame(pd.DataFrame({"user": [0, 0, 1, 1, 2], "item": [0, 1, 0, 2, 2],
    ...                                           "count": 1}))
    >>> # item 1's one listener (user 0) played items 0, 1; the listener played item 0
    >>> e = taste_similarity(x, np.array([[1, 2]]), sp.csr_matrix([[1, 0, 0]]))
    >>> [round(float(v), 3) for v in e[0]]  # item 2: users 1 (cosine 0.707) and 2 (0)
    [0.707, 0.354]
    """
    items = np.asarray(items, dtype=np.int64)
    hist = sp.csr_matrix(history)
    hist.sort_indices()
    return K.taste_evidence(
        items, hist, taste_listeners(interactions), _train_csr(interactions),
        _item_users(interactions),
    )  # fmt: skip


def history_percentile(user_items, catalogue: DepthCatalogue) -> np.ndarray:
    """Median fitted popularity percentile of each user's played items, shape (b,) float64.

    Users without history get 100 (the neutral end: ``depth="mine"`` leaves them as they are).

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> cat = DepthCatalogue(np.array([1, 2, 3]), np.ones(3, bool), 0.0, 1.0,
    ...                      np.array([10.0, 50.0, 90.0], np.float32), 10.0)
    >>> history_percentile(sp.csr_matrix([[1, 1, 1], [0, 0, 0], [0, 5, 1]]), cat).tolist()
    [50.0, 100.0, 70.0]
    """
    if user_items is None:
        raise DeepcutsError('depth="mine" needs the listener\'s history (ctx.user_items)')
    ui = sp.csr_matrix(user_items)
    b = ui.shape[0]
    lengths = np.diff(ui.indptr)
    rows = np.repeat(np.arange(b), lengths)
    vals = catalogue.percentile[ui.indices].astype(np.float64)
    order = np.lexsort((vals, rows))
    vals = vals[order]
    start = ui.indptr[:-1]
    lo = start + np.maximum(lengths - 1, 0) // 2
    hi = start + lengths // 2
    has = lengths > 0
    out = np.full(b, 100.0)
    out[has] = 0.5 * (vals[lo[has]] + vals[hi[has]])
    return out


def history_tail_share(user_items, catalogue: DepthCatalogue) -> np.ndarray:
    """Share of each user's played eligible items in the catalogue's long tail, shape (b,).

    Users without an eligible played item get 0 (``deep="tail"``, ``depth="mine"``: unchanged).

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> pop = np.array([9, 7, 3, 3, 1, 1, 1, 1, 1, 1])  # ten items: the head is the top two
    >>> pct = np.array([90, 70, 20, 30, 0, 0, 0, 0, 0, 0], np.float32)
    >>> cat = DepthCatalogue(pop, pop >= 3, 0.0, 1.0, pct, 10.0)
    >>> history_tail_share(sp.csr_matrix([[1, 0, 1, 1] + [0] * 6, [0] * 9 + [1]]), cat).tolist()
    [0.6666666666666666, 0.0]
    """
    if user_items is None:
        raise DeepcutsError('depth="mine" needs the listener\'s history (ctx.user_items)')
    ui = sp.csr_matrix(user_items)
    level = tail_level(catalogue)
    ok = catalogue.eligible[ui.indices]
    deep = ok & (catalogue.percentile[ui.indices] <= level)
    rows = np.repeat(np.arange(ui.shape[0]), np.diff(ui.indptr))
    n_ok = np.bincount(rows[ok], minlength=ui.shape[0])
    n_deep = np.bincount(rows[deep], minlength=ui.shape[0])
    return n_deep / np.maximum(n_ok, 1)


def item_evidence(interactions, item: int, history, *, floor: int = DEFAULT_FLOOR, n: int = 3):
    """The evidence behind recommending ``item`` to a listener ("why this deep cut").

    Parameters
    ----------
    interactions : Interactions
        The model's training data.
    item : int
        Internal item index.
    history : sparse matrix of shape (1, n_items)
        The listener's plays.
    floor : int, default=3
        The depth knob's evidence floor.
    n : int, default=3
        How many of the listener's items to name.

    Returns
    -------
    dict
        ``listeners`` (training listeners of the item), ``percentile`` (fitted popularity
        percentile, :class:`DepthCatalogue`), ``eligible`` (``listeners >= floor``),
        ``co_listeners`` (its listeners who also played something the listener played) and
        ``shared`` (up to ``n`` ``(item index, count)``: the listener's items most often
        played by those co-listeners, most first), ``similarity`` (the taste evidence
        :func:`taste_similarity` that the knob's ``taste`` term weighs) and ``tags`` (up to
        ``n`` of the item's tags that the listener's own items carry, the most played first;
        empty without a ``tags`` column: the content evidence, :func:`item_content`).

    Examples
    --------
    >>> import pandas as pd, scipy.sparse as sp
    >>> from deepcuts.data import Interactions
    >>> x = Interactions.from_frame(pd.DataFrame({"user": [0, 0, 1, 1, 2], "item": [0, 1, 0, 1, 1],
    ...                                           "count": 1}))
    >>> e = item_evidence(x, 1, sp.csr_matrix([[1, 0]]), floor=2)
    >>> e["listeners"], e["co_listeners"], e["shared"], e["similarity"], e["tags"]
    (3, 2, [(0, 2)], 0.4714, [])
    """
    cat = depth_catalogue(interactions, floor)
    csc = _cached(interactions, "csc", lambda: interactions.matrix.tocsc())
    who = csc.indices[csc.indptr[item] : csc.indptr[item + 1]]
    played = sp.csr_matrix(history).indices
    co = (interactions.matrix[who][:, played] > 0).tocsc()
    per_played = np.diff(co.indptr)
    order = np.lexsort((played, -per_played))[: int(n)]
    return {
        "listeners": int(cat.listeners[item]),
        "percentile": round(float(cat.percentile[item]), 2),
        "eligible": bool(cat.eligible[item]),
        "co_listeners": int((co.tocsr().getnnz(axis=1) > 0).sum()),
        "shared": [(int(played[k]), int(per_played[k])) for k in order if per_played[k] > 0],
        "similarity": round(float(taste_similarity(interactions, [[item]], history)[0, 0]), 4),
        "tags": _shared_tags(interactions, item, history, int(n)),
    }


def _shared_tags(interactions, item: int, history, n: int) -> list[str]:
    """The item's tags that the listener's items carry, by ``log(1 + plays)`` weight."""
    items = getattr(interactions, "items", None)
    if items is None or "tags" not in items.columns:
        return []
    mine = items["tags"].iloc[int(item)]
    if not isinstance(mine, list | tuple | np.ndarray) or not len(mine):
        return []
    h = sp.csr_matrix(history)
    weight = dict.fromkeys((str(t) for t in mine), 0.0)
    for j, plays in zip(h.indices, h.data, strict=True):
        tags = items["tags"].iloc[int(j)]
        if isinstance(tags, list | tuple | np.ndarray):
            for t in tags:
                if str(t) in weight:
                    weight[str(t)] += math.log1p(max(float(plays), 0.0))
    shared = sorted((t for t in weight if weight[t] > 0), key=lambda t: -weight[t])
    return shared[:n]
