"""The ``Recommender`` base class: one interface for every model.

Models *score*; ranking takes the top ``n`` of the scores after masking (played items, allow- and
block-lists) and after any re-rankers. A re-ranker is any object with a method
``rerank(scores, ctx) -> scores`` mapping a (b, C) float32 score block to another of the same
shape (``-inf`` = not eligible); :mod:`deepcuts.rerank` provides them.

The block's columns are either the whole catalogue (``ctx.candidates is None``, C = n_items,
column j = item j) or *candidates*: ``ctx.candidates`` is a (b, C) int32 array of item indices,
ascending per row and padded with -1 at the end, and column j of row r scores item
``candidates[r, j]`` (issue 15: on a 384k-song catalogue an approximate index proposes a few
hundred candidates per user and the re-rankers work on those, never on a dense row). Re-rankers
gather item statistics (popularity, listeners, vectors) by candidate id; the dense block is the
special case ``candidates[r] = arange(n_items)`` and gives the same lists.
:func:`candidate_block` builds a block from an index's answer, :func:`rank_candidates` ranks it.
"""

from __future__ import annotations

import inspect
import json
import logging
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np
import pandas as pd
import scipy.sparse as sp

from deepcuts._fileio import json_default
from deepcuts.data.idmap import IdMap
from deepcuts.data.interactions import Interactions, as_interactions
from deepcuts.exceptions import (
    DeepcutsError,
    NotFittedError,
    UnknownIdError,
    UnknownItemsWarning,
)
from deepcuts.models._io import _paths, read_model_files, write_model_files
from deepcuts.models._results import Recommendations
from deepcuts.models._topk import topk_rows

__all__ = [
    "RankContext",
    "Recommender",
    "Reranker",
    "apply_rerankers",
    "candidate_block",
    "load_model",
    "rank_candidates",
    "top_n",
]

log = logging.getLogger(__name__)

#: keywords users bring from other libraries (implicit, RecTools, LensKit) -> deepcuts' name
_ALIASES = {
    "N": "n",
    "k": "n",
    "n_recs": "n",
    "filter_already_liked_items": "filter_played",
    "filter_viewed": "filter_played",
    "filter_items": "exclude",
    "items_to_exclude": "exclude",
    "items_to_recommend": "items",
    "whitelist": "items",
    "user_items": "recommend_history(history) for a listener outside the training data",
    "recalculate_user": "recommend_history(history) (folds the history in)",
    "show_progress": "the constructor's show_progress (where the model has one)",
    "callback": "nothing (deepcuts has no training callbacks)",
}


def _unknown_keywords(cls_name: str, method: str, bad, valid) -> DeepcutsError:
    hints = [f"use {_ALIASES[k]} instead of {k!r}" for k in sorted(bad) if k in _ALIASES]
    return DeepcutsError(
        f"{cls_name}.{method}() got unknown keyword(s) {sorted(bad)}"
        + (f" ({'; '.join(hints)})" if hints else "")
        + f"; valid keywords: {', '.join(sorted(valid))}"
    )


_REGISTRY: dict[str, type] = {}


@dataclass(frozen=True, eq=False)
class RankContext:
    """What a re-ranker may look at besides the scores.

    Attributes
    ----------
    model : Recommender
        The fitted model (``model.interactions_`` gives popularity, item names; factor models
        expose ``item_factors_``).
    user_index : ndarray of shape (b,) int32
        Internal user indices; -1 for users folded in from a history.
    user_items : csr_matrix of shape (b, n_items)
        The users' histories.
    n : int
        Requested list length.
    candidates : ndarray of shape (b, C) int32 or None, default=None
        The items the score block's columns stand for: ascending per row, ``-1`` pads at the
        end of a row (their scores are ``-inf``). None: the columns are the whole catalogue.
    """

    model: Recommender
    user_index: np.ndarray
    user_items: sp.csr_matrix
    n: int
    candidates: np.ndarray | None = None


class Reranker(Protocol):
    """Maps a (b, C) score block to a re-ranked one of the same shape (see the module doc)."""

    def rerank(self, scores: np.ndarray, ctx: RankContext) -> np.ndarray: ...


