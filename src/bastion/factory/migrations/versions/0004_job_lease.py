"""A job is claimed under a lease: the worker holding it and until when (issue 20, faults).

A second delivery of a job whose lease is live waits; one whose lease expired takes the job over
(docs/architecture.md, Decisions: the lease and its numbers).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("worker", sa.String(256)))
        batch.add_column(sa.Column("lease_until", sa.String(32)))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("worker")
