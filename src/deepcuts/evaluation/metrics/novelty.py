"""Novelty: how unexpected the recommended items are, measured by their training popularity."""

from __future__ import annotations

import numpy as np

__all__ = ["novelty", "self_information"]


def self_information(item_popularity: np.ndarray, n_users: int) -> np.ndarray:
    """``-log2(max(pop_i, 1) / n_users)`` per item, shape (n_items,) float64.

    An item played by every training user has 0 bits; one played by a single user has
    ``log2(n_users)`` bits. Items unseen in training are treated as played by one user (their
    popularity is clipped to 1) so the value stays finite.

    Examples
    --------
    >>> self_information(np.array([8, 2, 1, 0]), n_users=8).tolist()
    [0.0, 2.0, 3.0, 3.0]
    """
    if int(n_users) < 1:
        raise ValueError(f"n_users must be >= 1, got {n_users!r}")
    pop = np.maximum(np.asarray(item_popularity, dtype=np.float64), 1.0)
    return np.log2(float(n_users) / np.minimum(pop, float(n_users)))


def novelty(rec: np.ndarray, item_popularity: np.ndarray, n_users: int, k: int | None = None):
    """Mean self-information of the recommended items of each list (bits).

    ``novelty_u = mean_{i in L_u} -log2(pop_i / n_users)`` with ``pop_i`` the number of
    *training* users who played ``i`` (Zhou et al. 2010). Ranges over [0, log2(n_users)].

    Parameters
    ----------
    rec : ndarray of shape (b, n) int, ``-1`` = no item
    item_popularity : ndarray of shape (n_items,)
        Distinct training users per item.
    n_users : int
        Number of training users.
    k : int, optional
        Cut-off (default all columns).

    Returns
    -------
    ndarray of shape (b,) float64; NaN for empty lists.

    Examples
    --------
    >>> novelty(np.array([[0, 1], [2, -1]]), np.array([8, 2, 1]), n_users=8).tolist()
    [1.0, 3.0]
    """
    rec = np.asarray(rec)[:, : (None if k is None else int(k))]
    info = self_information(item_popularity, n_users)
    valid = rec >= 0
    vals = np.where(valid, info[np.where(valid, rec, 0)], 0.0)
    n = valid.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, vals.sum(axis=1) / n, np.nan)
