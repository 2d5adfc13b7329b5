"""Synthetic interaction data with planted structure, for tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from deepcuts.data.interactions import Interactions

__all__ = ["planted_blocks"]


def planted_blocks(
    n_users: int = 120,
    n_items: int = 60,
    n_blocks: int = 3,
    density: float = 0.5,
    noise: float = 0.02,
    random_state: int = 0,
) -> Interactions:
    """Users and items split into ``n_blocks`` taste groups; users play items of their group.

    User ``u`` belongs to block ``u % n_blocks`` and item ``i`` to block ``i % n_blocks``. Each
    user plays a random ``density`` fraction of their block's items (counts 1..20) plus rare noise
    plays elsewhere. User ids are ``"u<k>"``, item ids ``"i<k>"`` with names ``"artist <k>"`` and
    a tag ``"genre<block>"``.

    Examples
    --------
    >>> x = planted_blocks(30, 12, 3, random_state=1)
    >>> x.shape
    (30, 12)
    """
    rng = np.random.default_rng(random_state)
    ub = np.arange(n_users) % n_blocks
    ib = np.arange(n_items) % n_blocks
    same = ub[:, None] == ib[None, :]
    played = (same & (rng.random((n_users, n_items)) < density)) | (
        ~same & (rng.random((n_users, n_items)) < noise)
    )
    # every user plays at least two items of their block
    for b in range(n_blocks):
        members = np.flatnonzero(ib == b)[:2]
        played[np.ix_(ub == b, members)] = True
    u, i = np.nonzero(played)
    counts = rng.integers(1, 21, size=len(u))
    df = pd.DataFrame({"user": [f"u{k}" for k in u], "item": [f"i{k}" for k in i], "count": counts})
    items = pd.DataFrame(
        {
            "item": [f"i{k}" for k in range(n_items)],
            "name": [f"artist {k}" for k in range(n_items)],
            "tags": [[f"genre{b}"] for b in ib],
        }
    )
    x = Interactions.from_frame(df, items=items)
    x.meta["blocks_user"] = {f"u{k}": int(ub[k]) for k in range(n_users)}
    x.meta["blocks_item"] = {f"i{k}": int(ib[k]) for k in range(n_items)}
    return x
