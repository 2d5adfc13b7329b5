"""Catalogue coverage: how much of the catalogue the recommendations reach."""

from __future__ import annotations

import numpy as np

__all__ = ["catalogue_coverage"]


def catalogue_coverage(rec: np.ndarray, n_items: int, k: int | None = None) -> float:
    """Share of the catalogue appearing in at least one top-``k`` list.

    Parameters
    ----------
    rec : ndarray of shape (b, n) int
        Ranked item indices, ``-1`` = no item.
    n_items : int
        Catalogue size (denominator).
    k : int, optional
        Cut-off; default all ``n`` columns.

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> catalogue_coverage(np.array([[0, 1], [1, 2], [2, -1]]), n_items=10)
    0.3
    """
    rec = np.asarray(rec)[:, : (None if k is None else int(k))]
    if int(n_items) < 1:
        raise ValueError(f"n_items must be >= 1, got {n_items!r}")
    items = rec[rec >= 0]
    return float(len(np.unique(items)) / int(n_items))