def apply_rerankers(scores: np.ndarray, rerankers, ctx) -> tuple[np.ndarray, np.ndarray]:
    """Run ``rerankers`` in order; returns (order, values), both (b, n_items) float32.

    ``order`` ranks the items (the last re-ranker's output). ``values`` are the scores to
    *report*: a re-ranker that only re-orders (``reorders_only = True``: MMR diversity, the
    artist cap) moves items by writing made-up levels into the scores, so the reported values
    stay those before it (the model's scores, after the rarity knob and the band). Issue 14:
    a diversified list reports the model's real scores, which then need not decrease with rank.
    """
    order = values = scores
    for r in rerankers:
        order = np.asarray(r.rerank(order, ctx), dtype=np.float32)
        if not getattr(r, "reorders_only", False):
            values = order
    return order, values


def top_n(order: np.ndarray, values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``n`` of ``order`` per row: (b, n) column indices (-1 padded) and their ``values``."""
    idx, val = topk_rows(order, n)
    if values is not order:
        taken = np.take_along_axis(values, np.maximum(idx, 0), axis=1)
        val = np.where(idx >= 0, taken, val).astype(np.float32)
    return idx, val


def candidate_block(candidates, scores) -> tuple[np.ndarray, np.ndarray]:
    """A candidate block from an index's answer: ids ascending per row, -1 pads last.

    Parameters
    ----------
    candidates : array-like of shape (b, C) int
        Item indices in any order (an index returns them best first); ``-1`` = no item.
        Each item at most once per row.
    scores : array-like of shape (b, C) float
        Their scores; non-finite scores and pads become ``-inf``.

    Returns
    -------
    candidates : ndarray of shape (b, C) int32
    scores : ndarray of shape (b, C) float32, aligned with ``candidates``.

    Examples
    --------
    >>> c, s = candidate_block([[7, -1, 2]], [[0.5, 9.0, 0.25]])
    >>> c.tolist(), s.tolist()
    ([[2, 7, -1]], [[0.25, 0.5, -inf]])
    """
    cand = np.asarray(candidates)
    vals = np.asarray(scores, dtype=np.float32)
    if cand.ndim != 2 or cand.shape != vals.shape:
        raise DeepcutsError(
            f"candidates and scores must be 2-D arrays of one shape (b, C), got {cand.shape} "
            f"and {vals.shape}"
        )
    big = np.iinfo(np.int64).max
    key = np.where(cand >= 0, cand.astype(np.int64), big)
    order = np.argsort(key, axis=1, kind="stable")
    key = np.take_along_axis(key, order, axis=1)
    cand = np.where(key == big, -1, key).astype(np.int32)
    vals = np.take_along_axis(vals, order, axis=1)
    vals[~((cand >= 0) & np.isfinite(vals))] = -np.inf
    return cand, vals


def _mask_block(scores, candidates, n_items, user_items, allow, block) -> None:
    """Set played (``user_items`` rows), not-allowed and blocked items to ``-inf``, in place."""
    b = scores.shape[0]
    if user_items is not None and user_items.nnz:
        rows = np.repeat(np.arange(b, dtype=np.int64), np.diff(user_items.indptr))
        if candidates is None:
            scores[rows, user_items.indices] = -np.inf
        else:  # played (row, item) keys looked up among the candidates' keys
            played = np.sort(rows * n_items + user_items.indices)
            keys = np.arange(b, dtype=np.int64)[:, None] * n_items + candidates
            pos = np.minimum(np.searchsorted(played, keys), len(played) - 1)
            scores[(played[pos] == keys) & (candidates >= 0)] = -np.inf
    if allow is None and (block is None or not len(block)):
        return
    keep = np.zeros(n_items, bool)
    if allow is None:
        keep[:] = True
    else:
        keep[allow] = True
    if block is not None and len(block):
        keep[block] = False
    if candidates is None:
        scores[:, ~keep] = -np.inf
    else:
        scores[~keep[np.maximum(candidates, 0)]] = -np.inf


def rank_candidates(
    model,
    user_index,
    user_items,
    n: int,
    candidates,
    scores,
    *,
    filter_played: bool = True,
    allow=None,
    block=None,
    rerankers: Sequence[Reranker] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``n`` items of a score block after the masks and the re-rankers.

    The one ranking step of the dense and the candidate paths (see the module docstring).

    Parameters
    ----------
    model : Recommender
        The fitted model (the re-rankers' ``ctx.model``).
    user_index : ndarray of shape (b,) int32
        Internal user indices (-1 = folded in from a history).
    user_items : csr_matrix of shape (b, n_items)
        Histories: masked when ``filter_played``, and the re-rankers' ``ctx.user_items``.
    n : int
        List length.
    candidates : ndarray of shape (b, C) int32 or None
        From :func:`candidate_block`; None: ``scores`` covers every item.
    scores : ndarray of shape (b, C) float32
        Exact scores (a copy is modified; ``-inf`` = ineligible).
    filter_played, allow, block
        As in :meth:`Recommender.rank_index`.
    rerankers : sequence of Reranker
        Applied in order (:func:`apply_rerankers`).

    Returns
    -------
    idx : ndarray of shape (b, n) int64
        Item indices, best first, ``-1`` padded.
    val : ndarray of shape (b, n) float32
        Their reported scores.
    """
    scores = np.array(scores, dtype=np.float32, copy=True)
    scores[~np.isfinite(scores)] = -np.inf
    b = scores.shape[0]
    n_items = model.n_items
    if candidates is not None:
        candidates = np.asarray(candidates, dtype=np.int32)
        if candidates.shape != scores.shape:
            raise DeepcutsError(
                f"candidates {candidates.shape} and scores {scores.shape} must have one shape"
            )
    elif scores.shape[1] != n_items:
        raise DeepcutsError(f"a dense score block needs {n_items} columns, got {scores.shape}")
    if not isinstance(user_items, sp.csr_matrix):
        user_items = sp.csr_matrix(user_items)
    _mask_block(scores, candidates, n_items, user_items if filter_played else None, allow, block)
    values = scores
    if rerankers:
        ctx = RankContext(model, np.asarray(user_index, np.int32), user_items, n, candidates)
        scores, values = apply_rerankers(scores, rerankers, ctx)
    idx, val = top_n(scores, values, n)
    if candidates is not None:
        idx = np.where(idx >= 0, np.take_along_axis(candidates, np.maximum(idx, 0), axis=1), -1)
        idx = idx.astype(np.int64)
    if candidates is not None and idx.shape[1] < n:  # fewer candidates than n: pad to n
        pad = n - idx.shape[1]
        idx = np.hstack([idx, np.full((b, pad), -1, np.int64)])
        val = np.hstack([val, np.full((b, pad), -np.inf, np.float32)])
    return idx, val


class Recommender:
    """Base class of all deepcuts models (scikit-learn style estimator).

    Subclasses store keyword-only hyperparameters in ``__init__``, implement ``_fit`` and
    ``_score`` (and ``_similar_items`` where meaningful) and list learned arrays in
    ``_state_arrays`` so that :meth:`save` / :func:`load_model` round-trip them.
    """

    _state_arrays: ClassVar[tuple[str, ...]] = ()
    _state_scalars: ClassVar[tuple[str, ...]] = ()
    supports_fold_in: ClassVar[bool] = False
    #: model-specific keywords that ``recommend`` passes to scoring (e.g. ``persona``)
    _score_options: ClassVar[tuple[str, ...]] = ()
    _recommend_keywords: ClassVar[tuple[str, ...]] = (
        "n", "filter_played", "items", "exclude", "rerankers", "missing", "batch_size",
    )  # fmt: skip

    def _check_score_options(self, score_kw: dict, method: str = "recommend") -> None:
        """Unknown keywords raise instead of being ignored (issue 14)."""
        bad = set(score_kw) - set(self._score_options)
        if bad:
            # options starting with "_" are internal (a model calling its own base class)
            valid = set(self._recommend_keywords) | {
                o for o in self._score_options if not o.startswith("_")
            }
            if method == "recommend_history":
                valid = (valid - {"missing", "batch_size"}) | {"user_id", "missing_items"}
            raise _unknown_keywords(type(self).__name__, method, bad, valid)

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        _REGISTRY[cls.__name__] = cls

    # ------------------------------------------------------------------ params
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]

    def get_params(self) -> dict[str, Any]:
        """Hyperparameters as a dict."""
        return {k: getattr(self, k) for k in self._param_names()}

    def set_params(self, **params) -> Recommender:
        """Set hyperparameters; unknown names raise ``ValueError``."""
        valid = set(self._param_names())
        for k, v in params.items():
            if k not in valid:
                raise ValueError(
                    f"{type(self).__name__} has no parameter {k!r}; valid: {sorted(valid)}"
                )
            setattr(self, k, v)
        return self

    def clone(self) -> Recommender:
        """An unfitted copy with the same hyperparameters."""
        return type(self)(**self.get_params())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        interactions,
        *,
        user_col: str = "user",
        item_col: str = "item",
        count_col: str | None = None,
        **kw,
    ) -> Recommender:
        """Fit from scratch on users x items play counts. Returns self.

        Parameters
        ----------
        interactions : Interactions, scipy.sparse matrix or DataFrame
            :class:`~deepcuts.data.Interactions`; a sparse matrix of shape (n_users, n_items)
            whose row and column indices are the user and item ids; or a long DataFrame with
            one row per (user, item) and columns ``user``, ``item`` and optionally ``count``.
        user_col, item_col, count_col : str
            Column names of a DataFrame (``count_col`` default: ``"count"`` when present,
            else each row is one play).

        Examples
        --------
        >>> import scipy.sparse as sp
        >>> from deepcuts.models import Popularity
        >>> m = Popularity().fit(sp.csr_matrix([[1, 0, 3], [0, 0, 2]]))
        >>> m.recommend(1, n=2).items.tolist()  # ids are the column indices
        [0, 1]
        """
        if kw:
            raise _unknown_keywords(
                type(self).__name__,
                "fit",
                kw,
                {"interactions", "user_col", "item_col", "count_col"},
            )
        interactions = as_interactions(
            interactions, user_col=user_col, item_col=item_col, count_col=count_col
        )
        if interactions.nnz == 0:
            raise DeepcutsError("cannot fit on an empty interaction matrix")
        self._fit(interactions)
        self.interactions_ = interactions
        return self

    def _fit(self, interactions: Interactions) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not hasattr(self, "interactions_"):
            raise NotFittedError(
                f"this {type(self).__name__} instance is not fitted yet; call fit first"
            )

    @property
    def n_items(self) -> int:
        self._check_fitted()
        return self.interactions_.n_items

    # ------------------------------------------------------------------ scoring
    def _score(self, user_index: np.ndarray, user_items: sp.csr_matrix, **kw) -> np.ndarray:
        """Scores of shape (b, n_items) float32 for internal users (-1 = fold-in from history)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def _personas_for(
        self, user_index: np.ndarray, user_items: sp.csr_matrix, item_index: np.ndarray, **kw
    ) -> np.ndarray | None:
        """Persona (b, k) that produced each recommended item; None for single-vector models."""
        return None

    def _similar_items(self, item_index: np.ndarray) -> np.ndarray:
        raise DeepcutsError(f"{type(self).__name__} does not provide similar_items")

    def score_index(
        self, user_index: np.ndarray, user_items: sp.csr_matrix | None = None, **kw
    ) -> np.ndarray:
        """Raw scores for internal user indices, shape (b, n_items) float32."""
        self._check_fitted()
        user_index = np.asarray(user_index, dtype=np.int32)
        if user_items is None:
            user_items = self.interactions_.matrix[user_index]
        return np.asarray(self._score(user_index, sp.csr_matrix(user_items), **kw), np.float32)

    def _user_rows(self, users, missing: str) -> tuple[np.ndarray, np.ndarray]:
        ids = np.atleast_1d(np.asarray(users, dtype=object if _looks_str(users) else None))
        idx = self.interactions_.user_map.index(ids, missing=missing)
        keep = idx >= 0
        # the map's own ids: recommend("2") answers for user 2 when the ids are integers
        return self.interactions_.user_map.external(idx[keep]), idx[keep]

    def recommend(
        self,
        users,
        n: int = 10,
        *,
        filter_played: bool = True,
        items: Iterable | None = None,
        exclude: Iterable | None = None,
        rerankers: Sequence[Reranker] = (),
        missing: str = "raise",
        batch_size: int = 1024,
        **score_kw,
    ) -> Recommendations:
        """Top-``n`` items for one user or many (external ids in and out).

        Parameters
        ----------
        users : id or array-like of ids
            External user ids, shape (b,) or a scalar.
        n : int, default=10
            Items per user; fewer only if fewer are eligible.
        filter_played : bool, default=True
            Leave out items the user already played.
        items : iterable of item ids, optional
            Allow-list: rank only these items.
        exclude : iterable of item ids, optional
            Block-list: never recommend these.
        rerankers : sequence of Reranker, default=()
            Applied in order to the masked scores before the top ``n`` are taken.
        missing : {"raise", "ignore"}, default="raise"
            What to do with unknown users (``ignore`` drops them).
        **score_kw
            Model-specific scoring options (e.g. ``persona=`` for persona models).

        Returns
        -------
        Recommendations
        """
        self._check_fitted()
        self._check_score_options(score_kw)
        ids, uidx = self._user_rows(users, missing)
        ui = self.interactions_.matrix[uidx]
        return self._recommend_rows(
            ids, uidx, ui, n, filter_played, items, exclude, rerankers, batch_size, score_kw
        )

    def recommend_history(
        self,
        history,
        n: int = 10,
        *,
        user_id="new-user",
        missing_items: str = "warn",
        **kw,
    ) -> Recommendations:
        """Recommend for a listener who is not in the training data, from their history.

        Parameters
        ----------
        history : dict {item: count} or DataFrame with columns item, count
            Play counts. An item is an item id (``2`` or ``"2"``, see
            :class:`~deepcuts.data.IdMap`'s id policy) or, failing that, a display name
            matched case- and accent-insensitively (:func:`deepcuts.data.artists.artist_key`:
            ``"bjork"`` finds "Björk", ``"The Beatles"`` finds "Beatles").
        user_id : hashable, default="new-user"
            Id used in the result.
        missing_items : {"warn", "raise", "ignore"}, default="warn"
            Items that match no id and no name: left out with an
            :class:`~deepcuts.exceptions.UnknownItemsWarning` naming them, refused with an
            :class:`~deepcuts.exceptions.UnknownIdError`, or left out silently. A history
            none of whose items is known is always refused (its list would be meaningless).

        Examples
        --------
        >>> from deepcuts.data import load_lastfm2k
        >>> from deepcuts.models import ItemKNN
        >>> m = ItemKNN().fit(load_lastfm2k())
        >>> len(m.recommend_history({"radiohead": 10, "BJÖRK": 5}, n=3))
        3
        """
        self._check_fitted()
        if missing_items not in ("warn", "raise", "ignore"):
            raise DeepcutsError(
                f"missing_items must be 'warn', 'raise' or 'ignore', got {missing_items!r}"
            )
        common = ("filter_played", "items", "exclude", "rerankers")
        self._check_score_options(
            {k: v for k, v in kw.items() if k not in common}, "recommend_history"
        )
        row = self.history_row(history, missing_items=missing_items)
        kw.setdefault("filter_played", True)
        filter_played = kw.pop("filter_played")
        return self._recommend_rows(
            np.array([user_id], dtype=object),
            np.array([-1], dtype=np.int32),
            row,
            n,
            filter_played,
            kw.pop("items", None),
            kw.pop("exclude", None),
            kw.pop("rerankers", ()),
            1,
            kw,
        )

    def history_row(self, history, *, missing_items: str = "ignore") -> sp.csr_matrix:
        """A (1, n_items) CSR row from ``{item: count}`` or a DataFrame (item, count).

        Items are matched by id, then by name (see :meth:`recommend_history`);
        ``missing_items`` is "ignore", "warn" or "raise".
        """
        if isinstance(history, pd.DataFrame):
            if not {"item", "count"} <= set(history.columns):
                raise DeepcutsError("history frame needs columns 'item' and 'count'")
            items, counts = history["item"].to_numpy(), history["count"].to_numpy(np.float64)
        else:
            items = np.array(list(history.keys()), dtype=object)
            counts = np.array(list(history.values()), dtype=np.float64)
        idx = self.interactions_.item_map.index(items, missing="ignore")
        if (idx < 0).any():
            idx = self._match_names(items, idx)
        unknown = items[idx < 0]
        if len(unknown) and missing_items != "ignore":
            shown = ", ".join(repr(v) for v in unknown[:5].tolist())
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            msg = (
                f"{len(unknown)} of {len(items)} history item(s) match no item id or name of "
                f"the model: {shown}{more}"
            )
            if missing_items == "raise" or len(unknown) == len(items):
                raise UnknownIdError(
                    msg + "; check the spelling (ids, or artist names as in the training data)"
                )
            warnings.warn(msg + "; the list uses the rest", UnknownItemsWarning, stacklevel=3)
        keep = idx >= 0
        if np.any(counts[keep] < 0):
            raise DeepcutsError("history counts must be >= 0")
        m = sp.csr_matrix(
            (counts[keep].astype(np.float32), (np.zeros(keep.sum(), np.int32), idx[keep])),
            shape=(1, self.n_items),
        )
        m.sum_duplicates()
        return m

    def _match_names(self, items: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Fill -1 entries of ``idx`` by matching ``items`` to item names by artist key
        (case, accents, a leading "the" ignored); the most popular item wins a shared key."""
        from deepcuts.data.artists import artist_key

        x = self.interactions_
        cached = getattr(self, "_name_index", None)
        if cached is None or cached[0] is not x:
            names = x.item_names()
            order = np.argsort(-x.item_popularity(), kind="stable")[::-1]  # popular ones last
            keys = {artist_key(str(names[i])): int(i) for i in order.tolist()}
            cached = self._name_index = (x, keys)
        keys = cached[1]
        out = idx.copy()
        miss = np.flatnonzero(idx < 0)
        out[miss] = [keys.get(artist_key(str(v)), -1) for v in items[miss].tolist()]
        return out

    def _mask_items(self, ids, kind: str) -> np.ndarray:
        idx = self.interactions_.item_map.index(list(ids), missing="ignore")
        return idx[idx >= 0]

    def _recommend_rows(
        self, ids, uidx, ui, n, filter_played, items, exclude, rerankers, batch_size, score_kw
    ) -> Recommendations:
        if not isinstance(n, int | np.integer) or n < 1:
            raise DeepcutsError(f"n must be a positive integer, got {n!r}")
        allow = None if items is None else self._mask_items(items, "items")
        block = None if exclude is None else self._mask_items(exclude, "exclude")
        all_idx, all_val, all_per = [], [], []
        for start in range(0, len(uidx), batch_size):
            sl = slice(start, start + batch_size)
            idx, val, per = self.rank_index(
                uidx[sl],
                ui[sl],
                n,
                filter_played=filter_played,
                allow=allow,
                block=block,
                rerankers=rerankers,
                **score_kw,
            )
            all_idx.append(idx)
            all_val.append(val)
            all_per.append(per)
        idx = np.concatenate(all_idx) if all_idx else np.empty((0, n), np.int64)
        val = np.concatenate(all_val) if all_val else np.empty((0, n), np.float32)
        valid = idx >= 0
        b, k = idx.shape
        flat_items = idx[valid].astype(np.int32)
        x = self.interactions_
        personas = None
        if all_per and all_per[0] is not None:
            personas = np.concatenate(all_per)[valid].astype(np.int16)
        return Recommendations(
            queries=np.repeat(np.asarray(ids, dtype=object), valid.sum(axis=1)),
            items=x.item_map.external(flat_items),
            scores=val[valid].astype(np.float32),
            ranks=(np.cumsum(valid, axis=1)[valid]).astype(np.int32),
            item_index=flat_items,
            names=x.item_names(flat_items),
            personas=personas,
        )

    def rank_index(
        self,
        user_index: np.ndarray,
        user_items: sp.csr_matrix,
        n: int,
        *,
        filter_played: bool = True,
        allow: np.ndarray | None = None,
        block: np.ndarray | None = None,
        rerankers: Sequence[Reranker] = (),
        **score_kw,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Internal batch ranking: (b, n) item indices (-1 padded), scores, personas or None."""
        self._check_fitted()
        self._check_score_options(score_kw, "rank_index")
        user_index = np.asarray(user_index, dtype=np.int32)
        user_items = sp.csr_matrix(user_items)
        played = np.diff(user_items.indptr) if filter_played else np.zeros(len(user_index), int)
        found = self._ann_candidates(user_index, user_items, n + played, **score_kw)
        if found is not None:
            # approximate top-k: the index proposes candidates, scored exactly by the model;
            # masks and re-rankers work on the (b, C) candidate block, never on a dense row
            cand, scores = found
        else:
            cand, scores = None, self._score(user_index, user_items, **score_kw)
        idx, val = rank_candidates(
            self, user_index, user_items, n, cand, scores,
            filter_played=filter_played, allow=allow, block=block, rerankers=rerankers,
        )  # fmt: skip
        personas = self._personas_for(user_index, user_items, idx, **score_kw)
        return idx, val, personas

    # ------------------------------------------------------------------ approximate top-k
    def _ann_candidates(self, user_index, user_items, k: int, **score_kw):
        """A candidate block from an approximate index, or None to score every item exactly.

        ``k`` (b,) is the fewest candidates each row needs (``n`` plus its played items).
        Returns ``(cand, scores)`` as :func:`candidate_block` makes them: (b, c) int32 item
        indices ascending per row (-1 pads last) and (b, c) float32 exact scores under the
        model. Models with an item index (``ann=`` option) override this; the
        default returns None.
        """
        return None

    def similar_items(self, items, n: int = 10, *, missing: str = "raise") -> Recommendations:
        """The ``n`` items most similar to each query item (the query itself excluded)."""
        self._check_fitted()
        x = self.interactions_
        ids = np.atleast_1d(np.asarray(items, dtype=object if _looks_str(items) else None))
        iidx = x.item_map.index(ids, missing=missing)
        ids, iidx = ids[iidx >= 0], iidx[iidx >= 0]
        scores = np.array(self._similar_items(iidx), np.float32, copy=True)
        scores[np.arange(len(iidx)), iidx] = -np.inf
        idx, val = topk_rows(scores, n)
        valid = idx >= 0
        flat = idx[valid].astype(np.int32)
        return Recommendations(
            queries=np.repeat(np.asarray(ids, dtype=object), valid.sum(axis=1)),
            items=x.item_map.external(flat),
            scores=val[valid],
            ranks=np.cumsum(valid, axis=1)[valid].astype(np.int32),
            item_index=flat,
            names=x.item_names(flat),
            query_name="query",
        )

    # ------------------------------------------------------------------ persistence
    def _extra_manifest(self) -> dict:
        return {}

    def _extra_arrays(self) -> dict[str, np.ndarray]:
        """Arrays saved beside the state (e.g. a serialised item index); see :meth:`_load_extra`."""
        return {}

    def _load_extra(self, extra: dict, arrays: dict[str, np.ndarray]) -> None:
        """Hook: restore what :meth:`_extra_manifest` / :meth:`_extra_arrays` saved."""

    def _manifest_params(self) -> dict:
        """Hyperparameters written to the manifest (override to leave out training data)."""
        return self.get_params()

    def save(self, path) -> str:
        """Save to ``<path>.npz`` + ``<path>.json`` (atomic; no pickle). Returns the manifest path."""
        self._check_fitted()
        x = self.interactions_
        arrays: dict[str, np.ndarray] = {
            "users": x.user_map.to_array(),
            "items": x.item_map.to_array(),
            "train_indptr": x.matrix.indptr,
            "train_indices": x.matrix.indices,
            "train_data": x.matrix.data,
            "item_names": x.item_names().astype(str),
        }
        if x.items is not None and "artist" in x.items:  # track data: the artist cap needs it
            arrays["item_artist"] = np.array(
                ["" if pd.isna(a) else str(a) for a in x.items["artist"]], dtype=str
            )
        if x.items is not None and "tags" in x.items:
            arrays["item_tags"] = np.array(
                ["\x1f".join(map(str, t)) if isinstance(t, list) else "" for t in x.items["tags"]]
            )
        sparse_state = []
        for name in self._state_arrays:
            val = getattr(self, name)
            if sp.issparse(val):
                val = sp.csr_matrix(val)
                sparse_state.append(name)
                arrays[f"state__{name}__indptr"] = val.indptr
                arrays[f"state__{name}__indices"] = val.indices
                arrays[f"state__{name}__data"] = val.data
                arrays[f"state__{name}__shape"] = np.array(val.shape, np.int64)
            else:
                arrays[f"state__{name}"] = np.asarray(val)
        arrays.update({f"extra__{k}": v for k, v in self._extra_arrays().items()})
        manifest = {
            "class": type(self).__name__,
            "params": _jsonable(self._manifest_params()),
            "state_scalars": _jsonable({k: getattr(self, k) for k in self._state_scalars}),
            "sparse_state": sparse_state,
            "n_users": x.n_users,
            "n_items": x.n_items,
            "nnz": x.nnz,
            "extra": _jsonable(self._extra_manifest()),
        }
        return str(write_model_files(path, manifest, arrays))

    @classmethod
    def load(cls, path) -> Recommender:
        """Load a model saved with :meth:`save`."""
        model = load_model(path)
        if cls is not Recommender and not isinstance(model, cls):
            raise DeepcutsError(f"{path}: holds a {type(model).__name__}, not a {cls.__name__}")
        return model

    def _after_load(self) -> None:
        """Hook for subclasses to rebuild derived state after loading."""


def load_model(path) -> Recommender:
    """Load any deepcuts model from ``<path>.json`` + ``<path>.npz``."""
    import deepcuts.models  # noqa: F401  (registers every model class)

    manifest, arrays = read_model_files(path)
    name = manifest["class"]
    if name not in _REGISTRY:
        raise DeepcutsError(f"{path}: unknown model class {name!r}")
    cls = _REGISTRY[name]
    model = cls(**manifest["params"])
    users = IdMap(arrays["users"], name="user")
    items_map = IdMap(arrays["items"], name="item")
    m = sp.csr_matrix(
        (arrays["train_data"], arrays["train_indices"], arrays["train_indptr"]),
        shape=(len(users), len(items_map)),
    )
    meta = pd.DataFrame({"item": items_map.ids, "name": arrays["item_names"]})
    if "item_artist" in arrays:
        meta["artist"] = [a if a else None for a in arrays["item_artist"].tolist()]
    if "item_tags" in arrays:
        meta["tags"] = [s.split("\x1f") if s else [] for s in arrays["item_tags"].tolist()]
    model.interactions_ = Interactions(m, users, items_map, items=meta)
    for k in manifest["sparse_state"]:
        shape = tuple(arrays[f"state__{k}__shape"])
        setattr(
            model,
            k,
            sp.csr_matrix(
                (
                    arrays[f"state__{k}__data"],
                    arrays[f"state__{k}__indices"],
                    arrays[f"state__{k}__indptr"],
                ),
                shape=shape,
            ),
        )
    for k in cls._state_arrays:
        if k not in manifest["sparse_state"]:
            setattr(model, k, arrays[f"state__{k}"])
    for k, v in manifest["state_scalars"].items():
        setattr(model, k, v)
    model._after_load()
    extra_arrays = {k[len("extra__") :]: v for k, v in arrays.items() if k.startswith("extra__")}
    model._load_extra(manifest.get("extra", {}), extra_arrays)
    return model


def model_paths(path) -> tuple:
    """The ``(.npz, .json)`` paths of a model saved at ``path`` (with or without a suffix)."""
    return _paths(path)


def _is_batch(x) -> bool:
    """A list/array of ids (a batch) rather than one id."""
    return isinstance(x, list | tuple | np.ndarray | pd.Series | pd.Index)


def per_user_frames(users, describe, *, column: str = "user") -> pd.DataFrame:
    """``describe(user)`` for each user of a batch, concatenated with a ``column`` first.

    For the describing methods (``personas``, ``explain``) that build a small table per user;
    ``df.attrs`` of each user's table is kept in the result's ``attrs[user]``.
    """
    frames, attrs = [], {}
    for u in list(users):  # one small description per user, not a scoring loop
        df = describe(u)
        attrs[u] = dict(df.attrs)
        df = df.copy()
        df.attrs = {}
        df.insert(0, column, [u] * len(df))
        frames.append(df)
    if not frames:
        raise DeepcutsError(f"no {column}s given: pass one {column} id or a non-empty list")
    out = pd.concat(frames, ignore_index=True)
    out.attrs = attrs
    return out


def _looks_str(x) -> bool:
    if isinstance(x, str):
        return True
    if isinstance(x, list | tuple):
        return any(isinstance(v, str) for v in x)
    return isinstance(x, np.ndarray) and x.dtype == object


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=json_default))
