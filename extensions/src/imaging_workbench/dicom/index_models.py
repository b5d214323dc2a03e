"""Tables of the dataset index: roots, instances (one row per file) and series.

Keyed by the dataset id string with no foreign key to the catalog's datasets table, so the same
index works in the catalog database and in a private SQLite file inside a sandbox
(`ensure_index_tables(engine)` creates just these tables there).
"""

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Float, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..catalog.models import Base


class IndexRoot(Base):
    """Where a dataset's files were indexed from, and when."""

    __tablename__ = "dicom_roots"

    dataset_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    folder: Mapped[str] = mapped_column(Text)
    indexed_at: Mapped[datetime]
    n_files: Mapped[int] = mapped_column(Integer, default=0)
    n_problems: Mapped[int] = mapped_column(Integer, default=0)


class IndexedInstance(Base):
    """One file: its stat (for incremental re-indexing), header, geometry and pixel byte range.

    status is "ok", or "problem" with the reason in `problem` (not DICOM, damaged, ...)."""

    __tablename__ = "dicom_instances"
    __table_args__ = (UniqueConstraint("dataset_id", "path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[str] = mapped_column(String(64), index=True)
    path: Mapped[str] = mapped_column(Text)  # relative to the root folder
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    mtime_ns: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16), default="ok")
    problem: Mapped[str] = mapped_column(Text, default="")
    sop_uid: Mapped[str] = mapped_column(String(64), default="")
    sop_class: Mapped[str] = mapped_column(String(64), default="")
    series_uid: Mapped[str] = mapped_column(String(64), default="", index=True)
    study_uid: Mapped[str] = mapped_column(String(64), default="")
    patient_id: Mapped[str] = mapped_column(String(64), default="")
    modality: Mapped[str] = mapped_column(String(16), default="")
    body_part: Mapped[str] = mapped_column(String(64), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    study_date: Mapped[str] = mapped_column(String(8), default="")
    patient_sex: Mapped[str] = mapped_column(String(16), default="")
    patient_age: Mapped[str] = mapped_column(String(8), default="")
    manufacturer: Mapped[str] = mapped_column(String(64), default="")
    frame_of_reference: Mapped[str] = mapped_column(String(64), default="")
    transfer_syntax: Mapped[str] = mapped_column(String(64), default="")
    rows: Mapped[int] = mapped_column(Integer, default=0)
    cols: Mapped[int] = mapped_column(Integer, default=0)
    n_frames: Mapped[int] = mapped_column(Integer, default=1)
    bits_allocated: Mapped[int] = mapped_column(Integer, default=0)
    bits_stored: Mapped[int] = mapped_column(Integer, default=0)
    pixel_representation: Mapped[int] = mapped_column(Integer, default=0)
    samples: Mapped[int] = mapped_column(Integer, default=1)
    photometric: Mapped[str] = mapped_column(String(16), default="")
    slope: Mapped[float] = mapped_column(Float, default=1.0)
    intercept: Mapped[float] = mapped_column(Float, default=0.0)
    position: Mapped[list | None] = mapped_column(JSON, nullable=True)
    orientation: Mapped[list | None] = mapped_column(JSON, nullable=True)
    pixel_spacing: Mapped[list | None] = mapped_column(JSON, nullable=True)
    slice_thickness: Mapped[float] = mapped_column(Float, default=0.0)
    slice_position: Mapped[float] = mapped_column(Float, default=0.0)
    instance_number: Mapped[int] = mapped_column(Integer, default=0)
    pixel_offset: Mapped[int] = mapped_column(BigInteger, default=-1)
    pixel_length: Mapped[int] = mapped_column(BigInteger, default=0)
    referenced_series: Mapped[str] = mapped_column(String(64), default="")


class IndexedSeries(Base):
    """One series of a dataset, summarised from its instances; SEG series name the series they segment."""

    __tablename__ = "dicom_series"
    __table_args__ = (UniqueConstraint("dataset_id", "series_uid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[str] = mapped_column(String(64), index=True)
    series_uid: Mapped[str] = mapped_column(String(64), index=True)
    study_uid: Mapped[str] = mapped_column(String(64), default="")
    patient_id: Mapped[str] = mapped_column(String(64), default="", index=True)
    modality: Mapped[str] = mapped_column(String(16), default="")
    body_part: Mapped[str] = mapped_column(String(64), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    study_date: Mapped[str] = mapped_column(String(8), default="")
    patient_sex: Mapped[str] = mapped_column(String(16), default="")
    patient_age: Mapped[str] = mapped_column(String(8), default="")
    manufacturer: Mapped[str] = mapped_column(String(64), default="")
    n_instances: Mapped[int] = mapped_column(Integer, default=0)
    n_slices: Mapped[int] = mapped_column(Integer, default=0)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    cols: Mapped[int] = mapped_column(Integer, default=0)
    spacing: Mapped[list | None] = mapped_column(JSON, nullable=True)  # (z, y, x) mm
    transfer_syntaxes: Mapped[list] = mapped_column(JSON, default=list)
    referenced_series: Mapped[str] = mapped_column(String(64), default="")
    seg_uids: Mapped[list] = mapped_column(JSON, default=list)


INDEX_TABLES = [IndexRoot.__table__, IndexedInstance.__table__, IndexedSeries.__table__]


def ensure_index_tables(engine) -> None:
    """Create the index tables (only those) on any engine, e.g. a sandbox's private SQLite file."""
    Base.metadata.create_all(engine, tables=INDEX_TABLES)
