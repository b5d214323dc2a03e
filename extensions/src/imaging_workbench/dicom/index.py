"""The dataset index: every file's header, geometry and pixel offset, and a summary per series.

`index_folder` walks a dataset folder and stores what it finds; run again, it re-reads only
files whose size or modification time changed, and forgets files that are gone. Files that are
not DICOM or are damaged are recorded with the reason and never stop the index. Browsing
(`list_series`) and loading (`series_headers`, `series_files`) then never rescan the folder.
"""

import os
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import String, delete, select
from sqlalchemy.orm import Session

from ..catalog.dataset_paths import walk_files
from ..clock import utcnow
from .errors import SeriesNotFound
from .headers import SEG_CLASS, InstanceHeader
from .index_models import IndexedInstance, IndexedSeries, IndexRoot
from .index_read import HEADER_COLUMNS, read_rows



@dataclass
class IndexReport:
    """What one run of index_folder did."""

    dataset_id: str
    folder: str
    n_files: int = 0
    n_new: int = 0
    n_changed: int = 0
    n_unchanged: int = 0
    n_removed: int = 0
    n_series: int = 0
    n_patients: int = 0
    n_studies: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)  # (relative path, reason)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class SeriesSummary:
    """One indexed series, as list_series returns it; also readable like a dict (s["modality"])."""

    dataset_id: str
    patient_id: str
    study_uid: str
    series_uid: str
    modality: str
    body_part: str
    description: str
    n_instances: int
    rows: int
    cols: int
    has_segmentation: bool
    seg_uids: list[str]
    n_slices: int = 0
    spacing: list | None = None
    study_date: str = ""
    patient_sex: str = ""
    patient_age: str = ""
    manufacturer: str = ""
    transfer_syntaxes: list = field(default_factory=list)
    referenced_series: str = ""

    def __getitem__(self, key):
        return getattr(self, key)

    def get(self, key, default=None):
        return getattr(self, key, default)

    def keys(self):
        return self.as_dict().keys()

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_row(cls, row: IndexedSeries) -> "SeriesSummary":
        names = cls.__dataclass_fields__
        out = cls(**{k: getattr(row, k) for k in names if k != "has_segmentation" and hasattr(row, k)},
                  has_segmentation=bool(row.seg_uids))
        out.seg_uids = list(row.seg_uids or [])
        return out


def _walk(folder: Path):
    """Relative path -> (size, mtime_ns) of every file, skipping hidden files and folders.

    The same walk checks the folder for sockets, FIFOs and devices (dataset_paths.walk_files),
    so an index run re-checks what registration checked at no extra cost."""
    return {rel: (st.st_size, st.st_mtime_ns) for rel, st in walk_files(folder)}


def index_folder(session: Session, dataset_id: str, folder: str | Path, progress: bool = False) -> IndexReport:
    """Index (or re-index, incrementally) the DICOM files under `folder` as dataset `dataset_id`.

    Works on any SQLAlchemy session whose database has the index tables. Problems (not DICOM,
    damaged, ...) are recorded per file and reported, never raised.

    Raises:
        ValueError: `folder` is not a directory.
        WorkbenchError: it holds a socket, FIFO or device node (see catalog.dataset_paths).
    """
    started = time.perf_counter()
    folder = Path(folder).absolute()
    if not folder.is_dir():
        raise ValueError(f"cannot index {folder}: not a folder")
    found = _walk(folder)
    known = {r.path: (r.id, r.size, r.mtime_ns) for r in session.execute(
        select(IndexedInstance.path, IndexedInstance.id, IndexedInstance.size, IndexedInstance.mtime_ns)
        .where(IndexedInstance.dataset_id == dataset_id))}
    report = IndexReport(dataset_id, str(folder), n_files=len(found))
    gone = [known[p][0] for p in known if p not in found]
    todo = [p for p, st in sorted(found.items()) if p not in known or known[p][1:] != st]
    report.n_removed, report.n_unchanged = len(gone), len(found) - len(todo)
    report.n_changed = sum(1 for p in todo if p in known)
    report.n_new = len(todo) - report.n_changed
    stale = gone + [known[p][0] for p in todo if p in known]
    for i in range(0, len(stale), 500):
        session.execute(delete(IndexedInstance).where(IndexedInstance.id.in_(stale[i:i + 500])))
    # Core executemany on the session's connection: the ORM's bulk insert spent ~1 ms a row.
    table, connection, batch = IndexedInstance.__table__, session.connection(), []
    for row in read_rows(folder, dataset_id, [(rel, *found[rel]) for rel in todo], progress):
        batch.append(row)
        if len(batch) >= 1000:
            connection.execute(table.insert(), batch)
            batch = []
    if batch:
        connection.execute(table.insert(), batch)
    _summarise(session, dataset_id, report)
    report.problems = [(r.path, r.problem) for r in session.execute(
        select(IndexedInstance.path, IndexedInstance.problem).where(
            IndexedInstance.dataset_id == dataset_id, IndexedInstance.status != "ok").order_by(IndexedInstance.path))]
    root = session.get(IndexRoot, dataset_id)
    if root is None:
        root = IndexRoot(dataset_id=dataset_id, folder=str(folder), indexed_at=utcnow())
        session.add(root)
    root.folder, root.indexed_at = str(folder), utcnow()
    root.n_files, root.n_problems = report.n_files, len(report.problems)
    session.flush()
    report.seconds = time.perf_counter() - started
    return report


