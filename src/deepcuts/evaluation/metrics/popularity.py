"""Popularity bias of recommendations: average recommendation popularity and Gini of exposure."""

from __future__ import annotations

import numpy as np

__all__ = ["arp", "exposure", "gini_exposure", "popularity_share"]


def popularity_share(item_popularity: np.ndarray, n_users: int) -> np.ndarray:
    """Share of (training) users who played each item: ``pop_i / n_users``, shape (n_items,)."""
    if int(n_users) < 1:
        raise ValueError(f"n_users must be >= 1, got {n_users!r}")
    return np.asarray(item_popularity, dtype=np.float64) / float(n_users)


def arp(rec: np.ndarray, item_popularity: np.ndarray, n_users: int, k: int | None = None):
    """Average recommendation popularity of each list.

    ``ARP_u = mean_{i in L_u} pop_i / n_users`` with ``pop_i`` the number of *training* users
    who played item ``i``: the mean share of listeners who already know the recommended items
    (Abdollahpouri et al. 2019, normalised by the number of users so it lies in [0, 1]).

    Parameters
    ----------
    rec : ndarray of shape (b, n) int, ``-1`` = no item
    item_popularity : ndarray of shape (n_items,)
        Distinct training users per item (``Interactions.item_popularity()``).
    n_users : int
        Number of training users.
    k : int, optional
        Cut-off (default all columns).

    Returns
    -------
    ndarray of shape (b,) float64 in [0, 1]; NaN for empty lists.

    Examples
    --------
    >>> arp(np.array([[0, 1], [2, -1]]), np.array([10, 5, 1]), n_users=10).tolist()
    [0.75, 0.1]
    """
    rec = np.asarray(rec)[:, : (None if k is None else int(k))]
    share = popularity_share(item_popularity, n_users)
    valid = rec >= 0
    vals = np.where(valid, share[np.where(valid, rec, 0)], 0.0)
    n = valid.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, vals.sum(axis=1) / n, np.nan)


def exposure(rec: np.ndarray, n_items: int, k: int | None = None) -> np.ndarray:
    """How many top-``k`` lists contain each item, shape (n_items,) int64."""
    rec = np.asarray(rec)[:, : (None if k is None else int(k))]
    return np.bincount(rec[rec >= 0].astype(np.int64), minlength=int(n_items))


def gini_exposure(rec: np.ndarray, n_items: int, k: int | None = None) -> float:
    """Gini coefficient of item exposure over the whole catalogue.

    With ``e_(1) <= ... <= e_(n)`` the sorted exposure counts of all ``n = n_items`` items,
    ``G = sum_j (2j - n - 1) e_(j) / (n * sum_j e_(j))``: 0 when every item is recommended
    equally often, close to 1 when all exposure goes to one item (at most ``(n - 1) / n``).
    Items never recommended count with exposure 0.

    Returns
    -------
    float in [0, 1]; NaN when nothing was recommended.

    Examples
    --------
    >>> gini_exposure(np.array([[0, 1], [1, 0]]), n_items=2)
    0.0
    >>> gini_exposure(np.array([[0], [0]]), n_items=4)
    0.75
    """
    e = np.sort(exposure(rec, n_items, k)).astype(np.float64)
    n = len(e)
    total = e.sum()
    if total == 0:
        return float("nan")
    j = np.arange(1, n + 1, dtype=np.float64)
    return float(((2 * j - n - 1) * e).sum() / (n * total))
