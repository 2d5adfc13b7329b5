"""The discovery knob: move recommendations between popular and rare items.

Two re-rankers read the *training* popularity of each item, ``pop_i`` = number of distinct
training users who played item ``i`` (``model.interactions_.item_popularity()``):

* :class:`RarityKnob` - one scalar ``rarity`` that multiplies every score by a power of the
  item's frequency (the founding design): ``1`` is neutral, below ``1`` favours rare items,
  above ``1`` favours popular ones.
* :class:`ObscurityBand` - keep only items whose popularity percentile lies in a band, e.g.
  ``ObscurityBand(60, 90)``; continuous, unlike fixed easy/medium/hard modes.

See ``docs/rarity.md`` for the definitions, the measured trade-off curves and the goal.
"""

from __future__ import annotations

import warnings

import numpy as np

from deepcuts.exceptions import DeepcutsError, EmptyListWarning
from deepcuts.rerank._common import (
    _cached,
    block_items,
    by_column,
    check_number,
    item_popularity,
    row_range,
)

__all__ = [
    "BAND_RANGE",
    "RARITY_RANGE",
    "ObscurityBand",
    "RarityKnob",
    "item_frequency",
    "popularity_percentiles",
]

#: valid values of ``rarity`` (inclusive); 1 is neutral
RARITY_RANGE = (-3.0, 3.0)
#: valid popularity percentiles of a band (inclusive)
BAND_RANGE = (0.0, 100.0)
#: floor of the shifted score, as a share of the row's score range (see RarityKnob)
SHIFT_EPS = 1e-3


def item_frequency(item_popularity: np.ndarray, n_users: int) -> np.ndarray:
    """Item frequency ``f_i = max(pop_i, 1) / n_users`` in (0, 1], shape (n_items,) float64.

    Items no training user played count as played by one so that ``log f_i`` stays finite.

    Examples
    --------
    >>> item_frequency(np.array([4, 1, 0]), n_users=4).tolist()
    [1.0, 0.25, 0.25]
    """
    if int(n_users) < 1:
        raise DeepcutsError(f"n_users must be >= 1, got {n_users!r}")
    pop = np.maximum(np.asarray(item_popularity, dtype=np.float64), 1.0)
    return np.minimum(pop, float(n_users)) / float(n_users)


def popularity_percentiles(item_popularity: np.ndarray) -> np.ndarray:
    """Popularity percentile of each item: the share (in %) of items at most as popular.

    ``pct_i = 100 * #{j : pop_j <= pop_i} / n_items``; the most popular item is at 100, items
    tied in popularity share one percentile.

    Examples
    --------
    >>> popularity_percentiles(np.array([1, 1, 5, 9])).tolist()
    [50.0, 50.0, 75.0, 100.0]
    """
    pop = np.asarray(item_popularity)
    if pop.size == 0:
        return np.zeros(0, np.float64)
    at_most = np.searchsorted(np.sort(pop), pop, side="right")
    return 100.0 * at_most.astype(np.float64) / pop.size


