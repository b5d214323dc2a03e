"""CLI: `workbench demo-data`, `workbench series list`, and the index behind `workbench datasets index`."""

import sys
from pathlib import Path

from ..catalog.dataset_paths import DEMO_DATA
from ..output import print_rows

SERIES_COLUMNS = ["dataset_id", "patient_id", "modality", "body_part", "description", "n_instances", "rows", "cols",
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
    """Index a registered dataset's folder, store the counts in the catalog and audit it.

    The folder is checked first as at a spawn (dataset_paths.check_registered), and the walk
    refuses a socket, FIFO or device inside."""
    from ..catalog import audit
    from ..catalog.dataset_paths import check_registered
    from ..catalog.datasets import get_dataset, update_counts
    from .index import dataset_summary, index_folder

    with ctx.session() as s:
        dataset = get_dataset(s, dataset_id)
        # Where the folder is now, cheaply; index_folder's walk refuses special files inside.
        folder = check_registered(dataset.host_path, ctx.state_dir)
        report = index_folder(s, dataset_id, folder, progress=progress)
        summary = dataset_summary(s, dataset_id)
        update_counts(s, dataset_id, summary["n_patients"], summary["n_series"])
        audit.record(s, ctx.actor, "dataset.index", dataset_id, dataset=dataset_id, files=report.n_files,
                     new=report.n_new, changed=report.n_changed, removed=report.n_removed, problems=len(report.problems))
    return {**summary, "report": report}


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
    from .demo import ensure_demo_data

    out = Path(args.out) if args.out else ctx.state_dir / DEMO_DATA
    for spec, folder, written in ensure_demo_data(out, args.size, progress=not args.quiet):
        print(f"{spec.id} ({spec.site}): {'written' if written else 'already complete'} at {folder}")
        if args.register:
            _register_demo(ctx, spec, folder, args.quiet)


def _series_list(ctx, args):
    from .index import list_series

    with ctx.session() as s:
        rows = [x.as_dict() for x in list_series(s, args.dataset, args.modality, args.body_part,
                                                 True if args.with_seg else None, args.offset, args.limit)]
    print_rows(rows, SERIES_COLUMNS, args.json)


def register(subparsers) -> None:
    p = subparsers.add_parser("demo-data", help="write the synthetic demo cohorts (three sites)")
    p.add_argument("--size", choices=["small", "demo", "full"], default="small",
                   help="small: 100 patients/dataset at 64x64x32 (under a minute); demo: 100 at 128x128x48 "
                        "(under 2 minutes); full: 12 at 512x512x300 CT (tens of GB, long)")
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
    p.add_argument("--with-seg", action="store_true", help="only series with a segmentation")
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_series_list)
