"""Genre fit: do the recommended items carry the tags of the listener's own top artists?"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from deepcuts.data.features import tag_matrix

__all__ = ["genre_fit", "tag_matrix"]


def genre_fit(
    rec: np.ndarray,
    user_items,
    tags: sp.csr_matrix,
    k: int | None = None,
    *,
    top_artists: int = 10,
    top_tags: int = 10,
) -> np.ndarray:
    """Share of each list's tagged items that carry one of the listener's own top tags.

    The listener's top tags: over their ``top_artists`` most played training items, each tag
    weighted by the item's play count, the ``top_tags`` heaviest (ties by lower tag index).
    ``fit_u = #{i in L_u tagged, tags(i) ∩ top_u != {}} / #{i in L_u tagged}``.

    Parameters
    ----------
    rec : ndarray of shape (b, n) int, ``-1`` = no item
    user_items : sparse matrix of shape (b, n_items)
        Training play counts, rows aligned with ``rec``.
    tags : csr_matrix of shape (n_items, n_tags)
        :func:`tag_matrix`.
    k : int, optional
        Cut-off (default all columns).

    Returns
    -------
    ndarray of shape (b,) float64 in [0, 1]; NaN when no list item (or no played item) is
    tagged.

    Examples
    --------
    >>> tags = tag_matrix([["rock"], ["rock", "pop"], ["jazz"], [], ["pop"]])
    >>> history = sp.csr_matrix([[5, 1, 0, 0, 0]])  # top tags: rock, pop
    >>> genre_fit(np.array([[2, 4, 3]]), history, tags, top_tags=2).tolist()  # 3 untagged
    [0.5]
    """
    rec = np.asarray(rec)[:, : (None if k is None else int(k))]
    ui = sp.csr_matrix(user_items, dtype=np.float64)
    tags = sp.csr_matrix(tags, dtype=np.float64)
    b = rec.shape[0]
    # keep each user's top_artists most played items
    keep = np.zeros(ui.nnz, bool)
    for_row = np.repeat(np.arange(b), np.diff(ui.indptr))
    order = np.lexsort((ui.indices, -ui.data, for_row))
    pos = np.arange(ui.nnz) - ui.indptr[for_row[order]]
    keep[order[pos < int(top_artists)]] = True
    top = sp.csr_matrix((ui.data * keep, ui.indices, ui.indptr), shape=ui.shape)
    weight = np.asarray((top @ tags).todense())  # (b, n_tags)
    n_tags = weight.shape[1]
    rank = np.argsort(np.lexsort((np.tile(np.arange(n_tags), (b, 1)), -weight), axis=1), axis=1)
    mine = (rank < int(top_tags)) & (weight > 0)  # (b, n_tags)
    valid = rec >= 0
    safe = np.where(valid, rec, 0)
    tagged = np.asarray(tags.getnnz(axis=1) > 0)[safe] & valid
    # per list item: does it carry one of the user's top tags?
    hits = np.zeros(rec.shape, bool)
    for c in range(rec.shape[1]):  # n columns (<= 100), vectorised over users
        it = sp.csr_matrix(tags[safe[:, c]])
        rows = np.repeat(np.arange(b), np.diff(it.indptr))
        got = np.zeros(b, bool)
        np.logical_or.at(got, rows, mine[rows, it.indices])
        hits[:, c] = got
    n = tagged.sum(axis=1)
    has_top = mine.any(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n > 0) & has_top, (hits & tagged).sum(axis=1) / n, np.nan)
