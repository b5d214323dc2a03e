"""Access requests: a researcher asks, each dataset's steward decides, the researcher accepts.
Grants gain their access mode, their conditions and the request they came from.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "access_requests",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("requester", sa.String(128), sa.ForeignKey("accounts.name"), nullable=False),
        sa.Column("project", sa.String(200), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("requested_days", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_access_requests_requester", "access_requests", ["requester"])
    op.create_table(
        "access_request_items",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.Integer(), sa.ForeignKey("access_requests.id"), nullable=False),
        sa.Column("dataset_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("decided_by", sa.String(128), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("days", sa.Integer(), nullable=True),
        sa.Column("conditions", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("responded_at", sa.DateTime(), nullable=True),
        sa.Column("grant_id", sa.Integer(), nullable=True),
        sa.UniqueConstraint("request_id", "dataset_id"),
    )
    op.create_index("ix_access_request_items_request_id", "access_request_items", ["request_id"])
    op.create_index("ix_access_request_items_dataset_id", "access_request_items", ["dataset_id"])
    # Existing grants were all mounted in sandboxes, without conditions, and came from no request.
    with op.batch_alter_table("grants") as batch:
        batch.add_column(sa.Column("mode", sa.String(16), nullable=False, server_default="sandbox"))
        batch.add_column(sa.Column("conditions", sa.JSON(), nullable=False, server_default="{}"))
        batch.add_column(sa.Column("request_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_grants_request_id", "access_requests", ["request_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("grants") as batch:
        batch.drop_constraint("fk_grants_request_id", type_="foreignkey")
        batch.drop_column("request_id")
        batch.drop_column("conditions")
        batch.drop_column("mode")
    op.drop_table("access_request_items")
    op.drop_table("access_requests")
