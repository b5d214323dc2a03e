"""The dataset index at the platform's size: generation, indexing speed, filters and paging over many
datasets, and a sandbox's start with every dataset mounted.

    python benchmarks/scale.py [--data FOLDER [--generate]] [--datasets 30] [--series 200000]
                               [--queries 50] [--baseline-datasets N] [--spawn] [--out benchmarks/results]

The platform's size, in one run (about 25 minutes on 2 cores, 4 GB of disk):

    python benchmarks/scale.py --data /tmp/seed --generate --baseline-datasets 1 --spawn

Stages, one function each:
  data       --data: a folder of dataset folders (DICOM); with --generate, the seed cohort is written
             there first (`workbench demo-data --size seed`: 30 datasets, 200,000 series, 600,000 files)
             and timed. Default: the six demo datasets at size small (written once into <out>/scale-data).
  indexing   each dataset's index file built by the steward's path (dicom/index_files.py): files/s of
             the first run and of an incremental re-run; baseline: the same first run with every
             header read in this one process (the former index_folder), over the first
             --baseline-datasets datasets (default all).
  scale      when the index files hold fewer than --series series: copied to --datasets datasets
             holding --series image series in all (series rows, SEGs too, replicated under new UIDs,
             without instance rows: queries read series rows only), each beside an empty folder
             standing for its data, as a sandbox mounts them. Otherwise the index files as built.
  queries    p50/p95 over --queries queries per filter (modality, body part, site, dataset,
             has-segmentation, free text, deep page) for CaseBrowser's LocalIndex over the mounted
             files and for `workbench series list` (one SeriesCatalog each); baseline: the former
             list_series over one SQLite file of all series, with has-segmentation, site and free
             text filtered in Python. The portal's catalogue (datasets, not series) is timed as it is.
  browser    CaseBrowser's first page over the mounted datasets; baseline: the former refresh (every
             series row of every dataset read from the index into a DataFrame), then its first page.
  spawn      --spawn (root, dockerd, the images): a scratch hub; a user granted every dataset of
             --data starts a sandbox (each dataset and its index file mounted read-only) against a
             user granted none, in turns, from the spawn form to a ready server (tests/docker/crowd.py).
Prints ours, the baseline and the ratio (medians); writes scale.json and scale.png to --out.
"""

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "extensions" / "src"))
sys.path.insert(0, str(REPO))  # tests.docker.crowd: the spawn stage's journey

from imaging_workbench.dicom import index_read  # noqa: E402
from imaging_workbench.dicom.index import IMAGE_ONLY  # noqa: E402
from imaging_workbench.dicom.index_files import META, build_index_file, fingerprint, index_file, read_meta  # noqa: E402
from imaging_workbench.dicom.index_query import SeriesCatalog, SeriesQuery  # noqa: E402

def ensure_data(out: Path) -> Path:
    """The six demo datasets at size small (written once)."""
    from imaging_workbench.dicom.demo import ensure_demo_data

    folder = out / "scale-data"
    for _ in ensure_demo_data(folder, "small", progress=True):
        pass
    return folder


def generate(data: Path) -> dict:
    """The seed cohort written into `data` (complete datasets there are kept, and then not timed)."""
    from imaging_workbench.dicom.seed import SEED_SIZE, ensure_seed_data

    start = time.perf_counter()
    done = ensure_seed_data(data, **SEED_SIZE, progress=True)
    seconds = time.perf_counter() - start
    files = sum(1 for _, folder, _ in done for p in folder.rglob("*.dcm"))
    return {"seconds": seconds, "files": files, "datasets_written": sum(1 for *_, written in done if written),
            "datasets": len(done)}


def dataset_folders(data: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted(data.iterdir()) if p.is_dir() and not p.name.startswith(".")}


def dataset_site(folder: Path) -> str:
    """The site a generated dataset names in its description file (the steward records it so)."""
    described = folder / ".workbench-demo.json"
    return json.loads(described.read_text()).get("site", "site-1") if described.exists() else "site-1"


