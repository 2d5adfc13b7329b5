"""What a listener sees of their personas: shares, top artists and labels that set them apart.

Every played item of a user belongs to one persona (``_assignments`` of the model). A persona's
*tag profile* ``t_p(g)`` is the share of its plays on items tagged ``g``. Its label is made of
the tags that set it apart from the user's other personas, ranked by

    d_p(g) = (t_p(g) - max_{q != p} t_q(g)) * sqrt(idf(g))

(the profile against the closest sibling; ``sqrt(idf)`` so that catalogue-wide tags such as
"rock" rank low): the top two tags with ``d_p(g) > 0`` joined by " / ". A persona with no such
tag is labelled by its most played artist; a label still equal to a sibling's gets that artist
appended. With one persona ``d_p(g) = t_p(g) sqrt(idf(g))``.

A persona is *shown* (a tab) when it holds at least ``TAB_MIN_SHARE`` of the plays and at least
``TAB_MIN_ITEMS`` items.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from deepcuts.models.base import _is_batch, per_user_frames

__all__ = ["TAB_MIN_ITEMS", "TAB_MIN_SHARE", "PersonaLabels", "distinct_labels", "shown"]

#: smallest share of a user's plays a shown persona holds
TAB_MIN_SHARE = 0.05
#: fewest items (artists) a shown persona holds
TAB_MIN_ITEMS = 3


def shown(share, n_items):
    """Whether a persona gets a tab: ``share >= TAB_MIN_SHARE`` and ``n_items >= TAB_MIN_ITEMS``.

    Examples
    --------
    >>> shown(0.04, 10), shown(0.5, 2), shown(0.5, 3)
    (False, False, True)
    """
    return bool(share >= TAB_MIN_SHARE and n_items >= TAB_MIN_ITEMS)


def distinct_labels(profiles: list[dict], top_artists: list[list[str]], idf: dict) -> tuple:
    """Labels and ranked distinctive tags of one user's personas.

    Parameters
    ----------
    profiles : list of dict {tag: share of the persona's plays}
    top_artists : list of list of str
        Each persona's artists, most played first.
    idf : dict {tag: sqrt(idf)}

    Returns
    -------
    labels : list of str
    tags : list of list of str
        Each persona's tags, most distinctive first (positive ``d_p`` only).

    Examples
    --------
    >>> distinct_labels([{"rock": 1.0, "indie": 0.8}, {"rock": 1.0, "jazz": 0.9}],
    ...                 [["A"], ["B"]], {})
    (['indie', 'jazz'], [['indie'], ['jazz']])
    """
    P = len(profiles)
    tags_out, labels = [], []
    for p in range(P):
        others = profiles[:p] + profiles[p + 1 :]
        score = {}
        for g, t in profiles[p].items():
            rival = max((o.get(g, 0.0) for o in others), default=0.0)
            d = (t - rival) * idf.get(g, 1.0)
            if d > 1e-9:
                score[g] = d
        ranked = [g for g, _ in sorted(score.items(), key=lambda kv: (-kv[1], kv[0]))]
        tags_out.append(ranked)
        artist = top_artists[p][0] if top_artists[p] else f"persona {p + 1}"
        labels.append(" / ".join(ranked[:2]) if ranked else artist)
    for p in range(P):  # a label equal to a sibling's gets the persona's top artist
        if labels.count(labels[p]) > 1 and top_artists[p]:
            dup = labels[p]
            for q in range(P):
                if labels[q] == dup and top_artists[q]:
                    labels[q] = f"{dup} · {top_artists[q][0]}"
    return labels, tags_out


class PersonaLabels:
    """Mixin: :meth:`personas`, the description of one user's personas."""

    def _assignments(self, u: int, row: sp.csr_matrix) -> tuple[np.ndarray, int]:
        """Persona of each stored entry of ``row`` and the user's persona count.

        Default (MaxMF rule, for models with ``_assign``): the persona that scores the item
        highest, ``argmax_p x_up . y_i``.
        """
        get = getattr(self, "_user_personas", None)
        if get is not None:
            U, n = get(np.array([u]), row)
        else:  # models whose _user_vectors gives (tastes, attention, counts)
            U, _, n = self._user_vectors(np.array([u]), row)
        rows = sp.csr_matrix(row, dtype=np.float32)
        a = self._assign(rows, U, self.item_factors_, n, collapse_weight=0.0)
        return np.asarray(a, np.int64), int(n[0])

    def personas(self, user=None, *, history=None, n_artists: int = 5, n_tags: int = 3):
        """Describe one user's personas.

        Parameters
        ----------
        user : user id or list of user ids, optional
            A user of the training data; for a list, one table with a ``user`` column first
            (``df.attrs[user]`` keeps each user's attributes).
        history : dict {item id: count} or csr_matrix of shape (1, n_items), optional
            A listening history instead (a new listener).
        n_artists : int, default=5
            Top artists (by plays) listed per persona.
        n_tags : int, default=3
            Distinctive tags listed per persona.

        Returns
        -------
        DataFrame with one row per persona
            Columns persona, share (of the user's play counts), n_items, label (what sets
            the persona apart: module docstring), top_artists, top_tags. A persona is worth
            a tab (:func:`shown`) with share >= ``TAB_MIN_SHARE`` and n_items >=
            ``TAB_MIN_ITEMS``.

        Examples
        --------
        >>> from deepcuts.models import PersonaALS
        >>> from deepcuts.testing import planted_blocks
        >>> x = planted_blocks(60, 30, 3, random_state=0)
        >>> m = PersonaALS(factors=8, n_personas=2, iterations=3, random_state=0).fit(x)
        >>> df = m.personas("u0")
        >>> df.columns.tolist()
        ['persona', 'share', 'n_items', 'label', 'top_artists', 'top_tags']
        >>> round(float(df.share.sum()), 6)
        1.0
        """
        self._check_fitted()
        if history is None and _is_batch(user):  # a list of users (issue 14)
            return per_user_frames(
                user, lambda u: self.personas(u, n_artists=n_artists, n_tags=n_tags)
            )
        x = self.interactions_
        if history is not None:
            u = -1
            row = history if sp.issparse(history) else self.history_row(history)
            row = sp.csr_matrix(row, dtype=np.float32)
        else:
            u = int(x.user_map.index([user])[0])
            row = sp.csr_matrix(x.matrix[u], dtype=np.float32)
        # models that borrow this method (MixtureOfTastes) fall back on the MaxMF rule
        assign = getattr(type(self), "_assignments", PersonaLabels._assignments)
        a, k = assign(self, u, row)
        plays = row.data.astype(np.float64)
        items = row.indices
        tags = x.items["tags"].tolist() if x.items is not None and "tags" in x.items else None
        idf = self._tag_idf() if tags is not None else {}
        total = max(plays.sum(), 1e-12)
        rows, profiles, artists = [], [], []
        for p in range(k):  # a handful of personas of one user
            sel = a == p
            order = np.argsort(-plays[sel], kind="stable")
            it, pl = items[sel][order], plays[sel][order]
            names = x.item_names(it).tolist()
            prof: dict[str, float] = {}
            if tags is not None and len(it):
                for i, w in zip(it.tolist(), (pl / pl.sum()).tolist()):
                    for g in set(tags[i]) if isinstance(tags[i], list) else ():
                        prof[g] = prof.get(g, 0.0) + w
            profiles.append(prof)
            artists.append(names)
            rows.append({"persona": p, "share": float(pl.sum() / total), "n_items": int(sel.sum())})
        labels, ranked = distinct_labels(profiles, artists, idf)
        for r, lab, tg, names in zip(rows, labels, ranked, artists):
            r["label"] = lab
            r["top_artists"] = names[:n_artists]
            r["top_tags"] = tg[:n_tags]
        cols = ["persona", "share", "n_items", "label", "top_artists", "top_tags"]
        return pd.DataFrame(rows, columns=cols)

    def _tag_idf(self) -> dict[str, float]:
        """``sqrt(idf)`` of every tag over the catalogue (cached per training data)."""
        cached = getattr(self, "_idf_cache", None)
        if cached is not None and cached[0] is self.interactions_:
            return cached[1]
        tags = self.interactions_.items["tags"]
        s = pd.Series([t for ts in tags if isinstance(ts, list) for t in set(ts)])
        df = s.value_counts()
        idf = np.sqrt(np.log(len(tags) / df.to_numpy(np.float64)) + 1.0)
        out = dict(zip(df.index.tolist(), idf.tolist()))
        self._idf_cache = (self.interactions_, out)
        return out
