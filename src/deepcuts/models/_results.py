"""The one result type returned by every ``recommend`` and ``similar_items`` call."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Recommendations"]


@dataclass(frozen=True, eq=False)
class Recommendations:
    """Ranked items for a batch of queries (users, or items for ``similar_items``), long format.

    All arrays have shape (m,), where m is the total number of recommended items; rows of one
    query are contiguous and ordered by rank. A query gets fewer than ``n`` rows only when fewer
    than ``n`` items are eligible.

    Attributes
    ----------
    queries : ndarray
        External id of the user (or query item) of each row.
    items : ndarray
        External item ids.
    scores : ndarray of float32
        Final ranking scores (after re-ranking).
    ranks : ndarray of int32
        1-based rank within the query.
    item_index : ndarray of int32
        Internal item indices.
    names : ndarray of str, optional
        Item display names.
    personas : ndarray of int16, optional
        Persona (0-based) that produced each item, for persona models.
    """

    queries: np.ndarray
    items: np.ndarray
    scores: np.ndarray
    ranks: np.ndarray
    item_index: np.ndarray
    names: np.ndarray | None = None
    personas: np.ndarray | None = None
    query_name: str = "user"

    def __len__(self) -> int:
        return len(self.items)

    def to_frame(self) -> pd.DataFrame:
        """A DataFrame with columns ``user`` (or ``query``), item, [name], score, rank, [persona]."""
        cols = {self.query_name: self.queries, "item": self.items}
        if self.names is not None:
            cols["name"] = self.names
        cols["score"] = self.scores
        cols["rank"] = self.ranks
        if self.personas is not None:
            cols["persona"] = self.personas
        return pd.DataFrame(cols)

    def for_query(self, query) -> Recommendations:
        """Rows of one user (or query item)."""
        mask = self.queries == query
        return Recommendations(
            self.queries[mask],
            self.items[mask],
            self.scores[mask],
            self.ranks[mask],
            self.item_index[mask],
            None if self.names is None else self.names[mask],
            None if self.personas is None else self.personas[mask],
            self.query_name,
        )

    for_user = for_query

    def item_lists(self) -> dict:
        """``{query: [item, ...]}`` in rank order."""
        out: dict = {}
        for q, it in zip(self.queries.tolist(), self.items.tolist()):
            out.setdefault(q, []).append(it)
        return out

    def index_matrix(self, n: int, fill: int = -1) -> np.ndarray:
        """Internal item indices as an (n_queries, n) array padded with ``fill``.

        Queries are in order of first appearance.
        """
        _, first, inv = np.unique(self.queries, return_index=True, return_inverse=True)
        order = np.argsort(first)
        rank_of = np.empty_like(order)
        rank_of[order] = np.arange(len(order))
        rows = rank_of[inv]
        out = np.full((len(order), n), fill, dtype=np.int64)
        keep = self.ranks <= n
        out[rows[keep], self.ranks[keep] - 1] = self.item_index[keep]
        return out
