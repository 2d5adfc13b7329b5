"""Shared helpers of the re-rankers: validation, per-model caches and per-row statistics."""

from __future__ import annotations

import math
import weakref

import numpy as np

from deepcuts.exceptions import DeepcutsError

__all__ = ["block_items", "by_column", "check_number", "item_popularity", "row_range"]


def check_number(name: str, value, low: float, high: float, hint: str = "") -> float:
    """``value`` as a float in ``[low, high]``, else a :class:`DeepcutsError` naming ``name``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if isinstance(value, bool) or not math.isfinite(v) or not low <= v <= high:
        extra = f" ({hint})" if hint else ""
        raise DeepcutsError(f"{name} must be a number in [{low:g}, {high:g}]{extra}, got {value!r}")
    return v


#: interactions object -> derived per-item arrays; weak keys so models can be garbage collected
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _cached(interactions, key: str, make):
    per = _CACHE.setdefault(interactions, {})
    if key not in per:
        per[key] = make()
    return per[key]


def item_popularity(interactions) -> np.ndarray:
    """Distinct training users per item, shape (n_items,) int64 (cached per Interactions)."""
    return _cached(interactions, "popularity", interactions.item_popularity)


def row_range(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-row min and max over finite entries and a mask of rows with any, shapes (b,).

    Rows without finite entries get ``lo = hi = 0``.
    """
    finite = np.isfinite(scores)
    has = finite.any(axis=1)
    lo = np.where(finite, scores, np.inf).min(axis=1)
    hi = np.where(finite, scores, -np.inf).max(axis=1)
    lo = np.where(has, lo, 0.0)
    hi = np.where(has, hi, 0.0)
    return lo, hi, has


def block_items(ctx, scores: np.ndarray) -> np.ndarray | None:
    """The candidate ids of a score block (``ctx.candidates``), or None for a dense block.

    Checks that a candidate block has the scores' shape (see
    :class:`~deepcuts.models.RankContext`).
    """
    cand = getattr(ctx, "candidates", None)
    if cand is None:
        return None
    cand = np.asarray(cand)
    if cand.shape != np.shape(scores):
        raise DeepcutsError(
            f"ctx.candidates has shape {cand.shape} but the score block {np.shape(scores)}; "
            "a candidate block's scores are aligned with its candidates"
        )
    return cand


def by_column(values: np.ndarray, cand: np.ndarray | None) -> np.ndarray:
    """Per-item ``values`` (n_items, ...) laid out like a score block's columns.

    Dense block (``cand`` None): ``values[None]`` of shape (1, n_items, ...), broadcasting
    over rows. Candidate block: ``values[cand]`` of shape (b, C, ...), gathered by candidate id
    (pads, ``-1``, take item 0's value: their scores are ``-inf`` anyway).

    >>> by_column(np.array([10, 20, 30]), np.array([[0, 2, -1]])).tolist()
    [[10, 30, 10]]
    >>> by_column(np.array([10, 20, 30]), None).shape
    (1, 3)
    """
    values = np.asarray(values)
    if cand is None:
        return values[None]
    return values[np.maximum(cand, 0)]