def _series_row(dataset_id: str, uid: str, members: list) -> dict:
    first = min(members, key=lambda r: (r.slice_position, r.instance_number))
    positions = sorted(r.slice_position for r in members)
    dz = float(np.median(np.diff(positions))) if len(positions) > 1 else float(first.slice_thickness or 0)
    ps = first.pixel_spacing or [0.0, 0.0]
    return {"dataset_id": dataset_id, "series_uid": uid, "study_uid": first.study_uid,
            "patient_id": first.patient_id, "modality": first.modality, "body_part": first.body_part,
            "description": first.description, "study_date": first.study_date, "patient_sex": first.patient_sex,
            "patient_age": first.patient_age, "manufacturer": first.manufacturer, "n_instances": len(members),
            "n_slices": sum(max(1, r.n_frames) for r in members) if first.sop_class != SEG_CLASS else 0,
            "rows": first.rows, "cols": first.cols, "spacing": [round(dz, 6), ps[0], ps[1]],
            "transfer_syntaxes": sorted({r.transfer_syntax for r in members}),
            "referenced_series": first.referenced_series if first.sop_class == SEG_CLASS else "", "seg_uids": []}


SUMMARY_COLUMNS = ("series_uid", "study_uid", "patient_id", "modality", "body_part", "description", "study_date",
                   "patient_sex", "patient_age", "manufacturer", "sop_class", "n_frames", "rows", "cols",
                   "pixel_spacing", "slice_thickness", "slice_position", "instance_number", "transfer_syntax",
                   "referenced_series")


def _summarise(session: Session, dataset_id: str, report: IndexReport) -> None:
    """Rebuild the dataset's series rows from its instance rows (cheap: one query, no file access)."""
    session.execute(delete(IndexedSeries).where(IndexedSeries.dataset_id == dataset_id))
    groups = defaultdict(list)
    columns = [getattr(IndexedInstance, c) for c in SUMMARY_COLUMNS]
    for r in session.execute(select(*columns).where(IndexedInstance.dataset_id == dataset_id,
                                                    IndexedInstance.status == "ok")):
        groups[r.series_uid].append(r)  # plain rows: ORM objects cost seconds per 100,000 files
    rows = {uid: _series_row(dataset_id, uid, members) for uid, members in groups.items() if uid}
    for uid, row in rows.items():
        target = rows.get(row["referenced_series"])
        if target is not None:
            target["seg_uids"].append(uid)
    for row in rows.values():
        row["seg_uids"].sort()
    if rows:
        session.connection().execute(IndexedSeries.__table__.insert(), list(rows.values()))
    report.n_series = len(rows)
    report.n_patients = len({r["patient_id"] for r in rows.values()})
    report.n_studies = len({r["study_uid"] for r in rows.values()})


IMAGE_ONLY = ("SEG", "SR", "RTSTRUCT", "PR", "KO", "RTPLAN", "RTDOSE")


