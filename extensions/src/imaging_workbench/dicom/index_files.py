"""Per-dataset index files: built once by the steward's tooling, opened read-only by everyone else.

`<folder>/<dataset_id>.sqlite` holds only the index tables and a small meta table (dataset id,
schema version, the dataset folder's fingerprint, when it was built, counts). `build_index_file`
writes it whole or not at all: it copies the previous file beside it, re-indexes incrementally
there (unchanged files are not re-read), fsyncs and renames over the old one, so a reader never
sees a half-written index and a failed run leaves the previous index as it was.

`check_index_file` tells a reader whether a file still describes a folder without walking it.
"""

import hashlib
import os
import shutil
import sqlite3
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Column, MetaData, String, Table, Text, create_engine, insert
from sqlalchemy.orm import Session

from ..clock import utcnow

SCHEMA_VERSION = 1
INDEX_FOLDER = "indexes"  # <state_dir>/indexes: one file per registered dataset
_meta = MetaData()
META = Table("dicom_index_meta", _meta, Column("key", String(64), primary_key=True), Column("value", Text))


def index_file(folder: str | Path, dataset_id: str) -> Path:
    """Where dataset `dataset_id`'s index file lives in `folder`."""
    return Path(folder) / f"{dataset_id}.sqlite"


def fingerprint(folder: str | Path) -> str:
    """A cheap version of a dataset folder: its own and its top-level entries' names, sizes and mtimes.

    One directory listing, never a walk: adding or removing a patient folder (or a file at the
    top) changes it; an edit deep inside a patient's folder does not (the steward re-indexes
    after changing a dataset; `workbench datasets index` always compares every file)."""
    folder = Path(folder)
    digest = hashlib.sha256(str(folder.stat().st_mtime_ns).encode())
    with os.scandir(folder) as entries:
        for e in sorted(entries, key=lambda e: e.name):
            if not e.name.startswith("."):
                st = e.stat(follow_symlinks=False)
                digest.update(f"{e.name}\0{e.is_dir()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def build_index_file(dataset_id: str, folder: str | Path, target: str | Path, progress: bool = False,
                     **info: str) -> tuple:
    """Index `folder` as `dataset_id` into the file `target`, atomically and incrementally.

    Args:
        info: extra meta stored with the index (e.g. site, cancer_type), read back by `read_meta`.

    Returns:
        (the run's IndexReport, dataset_summary counts).

    Raises:
        ValueError: `folder` is not a directory (from index_folder).
    """
    from .index import dataset_summary, index_folder
    from .index_models import ensure_index_tables

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    if target.exists() and read_meta(target).get("schema_version") == str(SCHEMA_VERSION):
        shutil.copyfile(target, partial)  # rows of unchanged files are reused, not re-read
    try:
        engine = create_engine(f"sqlite:///{partial}")
        ensure_index_tables(engine)
        _meta.create_all(engine)
        with Session(engine) as session, session.begin():
            report = index_folder(session, dataset_id, folder, progress=progress)
            summary = dataset_summary(session, dataset_id)
            meta = {"dataset_id": dataset_id, "schema_version": SCHEMA_VERSION, "fingerprint": fingerprint(folder),
                    "built_at": utcnow().isoformat(), "n_files": report.n_files, "n_series": summary["n_series"],
                    "n_problems": len(report.problems), **info}
            session.execute(META.delete())
            session.execute(insert(META), [{"key": k, "value": str(v)} for k, v in meta.items()])
        engine.dispose()
        _fsync(partial)
        os.replace(partial, target)
        _fsync(target.parent)
    finally:
        partial.unlink(missing_ok=True)
    return report, summary


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def reader_engine(path: str | Path):
    """An engine that only reads `path`: SQLite's read-only, immutable mode takes no locks and
    works on a read-only mount (the file is replaced by rename, never changed in place)."""
    return create_engine(f"sqlite:///file:{Path(path).absolute()}?mode=ro&immutable=1&uri=true")


@contextmanager
def reading(path: str | Path):
    """A read-only Session on an index file (closed, with its engine, on exit)."""
    engine = reader_engine(path)
    try:
        with Session(engine) as session:
            yield session
    finally:
        engine.dispose()


def read_meta(path: str | Path) -> dict:
    """The meta table of an index file as {key: text}; {} when it is missing or not an index."""
    try:
        conn = sqlite3.connect(f"file:{Path(path).absolute()}?mode=ro", uri=True)
        try:
            return dict(conn.execute(f"SELECT key, value FROM {META.name}").fetchall())
        finally:
            conn.close()
    except sqlite3.Error:
        return {}


def check_index_file(path: str | Path, dataset_id: str, folder: str | Path) -> str:
    """Why the index file cannot stand for `folder` as `dataset_id` ("" when it can): missing, not
    an index, another dataset's, an older schema, or built before the folder last changed."""
    path = Path(path)
    if not path.is_file():
        return f"no index file at {path}"
    meta = read_meta(path)
    if not meta:
        return f"{path} is not a dataset index"
    if meta.get("dataset_id") != dataset_id:
        return f"{path} indexes dataset '{meta.get('dataset_id')}', not '{dataset_id}'"
    if meta.get("schema_version") != str(SCHEMA_VERSION):
        return f"{path} has index schema {meta.get('schema_version')}, this workbench reads {SCHEMA_VERSION}"
    if meta.get("fingerprint") != fingerprint(folder):
        return f"{path} was built before dataset '{dataset_id}' last changed (at {meta.get('built_at')})"
    return ""