class RarityKnob:
    """Multiply scores by a power of item frequency: ``s'_ui = s~_ui * f_i ** (rarity - 1)``.

    ``f_i = max(pop_i, 1) / n_users`` is the share of training users who played item ``i``
    (:func:`item_frequency`). ``rarity = 1`` leaves the ranking unchanged (the scores are
    returned as they are); ``rarity < 1`` divides by frequency and so favours rare items
    (``rarity = 0`` ranks by score per unit of frequency); ``rarity > 1`` favours popular items.

    A power of frequency only re-ranks consistently when scores are positive (a negative score
    times a larger factor gets *worse*), so the knob works on a positive, order-preserving
    version ``s~`` of each user's scores, in log space:

    * if every eligible score of the row is positive, ``s~ = s`` (the founding design exactly);
    * otherwise ``s~ = s - lo + eps * (hi - lo)`` with ``lo, hi`` the row's smallest and largest
      eligible score and ``eps = 1e-3`` (``s~ = 1`` when ``hi = lo``).

    The returned block is ``log s~ + (rarity - 1) * log f`` (float32, ``-inf`` kept), which has
    the same per-row order as ``s~ * f ** (rarity - 1)``. Because the returned score is linear
    in ``rarity`` with slope ``log f_i``, the sum of ``log f_i`` over any top-n list can only go
    down as ``rarity`` decreases: lowering the knob lowers the (geometric) mean popularity of
    every list monotonically.

    Parameters
    ----------
    rarity : float
        In :data:`RARITY_RANGE` ``[-3, 3]``; 1 is neutral, < 1 favours rare, > 1 popular.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> from deepcuts.data import Interactions
    >>> import pandas as pd
    >>> x = Interactions.from_frame(pd.DataFrame({"user": [0, 1, 2, 0], "item": [0, 0, 0, 1],
    ...                                           "count": [1, 1, 1, 1]}))
    >>> ctx = SimpleNamespace(model=SimpleNamespace(interactions_=x))
    >>> s = np.array([[2.0, 1.0]], np.float32)  # item 0: 3 of 3 users, item 1: 1 of 3
    >>> RarityKnob(1.0).rerank(s, ctx).tolist()   # neutral
    [[2.0, 1.0]]
    >>> np.exp(RarityKnob(0.0).rerank(s, ctx)).round(2).tolist()  # 2 * 1**-1, 1 * (1/3)**-1
    [[2.0, 3.0]]
    """

    def __init__(self, rarity: float = 1.0):
        self.rarity = check_number(
            "rarity", rarity, *RARITY_RANGE, hint="1 = neutral, < 1 favours rare, > 1 popular"
        )

    def __repr__(self) -> str:
        return f"RarityKnob(rarity={self.rarity:g})"

    def log_frequency(self, interactions) -> np.ndarray:
        """``log f_i`` of every item, shape (n_items,) float64 (cached per Interactions)."""
        return _cached(
            interactions,
            "log_frequency",
            lambda: np.log(item_frequency(item_popularity(interactions), interactions.n_users)),
        )

    def rerank(self, scores: np.ndarray, ctx) -> np.ndarray:
        """Re-scored block of shape (b, C) float32; ``-inf`` entries stay ``-inf``.

        ``C`` is ``n_items`` or the number of candidates (``ctx.candidates``, whose item
        frequencies are gathered by id).
        """
        scores = np.asarray(scores, dtype=np.float32)
        if self.rarity == 1.0:
            return scores
        cand = block_items(ctx, scores)
        logf = self.log_frequency(ctx.model.interactions_).astype(np.float32)
        out = shifted_log(scores)
        out += np.float32(self.rarity - 1.0) * by_column(logf, cand)
        return out


def shifted_log(scores: np.ndarray) -> np.ndarray:
    """``log s~`` per row (see :class:`RarityKnob`), float32; ``-inf`` stays ``-inf``.

    Examples
    --------
    >>> np.exp(shifted_log(np.array([[2.0, 1.0], [1.0, -1.0]], np.float32))).astype(float).round(3).tolist()
    [[2.0, 1.0], [2.002, 0.002]]
    """
    s = np.asarray(scores, dtype=np.float32)
    lo, hi, _ = row_range(s)
    positive = lo > 0
    span = (hi - lo).astype(np.float64)
    shift = np.where(positive, 0.0, -lo + SHIFT_EPS * span).astype(np.float32)
    out = s + shift[:, None]  # one float32 block; -inf stays -inf
    flat = ~positive & (span <= 0)
    out[flat] = np.where(np.isfinite(s[flat]), np.float32(1.0), -np.inf)
    # float32 rounding can bring the row minimum to 0 after the shift; keep it positive
    floor = np.maximum(SHIFT_EPS * span, 1e-30).astype(np.float32)
    eligible = out > -np.inf
    np.maximum(out, np.where(positive, 0.0, floor).astype(np.float32)[:, None], out=out,
               where=eligible)  # fmt: skip
    with np.errstate(divide="ignore", invalid="ignore"):
        np.log(out, out=out, where=eligible)
    return out


