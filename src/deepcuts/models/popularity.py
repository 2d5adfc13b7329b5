"""Most-popular baseline."""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp

from deepcuts.data.interactions import Interactions
from deepcuts.models.base import Recommender

__all__ = ["Popularity"]


class Popularity(Recommender):
    """Recommend the items with the most listeners (or plays) to everyone.

    Parameters
    ----------
    by : {"users", "plays"}, default="users"
        Rank by number of distinct listeners or by total play count.

    Examples
    --------
    >>> from deepcuts.data import load_lastfm2k
    >>> x = load_lastfm2k()
    >>> rec = Popularity().fit(x).recommend(2, n=3)
    >>> len(rec)
    3
    """

    _state_arrays = ("item_scores_",)
    supports_fold_in = True

    def __init__(self, *, by: Literal["users", "plays"] = "users"):
        self.by = by

    def _fit(self, interactions: Interactions) -> None:
        if self.by not in ("users", "plays"):
            raise ValueError(f"by must be 'users' or 'plays', got {self.by!r}")
        pop = interactions.item_popularity() if self.by == "users" else interactions.item_plays()
        # normalise to (0, 1] for comparability across datasets
        self.item_scores_ = (pop / max(pop.max(), 1)).astype(np.float32)

    def _score(self, user_index: np.ndarray, user_items: sp.csr_matrix, **kw) -> np.ndarray:
        return np.broadcast_to(self.item_scores_, (len(user_index), len(self.item_scores_)))

    def _similar_items(self, item_index: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.item_scores_, (len(item_index), len(self.item_scores_)))
