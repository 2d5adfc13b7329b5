"""initial schema: users, artists, tracks, listens, play_counts, models

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("external_id", sa.String(200), nullable=False, unique=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "artists",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(300), nullable=False, unique=True),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("tags", sa.Text, nullable=False, server_default=""),
    )
    op.create_table(
        "tracks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("artist_id", sa.Integer, sa.ForeignKey("artists.id"), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.UniqueConstraint("artist_id", "title", name="uq_tracks_artist_title"),
    )
    op.create_table(
        "listens",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("artist_id", sa.Integer, sa.ForeignKey("artists.id"), nullable=False),
        sa.Column("track_id", sa.Integer, sa.ForeignKey("tracks.id"), nullable=True),
        sa.Column("listened_at", sa.BigInteger, nullable=False),
        sa.Column("fraction", sa.Float, nullable=True),
        sa.CheckConstraint(
            "fraction IS NULL OR (fraction >= 0 AND fraction <= 1)", name="ck_fraction"
        ),
    )
    op.create_index("ix_listens_user", "listens", ["user_id"])
    op.create_table(
        "play_counts",
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("artist_id", sa.Integer, sa.ForeignKey("artists.id"), primary_key=True),
        sa.Column("count", sa.Float, nullable=False),
        sa.CheckConstraint("count >= 0", name="ck_count"),
    )
    op.create_table(
        "models",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(50), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("path", sa.String(1000), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("finished_at", sa.BigInteger, nullable=True),
        sa.Column("n_users", sa.Integer, nullable=True),
        sa.Column("n_items", sa.Integer, nullable=True),
        sa.Column("nnz", sa.BigInteger, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.CheckConstraint("status IN ('training', 'ready', 'failed')", name="ck_model_status"),
    )


def downgrade() -> None:
    for name in ("models", "play_counts", "listens", "tracks", "artists", "users"):
        op.drop_table(name)
