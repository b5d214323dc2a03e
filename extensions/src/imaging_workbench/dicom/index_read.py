"""Reading the headers of many files for the index, on every usable core.

`read_rows` turns (relative path, size, mtime_ns) triples into instance rows of the index (the
header, or the reason a file has none: not DICOM, damaged, ...). Parsing, not the disk, bounds
indexing speed, so a process pool parses chunks of files side by side.
"""

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

from .errors import DicomError
from .headers import read_header
from .index_models import IndexedInstance

HEADER_COLUMNS = [c.name for c in IndexedInstance.__table__.columns
                  if c.name not in ("id", "dataset_id", "status", "problem", "slice_position")]
# A file without a header gets every column's default, so that all rows of a batch insert have the same keys.
NO_HEADER = {c.name: c.default.arg if c.default is not None else None for c in IndexedInstance.__table__.columns
             if c.name in HEADER_COLUMNS or c.name == "slice_position"}
CHUNK = 200  # files per task of the header pool
POOL_FROM = 400  # fewer files than this are read in this process


def _row(dataset_id: str, folder: Path, rel: str, size: int, mtime_ns: int) -> dict:
    """The instance row of one file: its header, or the reason it has none."""
    row = {"dataset_id": dataset_id, "path": rel, "size": size, "mtime_ns": mtime_ns, "status": "ok", "problem": ""}
    try:
        header = read_header(folder / rel)
    except DicomError as e:
        return {**NO_HEADER, **row, "status": "problem", "problem": e.message}
    row.update({k: getattr(header, k) for k in HEADER_COLUMNS if k not in ("path", "size", "mtime_ns")})
    row["slice_position"] = header.slice_position
    return row


def _rows_of_chunk(folder: Path, dataset_id: str, chunk: list) -> list[dict]:
    return [_row(dataset_id, folder, rel, size, mtime_ns) for rel, size, mtime_ns in chunk]


def read_rows(folder: Path, dataset_id: str, files: list, progress: bool = False):
    """Yield the instance row of each (relative path, size, mtime_ns) in `files`, with a tqdm bar
    when `progress`. Small runs stay in this process, where a pool would cost more than it saves."""
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(files), desc=f"indexing {dataset_id}", unit="file")
    chunks = [files[i:i + CHUNK] for i in range(0, len(files), CHUNK)]
    workers = min(len(os.sched_getaffinity(0)), len(chunks))
    try:
        if workers < 2 or len(files) < POOL_FROM:
            results = (_rows_of_chunk(folder, dataset_id, c) for c in chunks)
            yield from _counted(results, bar)
            return
        # fork: workers start in milliseconds and inherit the imported pydicom.
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                 initializer=_skip_value_checks) as pool:
            yield from _counted(pool.map(partial(_rows_of_chunk, folder, dataset_id), chunks), bar)
    finally:
        if bar is not None:
            bar.close()


def _skip_value_checks() -> None:
    """In a pool worker only: pydicom's checks of each value's VR format cost ~10 % of a header
    read and index nothing (a damaged file still fails to parse)."""
    from pydicom import config

    config.settings.reading_validation_mode = config.IGNORE


def _counted(results, bar):
    for rows in results:
        yield from rows
        if bar is not None:
            bar.update(len(rows))
