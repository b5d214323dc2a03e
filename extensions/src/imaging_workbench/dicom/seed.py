"""The seed cohort on disk: 30 datasets, 20,000 patients, 200,000 series, 600,000 small DICOM files.

For testing the platform at its real size (indexing, browsing, search, federation over 30 sites),
not for looking at: slices are 32x32 (PET 16x16) thumbnails, but every file has a complete,
real header (patient, study, series, equipment, geometry that sorts and loads) and a share of
the CT and MR series has a DICOM SEG referencing them. pydicom (and highdicom for the SEG)
serialise one template per kind; each file is a copy with its fields patched (seed_template),
an order of magnitude faster than building and saving each file with pydicom, so the file system
sets the pace (benchmarks/scale_generate.py). The cohort itself is drawn in seed_cohort.

`ensure_seed_data` writes the pending datasets on a process pool (every usable CPU) with one
progress bar, is idempotent (a complete dataset, marked by MARKER written last, is kept) and
deterministic (the same seed writes the same bytes, whatever the number of workers).
Files are world-readable, as the sandboxes need.
"""

import json
import os
import shutil
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

from .demo import MARKER
from .seed_cohort import SeedDataset, seed_datasets, seed_patient
from .seed_files import build_templates, patient_files
from .synth import default_workers

VERSION = 1  # bump when the files change: older seed datasets are then written again
SEED = 17
SEED_SIZE = {"n_datasets": 30, "n_patients": 20000, "series_per_patient": 10}  # `demo-data --size seed`
CHUNK = 25  # patients per task: ~750 files, small enough to keep both processes busy to the end


def _recipe(d: SeedDataset, seed: int, series_per_patient: int) -> dict:
    return {"size": "seed", "version": VERSION, "seed": seed, "dataset": d.id, "n_patients": d.n_patients,
            "series_per_patient": series_per_patient}


def _pending(folder: Path, recipe: dict) -> bool:
    """Whether `folder` must be written; a half-written or different one is removed first."""
    try:
        info = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        info = {}
    if all(info.get(k) == v for k, v in recipe.items()):
        return False
    if folder.exists():
        shutil.rmtree(folder)
    return True


_STATE: dict = {}


def _init_worker(state: dict) -> None:
    os.umask(0o022)  # files a+r, folders a+rx: sandboxes read them as another uid
    _STATE.update(state)


def _write_chunk(d: SeedDataset, start: int, stop: int) -> tuple[str, dict]:
    """Write patients [start, stop) of `d`; returns (dataset id, counts)."""
    s = _STATE
    counts = {"n_series": 0, "n_segmentations": 0, "n_files": 0, "bytes": 0}
    for i in range(start, stop):
        patient = seed_patient(s["seed"], d, i, s["series_per_patient"])
        for path, data in patient_files(s["templates"], s["pixels"], s["seed"], s["out"], d, patient):
            if data is None:  # a folder
                os.mkdir(path)
                continue
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            counts["n_files"] += 1
            counts["bytes"] += len(data)
        counts["n_series"] += len(patient.series)
        counts["n_segmentations"] += sum(x.seg for x in patient.series)
    return d.id, counts


def _finish(folder: Path, d: SeedDataset, recipe: dict, counts: dict) -> None:
    """Mark the dataset complete (last); the marker is also its description for LocalIndex."""
    info = {**recipe, "title": d.title, "cancer_type": d.cancer_type, "site": d.site, "modality": d.modality,
            "body_part": d.body_part, **counts}
    (folder / MARKER).write_text(json.dumps(info, indent=1))
    (folder / MARKER).chmod(0o644)


def ensure_seed_data(out: str | Path, n_datasets: int = 30, n_patients: int = 20000, series_per_patient: int = 10,
                     seed: int = SEED, progress: bool = False, workers: int | None = None
                     ) -> list[tuple[SeedDataset, Path, bool]]:
    """Write the seed datasets under `out` (skipping complete ones); returns (dataset, folder, written).

    Args:
        n_datasets: datasets seed-01.. at sites site-01.. (at most 99).
        n_patients: in all, split evenly; series_per_patient: the mean (pairs of patients get mean -+ k).
        workers: processes (default every usable CPU, $WORKBENCH_SYNTH_WORKERS overrides).
    Raises:
        ValueError: sizes out of range (see seed_cohort.LIMITS).
    """
    if not 2 <= series_per_patient <= 40:
        raise ValueError(f"series_per_patient must be 2-40, got {series_per_patient}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o755)
    datasets = seed_datasets(n_datasets, n_patients)
    recipes = {d.id: _recipe(d, seed, series_per_patient) for d in datasets}
    pending = [d for d in datasets if _pending(out / d.id, recipes[d.id])]
    if pending:
        _write(out, pending, recipes, seed, series_per_patient, progress, workers)
    return [(d, out / d.id, d in pending) for d in datasets]


def _write(out: Path, pending: list[SeedDataset], recipes: dict, seed: int, series_per_patient: int,
           progress: bool, workers: int | None) -> None:
    jobs = [(d, start, min(start + CHUNK, d.n_patients)) for d in pending for start in range(0, d.n_patients, CHUNK)]
    left = {d.id: sum(1 for j in jobs if j[0] is d) for d in pending}
    totals = {d.id: {"n_series": 0, "n_segmentations": 0, "n_files": 0, "bytes": 0} for d in pending}
    templates, pixels = build_templates(seed)
    state = {"templates": templates, "pixels": pixels, "seed": seed, "series_per_patient": series_per_patient,
             "out": str(out)}
    for d in pending:
        (out / d.id).mkdir(mode=0o755)
        (out / d.id).chmod(0o755)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=3 * series_per_patient * sum(d.n_patients for d in pending), unit="file",
                   desc=f"seed data ({len(pending)} datasets)", smoothing=0.05)
    by_id = {d.id: d for d in pending}
    try:
        for dataset_id, counts in _results(jobs, state, min(workers or default_workers(), len(jobs))):
            for k, v in counts.items():
                totals[dataset_id][k] += v
            bar and bar.update(counts["n_files"])
            left[dataset_id] -= 1
            if not left[dataset_id]:
                _finish(out / dataset_id, by_id[dataset_id], recipes[dataset_id], totals[dataset_id])
    finally:
        bar and bar.close()


def _results(jobs: list[tuple], state: dict, workers: int):
    """Each job's (dataset id, counts) as it completes: on a pool of `workers` processes, or here for one."""
    if workers <= 1:
        umask = os.umask(0o022)
        _STATE.update(state)
        try:
            for job in jobs:
                yield _write_chunk(*job)
        finally:
            os.umask(umask)
            _STATE.clear()
        return
    # spawn: no fork of a parent that may hold threads (tqdm's monitor, a hub, a kernel)
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker,
                             initargs=(state,)) as pool:
        for future in as_completed([pool.submit(_write_chunk, *job) for job in jobs]):
            yield future.result()

