"""The served model and what the service derives from it, in one immutable handle.

A request reads :attr:`RecommenderService.handle` once and uses that handle to the end; a
retrain publishes a new handle by a single reference assignment (atomic in CPython).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import numpy as np

from deepcuts.data.artists import artist_key, primary_artist
from deepcuts.exceptions import UnknownIdError
from deepcuts.models import ALS, Recommender
from deepcuts.rerank import popularity_percentiles
from deepcuts.serving._foldin import ALSFoldIn

__all__ = ["CURVE_POINTS", "ModelHandle"]

#: points of the popularity curve sent to the web page
CURVE_POINTS = 200


@dataclass(frozen=True, eq=False)
class ModelHandle:
    """A fitted model with what the service derives from it (never mutated once published).

    Attributes
    ----------
    model : Recommender
    model_id : int or None
        Registry id (``None`` for a model not in the registry).
    kind : str
        Registry name of the model class (``"als"``...).
    data_time : float
        Unix time of the data snapshot the model was trained on.
    listeners : ndarray of shape (n_items,)
        Listeners per item in the training data.
    percentile : ndarray of shape (n_items,)
        Popularity percentile of each item: the share (%) of items at most as popular
        (:func:`deepcuts.rerank.popularity_percentiles`, what the ``band`` knob filters on).
    curve, curve_ranks : list
        Listeners of items sorted by popularity, sampled at :data:`CURVE_POINTS` ranks
        (the long tail plotted by the web page).
    rank : ndarray of shape (n_items,)
        Popularity rank of each item (1 = most listeners).
    keys, names, tags : list of length n_items
        Item ids (artist keys), display names and tag lists, as plain Python objects.
    user_pos, item_pos : dict
        External id -> internal index (plain dicts: the request path avoids pandas).
    fold : ALSFoldIn or None
        Fast single-history fold-in (ALS models).
    """

    model: Recommender
    model_id: int | None
    kind: str
    data_time: float
    listeners: np.ndarray
    percentile: np.ndarray
    curve: list
    curve_ranks: list
    rank: np.ndarray
    keys: list
    names: list
    tags: list
    user_pos: dict
    item_pos: dict
    fold: ALSFoldIn | None = None
    loaded_at: float = field(default_factory=time.time)

    @classmethod
    def build(cls, model: Recommender, model_id, kind: str, data_time: float) -> ModelHandle:
        x = model.interactions_
        pop = np.asarray(x.item_popularity(), dtype=np.float64)
        order = np.argsort(-pop, kind="stable")
        rank = np.empty(len(pop), np.int64)
        rank[order] = np.arange(1, len(pop) + 1)
        ranks = np.unique(np.geomspace(1, len(pop), CURVE_POINTS).astype(np.int64)) - 1
        tags = x.items["tags"].tolist() if x.items is not None and "tags" in x.items else None
        return cls(
            model=model,
            model_id=model_id,
            kind=kind,
            data_time=data_time,
            listeners=pop,
            percentile=popularity_percentiles(pop),
            curve=pop[order][ranks].tolist(),
            curve_ranks=(ranks + 1).tolist(),
            rank=rank,
            keys=[str(k) for k in x.item_map.ids.tolist()],
            names=[str(v) for v in x.item_names().tolist()],
            tags=[list(t) if isinstance(t, list | tuple) else [] for t in tags]
            if tags is not None
            else [[] for _ in range(len(pop))],
            user_pos={str(u): i for i, u in enumerate(x.user_map.ids.tolist())},
            item_pos={str(k): i for i, k in enumerate(x.item_map.ids.tolist())},
            fold=ALSFoldIn(model) if isinstance(model, ALS) else None,
        )

    def info(self) -> dict:
        x = self.model.interactions_
        return {
            "id": self.model_id,
            "kind": self.kind,
            "class": type(self.model).__name__,
            "params": json.loads(json.dumps(self.model.get_params(), default=str)),
            "n_users": x.n_users,
            "n_items": x.n_items,
            "nnz": x.nnz,
            "personas": self.n_personas_max,
            "loaded_at": self.loaded_at,
        }

    @property
    def n_personas_max(self) -> int:
        U = getattr(self.model, "persona_factors_", None)
        if U is not None:
            return int(U.shape[1])
        return int(getattr(self.model, "n_personas", 1) or 1)

    def describe(self, idx, scores=None, personas=None) -> list[dict]:
        """The items ``idx`` as the rows of an answer (rank, key, name, popularity, tags; the
        score and persona of each when given)."""
        out = []
        for j, i in enumerate(np.asarray(idx, np.int64).tolist()):
            d = {
                "rank": j + 1,
                "artist": self.keys[i],
                "name": self.names[i],
                "listeners": int(self.listeners[i]),
                "popularity_rank": int(self.rank[i]),
                "percentile": round(float(self.percentile[i]), 2),
                "tags": self.tags[i],
            }
            if scores is not None:
                d["score"] = float(scores[j])
            if personas is not None:
                d["persona"] = int(personas[j])
            out.append(d)
        return out

    def resolve_artist(self, artist: str) -> str:
        """The artist key of ``artist`` (a key or a name); :class:`UnknownIdError` if none."""
        if artist in self.item_pos:
            return artist
        key = artist_key(primary_artist(artist))
        if key in self.item_pos:
            return key
        raise UnknownIdError(
            f"unknown artist {artist!r}; use an artist key or name from the recommendations"
        )
