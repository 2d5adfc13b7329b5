"""Similar artists, and why an artist was recommended ("why this", "why this deep cut")."""

from __future__ import annotations

import numpy as np

from deepcuts.exceptions import DeepcutsError
from deepcuts.rerank import item_evidence
from deepcuts.serving._history import check_user

__all__ = ["ExplainMixin"]


class ExplainMixin:
    """:meth:`similar` and :meth:`explain` of
    :class:`~deepcuts.serving.service.RecommenderService`."""

    def similar(self, artist: str, *, n: int = 10) -> dict:
        """The ``n`` artists most similar to ``artist`` (an artist key or a name)."""
        h = self.handle
        key = h.resolve_artist(artist)
        recs = h.model.similar_items([key], n=n)
        target = h.describe([h.item_pos[key]])[0]
        return {
            "artist": key,
            "name": target["name"],
            "model": h.model_id,
            "items": h.describe(recs.item_index, recs.scores),
        }

    def explain(self, user: str, artist: str, *, n: int = 5) -> dict:
        """Which of the user's artists made ``artist`` score high ("why this"), and the evidence.

        ALS models give the exact decomposition of the score over the played artists
        (``method="als"``, Hu et al. 2008), for trained users and for users folded in from
        their stored history alike. Other models: each played artist contributes its
        similarity to ``artist`` times ``log(1 + plays)`` (``method="similarity"``).
        ``evidence`` ("why this deep cut", :func:`deepcuts.rerank.item_evidence`): the artist's
        training listeners, its popularity percentile, whether it clears the depth knob's
        floor, how many of its listeners also play the user's artists, and which of them.
        """
        h = self.handle
        user = check_user(user)
        key = h.resolve_artist(artist)
        source, hist = self._user_source(h, user)
        x = h.model.interactions_
        i = h.item_pos[key]
        if source == "model" and hasattr(h.model, "explain"):
            df = h.model.explain(user, key, n=n)
            method = "als"
            rows = [
                (str(r.item), float(r.count), float(r.contribution))
                for r in df.itertuples(index=False)
            ]
        elif h.fold is not None:  # ALS, history folded in: the same exact decomposition
            row = h.model.history_row(hist or {})
            idx, contrib = h.fold.contributions(row, i)
            plays = row.data.astype(np.float64)
            order = np.argsort(-contrib, kind="stable")[:n]
            method = "als"
            rows = [(h.keys[idx[k]], float(plays[k]), float(contrib[k])) for k in order]
        else:
            if source == "model":
                row = x.matrix[h.user_pos[user]]
                idx, plays = row.indices.astype(np.int64), row.data.astype(np.float64)
            else:
                ix = x.item_map.index(np.array(list(hist), dtype=object), missing="ignore")
                keep = ix >= 0
                idx, plays = ix[keep].astype(np.int64), np.array(list(hist.values()))[keep]
            try:
                sim = np.asarray(h.model._similar_items(np.array([i])), np.float64)[0]
            except DeepcutsError:
                sim = np.zeros(x.n_items)
            contrib = sim[idx] * np.log1p(plays)
            order = np.argsort(-contrib, kind="stable")[:n]
            method = "similarity"
            rows = [(h.keys[idx[k]], float(plays[k]), float(contrib[k])) for k in order]
        keys = [r[0] for r in rows]
        ix = [h.item_pos[k] for k in keys if k in h.item_pos]
        items = h.describe(ix) if len(keys) else []
        for it, r in zip(items, rows):
            it["plays"] = r[1]
            it["contribution"] = r[2]
        target = h.describe([i])[0]
        if source == "model":
            history = x.matrix[h.user_pos[user]]
        else:
            history = h.model.history_row(hist or {})
        ev = item_evidence(x, i, history, n=n)
        evidence = {
            "listeners": ev["listeners"],
            "percentile": ev["percentile"],
            "eligible": ev["eligible"],
            "co_listeners": ev["co_listeners"],
            "similarity": ev["similarity"],
            "tags": ev["tags"],
            "shared": [
                {"artist": h.keys[j], "name": h.names[j], "co_listeners": c}
                for j, c in ev["shared"]
            ],
        }
        return {
            "user": user,
            "artist": key,
            "name": target["name"],
            "method": method,
            "model": h.model_id,
            "because": items,
            "evidence": evidence,
        }
