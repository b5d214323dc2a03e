"""`benchmarks/federation.py --sites 3,10,30`: a federation's bring-up, a statistics job and each
site's memory at several numbers of sites (the module docstring of federation.py says what and why).

Every federation runs in a scratch folder on 127.0.0.1; one catalog holds one small CT cohort per
site, all written up front on one process pool. Jobs go through the service's JobManager in this
process (its checks, the catalog rows, FLARE), polled at the service's pace.
"""

import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import yaml
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
POLL = 0.25
EPSILON = 20.0


def setup(workdir: Path, most: int):
    """A catalog with one cohort per site for `most` sites, alice holding grants for all; returns
    (deployment settings without federation ports, context, {site: (dataset, folder, patients)})."""
    from imaging_workbench.catalog import accounts, datasets, grants
    from imaging_workbench.context import WorkbenchContext
    from imaging_workbench.deployment import validate_settings, with_defaults
    from imaging_workbench.federation.settings import site_names
    from tests.federation.site_cohorts import write_site_cohorts
    from tests.waiting import free_port

    plan = write_site_cohorts(workdir / "data", site_names(most), patients=10)
    settings = validate_settings(with_defaults({"state_dir": str(workdir / "state"),
                                                "hub": {"service_port": free_port()}}))
    ctx = WorkbenchContext(settings, actor="benchmark")
    with ctx.session() as s:
        accounts.add_account(s, "benchmark", "alice")
        for site, (dataset_id, folder, _) in plan.items():
            datasets.add_dataset(s, "benchmark", dataset_id, folder, modality="CT", site=site)
            grants.grant_access(s, "benchmark", "alice", dataset_id, 1, "benchmark")
    return settings, ctx, plan


def federation_of(settings: dict, workdir: Path, n: int):
    """The FederationSettings of an n-site federation in a folder of its own, with each site's
    policy allowing the benchmark's epsilon for as many jobs as it runs."""
    from imaging_workbench.deployment import validate_settings
    from imaging_workbench.federation.provision import ensure_embedded_kits
    from imaging_workbench.federation.settings import federation_settings, site_names
    from imaging_workbench.federation.site.policy_file import POLICY_FILE
    from tests.waiting import free_port

    federation = federation_settings(validate_settings({**settings, "federation": {
        "workdir": str(workdir / f"federation-{n}"), "sites": list(site_names(n)), "min_count": 5,
        "fl_port": free_port(), "admin_port": free_port(), "task_timeout": 600, "job_timeout": 1200}}))
    ensure_embedded_kits(federation)
    for site in federation.sites:
        path = federation.kit(site) / "local" / POLICY_FILE
        policy = yaml.safe_load(path.read_text())
        policy["defaults"].update(epsilon_per_job=EPSILON, epsilon_per_researcher=1e6, epsilon_total=1e6)
        path.write_text(yaml.safe_dump(policy))
    return federation


class PeakMemory:
    """Samples each site's process-tree RSS once a second in a thread; `peak` holds each one's most."""

    def __init__(self, federation):
        self.federation, self.peak = federation, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        from imaging_workbench.federation import embedded

        while not self._stop.wait(1.0):
            for site in self.federation.sites:
                pid = embedded.pid_of(self.federation, site)
                if pid:
                    self.peak[site] = max(self.peak.get(site, 0.0), embedded.rss_mb(pid))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def site_errors(federation, error: str) -> list[str]:
    """The tracebacks the sites logged under the error ids a failed job's error names (each site
    keeps them in its own job logs; a benchmark run reads them to say why)."""
    import re

    out = []
    for error_id in re.findall(r"error id ([0-9a-f]+)", error):
        for log in federation.prod_dir.rglob("log.txt"):
            lines = log.read_text(errors="replace").splitlines()
            at = next((i for i, line in enumerate(lines) if f"workbench error {error_id}" in line), None)
            if at is not None:
                out.append("\n".join(lines[at:at + 25]))
                break
    return out


def timed_job(manager, datasets: list, expected_patients: int) -> tuple[float, str]:
    """Seconds from submission to the result of one statistics job over `datasets`, and its error
    ('' when every site answered and the pooled patients match the cohorts within the noise)."""
    started = time.perf_counter()
    job = manager.submit("alice", "cohort-statistics", datasets, {"epsilon": EPSILON})
    with manager.admin.session() as sess:
        while not manager.get("alice", job.id).is_final:
            manager.follow_once(sess)
            time.sleep(POLL)
    result = manager.result("alice", job.id)
    seconds = time.perf_counter() - started
    if result["status"] != "finished":
        return seconds, f"{result['status']}: {result['error']}"
    patients = next(r["count"] for r in result["counts"] if r["variable"] == "patients")
    # Each site adds Laplace noise of scale 0.53 patients: sd 0.75 a site, summed over the sites.
    if abs(patients - expected_patients) > 6 * 0.75 * len(datasets) ** 0.5:
        return seconds, f"pooled patients {patients}, the cohorts hold {expected_patients}"
    return seconds, ""


