"""Two kinds of novelty for track data: a new artist, or a new track by an artist already known."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["artist_discovery"]


def artist_discovery(
    rec: np.ndarray, user_items, item_artist: np.ndarray, k: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Share of each list that introduces a new artist, and share that is a new track by a
    known artist.

    For user ``u`` with history ``H_u`` (training tracks) and known artists
    ``A_u = {artist(j) : j in H_u}``, over the list items ``i`` whose artist is known:

    * ``new_artist_u = #{i : artist(i) not in A_u} / #items``: discovery of an artist;
    * ``new_track_u = #{i : artist(i) in A_u, i not in H_u} / #items``: a deeper cut by an
      artist the user already plays.

    A recommended track that is in ``H_u`` counts in neither (the two shares then sum to less
    than 1). Items with unknown artist (code ``-1``) and ``-1`` padding are left out.

    Parameters
    ----------
    rec : ndarray of shape (b, n) int
        Ranked item indices, ``-1`` = no item.
    user_items : sparse matrix of shape (b, n_items)
        The users' training histories, rows aligned with ``rec``.
    item_artist : ndarray of shape (n_items,) int
        Artist code of each item, ``-1`` = unknown
        (:func:`deepcuts.rerank.item_artist_codes`).
    k : int, optional
        Cut-off (default all columns).

    Returns
    -------
    new_artist, new_track : ndarray of shape (b,) float64 in [0, 1]; NaN for empty lists.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> artist = np.array([0, 0, 1, 2])          # tracks 0, 1 by artist 0
    >>> history = sp.csr_matrix([[1, 0, 0, 0]])  # the user knows track 0, hence artist 0
    >>> new_artist, new_track = artist_discovery(np.array([[1, 2, 3, -1]]), history, artist)
    >>> new_artist.round(3).tolist(), new_track.round(3).tolist()
    ([0.667], [0.333])
    """
    rec = np.asarray(rec)[:, : (None if k is None else int(k))]
    item_artist = np.asarray(item_artist, dtype=np.int64)
    ui = sp.csr_matrix(user_items)
    b, n = rec.shape
    if ui.shape[0] != b:
        raise ValueError(f"user_items has {ui.shape[0]} rows, rec has {b}")
    if len(item_artist) != ui.shape[1]:
        raise ValueError(f"item_artist has {len(item_artist)} entries, expected {ui.shape[1]}")
    if b == 0 or n == 0:
        return np.full(b, np.nan), np.full(b, np.nan)
    safe = np.where(rec >= 0, rec, 0)
    art = np.where(rec >= 0, item_artist[safe], -1)
    valid = art >= 0
    n_artists = int(item_artist.max()) + 1 if len(item_artist) else 0
    # users x artists: which artists each user has played
    known_items = item_artist >= 0
    item_to_artist = sp.csr_matrix(
        (
            np.ones(int(known_items.sum())),
            (np.flatnonzero(known_items), item_artist[known_items]),
        ),
        shape=(ui.shape[1], max(n_artists, 1)),
    )
    ua = sp.csr_matrix((ui > 0).astype(np.float64) @ item_to_artist)
    rows = np.broadcast_to(np.arange(b)[:, None], rec.shape)
    artist_known = np.asarray(ua[rows.ravel(), np.maximum(art, 0).ravel()]).reshape(b, n) > 0
    track_known = np.asarray(ui[rows.ravel(), safe.ravel()]).reshape(b, n) > 0
    count = valid.sum(axis=1)
    new_artist = (valid & ~artist_known).sum(axis=1)
    new_track = (valid & artist_known & ~track_known).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (
            np.where(count > 0, new_artist / count, np.nan),
            np.where(count > 0, new_track / count, np.nan),
        )
