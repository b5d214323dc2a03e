"""Published dashboards and the stewards' approvals of the datasets they show.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dashboards",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(128), sa.ForeignKey("accounts.name"), nullable=False),
        sa.Column("notebook", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("image", sa.Text(), nullable=False),
        sa.Column("datasets", sa.JSON(), nullable=False),
        sa.Column("group", sa.String(128), nullable=False),
        sa.Column("published_at", sa.DateTime(), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_dashboards_owner", "dashboards", ["owner"])
    op.create_table(
        "dashboard_approvals",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("dashboard_name", sa.String(64), sa.ForeignKey("dashboards.name"), nullable=False),
        sa.Column("dataset_id", sa.String(64), sa.ForeignKey("datasets.id"), nullable=False),
        sa.Column("steward", sa.String(128), nullable=False),
        sa.Column("approved", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_by", sa.String(128), nullable=True),
    )
    op.create_index("ix_dashboard_approvals_dashboard_name", "dashboard_approvals", ["dashboard_name"])


def downgrade() -> None:
    op.drop_table("dashboard_approvals")
    op.drop_table("dashboards")
