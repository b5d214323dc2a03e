"""Batch runs: parameterised notebooks run by papermill in a sandbox of their own.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batch_runs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("user", sa.String(128), sa.ForeignKey("accounts.name"), nullable=False),
        sa.Column("notebook", sa.Text(), nullable=False),
        sa.Column("dataset_id", sa.String(64), sa.ForeignKey("datasets.id"), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("per_case", sa.Boolean(), nullable=False),
        sa.Column("profile", sa.String(64), nullable=False),
        sa.Column("image", sa.String(256), nullable=False),
        sa.Column("container", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("notebook_sha256", sa.String(64), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("submitted_by", sa.String(128), nullable=False),
        sa.Column("submitted_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_batch_runs_user", "batch_runs", ["user"])
    op.create_index("ix_batch_runs_state", "batch_runs", ["state"])


def downgrade() -> None:
    op.drop_table("batch_runs")