def measure(settings, ctx, plan, workdir: Path, n: int, repeat: int) -> dict:
    from imaging_workbench.federation import embedded
    from imaging_workbench.federation.hub.manager import JobManager

    federation = federation_of(settings, workdir, n)
    with ctx.session() as s:
        site_datasets = embedded.site_datasets_from_catalog(s, federation)
    datasets = [plan[site][0] for site in federation.sites]
    expected = sum(plan[site][2] for site in federation.sites)
    manager, errors = None, []
    try:
        started = time.perf_counter()
        rows = embedded.up(federation, site_datasets)
        up_s = time.perf_counter() - started
        idle = embedded.site_memory(rows)
        manager = JobManager(ctx, federation)
        with PeakMemory(federation) as memory:
            runs = [timed_job(manager, datasets, expected)  # the first: each site indexes its cohort once
                    for _ in tqdm(range(repeat + 1), desc=f"{n} sites", unit="job")]
        for _, error in runs:
            if error:  # a failed job is reported, with what the sites logged, and left out of the median
                errors.append({"error": error, "site_logs": site_errors(federation, error)})
                print(f"{n} sites: a job failed: {error}\n" + "\n".join(errors[-1]["site_logs"]), flush=True)
    finally:
        if manager is not None:
            manager.flare.close()
        embedded.down(federation)
    jobs = [seconds for seconds, error in runs[1:] if not error]
    peaks = sorted(memory.peak.values())
    return {"sites": n, "patients": expected, "up_s": up_s, "warm_up_job_s": runs[0][0], "job_s": jobs,
            "median_job_s": statistics.median(jobs) if jobs else None, "failed_jobs": errors,
            "idle_rss_mb_median": idle["median_mb"], "idle_rss_mb_max": idle["max_mb"],
            "job_rss_mb_median": statistics.median(peaks), "job_rss_mb_max": peaks[-1]}


def fmt(value, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def plot(rows: list, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sites = [r["sites"] for r in rows]
    base = rows[0]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    axes[0].plot(sites, [r["median_job_s"] for r in rows], marker="o", label="statistics job (median)")
    if base["median_job_s"]:
        axes[0].plot(sites, [base["median_job_s"] * n / base["sites"] for n in sites], linestyle="--",
                     color="gray", label=f"linear from {base['sites']} sites")
    axes[0].plot(sites, [r["up_s"] for r in rows], marker="s", label="federation up")
    axes[0].set_xlabel("sites")
    axes[0].set_ylabel("seconds")
    axes[0].legend()
    axes[1].plot(sites, [r["idle_rss_mb_median"] for r in rows], marker="o", label="idle, median")
    axes[1].plot(sites, [r["job_rss_mb_median"] for r in rows], marker="o", label="during jobs, median")
    axes[1].plot(sites, [r["job_rss_mb_max"] for r in rows], marker="^", label="during jobs, max")
    axes[1].set_xlabel("sites")
    axes[1].set_ylabel("MB per site (process tree RSS)")
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(counts: list[int], repeat: int) -> int:
    counts = sorted(set(counts))
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="wb-fed-sites-") as tmp:
        workdir = Path(tmp)
        workdir.chmod(0o755)
        settings, ctx, plan = setup(workdir, counts[-1])
        for n in counts:
            rows.append(measure(settings, ctx, plan, workdir, n, repeat))
            r = rows[-1]
            print(f"{n} sites: up {r['up_s']:.1f} s, job median {fmt(r['median_job_s'])} s "
                  f"(warm-up {r['warm_up_job_s']:.1f} s), memory per site idle median {r['idle_rss_mb_median']} MB, "
                  f"during jobs median {r['job_rss_mb_median']:.0f} MB max {r['job_rss_mb_max']:.0f} MB", flush=True)
    base = rows[0]
    for r in rows:
        r["growth"] = r["median_job_s"] / base["median_job_s"] if r["median_job_s"] and base["median_job_s"] else None
        r["linear_growth"] = r["sites"] / base["sites"]
    print(f"\n{'sites':>5} {'up s':>7} {'job s':>7} {'growth':>7} {'linear':>7} {'idle MB':>8} {'job MB':>7} "
          f"{'max MB':>7}")
    for r in rows:
        print(f"{r['sites']:>5} {r['up_s']:>7.1f} {fmt(r['median_job_s']):>7} {fmt(r['growth'], 2):>7} "
              f"{r['linear_growth']:>7.1f} {r['idle_rss_mb_median']:>8.0f} {r['job_rss_mb_median']:>7.0f} "
              f"{r['job_rss_mb_max']:>7.0f}")
    last = rows[-1]
    verdict = "no figure for" if last["growth"] is None else (
        "within" if last["growth"] <= last["linear_growth"] else "beyond")
    print(f"job time at {last['sites']} sites / at {base['sites']}: {fmt(last['growth'], 2)} against "
          f"{last['linear_growth']:.1f} for linear growth ({verdict} the goal); "
          f"plot: {RESULTS / 'federation_sites.png'}")
    (RESULTS / "federation_sites.json").write_text(json.dumps({"cpus": os.cpu_count(), "repeat": repeat,
                                                                "rows": rows}, indent=1))
    plot(rows, RESULTS / "federation_sites.png")
    return 0