def list_series(session: Session, dataset_id: str | None = None, modality: str | None = None,
                body_part: str | None = None, has_segmentation: bool | None = None, offset: int = 0,
                limit: int = 100) -> list[SeriesSummary]:
    """Indexed series of one session's index, ordered by dataset, patient and study date. Non-image
    series (SEG, SR, RTSTRUCT, ...) are left out unless `modality` asks for them by name. (Over
    many datasets' index files, with site and free text too: index_query.SeriesCatalog.)"""
    q = select(IndexedSeries)
    if dataset_id is not None:
        q = q.where(IndexedSeries.dataset_id == dataset_id)
    if modality is not None:
        q = q.where(IndexedSeries.modality == modality.upper())
    else:
        q = q.where(IndexedSeries.modality.not_in(IMAGE_ONLY))
    if body_part is not None:
        q = q.where(IndexedSeries.body_part == body_part.upper())
    if has_segmentation is not None:
        has = IndexedSeries.seg_uids.cast(String).not_in(["[]", "null"])
        q = q.where(has if has_segmentation else ~has)
    q = q.order_by(IndexedSeries.dataset_id, IndexedSeries.patient_id, IndexedSeries.study_date,
                   IndexedSeries.series_uid).offset(offset).limit(limit)
    return [SeriesSummary.from_row(r) for r in session.scalars(q)]


def _series_row_or_raise(session: Session, series_uid: str, dataset_id: str | None) -> IndexedSeries:
    q = select(IndexedSeries).where(IndexedSeries.series_uid == series_uid)
    if dataset_id is not None:
        q = q.where(IndexedSeries.dataset_id == dataset_id)
    row = session.scalars(q.order_by(IndexedSeries.dataset_id).limit(1)).first()
    if row is None:
        where = f" in dataset '{dataset_id}'" if dataset_id else ""
        raise SeriesNotFound(f"series {series_uid} is not in the index{where}",
                             "index the dataset first ('workbench datasets index ID') or list series to pick one")
    return row


def get_series(session: Session, series_uid: str, dataset_id: str | None = None) -> SeriesSummary:
    """The summary of one series. Raises SeriesNotFound."""
    return SeriesSummary.from_row(_series_row_or_raise(session, series_uid, dataset_id))


def series_headers(session: Session, series_uid: str, dataset_id: str | None = None,
                   root: str | Path | None = None) -> list[InstanceHeader]:
    """The indexed headers of a series' files, sorted along the slice normal, with absolute paths.

    `root` replaces the indexed folder (e.g. a sandbox sees the dataset at /data/<id>)."""
    series = _series_row_or_raise(session, series_uid, dataset_id)
    folder = Path(root) if root is not None else Path(session.get(IndexRoot, series.dataset_id).folder)
    columns = [getattr(IndexedInstance, c) for c in HEADER_COLUMNS]
    rows = session.execute(select(*columns).where(
        IndexedInstance.dataset_id == series.dataset_id, IndexedInstance.series_uid == series_uid,
        IndexedInstance.status == "ok").order_by(IndexedInstance.slice_position, IndexedInstance.instance_number))
    path_at = HEADER_COLUMNS.index("path")
    prefix = str(folder) + os.sep
    out = []
    for r in rows:  # plain rows, not ORM objects: ~3x faster for a 300-slice series
        values = list(r)
        values[path_at] = prefix + values[path_at]
        out.append(InstanceHeader(**dict(zip(HEADER_COLUMNS, values))))
    return out


def series_files(session: Session, series_uid: str, dataset_id: str | None = None,
                 root: str | Path | None = None) -> list[Path]:
    """The files of a series, sorted along the slice normal (then by InstanceNumber)."""
    return [Path(h.path) for h in series_headers(session, series_uid, dataset_id, root)]


def dataset_summary(session: Session, dataset_id: str) -> dict:
    """Counts for the catalog: patients, studies, image series, SEGs, files and problems."""
    series = list(session.scalars(select(IndexedSeries).where(IndexedSeries.dataset_id == dataset_id)))
    images = [s for s in series if s.modality not in IMAGE_ONLY]
    root = session.get(IndexRoot, dataset_id)
    return {"dataset_id": dataset_id, "n_patients": len({s.patient_id for s in images}),
            "n_studies": len({s.study_uid for s in images}), "n_series": len(images),
            "n_segmentations": sum(1 for s in series if s.modality == "SEG"),
            "n_files": root.n_files if root else 0, "n_problems": root.n_problems if root else 0,
            "modalities": sorted({s.modality for s in images})}
