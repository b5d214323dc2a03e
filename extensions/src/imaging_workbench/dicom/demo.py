"""The demo cohorts: six datasets over three sites, each written once (idempotent) and world-readable.

Every site has at least one CT dataset with tumour SEGs, so federated statistics pass a
minimum-count filter of 10 patients per site even at size "small".
"""

import json
import os
import shutil
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from .synth import generate_cohort

MARKER = ".workbench-demo.json"
VERSION = 1


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
SIZES = {"small": (12, (32, 64, 64), (24, 64, 64)),
         "demo": (14, (48, 128, 128), (40, 128, 128)),
         "full": (12, (300, 512, 512), (160, 256, 256))}


def _make_readable(root: Path) -> None:
    """a+rX: sandboxes run as uid 1000 and mount datasets read-only."""
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)


def ensure_dataset(out: Path, spec: DemoDataset, size: str = "small", progress: bool = False) -> tuple[Path, bool]:
    """Write one demo dataset under out/<id> unless a complete one of this size is there.

    Returns (folder, written). A half-written folder (no marker) is removed and written again.
    """
    if size not in SIZES:
        raise ValueError(f"unknown demo size {size!r}; use one of {', '.join(SIZES)}")
    folder = Path(out) / spec.id
    marker = folder / MARKER
    if marker.exists():
        info = json.loads(marker.read_text())
        if info.get("size") == size and info.get("version") == VERSION:
            return folder, False
    if folder.exists():
        shutil.rmtree(folder)
    n, ct_shape, mr_shape = SIZES[size]
    started = time.perf_counter()
    results = generate_cohort(folder, spec.id, n, modality=spec.modality, region=spec.region,
                              tumour_organ=spec.tumour_organ, shape=ct_shape if spec.modality == "CT" else mr_shape,
                              seed=zlib.crc32(f"{spec.id}/{size}".encode()), progress=progress)
    marker.write_text(json.dumps({
        "version": VERSION, "size": size, "dataset": spec.id, "n_patients": len(results), "n_series": len(results),
        "seconds": round(time.perf_counter() - started, 1),
        "tumour_volumes_ml": {r.patient_id: [round(v, 2) for v in r.tumour_volumes_ml] for r in results},
    }, indent=1))
    _make_readable(folder)
    return folder, True


def ensure_demo_data(out: str | Path, size: str = "small", progress: bool = False,
                     datasets: list[DemoDataset] | None = None) -> list[tuple[DemoDataset, Path, bool]]:
    """Write every demo dataset under `out` (skipping complete ones); returns (spec, folder, written)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    done = [(spec, *ensure_dataset(out, spec, size, progress)) for spec in (datasets or DEMO_DATASETS)]
    _make_readable(out)
    return done
