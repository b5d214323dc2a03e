"""The `generate` stage of the scale benchmark: writing the seed cohort, ours against plain pydicom.

    python benchmarks/scale_generate.py [--datasets 30] [--patients 20000] [--out DIR] [--repeats 1]
                                        [--sample 600] [--keep]

Ours: `ensure_seed_data` cold into a fresh folder (every usable CPU), wall time, median of --repeats.
Baseline, measured in the same run: the way the demo cohorts are written, a pydicom Dataset built
attribute by attribute and written with `save_as`, one file per series folder as ours lays them
out; --sample files taken from what ours wrote (their values read beforehand, untimed), the
median seconds per file extrapolated to the same number of files and divided by the same number
of processes (an upper bound on how well pydicom would scale). `benchmarks/scale.py` imports
`generate_stage`. Writes benchmarks/results/generate.json and generate.png.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def _ours(out: Path, n_datasets: int, n_patients: int, workers: int) -> tuple[float, dict]:
    from imaging_workbench.dicom.demo import MARKER
    from imaging_workbench.dicom.seed import ensure_seed_data

    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    done = ensure_seed_data(out, n_datasets, n_patients, progress=True, workers=workers)
    seconds = time.perf_counter() - started
    counts = {"n_series": 0, "n_segmentations": 0, "n_files": 0, "bytes": 0, "n_patients": 0}
    for _, folder, _ in done:
        info = json.loads((folder / MARKER).read_text())
        for k in counts:
            counts[k] += info[k]
    return seconds, counts


def _sample(out: Path, n: int) -> list[tuple[list, dict, str]]:
    """(elements, file meta, relative path) of `n` files ours wrote, images and SEGs as they come."""
    import pydicom

    paths = []
    for dirpath, _, names in os.walk(out):
        paths += [Path(dirpath) / name for name in names if name.endswith(".dcm")]
        if len(paths) >= n:
            break
    sample = []
    for path in paths[:n]:
        ds = pydicom.dcmread(path)
        sample.append(([(e.keyword, e.value) for e in ds], dict(ds.file_meta), str(path.relative_to(out))))
    return sample


def _pydicom_write(sample: list, target: Path) -> float:
    """Seconds per file to build each sampled file's Dataset attribute by attribute and save_as it."""
    from pydicom.dataset import Dataset, FileMetaDataset

    shutil.rmtree(target, ignore_errors=True)
    started = time.perf_counter()
    for elements, meta, rel in sample:
        ds = Dataset()
        for keyword, value in elements:
            setattr(ds, keyword, value)
        ds.file_meta = FileMetaDataset()
        for elem in meta.values():
            ds.file_meta.add(elem)
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
    return (time.perf_counter() - started) / len(sample)


def generate_stage(out: Path, n_datasets: int = 30, n_patients: int = 20000, repeats: int = 1, sample: int = 600,
                   workers: int | None = None, keep: bool = False) -> dict:
    """Time writing the seed cohort (ours) against pydicom save_as (sampled, extrapolated); returns the figures."""
    from imaging_workbench.dicom.synth import default_workers

    workers = workers or default_workers()
    warnings.filterwarnings("ignore")
    runs = []
    for _ in range(repeats):
        seconds, counts = _ours(out, n_datasets, n_patients, workers)
        runs.append(seconds)
    files = _sample(out, sample)
    per_file = statistics.median(_pydicom_write(files, out.parent / f"{out.name}-pydicom") for _ in range(3))
    shutil.rmtree(out.parent / f"{out.name}-pydicom", ignore_errors=True)
    if not keep:
        shutil.rmtree(out, ignore_errors=True)
    ours = statistics.median(runs)
    baseline = per_file * counts["n_files"] / workers
    return {"stage": "generate", "datasets": n_datasets, **counts, "workers": workers, "repeats": repeats,
            "ours_seconds": round(ours, 2), "ours_runs": [round(s, 2) for s in runs],
            "ours_files_per_s": round(counts["n_files"] / ours), "baseline": "pydicom Dataset + save_as",
            "baseline_sample_files": len(files), "baseline_seconds_per_file": per_file,
            "baseline_seconds": round(baseline, 1), "ratio": round(baseline / ours, 1)}


def _print(r: dict) -> None:
    print(f"\ngenerate: {r['datasets']} datasets, {r['n_patients']:,} patients, {r['n_series']:,} series "
          f"({r['n_segmentations']:,} with a SEG), {r['n_files']:,} files, {r['bytes'] / 1e9:.2f} GB, "
          f"{r['workers']} processes")
    print(f"  ours (templates)             {r['ours_seconds']:8.1f} s  {r['ours_files_per_s']:7,} files/s  "
          f"(median of {r['repeats']})")
    print(f"  pydicom save_as (baseline)   {r['baseline_seconds']:8.1f} s  "
          f"{r['n_files'] / r['baseline_seconds']:7,.0f} files/s  ({r['baseline_seconds_per_file'] * 1000:.2f} ms "
          f"a file, median of 3 x {r['baseline_sample_files']} files, extrapolated)")
    print(f"  ratio                        {r['ratio']:8.1f}x faster")


def _plot(r: dict) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3))
    names, values = ["ours (templates)", "pydicom save_as\n(extrapolated)"], [r["ours_seconds"], r["baseline_seconds"]]
    ax.barh(names, values, color=["#1a5", "#c63"])
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:,.0f} s", va="center")
    ax.set_xlabel("seconds, wall")
    ax.set_title(f"seed cohort: {r['n_files']:,} files, {r['workers']} processes ({r['ratio']}x)")
    fig.tight_layout()
    out = RESULTS / "generate.png"
    fig.savefig(out, dpi=110)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=30)
    parser.add_argument("--patients", type=int, default=20000)
    parser.add_argument("--out", type=Path, default=RESULTS / "seed-bench", help="written afresh (and removed after)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--sample", type=int, default=600, help="files for the pydicom baseline")
    parser.add_argument("--keep", action="store_true", help="keep the written cohort")
    args = parser.parse_args(argv)
    os.environ.setdefault("TQDM_MININTERVAL", "1")
    result = generate_stage(args.out, args.datasets, args.patients, args.repeats, args.sample, keep=args.keep)
    _print(result)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "generate.json").write_text(json.dumps(result, indent=1))
    print(f"\nresults: {RESULTS / 'generate.json'}, plot: {_plot(result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
