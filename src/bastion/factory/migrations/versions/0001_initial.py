"""The first factory schema: tracker state, proposals, jobs, builds, publications.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tracker_state",
        sa.Column("key", sa.String(512), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("result", sa.String(1024)),
        sa.Column("validators", sa.Text, nullable=False, server_default="{}"),
        sa.Column("memory", sa.Text, nullable=False, server_default="{}"),
        sa.Column("last_error", sa.String(2048)),
        sa.Column("not_before", sa.String(32)),
        sa.Column("checked_at", sa.String(32), nullable=False),
        sa.Column("changed_at", sa.String(32)),
    )
    op.create_table(
        "proposals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("image", sa.String(256), nullable=False, index=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("diff", sa.Text, nullable=False),
        sa.Column("recipe_digest", sa.String(80)),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(512), nullable=False, unique=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("proposal_id", sa.Integer, sa.ForeignKey("proposals.id")),
        sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.String(2048)),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("started_at", sa.String(32)),
        sa.Column("finished_at", sa.String(32)),
    )
    op.create_table(
        "builds",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id")),
        sa.Column("image", sa.String(256), nullable=False, index=True),
        sa.Column("recipe_digest", sa.String(80), nullable=False, index=True),
        sa.Column("image_digest", sa.String(80)),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("log_path", sa.String(4096)),
        sa.Column("started_at", sa.String(32), nullable=False),
        sa.Column("finished_at", sa.String(32)),
    )
    op.create_table(
        "publications",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("build_id", sa.Integer, sa.ForeignKey("builds.id"), nullable=False),
        sa.Column("image", sa.String(256), nullable=False, index=True),
        sa.Column("reference", sa.String(1024), nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("tags", sa.Text, nullable=False, server_default="[]"),
        sa.Column("published_at", sa.String(32), nullable=False),
        sa.UniqueConstraint("reference", "digest"),
    )


def downgrade() -> None:
    for table in ("publications", "builds", "jobs", "proposals", "tracker_state"):
        op.drop_table(table)
