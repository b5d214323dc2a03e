"""The workbench roles that users' identity provider groups give them, kept from login to login.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idp_roles",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("account", sa.String(128), sa.ForeignKey("accounts.name"), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("dataset", sa.String(128), nullable=True),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("account", "role", "dataset"),
    )
    op.create_index("ix_idp_roles_account", "idp_roles", ["account"])


def downgrade() -> None:
    op.drop_table("idp_roles")
