"""Filters on users and items: minimum items per user, minimum users per item, k-core."""

from __future__ import annotations

import logging

import numpy as np

from deepcuts.data.interactions import Interactions
from deepcuts.exceptions import DeepcutsError

__all__ = ["filter_interactions"]

log = logging.getLogger(__name__)


def filter_interactions(
    x: Interactions,
    *,
    min_items_per_user: int = 1,
    min_users_per_item: int = 1,
    iterate: bool = False,
    max_rounds: int = 100,
) -> Interactions:
    """Drop users with too few distinct items and items with too few distinct users.

    Parameters
    ----------
    x : Interactions
    min_items_per_user : int, default=1
        Keep users who played at least this many distinct items (2 drops single-artist users).
    min_users_per_item : int, default=1
        Keep items played by at least this many distinct users.
    iterate : bool, default=False
        Repeat both filters until nothing changes (the k-core). Without it, users are filtered
        first and items second, once, so a kept user may end below ``min_items_per_user`` after
        items are dropped.
    max_rounds : int, default=100
        Safety bound on rounds when ``iterate``.

    Returns
    -------
    Interactions
        A new object (re-indexed, metadata and timestamps kept). What was dropped is logged and
        recorded in ``meta["filtered"]``.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"user": ["a", "a", "b", "c", "c"], "item": [1, 2, 1, 1, 3]})
    >>> x = Interactions.from_frame(df, count_col=None)
    >>> y = filter_interactions(x, min_items_per_user=2, min_users_per_item=2, iterate=True)
    >>> y.user_map.ids.tolist(), y.item_map.ids.tolist()
    ([], [])
    >>> filter_interactions(x, min_items_per_user=2).user_map.ids.tolist()
    ['a', 'c']
    """
    for name, v in (
        ("min_items_per_user", min_items_per_user),
        ("min_users_per_item", min_users_per_item),
    ):
        if not isinstance(v, int | np.integer) or v < 0:
            raise DeepcutsError(f"{name} must be a non-negative integer, got {v!r}")
    m = x.matrix
    users = np.ones(x.n_users, dtype=bool)
    items = np.ones(x.n_items, dtype=bool)
    rounds = 0
    while True:
        rounds += 1
        sub = m[users][:, items] if not (users.all() and items.all()) else m
        sub = sub.tocsr()
        sub.eliminate_zeros()
        per_user = np.diff(sub.indptr)
        ok_u = per_user >= min_items_per_user
        users[np.flatnonzero(users)[~ok_u]] = False
        sub = sub[ok_u]
        per_item = np.bincount(sub.indices, minlength=sub.shape[1])
        ok_i = per_item >= min_users_per_item
        items[np.flatnonzero(items)[~ok_i]] = False
        changed = not (ok_u.all() and ok_i.all())
        if not iterate or not changed or rounds >= max_rounds:
            break
    if iterate and changed and rounds >= max_rounds:
        log.warning("k-core filter stopped after %d rounds without converging", rounds)
    y = x.subset(users=users, items=items)
    info = {
        "min_items_per_user": int(min_items_per_user),
        "min_users_per_item": int(min_users_per_item),
        "iterate": bool(iterate),
        "rounds": rounds,
        "dropped_users": int(x.n_users - y.n_users),
        "dropped_items": int(x.n_items - y.n_items),
        "dropped_nnz": int(x.nnz - y.nnz),
    }
    y.meta["filtered"] = info
    log.info(
        "filter: dropped %d of %d users, %d of %d items, %d of %d pairs (%d round(s))",
        info["dropped_users"],
        x.n_users,
        info["dropped_items"],
        x.n_items,
        info["dropped_nnz"],
        x.nnz,
        rounds,
    )
    return y
