"""Baseline: the catalog as the release before migrations made it (Base.metadata.create_all).

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("cancer_type", sa.String(64), nullable=False),
        sa.Column("modality", sa.String(32), nullable=False),
        sa.Column("body_part", sa.String(64), nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("n_subjects", sa.Integer(), nullable=False),
        sa.Column("n_series", sa.Integer(), nullable=False),
        sa.Column("host_path", sa.Text(), nullable=False),
        sa.Column("licence", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "accounts",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "grants",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("user", sa.String(128), sa.ForeignKey("accounts.name"), nullable=False),
        sa.Column("dataset_id", sa.String(64), sa.ForeignKey("datasets.id"), nullable=False),
        sa.Column("granted_by", sa.String(128), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("granted_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_by", sa.String(128), nullable=True),
    )
    op.create_index("ix_grants_user", "grants", ["user"])
    op.create_index("ix_grants_dataset_id", "grants", ["dataset_id"])
    op.create_table(
        "server_mounts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("user", sa.String(128), nullable=False),
        sa.Column("server_name", sa.String(128), nullable=False),
        sa.Column("container", sa.String(128), nullable=False),
        sa.Column("datasets", sa.JSON(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("stopped_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_server_mounts_user", "server_mounts", ["user"])
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("hash"),
    )
    op.create_index("ix_audit_events_action", "audit_events", ["action"])
    _dicom_tables()
    op.create_table(
        "federated_jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user", sa.String(128), nullable=False),
        sa.Column("algorithm", sa.String(64), nullable=False),
        sa.Column("version", sa.String(16), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("datasets", sa.JSON(), nullable=False),
        sa.Column("site_datasets", sa.JSON(), nullable=False),
        sa.Column("flare_job_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("progress", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("result_dir", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(), nullable=False),
        sa.Column("deadline", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_federated_jobs_user", "federated_jobs", ["user"])
    op.create_index("ix_federated_jobs_status", "federated_jobs", ["status"])


def _dicom_tables() -> None:
    op.create_table(
        "dicom_roots",
        sa.Column("dataset_id", sa.String(64), primary_key=True),
        sa.Column("folder", sa.Text(), nullable=False),
        sa.Column("indexed_at", sa.DateTime(), nullable=False),
        sa.Column("n_files", sa.Integer(), nullable=False),
        sa.Column("n_problems", sa.Integer(), nullable=False),
    )
    op.create_table(
        "dicom_instances",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("dataset_id", sa.String(64), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("problem", sa.Text(), nullable=False),
        sa.Column("sop_uid", sa.String(64), nullable=False),
        sa.Column("sop_class", sa.String(64), nullable=False),
        sa.Column("series_uid", sa.String(64), nullable=False),
        *_header(),
        sa.Column("frame_of_reference", sa.String(64), nullable=False),
        sa.Column("transfer_syntax", sa.String(64), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("cols", sa.Integer(), nullable=False),
        sa.Column("n_frames", sa.Integer(), nullable=False),
        sa.Column("bits_allocated", sa.Integer(), nullable=False),
        sa.Column("bits_stored", sa.Integer(), nullable=False),
        sa.Column("pixel_representation", sa.Integer(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("photometric", sa.String(16), nullable=False),
        sa.Column("slope", sa.Float(), nullable=False),
        sa.Column("intercept", sa.Float(), nullable=False),
        sa.Column("position", sa.JSON(), nullable=True),
        sa.Column("orientation", sa.JSON(), nullable=True),
        sa.Column("pixel_spacing", sa.JSON(), nullable=True),
        sa.Column("slice_thickness", sa.Float(), nullable=False),
        sa.Column("slice_position", sa.Float(), nullable=False),
        sa.Column("instance_number", sa.Integer(), nullable=False),
        sa.Column("pixel_offset", sa.BigInteger(), nullable=False),
        sa.Column("pixel_length", sa.BigInteger(), nullable=False),
        sa.Column("referenced_series", sa.String(64), nullable=False),
        sa.UniqueConstraint("dataset_id", "path"),
    )
    op.create_index("ix_dicom_instances_dataset_id", "dicom_instances", ["dataset_id"])
    op.create_index("ix_dicom_instances_series_uid", "dicom_instances", ["series_uid"])
    op.create_table(
        "dicom_series",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("dataset_id", sa.String(64), nullable=False),
        sa.Column("series_uid", sa.String(64), nullable=False),
        *_header(),
        sa.Column("n_instances", sa.Integer(), nullable=False),
        sa.Column("n_slices", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("cols", sa.Integer(), nullable=False),
        sa.Column("spacing", sa.JSON(), nullable=True),
        sa.Column("transfer_syntaxes", sa.JSON(), nullable=False),
        sa.Column("referenced_series", sa.String(64), nullable=False),
        sa.Column("seg_uids", sa.JSON(), nullable=False),
        sa.UniqueConstraint("dataset_id", "series_uid"),
    )
    op.create_index("ix_dicom_series_dataset_id", "dicom_series", ["dataset_id"])
    op.create_index("ix_dicom_series_series_uid", "dicom_series", ["series_uid"])
    op.create_index("ix_dicom_series_patient_id", "dicom_series", ["patient_id"])


def downgrade() -> None:
    for table in ("federated_jobs", "dicom_series", "dicom_instances", "dicom_roots", "audit_events",
                  "server_mounts", "grants", "accounts", "datasets"):
        op.drop_table(table)


def _header() -> list[sa.Column]:
    """The DICOM attributes both instances and series carry, in the order the models list them."""
    return [
        sa.Column("study_uid", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("modality", sa.String(16), nullable=False),
        sa.Column("body_part", sa.String(64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("study_date", sa.String(8), nullable=False),
        sa.Column("patient_sex", sa.String(16), nullable=False),
        sa.Column("patient_age", sa.String(8), nullable=False),
        sa.Column("manufacturer", sa.String(64), nullable=False),
    ]
