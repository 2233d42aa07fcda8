"""The CVE clock: one item per published image and vulnerability (``bastion.factory._db``).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cve_clock",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("image", sa.String(256), nullable=False),
        sa.Column("vulnerability", sa.String(128), nullable=False),
        sa.Column("package", sa.String(256)),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("kev", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("first_seen_at", sa.String(32), nullable=False),
        sa.Column("fix_available_at", sa.String(32)),
        sa.Column("fixed_version", sa.String(256)),
        sa.Column("closed_at", sa.String(32)),
        sa.Column("closed_by", sa.Integer, sa.ForeignKey("publications.id")),
        sa.UniqueConstraint("image", "vulnerability"),
    )


def downgrade() -> None:
    op.drop_table("cve_clock")
