"""Training sessions and their learners and instructors; when each account last logged in.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "training_sessions",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("dataset_id", sa.String(64), sa.ForeignKey("datasets.id"), nullable=False),
        sa.Column("material", sa.Text(), nullable=False),
        sa.Column("profile", sa.String(64), nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=False),
        sa.Column("ends_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
    )
    op.create_table(
        "session_members",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("session_name", sa.String(64), sa.ForeignKey("training_sessions.name"), nullable=False),
        sa.Column("user", sa.String(128), sa.ForeignKey("accounts.name"), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("temporary", sa.Boolean(), nullable=False),
        sa.Column("one_time_password", sa.String(128), nullable=True),
        sa.Column("spawn_error", sa.Text(), nullable=True),
        sa.Column("grant_id", sa.Integer(), sa.ForeignKey("grants.id"), nullable=True),
        sa.UniqueConstraint("session_name", "user"),
    )
    op.create_index("ix_session_members_session_name", "session_members", ["session_name"])
    op.create_index("ix_session_members_user", "session_members", ["user"])
    with op.batch_alter_table("accounts") as accounts:
        accounts.add_column(sa.Column("last_login_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("accounts") as accounts:
        accounts.drop_column("last_login_at")
    op.drop_table("session_members")
    op.drop_table("training_sessions")
