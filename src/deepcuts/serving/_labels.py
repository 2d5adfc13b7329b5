"""A listener's personas as the web page shows them: share, label, tags and top artists."""

from __future__ import annotations

from collections import Counter

import numpy as np
import scipy.sparse as sp

from deepcuts.models.persona import shown as _persona_shown
from deepcuts.serving._history import check_user

__all__ = ["LabelsMixin"]


def _tag_labels(items: list[dict], weights, k: int = 5) -> list[str]:
    c: Counter = Counter()
    for it, w in zip(items, weights):
        for rank, t in enumerate(it["tags"]):
            c[str(t)] += float(w) / (1 + rank)
    return [t for t, _ in c.most_common(k)]


class LabelsMixin:
    """:meth:`personas` of :class:`~deepcuts.serving.service.RecommenderService`."""

    def personas(self, user: str, *, n: int = 10) -> dict:
        """The user's personas: share of the plays, label, tags and top artists of each.

        Persona models (:class:`~deepcuts.models.PersonaALS`) give one entry per persona of
        the user: each played artist is credited to the persona that scores it highest
        (``argmax_p x_up . y_i``), and users of the training data get the model's own labels
        and idf-weighted tags (``PersonaALS.personas``). Users folded in from their stored
        history get persona vectors from ``fold_in`` and tags weighted by plays. Every other
        model describes a user by exactly one persona (0): the user as a whole, with the most
        played artists; ``persona=0`` is then the only valid value of the recommendation knob.
        """
        h = self.handle
        user = check_user(user)
        source, hist = self._user_source(h, user)
        m = h.model
        x = m.interactions_
        if source == "model":
            u = h.user_pos[user]
            row = x.matrix[u]
        else:
            u = -1
            row = m.history_row(hist or {})
        idx = row.indices.astype(np.int64)
        plays = row.data.astype(np.float64)
        described: dict[int, dict] = {}
        assignments = getattr(type(m), "_assignments", None)
        if hasattr(m, "persona_factors_") and assignments is not None:
            # persona models with the shared description (labels that set personas apart)
            assign, k = assignments(m, u, sp.csr_matrix(row, dtype=np.float32))
            df = (
                m.personas(user, n_artists=n, n_tags=5)
                if u >= 0
                else m.personas(history=row, n_artists=n, n_tags=5)
            )
            described = {int(r.persona): r._asdict() for r in df.itertuples(index=False)}
        elif hasattr(m, "persona_factors_"):
            if u >= 0:
                U, k = m.persona_factors_[u], int(m.user_n_personas_[u])
                df = m.personas(user, n_artists=n, n_tags=5)
                described = {int(r.persona): r._asdict() for r in df.itertuples(index=False)}
            else:
                U3, k3 = m.fold_in(row)
                U, k = U3[0], int(k3[0])
            if len(idx):
                assign = np.argmax(U[:k] @ m.item_factors_[idx].T, axis=0)
            else:
                assign = np.zeros(0, np.int64)
        else:
            k, assign = 1, np.zeros(len(idx), np.int64)
        total = max(float(plays.sum()), 1e-12)
        out = []
        for p in range(k):
            sel = assign == p
            order = np.argsort(-plays[sel], kind="stable")
            items = h.describe(idx[sel][order][:n])
            for it, pl in zip(items, plays[sel][order][:n]):
                it["plays"] = float(pl)
            d = described.get(p)
            tags = list(d["top_tags"]) if d else _tag_labels(items, plays[sel][order][:n])
            label = (d or {}).get("label") or (
                " / ".join(tags[:2]) if tags else (items[0]["name"] if items else "")
            )
            share = float(d["share"]) if d else float(plays[sel].sum() / total)
            out.append(
                {
                    "persona": p,
                    "share": share,
                    "label": label,
                    "tags": tags,
                    "n_artists": int(sel.sum()),
                    "top_artists": items,
                }
            )
        if len(out) > 1:  # tabs: no persona under 5% of the plays or with fewer than 3 artists
            kept = [d for d in out if _persona_shown(d["share"], d["n_artists"])]
            out = kept or out[:1]
        return {"user": user, "model": h.model_id, "source": source, "personas": out}
