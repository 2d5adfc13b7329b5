"""A cap on the number of tracks per artist in a list (track-level data)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from deepcuts.exceptions import DeepcutsError
from deepcuts.models._topk import topk_rows
from deepcuts.rerank._common import _cached, block_items, by_column, row_range

__all__ = ["ArtistCap", "item_artist_codes"]


def item_artist_codes(interactions, column: str = "artist") -> np.ndarray:
    """Artist of each item as int32 codes (``-1`` = unknown), shape (n_items,).

    Read from the item metadata column ``column`` (cached per Interactions); artist names are
    compared after stripping and case folding.
    """
    items = interactions.items
    if items is None or column not in items.columns:
        have = [] if items is None else list(items.columns)
        raise DeepcutsError(
            f"the artist cap needs the item metadata column {column!r} (track-level data); "
            f"this model's items have columns {have}. Load tracks with an artist column or "
            "leave artist_cap unset"
        )

    def make():
        names = items[column]
        key = names.where(names.notna(), None).map(
            lambda v: None if v is None else str(v).strip().casefold() or None
        )
        codes, _ = pd.factorize(key, use_na_sentinel=True)
        return codes.astype(np.int32)

    return _cached(interactions, ("artist_codes", column), make)


class ArtistCap:
    """At most ``max_per_artist`` items of one artist among a list's top positions.

    Walking each user's items from the highest score down, the ``max_per_artist + 1``-th and
    later items of an artist are *demoted* below every other eligible item (keeping their
    order), not removed: a list still has ``n`` items whenever ``n`` are eligible, and over-cap
    items only appear when nothing else is left. Items with unknown artist are never capped.

    Parameters
    ----------
    max_per_artist : int
        Positive cap.
    column : str, default="artist"
        Item metadata column holding the artist (``model.interactions_.items``).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from types import SimpleNamespace
    >>> from deepcuts.data import Interactions
    >>> tracks = pd.DataFrame({"item": ["t1", "t2", "t3"], "artist": ["A", "A", "B"]})
    >>> x = Interactions.from_frame(pd.DataFrame({"user": [0, 0, 0], "item": ["t1", "t2", "t3"],
    ...                                           "count": [1, 1, 1]}), items=tracks)
    >>> ctx = SimpleNamespace(model=SimpleNamespace(interactions_=x), n=2)
    >>> out = ArtistCap(1).rerank(np.array([[3.0, 2.0, 1.0]], np.float32), ctx)
    >>> np.argsort(-out[0]).tolist()  # t2 (second by A) goes below t3
    [0, 2, 1]
    """

    #: only re-orders: reported scores stay the model's (``Recommender.rank_index``)
    reorders_only = True

    def __init__(self, max_per_artist: int = 2, *, column: str = "artist"):
        if (
            isinstance(max_per_artist, bool)
            or not isinstance(max_per_artist, int | np.integer)
            or max_per_artist < 1
        ):
            raise DeepcutsError(
                f"artist_cap must be a positive integer (tracks per artist), got {max_per_artist!r}"
            )
        self.max_per_artist = int(max_per_artist)
        self.column = column

    def __repr__(self) -> str:
        return f"ArtistCap(max_per_artist={self.max_per_artist}, column={self.column!r})"

    def rerank(self, scores: np.ndarray, ctx) -> np.ndarray:
        """Scores with over-cap items demoted, shape (b, C) float32.

        ``C`` is ``n_items`` or the number of candidates (``ctx.candidates``, whose artists
        are gathered by item id).
        """
        out = np.array(scores, dtype=np.float32, copy=True)
        b, width_max = out.shape
        if b == 0 or width_max == 0:
            return out
        artist = item_artist_codes(ctx.model.interactions_, self.column)
        # the artist of each column: (1, n_items) for a dense block, (b, C) for candidates
        col_artist = by_column(artist, block_items(ctx, out))
        n = int(ctx.n)
        lo, hi, _ = row_range(out)
        drop = (hi - lo + 1.0).astype(np.float32)
        rows = np.arange(b)
        width = min(width_max, max(4 * n, n + 50))
        while len(rows):
            cand, _ = topk_rows(out[rows], width)
            a = col_artist[0 if col_artist.shape[0] == 1 else rows[:, None], np.maximum(cand, 0)]
            demote, kept = self._demotions(cand, a, int(artist.max(initial=-1)))
            # rows whose window ran out of capped-in items while more eligible items remain
            # are redone with a wider window; the others are final
            more = (kept < n) & (cand[:, -1] >= 0) & (width < width_max)
            r, c = np.nonzero(demote & ~more[:, None])
            out[rows[r], cand[r, c]] -= drop[rows[r]]
            rows = rows[more]
            width = min(width_max, width * 4)
        return out

    def _demotions(self, cand: np.ndarray, cand_artist: np.ndarray, max_code: int):
        """Over-cap mask (b, w) for columns in score order, and capped-in count per row.

        ``cand_artist`` (b, w) is the artist code of each column of ``cand`` (-1 = unknown).
        """
        b, w = cand.shape
        valid = cand >= 0
        a = np.where(valid, cand_artist, -1).astype(np.int64)
        capped = valid & (a >= 0)
        # occurrence number of each candidate's artist within its row, in score order
        key = np.where(capped, np.arange(b)[:, None] * (max_code + 2) + a, -1).ravel()
        order = np.argsort(key, kind="stable")
        sk = key[order]
        first = np.r_[True, sk[1:] != sk[:-1]]
        start = np.maximum.accumulate(np.where(first, np.arange(len(sk)), 0))
        occurrence = np.empty(len(sk), np.int64)
        occurrence[order] = np.arange(len(sk)) - start
        demote = capped & (occurrence.reshape(b, w) >= self.max_per_artist)
        kept = (valid & ~demote).sum(axis=1)
        return demote, kept