class ObscurityBand:
    """Keep only items whose popularity percentile lies in ``[low, high]``.

    The percentile of item ``i`` is the share (in %) of catalogue items at most as popular as
    ``i`` (:func:`popularity_percentiles`), so ``ObscurityBand(60, 90)`` keeps the items more
    popular than 60% of the catalogue and no more popular than 90% of it. Other items become
    ineligible (``-inf``); when fewer than ``n`` items of a user lie in the band the list is
    shorter. Items tied in popularity share one percentile: on Last.fm 2K the 61% of artists
    with a single listener all sit at the 60.6th percentile.

    Parameters
    ----------
    low, high : float
        Percentiles with ``0 <= low < high <= 100``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from types import SimpleNamespace
    >>> from deepcuts.data import Interactions
    >>> x = Interactions.from_frame(pd.DataFrame({"user": [0, 1, 0, 0], "item": [0, 0, 1, 2],
    ...                                           "count": [1, 1, 1, 1]}))
    >>> ctx = SimpleNamespace(model=SimpleNamespace(interactions_=x))
    >>> ObscurityBand(0, 70).rerank(np.ones((1, 3), np.float32), ctx).tolist()
    [[-inf, 1.0, 1.0]]
    """

    def __init__(self, low: float = 0.0, high: float = 100.0):
        self.low = check_number("band low", low, *BAND_RANGE, hint="a popularity percentile")
        self.high = check_number("band high", high, *BAND_RANGE, hint="a popularity percentile")
        if not self.low < self.high:
            raise DeepcutsError(
                f"band must have low < high (percentiles in [0, 100]), got {low!r}:{high!r}"
            )

    def __repr__(self) -> str:
        return f"ObscurityBand(low={self.low:g}, high={self.high:g})"

    def mask(self, interactions) -> np.ndarray:
        """Boolean (n_items,): items inside the band."""
        pct = _cached(
            interactions,
            "percentiles",
            lambda: popularity_percentiles(item_popularity(interactions)),
        )
        return (pct >= self.low) & (pct <= self.high)

    def rerank(self, scores: np.ndarray, ctx) -> np.ndarray:
        """Scores with items outside the band set to ``-inf``, shape (b, C) float32.

        ``C`` is ``n_items`` or the number of candidates (``ctx.candidates``).
        """
        out = np.array(scores, dtype=np.float32, copy=True)
        x = ctx.model.interactions_
        inside = self.mask(x)
        cand = block_items(ctx, out)
        if cand is None:
            out[:, ~inside] = -np.inf
        else:
            out[~inside[np.maximum(cand, 0)]] = -np.inf
        if not inside.any():
            pct = _cached(x, "percentiles", lambda: popularity_percentiles(item_popularity(x)))
            below, above = pct[pct < self.low], pct[pct > self.high]
            near, fix = [], []
            if len(above):
                near.append(f"{above.min():.1f}th")
                fix.append(f"{self.low:g}:{np.ceil(above.min()):g}")
            if len(below):
                near.append(f"{below.max():.1f}th")
                fix.append(f"{np.floor(below.max()):g}:{self.high:g}")
            warnings.warn(
                f"band {self.low:g}:{self.high:g} holds no item, so every list is empty: items "
                f"tied in popularity share one percentile, and the nearest percentiles of this "
                f"catalogue are the {' and the '.join(near) or 'none'}; widen the band, e.g. "
                f"{' or '.join(fix) or '0:100'}",
                EmptyListWarning,
                stacklevel=2,
            )
        elif len(out):
            empty = ~np.isfinite(out).any(axis=1) & np.isfinite(scores).any(axis=1)
            if empty.any():
                warnings.warn(
                    f"band {self.low:g}:{self.high:g} leaves {int(empty.sum())} of {len(out)} "
                    "user(s) no eligible item (their list is empty); widen the band",
                    EmptyListWarning,
                    stacklevel=2,
                )
        return out
