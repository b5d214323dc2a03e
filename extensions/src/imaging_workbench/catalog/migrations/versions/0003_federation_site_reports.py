"""What federation sites report: each dataset's disclosure policy and each researcher's budget.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "federation_site_policies",
        sa.Column("site", sa.String(64), primary_key=True),
        sa.Column("dataset_id", sa.String(64), primary_key=True),
        sa.Column("policy", sa.JSON(), nullable=False),
        sa.Column("reported_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "federation_budgets",
        sa.Column("site", sa.String(64), primary_key=True),
        sa.Column("researcher", sa.String(128), primary_key=True),
        sa.Column("dataset_id", sa.String(64), primary_key=True),
        sa.Column("spent", sa.Float(), nullable=False),
        sa.Column("remaining", sa.Float(), nullable=False),
        sa.Column("dataset_remaining", sa.Float(), nullable=False),
        sa.Column("epsilon_per_job", sa.Float(), nullable=False),
        sa.Column("reported_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("federation_budgets")
    op.drop_table("federation_site_policies")
