"""Persistent storage of listens and trained models (SQLAlchemy 2; SQLite or PostgreSQL).

Every write runs in one transaction: a batch of listens is stored completely or not at all.
All SQL is built with SQLAlchemy Core, so values always travel as bound parameters. On SQLite
(the default, a single file) the database runs in WAL mode with a busy timeout and writes are
serialised by a process-wide lock, so concurrent writers wait instead of failing; PostgreSQL
handles concurrent writers itself (``INSERT ... ON CONFLICT DO NOTHING`` makes the
get-or-create of users, artists and tracks race-free).
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import create_engine, event, func, literal, select, union_all, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from deepcuts.data.artists import artist_credits
from deepcuts.data.interactions import Interactions
from deepcuts.exceptions import DataError, DeepcutsError
from deepcuts.serving import schema as S
from deepcuts.serving._validate import MAX_ID, MAX_NAME, check_id, check_name

__all__ = ["MAX_ID", "MAX_NAME", "Listen", "Store", "default_url"]

log = logging.getLogger(__name__)

#: bound parameters per statement chunk (SQLite allows 32766, PostgreSQL 65535)
_CHUNK = 500


@functools.lru_cache(maxsize=65536)
def _primary_credit(raw: str) -> tuple[str, str] | None:
    """``(key, display)`` of the primary artist of a raw credit, ``None`` for no usable name
    (:func:`~deepcuts.data.artists.artist_credits` with ``credit="primary"``; a pure function
    of the string, so cached for the write path)."""
    credits = artist_credits(raw, credit="primary")
    return (credits[0][0], credits[0][1]) if credits else None


@dataclass(frozen=True)
class Listen:
    """One listen as posted to the service.

    Attributes
    ----------
    user : str
        External user id.
    artist : str
        Artist credit as written (``"Jay-Z feat. Beyonce"``); matched to an artist by the
        normalised key of its primary artist.
    track : str or None
        Track title.
    listened_at : int or None
        Unix seconds (UTC); ``None`` means now.
    fraction : float or None
        Part of the track listened, in [0, 1]; ``None`` when unknown (counts as a full play).
    """

    user: str
    artist: str
    track: str | None = None
    listened_at: int | None = None
    fraction: float | None = None


def default_url(data_dir) -> str:
    """SQLite URL of ``<data_dir>/deepcuts.sqlite3``."""
    return f"sqlite:///{Path(data_dir).resolve() / 'deepcuts.sqlite3'}"


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _chunks(seq: Sequence, size: int = _CHUNK):
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


class Store:
    """Listens, users, artists, tracks and the model registry in one database.

    Parameters
    ----------
    url : str
        SQLAlchemy URL: ``sqlite:///path/file.sqlite3`` (default kind) or
        ``postgresql+psycopg://user:password@host/dbname``. ``postgresql://`` is read as
        ``postgresql+psycopg://``.
    upgrade : bool, default=True
        Bring the schema to the newest migration on start.

    Examples
    --------
    >>> store = Store("sqlite://")
    >>> store.add_listens([Listen("ann", "The Beatles", "Help!", 1_700_000_000, 1.0)])
    1
    >>> store.history("ann")
    {'beatles': 1.0}
    """

    def __init__(self, url: str, *, upgrade: bool = True):
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise DeepcutsError(
                f"database URL {url!r} is not valid; use sqlite:///path/to/file.sqlite3 or "
                "postgresql+psycopg://user:password@host/dbname"
            ) from None
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        self.url = parsed
        self.dialect = parsed.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise DeepcutsError(
                f"database {self.dialect!r} is not supported; use sqlite or postgresql"
            )
        kw: dict = {}
        if self.dialect == "sqlite":
            kw["connect_args"] = {"check_same_thread": False, "timeout": 30}
            if parsed.database in (None, "", ":memory:"):
                from sqlalchemy.pool import StaticPool

                kw["poolclass"] = StaticPool
            elif parsed.database:
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        else:
            kw["pool_size"] = 10
            kw["max_overflow"] = 40
            kw["pool_pre_ping"] = True
        try:
            self.engine: Engine = create_engine(parsed, **kw)
        except (NoSuchModuleError, ModuleNotFoundError) as e:
            extra = "postgres" if self.dialect == "postgresql" else "serve"
            raise DeepcutsError(
                f"cannot open {parsed!r}: {e}; install the '{extra}' extra: "
                f"pip install 'deepcuts[{extra}]'"
            ) from None
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        # SQLite allows one writer at a time: serialise writers in-process instead of retrying
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else nullcontext()
        if upgrade:
            self.upgrade()

    def __repr__(self) -> str:
        return f"Store({self.url.render_as_string(hide_password=True)!r})"

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    # ------------------------------------------------------------------ schema
    def upgrade(self, revision: str = "head") -> str:
        """Apply the Alembic migrations shipped with deepcuts; returns the new revision."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option(
            "script_location", str(resources.files("deepcuts.serving") / "migrations")
        )
        cfg.set_main_option("sqlalchemy.url", self.url.render_as_string(hide_password=False))
        try:
            with self._write_lock, self.engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
        except OperationalError as e:
            raise DeepcutsError(f"cannot open database {self!r}: {e.orig}") from None
        return self.revision()

    def revision(self) -> str | None:
        """The schema revision the database is at (``None`` before the first migration)."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    # ------------------------------------------------------------------ writes
    def _insert_ignore(self, conn: Connection, table, rows: list[dict], keys: list[str]) -> None:
        ins = pg_insert if self.dialect == "postgresql" else sqlite_insert
        for part in _chunks(rows):
            conn.execute(ins(table).on_conflict_do_nothing(index_elements=keys), part)

    def _user_ids(self, conn: Connection, ids: Iterable[str]) -> dict[str, int]:
        ids = sorted(set(ids))  # a fixed order: concurrent writers lock rows alike
        now = int(time.time())
        self._insert_ignore(
            conn, S.users, [{"external_id": u, "created_at": now} for u in ids], ["external_id"]
        )
        out: dict[str, int] = {}
        for part in _chunks(ids):
            q = select(S.users.c.external_id, S.users.c.id).where(S.users.c.external_id.in_(part))
            out.update(conn.execute(q).all())
        return out

    def _artist_ids(
        self, conn: Connection, names: dict[str, str], tags: dict[str, list] | None = None
    ) -> dict[str, int]:
        keys = sorted(names)
        rows = [
            {"key": k, "name": names[k][:MAX_NAME], "tags": json.dumps((tags or {}).get(k) or [])}
            for k in keys
        ]
        self._insert_ignore(conn, S.artists, rows, ["key"])
        out: dict[str, int] = {}
        for part in _chunks(keys):
            q = select(S.artists.c.key, S.artists.c.id).where(S.artists.c.key.in_(part))
            out.update(conn.execute(q).all())
        return out

    def _track_ids(self, conn: Connection, pairs: set[tuple[int, str]]) -> dict[tuple, int]:
        pairs = sorted(pairs)
        self._insert_ignore(
            conn,
            S.tracks,
            [{"artist_id": a, "title": t} for a, t in pairs],
            ["artist_id", "title"],
        )
        out: dict[tuple, int] = {}
        by_artist: dict[int, list[str]] = {}
        for a, t in pairs:
            by_artist.setdefault(a, []).append(t)
        for a, titles in by_artist.items():
            for part in _chunks(titles):
                q = select(S.tracks.c.title, S.tracks.c.id).where(
                    (S.tracks.c.artist_id == a) & S.tracks.c.title.in_(part)
                )
                out.update({(a, t): i for t, i in conn.execute(q).all()})
        return out

    @staticmethod
    def _check_listens(listens: Sequence[Listen]) -> None:
        """The rule of :mod:`deepcuts.serving._validate` for ids and names, fraction in [0, 1]
        and listened_at in [0, 2**42): checked before the database, alike on both back-ends."""
        for k, x in enumerate(listens):
            where = f"listen {k}"
            try:
                check_id(x.user)
                check_name(x.artist)
                if x.track is not None and (not isinstance(x.track, str) or x.track.strip()):
                    check_name(x.track, what="track title", field="track")
            except DataError as e:
                raise DataError(f"{where}: {e}") from None
            f = x.fraction
            if f is not None and (
                isinstance(f, bool)
                or not isinstance(f, int | float)
                or not (0.0 <= float(f) <= 1.0)
            ):
                raise DataError(
                    f"{where}: fraction {f!r} must be a number between 0 and 1", field="fraction"
                )
            t = x.listened_at
            if t is not None and (
                isinstance(t, bool) or not isinstance(t, int | np.integer) or not 0 <= t < 2**42
            ):
                raise DataError(
                    f"{where}: listened_at {t!r} must be whole unix seconds from 0 to 2**42",
                    field="listened_at",
                )

    def add_listens(self, listens: Sequence[Listen], *, replace_user: str | None = None) -> int:
        """Store listens in one transaction (all or none); returns how many were stored.

        Users, artists (matched by normalised name) and tracks are created as needed. With
        ``replace_user``, that user's stored listens and play counts are deleted first, in the
        same transaction (a re-uploaded history replaces the old one).
        """
        listens = list(listens)
        if not listens:
            return 0
        self._check_listens(listens)
        # each raw name's primary credit, as normalize_artists(credit="primary") gives it, but
        # cached: a player posting one listen at a time repeats the same artists (issue 13)
        key_of: dict[str, str] = {}
        display: dict[str, str] = {}
        for a in sorted({x.artist for x in listens}):
            credit = _primary_credit(a)
            if credit is not None:
                key_of[a] = credit[0]
                display[credit[0]] = credit[1]
        for x in listens:
            if x.artist not in key_of:
                raise DataError(f"artist {x.artist!r} has no usable name", field="artist")
            if len(key_of[x.artist]) > MAX_NAME:  # normalising can lengthen a name (NFKC)
                raise DataError(
                    f"artist {x.artist[:40]!r}...: its normalised key has "
                    f"{len(key_of[x.artist])} characters; the limit is {MAX_NAME}",
                    field="artist",
                )
        now = int(time.time())
        with self._write_lock, self.engine.begin() as conn:
            uid = self._user_ids(conn, (x.user.strip() for x in listens))
            if replace_user is not None:
                old = uid.get(replace_user.strip())
                if old is not None:
                    conn.execute(S.listens.delete().where(S.listens.c.user_id == old))
                    conn.execute(S.play_counts.delete().where(S.play_counts.c.user_id == old))
            aid = self._artist_ids(conn, display)
            pairs = {
                (aid[key_of[x.artist]], x.track.strip()[:MAX_NAME])
                for x in listens
                if x.track and x.track.strip()
            }
            tid = self._track_ids(conn, pairs) if pairs else {}
            rows = []
            for x in listens:
                a = aid[key_of[x.artist]]
                t = x.track.strip()[:MAX_NAME] if x.track and x.track.strip() else None
                rows.append(
                    {
                        "user_id": uid[x.user.strip()],
                        "artist_id": a,
                        "track_id": tid[(a, t)] if t is not None else None,
                        "listened_at": now if x.listened_at is None else int(x.listened_at),
                        "fraction": None if x.fraction is None else float(x.fraction),
                    }
                )
            for part in _chunks(rows, 5000):
                conn.execute(S.listens.insert(), part)
        return len(rows)

    def add_user(self, user: str) -> None:
        """Create ``user`` if it does not exist."""
        with self._write_lock, self.engine.begin() as conn:
            self._user_ids(conn, [user])

    def import_play_counts(self, frame: pd.DataFrame, artists: pd.DataFrame | None = None) -> int:
        """Add aggregated play counts (datasets without listen times), in one transaction.

        Parameters
        ----------
        frame : DataFrame with columns user, item, count
            ``item`` is the artist key (see :func:`~deepcuts.data.artist_key`).
        artists : DataFrame with columns item, name[, tags], optional
            Display names and tag lists of the artists; keys without a row use the key.

        Returns
        -------
        int
            Rows stored (counts of a repeated (user, item) pair are summed).
        """
        df = frame.groupby(["user", "item"], as_index=False, sort=False)["count"].sum()
        names = {k: k for k in df["item"].unique()}
        tags: dict[str, list] = {}
        if artists is not None:
            a = artists.drop_duplicates("item")
            a = a[a["item"].isin(names)]
            names.update(dict(zip(a["item"], a["name"].astype(str))))
            if "tags" in a:
                tags = {
                    k: list(t) if isinstance(t, list) else [] for k, t in zip(a["item"], a["tags"])
                }
        with self._write_lock, self.engine.begin() as conn:
            uid = self._user_ids(conn, df["user"].astype(str))
            aid = self._artist_ids(conn, names, tags)
            rows = [
                {"user_id": uid[str(u)], "artist_id": aid[i], "count": float(c)}
                for u, i, c in zip(df["user"], df["item"], df["count"])
            ]
            ins = pg_insert if self.dialect == "postgresql" else sqlite_insert
            for part in _chunks(rows, 5000):
                stmt = ins(S.play_counts)
                stmt = stmt.on_conflict_do_update(
                    index_elements=["user_id", "artist_id"],
                    set_={"count": S.play_counts.c.count + stmt.excluded.count},
                )
                conn.execute(stmt, part)
        return len(rows)

    # ------------------------------------------------------------------ reads
    def counts(self) -> dict[str, int]:
        """Number of rows per table."""
        with self.engine.connect() as conn:
            return {
                t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                for t in (S.users, S.artists, S.tracks, S.listens, S.play_counts, S.models)
            }

    def is_empty(self) -> bool:
        """True when no plays are stored at all."""
        c = self.counts()
        return c["listens"] == 0 and c["play_counts"] == 0

    def _plays(self):
        """(user_id, artist_id, plays) of every play count and every listen (fraction-weighted)."""
        pc = select(
            S.play_counts.c.user_id, S.play_counts.c.artist_id, S.play_counts.c.count.label("c")
        )
        ls = select(
            S.listens.c.user_id,
            S.listens.c.artist_id,
            func.coalesce(S.listens.c.fraction, literal(1.0)).label("c"),
        )
        return union_all(pc, ls).subquery("plays")

    def history(self, user: str) -> dict[str, float] | None:
        """``{artist key: plays}`` of one user (``None`` if the user does not exist).

        A listen counts as the fraction of the track listened (1 when unknown).
        """
        with self.engine.connect() as conn:
            uid = conn.execute(
                select(S.users.c.id).where(S.users.c.external_id == str(user))
            ).scalar_one_or_none()
            if uid is None:
                return None
            p = self._plays()
            q = (
                select(S.artists.c.key, func.sum(p.c.c))
                .join(p, p.c.artist_id == S.artists.c.id)
                .where(p.c.user_id == uid)
                .group_by(S.artists.c.key)
            )
            return {k: float(v) for k, v in conn.execute(q).all()}

    def has_user(self, user: str) -> bool:
        with self.engine.connect() as conn:
            q = select(S.users.c.id).where(S.users.c.external_id == str(user))
            return conn.execute(q).scalar_one_or_none() is not None

    def users(self, *, limit: int = 100, offset: int = 0) -> list[str]:
        """External user ids, oldest first."""
        with self.engine.connect() as conn:
            q = select(S.users.c.external_id).order_by(S.users.c.id).limit(limit).offset(offset)
            return [r[0] for r in conn.execute(q).all()]

    def count_listens(self, user: str | None = None) -> int:
        with self.engine.connect() as conn:
            q = select(func.count()).select_from(S.listens)
            if user is not None:
                q = q.join(S.users, S.users.c.id == S.listens.c.user_id).where(
                    S.users.c.external_id == str(user)
                )
            return int(conn.execute(q).scalar_one())

    def interactions(self) -> Interactions:
        """Everything stored, as users x artists play counts (the training data of a model).

        Item ids are artist keys, user ids the external ids; ``items`` carries names and tags.
        """
        p = self._plays()
        q = (
            select(
                S.users.c.external_id.label("user"),
                S.artists.c.key.label("item"),
                func.sum(p.c.c).label("count"),
            )
            .select_from(p)
            .join(S.users, S.users.c.id == p.c.user_id)
            .join(S.artists, S.artists.c.id == p.c.artist_id)
            .group_by(S.users.c.external_id, S.artists.c.key)
            .order_by(S.users.c.external_id, S.artists.c.key)
        )
        with self.engine.connect() as conn:
            df = pd.DataFrame(conn.execute(q).all(), columns=["user", "item", "count"])
            meta = pd.DataFrame(
                conn.execute(select(S.artists.c.key, S.artists.c.name, S.artists.c.tags)).all(),
                columns=["item", "name", "tags"],
            )
        df = df[df["count"] > 0]
        if df.empty:
            raise DeepcutsError("the database holds no plays yet; post listens or import data")
        meta["tags"] = [json.loads(t) if t else [] for t in meta["tags"]]
        return Interactions.from_frame(df, items=meta)

    # ------------------------------------------------------------------ model registry
    def register_model(self, kind: str, params: dict) -> int:
        """A new registry row in status ``training``; returns its id."""
        with self._write_lock, self.engine.begin() as conn:
            res = conn.execute(
                S.models.insert().values(
                    kind=kind,
                    params=json.dumps(params, sort_keys=True, default=str),
                    status="training",
                    active=False,
                    created_at=int(time.time()),
                )
            )
            return int(res.inserted_primary_key[0])

    def finish_model(self, model_id: int, *, path: str, n_users: int, n_items: int, nnz: int):
        """Mark a model ``ready`` with its files and size."""
        with self._write_lock, self.engine.begin() as conn:
            conn.execute(
                update(S.models)
                .where(S.models.c.id == model_id)
                .values(
                    status="ready",
                    path=str(path),
                    n_users=int(n_users),
                    n_items=int(n_items),
                    nnz=int(nnz),
                    finished_at=int(time.time()),
                )
            )

    def fail_model(self, model_id: int, error: str) -> None:
        with self._write_lock, self.engine.begin() as conn:
            conn.execute(
                update(S.models)
                .where(S.models.c.id == model_id)
                .values(status="failed", error=str(error)[:2000], finished_at=int(time.time()))
            )

    def activate_model(self, model_id: int) -> None:
        """Make ``model_id`` the one model served (in one transaction)."""
        with self._write_lock, self.engine.begin() as conn:
            conn.execute(update(S.models).where(S.models.c.active).values(active=False))
            conn.execute(update(S.models).where(S.models.c.id == model_id).values(active=True))

    def models(self) -> list[dict]:
        """Registry rows, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(S.models).order_by(S.models.c.id.desc())).mappings().all()
        out = []
        for r in rows:
            d = dict(r)
            d["params"] = json.loads(d["params"])
            d["active"] = bool(d["active"])
            out.append(d)
        return out

    def last_model_id(self) -> int:
        """The largest registry id (0 when the registry is empty)."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.max(S.models.c.id))).scalar_one() or 0)

    def fail_stale_models(self, error: str) -> list[int]:
        """Mark every model still ``training`` failed with ``error`` (a server start: no
        training survives its server); returns their ids."""
        with self._write_lock, self.engine.begin() as conn:
            ids = [
                int(r[0])
                for r in conn.execute(
                    select(S.models.c.id).where(S.models.c.status == "training")
                ).all()
            ]
            if ids:
                conn.execute(
                    update(S.models)
                    .where(S.models.c.id.in_(ids))
                    .values(status="failed", error=error, finished_at=int(time.time()))
                )
        return ids

    def active_model(self) -> dict | None:
        """The registry row of the served model, if any."""
        for m in self.models():
            if m["active"]:
                return m
        return None
