"""The tools the workbench ships, made by the platform itself, and how good they are on cases they
never saw.

Each folder under `shipped/` is a bundle as `workbench tools add` takes it (models/model.pt,
configs/metadata.json, workbench_card.json), with `training.log` and `result.json` of the
federated run that made it (scripts/train_shipped_tool.py). A deployment adds them like any
other bundle (`workbench tools add-shipped`): every check, and a tool reviewer approves.
"""

import zlib
from pathlib import Path

import numpy as np

SHIPPED_DIR = Path(__file__).parent / "shipped"
HELD_OUT = {"dataset": "lung-ct", "region": "chest", "organ": "lung", "patients": 12}


def shipped_bundles() -> list[Path]:
    """The shipped bundle folders, by name."""
    return sorted(p for p in SHIPPED_DIR.iterdir() if (p / "workbench_card.json").is_file()) \
        if SHIPPED_DIR.is_dir() else []


def held_out_cohort(folder: Path, patients: int = HELD_OUT["patients"], shape: tuple | None = None) -> Path:
    """Lung CT patients generated apart from every training case: the demo cohorts' generator under
    a seed of their own, at the demo's size (slices, rows, columns) or `shape` (the same anatomy on
    a finer or coarser grid). Written once into `folder`."""
    from ..dicom.demo import SIZES
    from ..dicom.synth import generate_cohort

    seed = f"{HELD_OUT['dataset']}/held-out" + (f"/{'x'.join(map(str, shape))}" if shape else "")
    if not (folder / ".complete").exists():
        generate_cohort(folder, HELD_OUT["dataset"], patients, modality="CT", region=HELD_OUT["region"],
                        tumour_organ=HELD_OUT["organ"], shape=shape or SIZES["demo"][1], seed=zlib.crc32(seed.encode()))
        (folder / ".complete").write_text("")
    return folder


def _series_pairs(cohort: Path):
    """(CT series folder, its SEG file) of every study in the cohort (a SEG series is one file)."""
    for study in sorted(p for p in cohort.glob("*/*") if p.is_dir()):
        series = [s for s in study.iterdir() if s.is_dir()]
        segs = [s for s in series if len(list(s.iterdir())) == 1]
        images = [s for s in series if s not in segs]
        if len(images) == 1 and len(segs) == 1:
            yield images[0], next(segs[0].iterdir())


def held_out_dice(tools, tool_id: str, cohort: Path) -> list[float]:
    """The Dice of tool `tool_id` (run through `tools`, a `Tools()`, as a user runs it: whole series,
    the card's own pipeline) against each held-out study's tumour segments."""
    from ..dicom import load_segmentation, load_series
    from ..federation.algorithms.federated_training import dice
    from ..federation.site.data import is_tumour

    scores = []
    for images, seg in _series_pairs(cohort):
        volume = load_series(images)
        labels, segments = load_segmentation(seg, volume)
        truth = np.isin(labels, [s["number"] for s in segments if is_tumour(s)])
        scores.append(dice(tools.run(tool_id, volume).labels > 0, truth))
    return scores
