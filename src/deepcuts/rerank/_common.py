"""Shared helpers of the re-rankers: validation, per-model caches and per-row statistics."""

from __future__ import annotations

import math
import weakref

import numpy as np

from deepcuts.exceptions import DeepcutsError

__all__ = ["check_number", "item_popularity", "row_range"]


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