def measure_indexing(folders: dict[str, Path], work: Path, baseline_datasets: int | None = None) -> dict:
    """files/s of the first build, an incremental re-run, and the baseline (one process, over the first
    `baseline_datasets` datasets)."""
    out = {"files": 0, "first_s": 0.0, "rerun_s": 0.0, "baseline_files": 0, "baseline_s": 0.0}
    for dataset_id, folder in tqdm(folders.items(), desc="indexing", unit="dataset"):
        target = index_file(work / "indexes", dataset_id)
        report, _ = build_index_file(dataset_id, folder, target, site=dataset_site(folder))
        out["files"] += report.n_files
        out["first_s"] += report.seconds
        again, _ = build_index_file(dataset_id, folder, target, site=dataset_site(folder))
        out["rerun_s"] += again.seconds
    saved = index_read.POOL_FROM
    index_read.POOL_FROM = 10**12  # the former path: every header in this process
    try:
        for dataset_id, folder in list(folders.items())[:baseline_datasets]:
            report, _ = build_index_file(dataset_id, folder, index_file(work / "baseline", dataset_id))
            out["baseline_files"] += report.n_files
            out["baseline_s"] += report.seconds
    finally:
        index_read.POOL_FROM = saved
    out.update({"first_files_per_s": out["files"] / out["first_s"], "rerun_files_per_s": out["files"] / out["rerun_s"],
                "baseline_files_per_s": out["baseline_files"] / out["baseline_s"]})
    return out


