"""A site's own data, read in place and read-only through `imaging_workbench.dicom`.

Each site lists the datasets it serves in `local/workbench_datasets.json` of its kit
(`{"datasets": {"<id>": {"path": "/data/..."}}}`); a job names dataset ids, never paths, and
a site reads only the datasets in its own file. The site keeps a private SQLite index in its
workspace (only the dataset index's tables, written by `imaging_workbench.dicom.index_folder`, as
the steward's tooling and the sandboxes write theirs) so series and files are found without
rescanning folders.
"""

import json
import zlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ...errors import WorkbenchError

DATASETS_FILE = "workbench_datasets.json"
INDEX_FILE = "workbench_index.sqlite"


@dataclass
class Patient:
    patient_id: str
    dataset_id: str
    sex: str  # M, F, O or "" when unknown
    age: float | None  # years, None when unknown
    modalities: set
    body_parts: set


@dataclass
class TumourCase:
    """One CT series with its tumour labels (z, y, x), voxel volume in mL, and the series itself
    (its geometry: an AI tool runs on it)."""

    patient_id: str
    series_uid: str
    hu: np.ndarray
    labels: np.ndarray
    voxel_ml: float
    volume: object = None

    @property
    def split(self) -> str:
        """'val' for a stable fifth of the patients, 'train' for the rest."""
        return "val" if zlib.crc32(self.patient_id.encode()) % 5 == 0 else "train"


def write_site_datasets(local_dir: Path, datasets: dict[str, str]) -> Path:
    """Write the site's dataset list ({id: folder}); used by `federation up` for the embedded sites."""
    path = Path(local_dir) / DATASETS_FILE
    path.write_text(json.dumps({"datasets": {k: {"path": str(v)} for k, v in sorted(datasets.items())}}, indent=2))
    return path


def _age_years(header) -> float | None:
    age = str(getattr(header, "PatientAge", "") or "")
    if len(age) == 4 and age[:3].isdigit():
        factor = {"Y": 1, "M": 1 / 12, "W": 1 / 52, "D": 1 / 365.25}.get(age[3])
        if factor:
            return int(age[:3]) * factor
    birth, study = str(getattr(header, "PatientBirthDate", "") or ""), str(getattr(header, "StudyDate", "") or "")
    if len(birth) == 8 and len(study) == 8 and birth.isdigit() and study.isdigit():
        years = int(study[:4]) - int(birth[:4]) - ((int(study[4:]) < int(birth[4:])) and 1 or 0)
        return float(years)
    return None


class SiteData:
    """The datasets one site serves, indexed once into the site's private SQLite file."""

    def __init__(self, local_dir: Path):
        self.local_dir = Path(local_dir)
        path = self.local_dir / DATASETS_FILE
        if not path.is_file():
            raise WorkbenchError(f"this site lists no datasets ({path} is missing)",
                                 "the site admin lists the site's datasets in that file")
        self.datasets = {k: Path(v["path"]) for k, v in json.loads(path.read_text())["datasets"].items()}
        self._indexed = set()

    @cached_property
    def _engine(self):
        """For indexing: an engine that takes SQLite's write lock at BEGIN, on a file holding only
        the dataset index's tables (dicom/index_models.py), none of the catalog's."""
        from sqlalchemy import create_engine

        from ...catalog.engine import sqlite_immediate
        from ...dicom.index_models import ensure_index_tables

        engine = create_engine(f"sqlite:///{self.local_dir / INDEX_FILE}", connect_args={"timeout": 30})
        sqlite_immediate(engine)
        ensure_index_tables(engine)
        return engine

    @cached_property
    def _reader(self):
        """For reading the index: plain SQLite reads, which in WAL mode neither wait for a writer
        nor hold one up. Through the write lock, two jobs reading their cases at once queued case
        by case, and one could wait past the busy timeout and fail its part of a job."""
        from sqlalchemy import create_engine

        self._engine  # the file exists and has its schema
        return create_engine(f"sqlite:///{self.local_dir / INDEX_FILE}", connect_args={"timeout": 30})

    def _session(self):
        from sqlalchemy.orm import Session

        return Session(self._reader)

    def check(self, dataset_ids) -> list[str]:
        unknown = [d for d in dataset_ids if d not in self.datasets]
        if unknown:
            raise WorkbenchError(f"this site does not serve dataset(s) {', '.join(unknown)}",
                                 "submit jobs only for datasets the catalog places at this site")
        return list(dataset_ids)

    def _ensure_index(self, dataset_id: str) -> None:
        if dataset_id in self._indexed:
            return
        from sqlalchemy.orm import Session

        from ...dicom import index_folder

        with Session(self._engine) as session:
            index_folder(session, dataset_id, self.datasets[dataset_id])  # re-reads only changed files
            session.commit()
        self._indexed.add(dataset_id)

    def series(self, dataset_ids) -> list:
        """The image series (not SEG) of the datasets, from the site's index."""
        from ...dicom import list_series

        dataset_ids = self.check(dataset_ids)
        for dataset_id in dataset_ids:
            self._ensure_index(dataset_id)
        with self._session() as session:
            return [row for dataset_id in dataset_ids for row in list_series(session, dataset_id=dataset_id, limit=None)]

    def patients(self, dataset_ids) -> list[Patient]:
        """One record per patient and dataset, with sex and age from the indexed headers."""
        patients: dict[tuple, Patient] = {}
        for row in self.series(dataset_ids):
            key = (row["dataset_id"], row["patient_id"])
            if key not in patients:
                sex = (row.get("patient_sex") or "").upper()
                header = _Header(row.get("patient_age") or "")
                patients[key] = Patient(row["patient_id"], row["dataset_id"], sex if sex in ("M", "F", "O") else "",
                                        _age_years(header), set(), set())
            patients[key].modalities.add(row.get("modality") or "")
            patients[key].body_parts.add((row.get("body_part") or "").upper())
        return list(patients.values())

    def tumour_cases(self, dataset_ids, limit: int | None = None):
        """Yield a TumourCase (tumour segments only, organs dropped) for every CT series with a SEG."""
        from ...dicom import load_segmentation, load_series

        rows = [r for r in self.series(dataset_ids) if r["modality"] == "CT" and r["has_segmentation"]]
        for row in rows[:limit]:
            with self._session() as session:
                volume = load_series((session, row["series_uid"]))
                labels, segments = load_segmentation(row["seg_uids"][0], volume, session=session,
                                                     dataset_id=row["dataset_id"])
            tumour_numbers = [s["number"] for s in segments if is_tumour(s)]
            tumours = np.where(np.isin(labels, tumour_numbers), labels, 0).astype(np.int16)
            voxel_ml = float(np.prod(volume.spacing)) / 1000.0
            yield TumourCase(row["patient_id"], row["series_uid"], volume.array, tumours, voxel_ml, volume)


def is_tumour(segment: dict) -> bool:
    """A SEG segment that marks a tumour (property Neoplasm, or a label naming a tumour)."""
    text = f"{segment.get('property', '')} {segment.get('label', '')}".lower()
    return any(word in text for word in ("neoplasm", "tumour", "tumor", "lesion", "nodule", "mass"))


class _Header:
    def __init__(self, age: str):
        self.PatientAge = age
