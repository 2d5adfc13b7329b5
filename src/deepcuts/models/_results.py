"""The one result type returned by every ``recommend`` and ``similar_items`` call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

__all__ = ["Recommendation", "Recommendations"]


class Recommendation(NamedTuple):
    """One row of :class:`Recommendations`: what iterating or indexing one position gives."""

    query: object
    """The user id (or the query item of ``similar_items``)."""
    item: object
    name: str | None
    score: float
    rank: int
    persona: int | None


@dataclass(frozen=True, eq=False)
class Recommendations:
    """Ranked items for a batch of queries (users, or items for ``similar_items``), long format.

    All arrays have shape (m,), where m is the total number of recommended items; rows of one
    query are contiguous and ordered by rank. A query gets fewer than ``n`` rows only when fewer
    than ``n`` items are eligible.

    It behaves like a sequence of rows: ``len(recs)``, ``for r in recs`` and ``recs[0]`` give
    :class:`Recommendation` tuples ``(query, item, name, score, rank, persona)``; ``recs[1:3]``
    or a boolean mask give a smaller ``Recommendations``. Indexing is by position, like a
    list; the rows of one user are ``recs.for_user(user)``.

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

    def _row(self, k: int) -> Recommendation:
        return Recommendation(
            self.queries[k].item() if hasattr(self.queries[k], "item") else self.queries[k],
            self.items[k].item() if hasattr(self.items[k], "item") else self.items[k],
            None if self.names is None else str(self.names[k]),
            float(self.scores[k]),
            int(self.ranks[k]),
            None if self.personas is None else int(self.personas[k]),
        )

    def __iter__(self):
        return (self._row(k) for k in range(len(self)))

    def __getitem__(self, key):
        """``recs[k]``: the k-th row (a :class:`Recommendation`); a slice, index array or
        boolean mask: those rows as ``Recommendations``."""
        if isinstance(key, int | np.integer) and not isinstance(key, bool):
            k = int(key)
            if not -len(self) <= k < len(self):
                raise IndexError(f"row {k} out of range for {len(self)} recommendations")
            return self._row(k % len(self))
        if isinstance(key, str):
            raise TypeError(
                "Recommendations are indexed by position; for one user's rows use "
                f"recs.for_user({key!r})"
            )
        return self._take(key)

    def _take(self, sel) -> Recommendations:
        return Recommendations(
            self.queries[sel],
            self.items[sel],
            self.scores[sel],
            self.ranks[sel],
            self.item_index[sel],
            None if self.names is None else self.names[sel],
            None if self.personas is None else self.personas[sel],
            self.query_name,
        )

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
        return self._take(self.queries == query)

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
