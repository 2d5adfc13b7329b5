"""Which history a user is scored from, and the in-memory cache of stored histories.

* users of the training data with no listens posted since: their row of the model (fast path,
  no database access);
* users with listens posted after the served model's data snapshot, and users created after it
  (posted listens, imported histories): their complete stored history, folded into the model
  without retraining. The history read from the database is kept in memory until the user's
  next listen (at most :data:`HISTORY_CACHE` users), with what the served model derives from
  it (:class:`History`).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from deepcuts.exceptions import DataError, UnknownIdError
from deepcuts.serving._errors import ConflictError
from deepcuts.serving._handle import ModelHandle
from deepcuts.serving._validate import check_id
from deepcuts.serving.store import Listen

__all__ = ["HISTORY_CACHE", "History", "HistoryMixin", "check_user", "hide_path"]

#: stored histories of folded-in users kept in memory (least recently used dropped first)
HISTORY_CACHE = 10_000


def check_user(user) -> str:
    return check_id(str(user))  # the one rule for ids (deepcuts.serving._validate)


def hide_path(message: str, path, name: str) -> str:
    """``message`` with the server-side ``path`` (and its folder) replaced by ``name``."""
    p = Path(str(path))
    for s in (str(p), str(p.parent)):
        message = message.replace(s, name)
    return message


class History:
    """A folded-in user's stored history kept in memory, and what one model derived from it.

    ``stamp`` is the user's dirty stamp when the history was read (a later listen makes the
    entry stale); ``derived`` is ``(weak reference to the ModelHandle, history row, user
    vector or None)``, replaced as one tuple so that concurrent requests never see a row of
    one model with a vector of another, and a weak reference so that the cache does not keep
    a swapped-out model alive.
    """

    __slots__ = ("derived", "plays", "stamp")

    def __init__(self, stamp: float, plays: dict):
        self.stamp = stamp
        self.plays = plays
        self.derived: tuple | None = None

    def row_and_vector(self, h: ModelHandle) -> tuple[sp.csr_matrix, np.ndarray | None]:
        """The history as a (1, n_items) row of ``h``'s model and, for ALS, its folded-in
        user vector (``h.fold.solve``), computed once per served model."""
        d = self.derived
        if d is None or d[0]() is not h:
            row = h.model.history_row(self.plays or {})
            vec = h.fold.solve(row)[0] if h.fold is not None else None
            d = self.derived = (weakref.ref(h), row, vec)
        return d[1], d[2]


class HistoryMixin:
    """Listens, imported histories and the users' history cache of
    :class:`~deepcuts.serving.service.RecommenderService`.

    Uses the service's ``store``, ``events`` and ``handle``; :meth:`_init_histories` sets up
    its own state.
    """

    def _init_histories(self) -> None:
        self._dirty: dict[str, float] = {}  # user -> time of its latest listen
        self._dirty_lock = threading.Lock()
        # user -> stored history of a folded-in user (and its fold-in for the served model)
        self._histories: OrderedDict[str, History] = OrderedDict()

    def add_listens(self, listens: list[Listen], *, replace_user: str | None = None) -> int:
        n = self.store.add_listens(listens, replace_user=replace_user)
        now = time.time()
        users = {x.user.strip() for x in listens}
        with self._dirty_lock:
            for u in users:
                self._dirty[u] = now
                self._histories.pop(u, None)
        if self.events is not None:  # before answering: the client's next request may go
            self.events.append({"kind": "listens", "t": now, "users": sorted(users)})
        return n

    def import_history(
        self, user: str, path, format: str, *, mode: str = "new", display_name: str = "upload"
    ) -> dict:
        """Store a listening export as the listens of ``user``; they are folded into the
        served model at once.

        ``format`` is one of :data:`deepcuts.data.readers.HISTORY_FORMATS`: ``"lastfm1k"``
        (Last.fm 1K TSV), ``"lastfm-scrobbles"`` (Last.fm scrobble CSV export),
        ``"listenbrainz"`` (JSON lines, .zip or JSON array) or ``"spotify"`` (streaming
        history JSON or .zip). Every listen of the file is stored under ``user``, whatever
        user the file names. ``mode``: ``"new"`` (the user must not exist yet), ``"merge"``
        (add the listens to the user's) or ``"replace"`` (the user's stored plays are replaced,
        in the same transaction). Errors name the file as ``display_name``, never the server
        path it was saved under.
        """
        from deepcuts.data.readers import HISTORY_FORMATS, read_interactions

        user = check_user(user)
        if mode not in ("new", "merge", "replace"):
            raise DataError(f"mode must be 'new', 'merge' or 'replace', got {mode!r}", field="mode")
        if mode == "new" and self.store.has_user(user):
            raise ConflictError(
                f"user {user!r} already exists; upload with mode=merge to add these listens "
                "or mode=replace to replace the user's history"
            )
        if format not in HISTORY_FORMATS:
            raise DataError(
                f"unknown format {format!r}; use one of {', '.join(HISTORY_FORMATS)}",
                field="format",
            )
        kw = {} if format == "lastfm1k" else {"user": user}
        try:
            x, log_ = read_interactions(path, format=format, return_log=True, **kw)
        except DataError as e:  # the message names the upload, not the server's temp path
            raise DataError(hide_path(str(e), path, display_name)) from None
        except (OSError, ValueError, EOFError) as e:
            raise DataError(
                f"{display_name}: cannot read this file as {format} "
                f"({hide_path(type(e).__name__ + ': ' + str(e), path, display_name)})"
            ) from None
        names = dict(zip(x.items["item"], x.items["name"].astype(str)))
        listens = [
            Listen(user, names[k], None, int(t), None)
            for k, t in zip(log_["item"].tolist(), log_["timestamp"].tolist())
        ]
        if mode == "replace":
            n = self.add_listens(listens, replace_user=user)
        else:
            n = self.add_listens(listens)
        h = self.handle
        known = h.model.interactions_.item_map.index(x.item_map.ids, missing="ignore") >= 0
        out = {
            "user": user,
            "listens": n,
            "artists": int(len(known)),
            "known_artists": int(known.sum()),
        }
        if mode != "new":
            out["mode"] = mode
        return out

    def _user_source(self, h: ModelHandle, user: str) -> tuple[str, dict | None]:
        """("model", None) for the fast path, ("history", {artist: plays}) to fold in."""
        source, entry = self._user_entry(h, user)
        return source, None if entry is None else entry.plays

    def _memory_source(self, h: ModelHandle, user: str) -> tuple[str | None, History | None, float]:
        """Where ``user`` is answered from without the database: ("model", None), ("history",
        the cached :class:`History`), or (None, None) when its history must be read; and the
        user's dirty stamp."""
        with self._dirty_lock:
            stamp = self._dirty.get(user, -1.0)
            cached = self._histories.get(user)
        if user in h.user_pos and stamp < h.data_time:
            return "model", None, stamp
        if cached is not None and cached.stamp == stamp:
            return "history", cached, stamp
        return None, None, stamp

    def _user_entry(self, h: ModelHandle, user: str) -> tuple[str, History | None]:
        """("model", None) for the fast path, ("history", the user's :class:`History`)."""
        source, cached, stamp = self._memory_source(h, user)
        if source is not None:
            return source, cached
        hist = self.store.history(user)
        if hist is None:
            if user in h.user_pos:  # trained on, then removed from the database: keep serving it
                return "model", None
            raise UnknownIdError(
                f"unknown user {user!r}; post listens for it or import a history first"
            )
        entry = History(stamp, hist)
        with self._dirty_lock:
            if self._dirty.get(user, -1.0) == stamp:  # no listen arrived meanwhile
                self._histories[user] = entry
                self._histories.move_to_end(user)
                while len(self._histories) > HISTORY_CACHE:
                    self._histories.popitem(last=False)
        return "history", entry

    def needs_store(self, user: str) -> bool:
        """True when recommending for ``user`` will read the database."""
        self.sync()
        h = self._handle
        return h is None or self._memory_source(h, user)[0] is None
