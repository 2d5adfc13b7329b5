"""Recommendations: one request, and many answered together (batching).

Requests that share their knobs are ranked together: one matrix product scores the whole
group, so the item factors are read from memory once per group instead of once per request.
"""

from __future__ import annotations

import inspect

import numpy as np
import scipy.sparse as sp

from deepcuts.exceptions import DataError, DeepcutsError
from deepcuts.models.base import rank_candidates
from deepcuts.rerank import build_rerankers
from deepcuts.serving._handle import ModelHandle
from deepcuts.serving._history import History, check_user

__all__ = ["RECOMMEND_DEFAULTS", "RecommendMixin"]


def _rerankers(
    *, rarity=None, band=None, diversity=None, depth=None, floor=None, taste=None
) -> list:
    """Re-rankers for the knobs that were given (:func:`deepcuts.rerank.build_rerankers`)."""
    knobs = dict(rarity=rarity, band=band, diversity=diversity, depth=depth, floor=floor)
    if all(v is None for v in knobs.values()) and taste is None:
        return []
    return build_rerankers(**knobs, taste=taste)


def _rank_folded(h: ModelHandle, vectors, rows, n: int, filter_played: bool, rerankers):
    """Top ``n`` items of folded-in ALS users: ``Recommender.rank_index`` for user vectors.

    Parameters
    ----------
    h : ModelHandle
        An ALS model (``h.fold`` set).
    vectors : ndarray of shape (b, factors), b >= 1
        The users' folded-in vectors (``h.fold.solve``).
    rows : sequence of b csr_matrix of shape (1, n_items)
        Their histories (``history_row``): masked when ``filter_played``, and the
        ``user_items`` of the re-rankers' :class:`~deepcuts.models.RankContext`.

    Returns
    -------
    idx : ndarray of shape (b, n) int64, -1 padded
    val : ndarray of shape (b, n) float32
    """
    lengths = np.fromiter((r.nnz for r in rows), np.int64, len(rows))
    indptr = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(lengths, out=indptr[1:])
    n_items = h.model.n_items
    user_items = sp.csr_matrix(
        (np.concatenate([r.data for r in rows]), np.concatenate([r.indices for r in rows]), indptr),
        shape=(len(rows), n_items),
    )
    # big catalogues: the model's item index proposes candidates (ALS ann=, issue 15), and the
    # masks and re-rankers work on that (b, C) block end to end, never on a dense row
    found = h.model.vector_candidates(vectors, n + lengths * filter_played)
    cand, scores = found if found is not None else (None, h.fold.scores(vectors))
    return rank_candidates(
        h.model, np.full(len(rows), -1, np.int32), user_items, n, cand, scores,
        filter_played=filter_played, rerankers=rerankers,
    )  # fmt: skip


