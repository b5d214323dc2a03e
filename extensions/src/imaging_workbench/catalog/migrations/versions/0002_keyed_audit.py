"""Keyed audit trail: each row says how its MAC was made, and which dataset it concerns.

Rows written before this revision keep their unkeyed SHA-256 hashes and get scheme "sha256";
the workbench then appends one keyed "audit.upgrade" row that seals them (see catalog/audit.py).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The server default marks every existing row, and any row an old release still running
    # writes, as unkeyed; verification then knows to treat it so.
    op.add_column("audit_events", sa.Column("scheme", sa.String(16), nullable=False, server_default="sha256"))
    op.add_column("audit_events", sa.Column("dataset", sa.String(64), nullable=True))
    op.create_index("ix_audit_events_dataset", "audit_events", ["dataset"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_dataset", table_name="audit_events")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("dataset")
        batch.drop_column("scheme")
