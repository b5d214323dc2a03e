"""How fast does a CT series open? Ours against SimpleITK, MONAI, pydicom and the raw-bytes floor.

    python benchmarks/load_series.py [--cache DIR] [--repeats 5] [--compressed-slices 64]

Generates (once, into the cache) a 512x512x300 CT series, uncompressed, plus one series per
compressed transfer syntax (RLE, JPEG-LS, JPEG 2000; 512x512, --compressed-slices slices), then
times in this one run, page cache warm, the median of --repeats:
  raw floor        open + read every file's bytes
  ours (folder)    load_series(folder): header scan, sort, preallocated read, int16 HU
  ours (index)     load_series((session, uid)): headers from the dataset index
  SimpleITK        ImageSeriesReader, GDCM file sort included, output forced to int16
  MONAI            LoadImage(folder)
  first slice      read_slice((session, uid), 0) from the index
  per syntax       ours vs the best of pydicom's decoding plugins (dcmread + pixel_array + rescale)
Prints medians and ratios and writes benchmarks/results/load_series.png.
"""

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def timed(fn, repeats: int) -> float:
    fn()  # warm-up: page cache, imports, lazy plugin discovery
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def ensure_series(cache: Path, name: str, shape, syntax: str, region: str = "abdomen", tumour_organ: str = "liver") -> Path:
    """Generate once: a finished series folder has a .done marker naming its series UID."""
    from imaging_workbench.dicom.synth import generate_ct_series

    root = cache / name
    done = root / ".done"
    if done.exists():
        return Path(done.read_text().strip())
    if root.exists():
        import shutil
        shutil.rmtree(root)
    print(f"generating {name}: {shape[2]}x{shape[1]}x{shape[0]} CT, {syntax} ...", flush=True)
    result = generate_ct_series(root, shape=shape, region=region, tumour_organ=tumour_organ, transfer_syntax=syntax,
                                seed=2024, seg=False, progress=True)
    done.write_text(str(result.folder))
    return result.folder


def raw_floor(files):
    def run():
        total = 0
        for f in files:
            with open(f, "rb") as fh:
                total += len(fh.read())
        return total
    return run


def sitk_reader(folder: Path):
    import SimpleITK as sitk

    def run():
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
        reader.SetOutputPixelType(sitk.sitkInt16)
        return sitk.GetArrayViewFromImage(reader.Execute())
    return run


def monai_reader(folder: Path):
    from monai.transforms import LoadImage

    loader = LoadImage(image_only=True)
    return lambda: loader(str(folder))


def pydicom_best(files, plugins):
    """Fastest of pydicom's decoding plugins for these files: {plugin: seconds} (sorted by z, rescaled)."""
    import pydicom
    from pydicom.pixels import apply_rescale

    out = {}
    for plugin in plugins:
        def run(plugin=plugin):
            slices = []
            for f in files:
                ds = pydicom.dcmread(f)
                arr = ds.pixel_array_options(decoding_plugin=plugin) or ds.pixel_array
                slices.append((float(ds.ImagePositionPatient[2]), apply_rescale(arr, ds).astype(np.int16)))
            slices.sort(key=lambda s: s[0])
            return np.stack([s for _, s in slices])
        out[plugin] = run
    return out