class RecommendMixin:
    """:meth:`recommend` and :meth:`recommend_batch` of
    :class:`~deepcuts.serving.service.RecommenderService` (uses its ``handle`` and
    ``_user_entry``)."""

    def _persona_kw(self, h: ModelHandle, persona: int | None) -> dict:
        if persona is None:
            return {}
        k = h.n_personas_max
        if not hasattr(h.model, "personas"):
            if persona != 0:
                raise DataError(
                    f"persona {persona} does not exist: {type(h.model).__name__} models give "
                    "every user a single persona (0)",
                    field="persona",
                )
            return {}
        if not 0 <= persona < k:
            raise DataError(f"persona must be in [0, {k - 1}], got {persona}", field="persona")
        return {"persona": int(persona)}

    def recommend(
        self,
        user: str,
        *,
        n: int = 10,
        exclude_played: bool = True,
        rarity: float | None = None,
        band: str | tuple[float, float] | None = None,
        diversity: float | None = None,
        persona: int | None = None,
        depth: float | str | None = None,
        floor: int | None = None,
        taste: float | None = None,
    ) -> dict:
        """Top-``n`` artists for ``user`` with the knobs applied (see the HTTP API docs)."""
        h = self.handle
        user = check_user(user)
        source, entry = self._user_entry(h, user)
        knobs = dict(
            rarity=rarity, band=band, diversity=diversity, depth=depth, floor=floor, taste=taste
        )
        if source == "history" and h.fold is not None:  # ALS: the cached folded-in vector
            return self._recommend_folded(
                h, [user], [entry], n=n, exclude_played=exclude_played, persona=persona, **knobs
            )[0]
        rerankers = _rerankers(**knobs)
        m = h.model
        if source == "model":
            u = h.user_pos[user]
            uidx, row = np.array([u], np.int32), m.interactions_.matrix[u : u + 1]
        else:
            uidx, row = np.array([-1], np.int32), entry.row_and_vector(h)[0]
        idx, val, per = m.rank_index(
            uidx,
            row,
            int(n),
            filter_played=exclude_played,
            rerankers=rerankers,
            **self._persona_kw(h, persona),
        )
        keep = idx[0] >= 0
        return {
            "user": user,
            "model": h.model_id,
            "source": source,
            "items": h.describe(idx[0][keep], val[0][keep], None if per is None else per[0][keep]),
        }

    def recommend_batch(self, requests) -> list:
        """Answer many recommendation requests at once.

        Parameters
        ----------
        requests : sequence of (user, dict)
            The user and the keyword arguments of :meth:`recommend` for each request.

        Returns
        -------
        list
            One entry per request, in order: the dict :meth:`recommend` returns, or the
            exception it would raise (returned, not raised, so one bad request does not fail
            the others).

        Requests for users served from their row of the model (the fast path) that share the
        same knobs are ranked together: one matrix product scores the whole group, so the item
        factors are read from memory once per group instead of once per request (for ALS on
        Last.fm 2K the single-user product is memory bound: ~170 us for one user, ~25 us per
        user in a group of 16). So are the requests of an ALS model for users folded in from
        their stored history, from the user vectors kept with the histories
        (:meth:`_recommend_folded`). The results are the ones :meth:`recommend` gives.
        Requests for folded-in users of other models go through :meth:`recommend` one by one.
        """
        h = self.handle
        out: list = [None] * len(requests)
        groups: dict[tuple, list[tuple[int, str]]] = {}
        folded: dict[tuple, list[tuple[int, str, History]]] = {}
        for k, (user, kw) in enumerate(requests):
            try:
                kw = {**RECOMMEND_DEFAULTS, **kw}
                if set(kw) != set(RECOMMEND_DEFAULTS):
                    bad = sorted(set(kw) - set(RECOMMEND_DEFAULTS))
                    raise DeepcutsError(f"unknown recommendation argument(s) {bad}")
                user = check_user(user)
                source, entry = self._user_entry(h, user)
                if source == "history" and h.fold is None:
                    out[k] = self.recommend(user, **kw)
                    continue
                if isinstance(kw["band"], list):
                    kw["band"] = tuple(kw["band"])
                key = tuple(sorted(kw.items()))
                if source == "model":
                    groups.setdefault(key, []).append((k, user))
                else:
                    folded.setdefault(key, []).append((k, user, entry))
            except Exception as e:  # noqa: BLE001 - handed back per request
                out[k] = e
        for key, members in folded.items():
            try:
                users = [u for _, u, _ in members]
                res = self._recommend_folded(h, users, [e for _, _, e in members], **dict(key))
            except Exception as e:  # noqa: BLE001
                res = [e] * len(members)
            for (k, _, _), r in zip(members, res):
                out[k] = r
        m = h.model
        for key, members in groups.items():
            kw = dict(key)
            try:
                rerankers = _rerankers(
                    rarity=kw["rarity"],
                    band=kw["band"],
                    diversity=kw["diversity"],
                    depth=kw["depth"],
                    floor=kw["floor"],
                    taste=kw["taste"],
                )
                uidx = np.array([h.user_pos[u] for _, u in members], np.int32)
                idx, val, per = m.rank_index(
                    uidx,
                    m.interactions_.matrix[uidx],
                    int(kw["n"]),
                    filter_played=kw["exclude_played"],
                    rerankers=rerankers,
                    **self._persona_kw(h, kw["persona"]),
                )
            except Exception as e:  # noqa: BLE001
                for k, _ in members:
                    out[k] = e
                continue
            keep = idx >= 0
            for r, (k, user) in enumerate(members):
                out[k] = {
                    "user": user,
                    "model": h.model_id,
                    "source": "model",
                    "items": h.describe(
                        idx[r][keep[r]],
                        val[r][keep[r]],
                        None if per is None else per[r][keep[r]],
                    ),
                }
        return out

    def _recommend_folded(
        self,
        h: ModelHandle,
        users: list[str],
        entries: list[History],
        *,
        n: int,
        exclude_played: bool,
        rarity=None,
        band=None,
        diversity=None,
        persona=None,
        depth=None,
        floor=None,
        taste=None,
    ) -> list[dict]:
        """:meth:`recommend` for users of an ALS model folded in from their stored histories,
        all with the same knobs: their cached user vectors are scored with one matrix product
        and ranked together (:func:`_rank_folded`)."""
        self._persona_kw(h, persona)  # validates the knob (ALS: persona 0 only)
        rerankers = _rerankers(
            rarity=rarity, band=band, diversity=diversity, depth=depth, floor=floor, taste=taste
        )
        rows, vectors = zip(*(e.row_and_vector(h) for e in entries))
        idx, val = _rank_folded(h, np.stack(vectors), rows, int(n), exclude_played, rerankers)
        keep = idx >= 0
        return [
            {
                "user": user,
                "model": h.model_id,
                "source": "history",
                "items": h.describe(idx[r][keep[r]], val[r][keep[r]]),
            }
            for r, user in enumerate(users)
        ]


#: the keyword arguments of RecommendMixin.recommend and their defaults
RECOMMEND_DEFAULTS = {
    name: p.default
    for name, p in inspect.signature(RecommendMixin.recommend).parameters.items()
    if p.kind is inspect.Parameter.KEYWORD_ONLY
}