def scale_indexes(sources: list[Path], work: Path, n_datasets: int, n_series: int) -> tuple[Path, Path]:
    """`n_datasets` index files with `n_series` series rows in all, beside empty data folders."""
    data, mounted = work / "data", work / "data-index"
    data.mkdir(parents=True), mounted.mkdir(parents=True)
    rows = []
    for path in sources:
        with sqlite3.connect(path) as conn:
            conn.row_factory = sqlite3.Row
            rows += [dict(r) for r in conn.execute("SELECT * FROM dicom_series")]
    images = sum(1 for r in rows if r["modality"] not in IMAGE_ONLY)
    per = -(-n_series * len(rows) // (images * n_datasets))  # rows per dataset for n_series image series
    sites = [f"site-{i % 10 + 1}" for i in range(n_datasets)]
    for d in range(n_datasets):
        dataset_id = f"scale-{d:02d}"
        (data / dataset_id).mkdir()
        target = index_file(mounted, dataset_id)
        shutil.copyfile(sources[d % len(sources)], target)
        with sqlite3.connect(target) as conn:
            conn.execute("DELETE FROM dicom_series")
            conn.execute("DELETE FROM dicom_instances")
            batch = []
            for i in range(per):
                r = dict(rows[i % len(rows)])
                suffix = f".{d}.{i // len(rows)}"
                r.update(id=None, dataset_id=dataset_id, series_uid=r["series_uid"] + suffix,
                         patient_id=f"{r['patient_id']}-{i // len(rows)}",
                         seg_uids=json.dumps([u + suffix for u in json.loads(r["seg_uids"] or "[]")]),
                         referenced_series=r["referenced_series"] + suffix if r["referenced_series"] else "")
                batch.append(r)
            names = list(batch[0])
            conn.executemany(f"INSERT INTO dicom_series ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                             [[r[n] for n in names] for r in batch])
            conn.execute(f"DELETE FROM {META.name}")
            meta = {"dataset_id": dataset_id, "schema_version": read_meta(sources[0])["schema_version"],
                    "fingerprint": fingerprint(data / dataset_id), "site": sites[d], "n_series": per}
            conn.executemany(f"INSERT INTO {META.name} VALUES (?, ?)", [(k, str(v)) for k, v in meta.items()])
        conn.close()
    return data, mounted


def query_cases(catalog: SeriesCatalog, n: int, seed: int = 7) -> dict[str, list[SeriesQuery]]:
    rng = random.Random(seed)
    values = {c: catalog.values(c) for c in ("modality", "body_part", "site", "dataset_id")}
    words = [w for d in catalog.values("description") for w in d.split()] or ["a"]
    total = catalog.query(limit=0).total
    return {"modality": [SeriesQuery(modality=rng.choice(values["modality"]), limit=20) for _ in range(n)],
            "body_part": [SeriesQuery(body_part=rng.choice(values["body_part"]), limit=20) for _ in range(n)],
            "site": [SeriesQuery(site=rng.choice(values["site"]), limit=20) for _ in range(n)],
            "dataset": [SeriesQuery(dataset_id=rng.choice(values["dataset_id"]), limit=20) for _ in range(n)],
            "has_segmentation": [SeriesQuery(has_segmentation=rng.random() < 0.5, limit=20) for _ in range(n)],
            "text": [SeriesQuery(text=rng.choice(words).lower(), limit=20) for _ in range(n)],
            "deep_page": [SeriesQuery(offset=rng.randrange(max(1, total - 20)), limit=20) for _ in range(n)]}


def timed_ms(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def percentiles(times: list[float]) -> dict:
    ordered = sorted(times)
    return {"p50": statistics.median(ordered), "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]}


def baseline_query(session, sites: dict, q: SeriesQuery):
    """The former path: list_series in SQL where it could filter, the rest in Python over every row."""
    from imaging_workbench.dicom.index import list_series

    python_side = q.site or q.has_segmentation is not None or q.text
    rows = list_series(session, q.dataset_id or None, q.modality or None, q.body_part or None,
                       q.has_segmentation, 0 if python_side else q.offset, None if python_side else q.limit)
    if python_side:
        rows = [r for r in rows if (not q.site or sites[r.dataset_id] == q.site)
                and q.text.lower() in r.description.lower()]
        rows = rows[q.offset:q.offset + q.limit]
    return rows


def measure_queries(data: Path, mounted: Path, work: Path, n: int) -> dict:
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from imaging_workbench.widgets.series_index import LocalIndex

    local = LocalIndex(data, work / "private", mounted=mounted)
    start = time.perf_counter()
    browser_catalog = local.catalog()
    load_s = time.perf_counter() - start
    series_list = SeriesCatalog()  # as `workbench series list` builds it: each file with its site
    sites = {}
    for path in sorted(mounted.glob("*.sqlite")):
        meta = read_meta(path)
        sites[meta["dataset_id"]] = meta.get("site", "")
        series_list.add_index_file(path, meta["dataset_id"], meta.get("site", ""))
    merged = work / "baseline-all.sqlite"  # the former single index of every dataset
    with sqlite3.connect(merged) as conn:
        for path in sorted(mounted.glob("*.sqlite")):
            conn.execute("ATTACH DATABASE ? AS src", (str(path),))
            if not conn.execute("SELECT name FROM sqlite_master WHERE name = 'dicom_series'").fetchone():
                conn.execute("CREATE TABLE dicom_series AS SELECT * FROM src.dicom_series WHERE 0")
                conn.execute("CREATE INDEX ix_ds ON dicom_series (dataset_id)")
            conn.execute("INSERT INTO dicom_series SELECT * FROM src.dicom_series")
            conn.commit()
            conn.execute("DETACH DATABASE src")
    baseline_session = Session(create_engine(f"sqlite:///{merged}"))
    out = {"catalog_load_s": load_s, "series": series_list.query(limit=0).total, "filters": {}}
    for name, qs in query_cases(series_list, n).items():
        ours_browser = [timed_ms(lambda q=q: browser_catalog.query(q)) for q in qs]
        ours_list = [timed_ms(lambda q=q: series_list.query(q)) for q in qs]
        base = [timed_ms(lambda q=q: baseline_query(baseline_session, sites, q)) for q in qs[: max(5, n // 5)]]
        out["filters"][name] = {"case_browser": percentiles(ours_browser), "series_list": percentiles(ours_list),
                                "baseline": percentiles(base)}
    baseline_session.close()
    return out


def measure_portal(work: Path, n_datasets: int, n: int) -> dict:
    """The portal's catalogue query (Portal.catalogue: datasets, not series) with `n_datasets` registered."""
    from imaging_workbench.catalog import datasets
    from imaging_workbench.context import WorkbenchContext
    from imaging_workbench.deployment import validate_settings, with_defaults
    from imaging_workbench.portal.operations import Portal

    ctx = WorkbenchContext(validate_settings(with_defaults({"state_dir": str(work / "state")})), actor="steward")
    with ctx.session() as s:
        for d in range(n_datasets):
            folder = work / "portal-data" / f"scale-{d:02d}"
            folder.mkdir(parents=True)
            datasets.add_dataset(s, "steward", f"scale-{d:02d}", folder, state_dir=ctx.state_dir,
                                 site=f"site-{d % 10 + 1}", modality="CT", body_part="CHEST", cancer_type="lung")
    portal = Portal(ctx)
    times = [timed_ms(lambda i=i: portal.catalogue(q="lung" if i % 2 else "", site=f"site-{i % 10 + 1}"))
             for i in range(n)]
    return percentiles(times)


def measure_browser(data: Path, mounted: Path, work: Path, repeats: int = 3) -> dict:
    import pandas as pd

    from imaging_workbench.dicom.index import list_series
    from imaging_workbench.dicom.index_files import reading
    from imaging_workbench.widgets.browser import CaseBrowser
    from imaging_workbench.widgets.series_index import LocalIndex

    ours = [timed_ms(lambda: CaseBrowser(source=LocalIndex(data, work / "private", mounted=mounted), tools=False))
            for _ in range(repeats)]

    def former():
        rows = []
        for path in sorted(mounted.glob("*.sqlite")):
            with reading(path) as session:
                rows += [s.as_dict() for s in list_series(session, path.stem, limit=None)]
        frame = pd.DataFrame(rows)
        return frame.iloc[0:20]

    base = [timed_ms(former) for _ in range(repeats)]
    return {"ours_ms": statistics.median(ours), "baseline_ms": statistics.median(base)}


def measure_spawn(folders: dict[str, Path], indexes: Path, work: Path, repeats: int = 3) -> dict:
    """Seconds from the spawn form to a ready server for a user granted every dataset in `folders`
    (their index files from `indexes` mounted beside them) and for one granted none, in turns."""
    from imaging_workbench.catalog import accounts, datasets, grants
    from imaging_workbench.context import WorkbenchContext
    from imaging_workbench.deployment import validate_settings, with_defaults
    from imaging_workbench.hub.network import docker_client, ensure_firewall, ensure_network, sandbox_open_ports
    from tests.docker.crowd import visit, wait_stopped
    from tests.docker.sandboxes import Box, remove_box
    from tests.hubtools import HubProcess

    box = Box(network="wbscale-sandbox", subnet="172.29.245.0/24", prefix="wbscale")
    users = {"alldata": list(folders), "nodata": []}
    settings = validate_settings(with_defaults({
        "state_dir": str(work / "hub-state"),
        "sandbox": {"network": box.network, "subnet": box.subnet, "default_profile": "small",
                    "profiles": {"small": {"display": "Small: 1 CPU, 512 MB", "cpu": 1, "memory": "512M"}}}}))
    (work / "hub-state" / "indexes").mkdir(parents=True)
    with WorkbenchContext(settings, actor="benchmark").session() as s:
        for dataset_id, folder in folders.items():
            datasets.add_dataset(s, "benchmark", dataset_id, folder, site=dataset_site(folder))
            shutil.copyfile(index_file(indexes, dataset_id), index_file(work / "hub-state" / "indexes", dataset_id))
        for user, granted in users.items():
            accounts.add_account(s, "benchmark", user, f"{user}-password")
            for dataset_id in granted:
                grants.grant_access(s, "benchmark", user, dataset_id, 1, "scale benchmark")
    docker = docker_client()
    (work / "hub").mkdir()
    hub = HubProcess(work / "hub", settings, api_ip=box.gateway, extra_config=box.spawner_config())
    times, mounted = {user: [] for user in users}, {}
    try:
        ensure_network(docker, box.network, box.subnet)
        ensure_firewall(box.network, box.subnet, sandbox_open_ports(hub.settings))
        hub.start()
        for _ in tqdm(range(repeats), desc="spawns (both users)", unit="round"):
            for user in users:
                seen = visit(hub, user, f"{user}-password", "small", docker, box.container(user), timeout=300)
                if not seen.ok:
                    raise RuntimeError(f"{user}'s sandbox did not start: {seen.error}")
                times[user].append(seen.ready_s)
                code, out = docker.containers.get(box.container(user)).exec_run(
                    ["sh", "-c", "ls /data | wc -l; ls /data-index 2>/dev/null | wc -l"], user="1000")
                mounted[user] = [int(n) for n in out.decode().split()]
                hub.api("DELETE", f"/users/{user}/server")
                wait_stopped(hub, user, time.monotonic() + 120)
    finally:
        try:
            hub.stop()
        finally:
            remove_box(docker, box)
    return {user: {"ready_s": statistics.median(t), "runs": t, "datasets_mounted": mounted[user][0],
                   "index_files_mounted": mounted[user][1]} for user, t in times.items()}


def report(results: dict) -> None:
    gen = results.get("generation")
    if gen:
        timed = "" if gen["datasets_written"] == gen["datasets"] else \
            f" ({gen['datasets'] - gen['datasets_written']} of {gen['datasets']} datasets were there already)"
        print(f"generation: {gen['files']} files in {gen['seconds']:.0f} s, "
              f"{gen['files'] / max(gen['seconds'], 1e-9):.0f} files/s{timed}")
    ix = results["indexing"]
    print(f"indexing {ix['files']} files: first run {ix['first_files_per_s']:.0f} files/s, re-run "
          f"{ix['rerun_files_per_s']:.0f} files/s; baseline (one process) {ix['baseline_files_per_s']:.0f} files/s; "
          f"ratio {ix['first_files_per_s'] / ix['baseline_files_per_s']:.2f}x")
    q = results["queries"]
    print(f"{q['series']} series over {results['datasets']} datasets; catalog load {q['catalog_load_s'] * 1000:.0f} ms")
    print(f"{'filter':18} {'browser p50/p95':>18} {'series list p50/p95':>22} {'baseline p50/p95':>20} {'ratio p50':>10}")
    for name, r in q["filters"].items():
        b, s, base = r["case_browser"], r["series_list"], r["baseline"]
        print(f"{name:18} {b['p50']:8.1f}/{b['p95']:7.1f} ms {s['p50']:10.1f}/{s['p95']:7.1f} ms "
              f"{base['p50']:9.1f}/{base['p95']:7.1f} ms {base['p50'] / max(s['p50'], 1e-6):9.1f}x")
    p = results["portal"]
    print(f"portal catalogue ({results['datasets']} datasets): p50 {p['p50']:.1f} ms, p95 {p['p95']:.1f} ms")
    br = results["browser"]
    print(f"CaseBrowser first page over {results['datasets']} mounted datasets: {br['ours_ms']:.0f} ms; baseline "
          f"{br['baseline_ms']:.0f} ms; ratio {br['baseline_ms'] / br['ours_ms']:.1f}x")
    sp = results.get("spawn")
    if sp:
        a, n = sp["alldata"], sp["nodata"]
        print(f"spawn to ready (median of {len(a['runs'])}): {a['ready_s']:.1f} s with {a['datasets_mounted']} datasets "
              f"and {a['index_files_mounted']} index files mounted; {n['ready_s']:.1f} s with none; "
              f"ratio {a['ready_s'] / n['ready_s']:.2f}x")


def plot(results: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["queries"]["filters"])
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.27
    for i, (who, label) in enumerate([("case_browser", "CaseBrowser"), ("series_list", "series list"),
                                      ("baseline", "baseline")]):
        ax.bar([x + i * width for x in range(len(names))],
               [results["queries"]["filters"][n][who]["p95"] for n in names], width, label=label)
    ax.axhline(100, color="red", linestyle="--", linewidth=1, label="100 ms target")
    ax.set_xticks([x + width for x in range(len(names))], names, rotation=20)
    ax.set_yscale("log")
    ax.set_ylabel("p95 (ms)")
    ax.set_title(f"{results['queries']['series']} series, {results['datasets']} datasets")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", help="folder of dataset folders to index (default: the demo datasets, size small)")
    p.add_argument("--datasets", type=int, default=30)
    p.add_argument("--series", type=int, default=200_000)
    p.add_argument("--queries", type=int, default=50)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    p.add_argument("--generate", action="store_true", help="write the seed cohort into --data first, timed")
    p.add_argument("--baseline-datasets", type=int, metavar="N", help="the one-process baseline indexes only the "
                   "first N datasets (default all: at the seed's size that alone takes about 15 minutes)")
    p.add_argument("--spawn", action="store_true", help="time a sandbox start with every dataset mounted against "
                   "none (root, dockerd and the images)")
    args = p.parse_args(argv)
    if args.generate and not args.data:
        p.error("--generate needs --data FOLDER: where the seed cohort is written")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    if args.generate:
        results["generation"] = generate(Path(args.data))
    data = Path(args.data) if args.data else ensure_data(out)
    folders = dataset_folders(data)
    with tempfile.TemporaryDirectory(prefix="scale-") as tmp:
        work = Path(tmp)
        results.update({"data": str(data), "datasets": args.datasets, "cores": len(os.sched_getaffinity(0)),
                        "indexing": measure_indexing(folders, work, args.baseline_datasets)})
        sources = [index_file(work / "indexes", d) for d in folders]
        built = sum(int(read_meta(path).get("n_series") or 0) for path in sources)
        if built >= args.series:  # the data is at the size asked for: its own index files, as mounted
            results["datasets"], scaled_data, mounted = len(folders), data, work / "indexes"
        else:
            scaled_data, mounted = scale_indexes(sources, work / "scaled", args.datasets, args.series)
        results["queries"] = measure_queries(scaled_data, mounted, work, args.queries)
        results["portal"] = measure_portal(work, args.datasets, args.queries)
        results["browser"] = measure_browser(scaled_data, mounted, work)
        if args.spawn:
            results["spawn"] = measure_spawn(folders, work / "indexes", work)
    report(results)
    (out / "scale.json").write_text(json.dumps(results, indent=2))
    plot(results, out / "scale.png")
    print(f"wrote {out / 'scale.json'} and {out / 'scale.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