def try_timed(fn, repeats: int) -> float | None:
    try:
        return timed(fn, repeats)
    except Exception as e:  # a plugin that cannot decode this syntax is skipped, and said so
        print(f"  skipped: {type(e).__name__}: {e}")
        return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=RESULTS / "cache", help="where generated series are kept")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--compressed-slices", type=int, default=64)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    os.environ.setdefault("TQDM_MININTERVAL", "1")
    import pydicom
    from pydicom.pixels import get_decoder
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from imaging_workbench.dicom import index_folder, load_series, read_slice
    from imaging_workbench.dicom.index_models import ensure_index_tables

    args.cache.mkdir(parents=True, exist_ok=True)
    folder = ensure_series(args.cache, f"ct-{args.slices}-explicit", (args.slices, 512, 512), "explicit")
    compressed = {s: ensure_series(args.cache, f"ct-{args.compressed_slices}-{s}", (args.compressed_slices, 512, 512), s)
                  for s in ("rle", "jpegls", "j2k")}
    db = args.cache / "index.sqlite"
    db.unlink(missing_ok=True)
    engine = create_engine(f"sqlite:///{db}")
    ensure_index_tables(engine)
    session = Session(engine)
    report = index_folder(session, "bench", args.cache)
    session.commit()
    uid = load_series(folder).series_uid
    files = sorted(p for p in folder.iterdir() if p.suffix == ".dcm")
    print(f"indexed {report.n_files} files in {report.seconds:.2f} s")

    r = {}
    n = args.repeats
    r["raw floor (read bytes)"] = timed(raw_floor(files), n)
    r["ours, from folder"] = timed(lambda: load_series(folder), n)
    r["ours, from index"] = timed(lambda: load_series((session, uid)), n)
    r["SimpleITK int16"] = timed(sitk_reader(folder), n)
    r["MONAI LoadImage"] = timed(monai_reader(folder), max(2, n // 2))
    first = timed(lambda: read_slice((session, uid), 0), 20)

    check = load_series((session, uid)).array
    assert check.dtype == np.int16 and check.shape == (args.slices, 512, 512)

    rows = []
    for syntax, cfolder in compressed.items():
        cfiles = sorted(p for p in cfolder.iterdir() if p.suffix == ".dcm")
        ts = pydicom.dcmread(cfiles[0], stop_before_pixels=True).file_meta.TransferSyntaxUID
        ours = timed(lambda: load_series(cfolder), n)
        ours1 = timed(lambda: load_series(cfolder, workers=1), n)
        plugins = sorted(get_decoder(ts).available_plugins)
        theirs = {p: try_timed(fn, max(2, n // 2)) for p, fn in pydicom_best(cfiles, plugins).items()}
        theirs = {p: t for p, t in theirs.items() if t is not None}
        best = min(theirs, key=theirs.get)
        rows.append((syntax, ts.name, ours, ours1, best, theirs[best], theirs))

    print(f"\nCT 512x512x{args.slices} uncompressed, median of {n} (2-core machine, warm page cache):")
    base = r["ours, from index"]
    for name, secs in r.items():
        print(f"  {name:<24} {secs:7.3f} s   {secs / base:5.2f}x ours(index)")
    print(f"  first slice from index   {first * 1000:7.1f} ms")
    print(f"  SimpleITK / ours(index) = {r['SimpleITK int16'] / base:.2f}x faster (target >= 2x); "
          f"SimpleITK / ours(folder) = {r['SimpleITK int16'] / r['ours, from folder']:.2f}x")
    print(f"  ours(index) / raw floor = {base / r['raw floor (read bytes)']:.2f}x (target <= 3x); "
          f"ours(folder) / raw floor = {r['ours, from folder'] / r['raw floor (read bytes)']:.2f}x")
    print(f"  MONAI / ours(index) = {r['MONAI LoadImage'] / base:.2f}x")
    print(f"\nCompressed, 512x512x{args.compressed_slices}, ours (folder) vs pydicom's best plugin:")
    for syntax, name, ours, ours1, best, secs, theirs in rows:
        others = ", ".join(f"{p} {t:.3f}" for p, t in theirs.items())
        print(f"  {name:<46} ours {ours:6.3f} s (1 thread {ours1:6.3f})  pydicom best [{best}] {secs:6.3f} s "
              f"-> {secs / ours:4.2f}x   (all: {others})")
    plot(r, first, rows, args)
    session.close()
    return 0


def plot(r: dict, first: float, rows, args) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    names = list(r) + ["first slice (index)"]
    values = list(r.values()) + [first]
    a.barh(names, values, color=["#999", "#2a7", "#1a5", "#c63", "#c93", "#27c"])
    a.set_xlabel("seconds (median)")
    a.set_title(f"CT 512x512x{args.slices}, uncompressed")
    for y, v in enumerate(values):
        a.text(v, y, f" {v:.3f}", va="center")
    labels = [s for s, *_ in rows]
    x = np.arange(len(labels))
    b.bar(x - 0.2, [o for _, _, o, *_ in rows], 0.4, label="ours", color="#1a5")
    b.bar(x + 0.2, [s for *_, s, _ in rows], 0.4, label="pydicom best plugin", color="#c63")
    b.set_xticks(x, labels)
    b.set_ylabel("seconds (median)")
    b.set_title(f"compressed, 512x512x{args.compressed_slices}")
    b.legend()
    fig.tight_layout()
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "load_series.png"
    fig.savefig(out, dpi=110)
    print(f"\nplot: {out}")


if __name__ == "__main__":
    sys.exit(main())
