"""CLI: `workbench demo-data`, `workbench series list`, and the index files behind `workbench datasets index`."""

import sys
from pathlib import Path

from ..catalog.dataset_paths import DEMO_DATA
from ..output import print_rows

SERIES_COLUMNS = ["dataset_id", "site", "patient_id", "modality", "body_part", "description", "n_instances", "rows", "cols",
                  "has_segmentation", "series_uid"]


def has_dicom(folder: str | Path, probe: int = 50) -> bool:
    """True when one of the first `probe` files under folder has the DICM prefix."""
    import os

    seen = 0
    for dirpath, dirnames, names in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in names:
            if name.startswith("."):
                continue
            seen += 1
            try:
                with open(os.path.join(dirpath, name), "rb") as f:
                    if f.read(132)[128:132] == b"DICM":
                        return True
            except OSError:
                pass
            if seen >= probe:
                return False
    return False


def index_dataset(ctx, dataset_id: str, progress: bool = True) -> dict:
    """Build (or bring up to date) a registered dataset's index file, store its counts in the
    catalog and audit it.

    The file is `<state_dir>/indexes/<id>.sqlite` (dicom/index_files.py): sandboxes mount it
    read-only beside the data, and `workbench series list` and publish-job read it. The folder is checked first
    as at a spawn (dataset_paths.check_registered), and the walk refuses a socket, FIFO or device inside."""
    from ..catalog import audit
    from ..catalog.dataset_paths import check_registered
    from ..catalog.datasets import get_dataset, update_counts
    from .index_files import build_index_file

    with ctx.session() as s:
        dataset = get_dataset(s, dataset_id)
        # Where the folder is now, cheaply; the index run's walk refuses special files inside.
        folder = check_registered(dataset.host_path, ctx.state_dir)
        info = {"site": dataset.site or "", "cancer_type": dataset.cancer_type or ""}
    report, summary = build_index_file(dataset_id, folder, index_path(ctx, dataset_id), progress=progress, **info)
    with ctx.session() as s:
        update_counts(s, dataset_id, summary["n_patients"], summary["n_series"])
        audit.record(s, ctx.actor, "dataset.index", dataset_id, dataset=dataset_id, files=report.n_files,
                     new=report.n_new, changed=report.n_changed, removed=report.n_removed, problems=len(report.problems))
    return {**summary, "report": report}


def index_path(ctx, dataset_id: str) -> Path:
    """Where the steward's tooling keeps dataset `dataset_id`'s index file."""
    from .index_files import INDEX_FOLDER, index_file

    return index_file(Path(ctx.state_dir) / INDEX_FOLDER, dataset_id)


def series_catalog(ctx, dataset_ids=None):
    """A SeriesCatalog over the index files of the registered datasets (or of `dataset_ids`)."""
    from ..catalog.datasets import list_datasets
    from .index_query import SeriesCatalog

    catalog = SeriesCatalog()
    with ctx.session() as s:
        datasets = sorted((d.id, d.site or "", d.cancer_type or "") for d in list_datasets(s)
                          if dataset_ids is None or d.id in dataset_ids)
    for dataset_id, site, cancer_type in datasets:
        path = index_path(ctx, dataset_id)
        if path.is_file():
            catalog.add_index_file(path, dataset_id, site, cancer_type)
    return catalog


def _print_index(result: dict, out=None) -> None:
    out = out or sys.stdout
    r = result["report"]
    print(f"indexed '{r.dataset_id}': {r.n_files} files ({r.n_new} new, {r.n_changed} changed, {r.n_unchanged} "
          f"unchanged, {r.n_removed} removed) in {r.seconds:.1f} s; {result['n_patients']} patients, "
          f"{result['n_series']} image series, {result['n_segmentations']} SEGs", file=out)
    for path, reason in r.problems[:20]:
        print(f"  problem: {path}: {reason}", file=out)
    if len(r.problems) > 20:
        print(f"  ... and {len(r.problems) - 20} more problems", file=out)


def index_if_dicom(ctx, dataset_id: str, folder: str) -> None:
    """After `datasets add`: index the folder when it holds DICOM (with a progress bar)."""
    if has_dicom(folder):
        _print_index(index_dataset(ctx, dataset_id, progress=True))


def _datasets_index(ctx, args):
    _print_index(index_dataset(ctx, args.id, progress=not args.quiet))


def _register_demo(ctx, spec, folder: Path, quiet: bool) -> None:
    from ..catalog.datasets import add_dataset
    from ..catalog.models import Dataset

    with ctx.session() as s:
        if s.get(Dataset, spec.id) is None:
            add_dataset(s, ctx.actor, spec.id, folder, title=spec.title, state_dir=ctx.state_dir,
                        cancer_type=spec.cancer_type, modality=spec.modality, body_part=spec.body_part,
                        site=spec.site, licence="CC-BY-4.0 (synthetic)")
    _print_index(index_dataset(ctx, spec.id, progress=not quiet))


def _demo_data(ctx, args):
    out = Path(args.out) if args.out else ctx.state_dir / DEMO_DATA
    if args.size == "seed":
        from .seed import SEED_SIZE, ensure_seed_data
        done = ensure_seed_data(out, **SEED_SIZE, progress=not args.quiet)
    else:
        from .demo import ensure_demo_data
        done = ensure_demo_data(out, args.size, progress=not args.quiet)
    for spec, folder, written in done:
        print(f"{spec.id} ({spec.site}): {'written' if written else 'already complete'} at {folder}")
        if args.register:
            _register_demo(ctx, spec, folder, args.quiet)


def _series_list(ctx, args):
    from .index_query import SeriesQuery

    query = SeriesQuery(dataset_id=args.dataset or "", site=args.site or "", modality=args.modality or "",
                        body_part=args.body_part or "", has_segmentation=True if args.with_seg else None,
                        text=args.text or "", offset=args.offset, limit=args.limit)
    page = series_catalog(ctx, [args.dataset] if args.dataset else None).query(query)
    print_rows(page.rows, SERIES_COLUMNS, args.json)
    if not args.json:
        print(f"{len(page.rows)} of {page.total} series (from {args.offset})", file=sys.stderr)


def register(subparsers) -> None:
    p = subparsers.add_parser("demo-data", help="write the synthetic demo cohorts (three sites, or the 30-site seed)")
    p.add_argument("--size", choices=["small", "demo", "full", "seed"], default="small",
                   help="small: 100 patients/dataset at 64x64x32 (under a minute); demo: 100 at 128x128x48 "
                        "(under 2 minutes); full: 12 at 512x512x300 CT (tens of GB, long); seed: the platform "
                        "at its real size, 30 datasets seed-01..30 at site-01..30, 20,000 patients, 200,000 "
                        "series of 32x32 thumbnails with real headers, 600,000 files (minutes on 2 cores)")
    p.add_argument("--out", help="folder for the datasets (default: <state_dir>/demo-data)")
    p.add_argument("--register", action="store_true", help="add them to the catalog and index them")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=_demo_data)
    se = subparsers.add_parser("series", help="browse indexed DICOM series").add_subparsers(
        dest="series_command", required=True, metavar="ACTION")
    p = se.add_parser("list", help="list indexed image series")
    p.add_argument("--dataset")
    p.add_argument("--modality")
    p.add_argument("--body-part", dest="body_part")
    p.add_argument("--site")
    p.add_argument("--with-seg", action="store_true", help="only series with a segmentation")
    p.add_argument("--text", help="words anywhere in the series description (case-insensitive)")
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_series_list)
