"""Database schema of the service (SQLAlchemy 2 Core tables).

The tables mirror the Alembic migration ``0001_initial`` shipped in
``deepcuts/serving/migrations``; the migration, not :meth:`MetaData.create_all`, creates them.

========== ==========================================================================
table      rows
========== ==========================================================================
users      one per listener; ``external_id`` is the id used by the API
artists    one per artist; ``key`` is the normalised name (:func:`~deepcuts.data.artist_key`)
           that listens are matched by, and the item id the models use
tracks     one per (artist, title)
listens    one per listen: user, artist, track, ``listened_at`` (unix seconds, UTC) and
           ``fraction`` listened in [0, 1] (NULL = unknown, counted as a full play)
play_counts aggregated plays imported from datasets without listen times (Last.fm 2K)
models     the registry of trained models: kind, parameters, files, status, active flag
========== ==========================================================================
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

__all__ = ["artists", "listens", "metadata", "models", "play_counts", "tracks", "users"]

metadata = MetaData()

#: BIGINT on PostgreSQL, INTEGER on SQLite (where only INTEGER PRIMARY KEY auto-increments)
BigId = BigInteger().with_variant(Integer(), "sqlite")

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("external_id", String(200), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
)

artists = Table(
    "artists",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(300), nullable=False, unique=True),
    Column("name", String(300), nullable=False),
    Column("tags", Text, nullable=False, server_default=""),
)

tracks = Table(
    "tracks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("artist_id", Integer, ForeignKey("artists.id"), nullable=False),
    Column("title", String(300), nullable=False),
    UniqueConstraint("artist_id", "title", name="uq_tracks_artist_title"),
)

listens = Table(
    "listens",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("artist_id", Integer, ForeignKey("artists.id"), nullable=False),
    Column("track_id", Integer, ForeignKey("tracks.id"), nullable=True),
    Column("listened_at", BigInteger, nullable=False),
    Column("fraction", Float, nullable=True),
    CheckConstraint("fraction IS NULL OR (fraction >= 0 AND fraction <= 1)", name="ck_fraction"),
    Index("ix_listens_user", "user_id"),
)

play_counts = Table(
    "play_counts",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
    Column("artist_id", Integer, ForeignKey("artists.id"), primary_key=True),
    Column("count", Float, nullable=False),
    CheckConstraint("count >= 0", name="ck_count"),
)

models = Table(
    "models",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(50), nullable=False),
    Column("params", Text, nullable=False),
    Column("path", String(1000), nullable=True),
    Column("status", String(20), nullable=False),
    Column("active", Boolean, nullable=False, server_default=false()),
    Column("created_at", BigInteger, nullable=False),
    Column("finished_at", BigInteger, nullable=True),
    Column("n_users", Integer, nullable=True),
    Column("n_items", Integer, nullable=True),
    Column("nnz", BigInteger, nullable=True),
    Column("error", Text, nullable=True),
    CheckConstraint("status IN ('training', 'ready', 'failed')", name="ck_model_status"),
)
