"""The demo cohorts: six datasets over three sites, each written once (idempotent) and world-readable.

Every site has at least one CT dataset with tumour SEGs. Each dataset holds 60+ patients, sex
balanced and ages spread evenly over 40-87, so the federated statistics' cells (sex, 10-year age
band, modality, body part; tumour HU and volume histograms) clear a minimum count of 10 patients
per dataset even at size "small", and training has enough cases. All pending datasets are written
on one process pool (every usable CPU); the same size writes identical files.
"""

import json
import os
import shutil
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from .synth import cohort_jobs, run_jobs

MARKER = ".workbench-demo.json"
VERSION = 2  # bump when the generated data change: older state folders are then written again


@dataclass(frozen=True)
class DemoDataset:
    id: str
    title: str
    site: str
    cancer_type: str
    modality: str
    body_part: str
    region: str
    tumour_organ: str


DEMO_DATASETS = [
    DemoDataset("lung-ct", "Lung CT with nodules", "site-1", "lung", "CT", "CHEST", "chest", "lung"),
    DemoDataset("kidney-ct", "Kidney CT with renal tumours", "site-1", "kidney", "CT", "ABDOMEN", "abdomen", "kidney"),
    DemoDataset("liver-ct", "Liver CT with lesions", "site-2", "liver", "CT", "ABDOMEN", "abdomen", "liver"),
    DemoDataset("lung-ct-site2", "Lung CT with nodules (site 2)", "site-2", "lung", "CT", "CHEST", "chest", "lung"),
    DemoDataset("brain-mr", "Brain MR with glioma", "site-3", "glioma", "MR", "HEAD", "head", "brain"),
    DemoDataset("liver-ct-site3", "Liver CT with lesions (site 3)", "site-3", "liver", "CT", "ABDOMEN", "abdomen", "liver"),
]

# size -> (patients per dataset, CT (slices, rows, cols), MR (slices, rows, cols))
# small: the test tiers (all six in < 45 s on 2 cores); demo: `make up` (< 2 min); full: scanner-sized.
SIZES = {"small": (100, (32, 64, 64), (24, 64, 64)),
         "demo": (100, (48, 128, 128), (40, 128, 128)),
         "full": (12, (300, 512, 512), (160, 256, 256))}


def _make_readable(root: Path) -> None:
    """a+rX: sandboxes run as uid 1000 and mount datasets read-only."""
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)


def _seed(spec: DemoDataset, size: str) -> int:
    return zlib.crc32(f"{spec.id}/{size}".encode())


def _pending(out: Path, spec: DemoDataset, size: str) -> bool:
    """Whether out/<id> must be written; a half-written or outdated folder is removed first."""
    folder = Path(out) / spec.id
    marker = folder / MARKER
    if marker.exists():
        info = json.loads(marker.read_text())
        if info.get("size") == size and info.get("version") == VERSION:
            return False
    if folder.exists():
        shutil.rmtree(folder)
    return True


def _jobs(out: Path, spec: DemoDataset, size: str) -> list[dict]:
    n, ct_shape, mr_shape = SIZES[size]
    return cohort_jobs(Path(out) / spec.id, spec.id, n, modality=spec.modality, region=spec.region,
                       tumour_organ=spec.tumour_organ, shape=ct_shape if spec.modality == "CT" else mr_shape,
                       seed=_seed(spec, size))


def _finish(out: Path, spec: DemoDataset, size: str, results, seconds: float) -> Path:
    """Mark out/<id> complete (the marker is written last) and make it world-readable."""
    folder = Path(out) / spec.id
    _make_readable(folder)
    marker = folder / MARKER
    marker.write_text(json.dumps({
        "version": VERSION, "size": size, "dataset": spec.id, "n_patients": len({r.patient_id for r in results}),
        "n_series": len(results), "seconds": round(seconds, 1),
        "tumour_volumes_ml": {r.patient_id: [round(v, 2) for v in r.tumour_volumes_ml] for r in results},
    }, indent=1))
    marker.chmod(0o644)
    return folder


def _check_size(size: str) -> None:
    if size not in SIZES:
        raise ValueError(f"unknown demo size {size!r}; use one of {', '.join(SIZES)}")


def ensure_dataset(out: Path, spec: DemoDataset, size: str = "small", progress: bool = False,
                   workers: int | None = None) -> tuple[Path, bool]:
    """Write one demo dataset under out/<id> unless a complete one of this size is there.

    Returns (folder, written). A half-written folder (no marker) is removed and written again.
    """
    _check_size(size)
    folder = Path(out) / spec.id
    if not _pending(out, spec, size):
        return folder, False
    started = time.perf_counter()
    results = run_jobs(_jobs(out, spec, size), workers, progress, desc=spec.id)
    return _finish(out, spec, size, results, time.perf_counter() - started), True


def ensure_demo_data(out: str | Path, size: str = "small", progress: bool = False,
                     datasets: list[DemoDataset] | None = None) -> list[tuple[DemoDataset, Path, bool]]:
    """Write every demo dataset under `out` (skipping complete ones); returns (spec, folder, written).

    The pending datasets' patients share one process pool (and one progress bar), so every CPU is
    busy until the last patient; each dataset gets its marker once all its patients are written.
    """
    _check_size(size)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    specs = datasets or DEMO_DATASETS
    pending = [spec for spec in specs if _pending(out, spec, size)]
    jobs = {spec.id: _jobs(out, spec, size) for spec in pending}
    started = time.perf_counter()
    results = run_jobs([job for spec in pending for job in jobs[spec.id]], progress=progress,
                       desc=f"demo data ({size}, {len(pending)} datasets)") if pending else []
    seconds = time.perf_counter() - started
    done, at = [], 0
    for spec in specs:
        if spec in pending:
            n = len(jobs[spec.id])
            done.append((spec, _finish(out, spec, size, results[at:at + n], seconds), True))
            at += n
        else:
            done.append((spec, out / spec.id, False))
    _make_readable(out)
    return done
