"""Jobs know their image and catalog; each stage of a job records its result (issue 20 item 2).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("image", sa.String(256)))
        batch.add_column(sa.Column("catalog", sa.String(4096)))
        batch.add_column(sa.Column("log_path", sa.String(4096)))
    op.create_table(
        "stages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id"), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("at", sa.String(32), nullable=False),
    )
    op.create_index("stages_job", "stages", ["job_id"])


def downgrade() -> None:
    op.drop_index("stages_job", "stages")
    op.drop_table("stages")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("log_path")
        batch.drop_column("catalog")
        batch.drop_column("image")
