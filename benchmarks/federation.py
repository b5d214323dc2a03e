"""Cohort statistics through the workbench-federation service versus straight to NVFlare, and
the sites' disclosure layer versus the site computation alone.

Starts everything on 127.0.0.1 in a scratch folder: the small demo cohorts, the embedded
federation (server + three sites), a real JupyterHub and the service. Then, after one warm-up
job, alternates the same statistics job submitted (a) by a notebook client through the service
(grant checks, audit, catalog rows, result filtering) and (b) directly with the FLARE Session
API (submit, poll, download), and prints both times and their ratio (target: at most 1.10).
A second row times one site's part of the same job in this process: through the disclosure
layer (`site.release.run_task`: policy file, request checks, ledger check, OpenDP release,
ledger charge) versus the algorithm's site function alone on the same data (target: at most 1.10).

With --sites 3,10,30 it measures the federation's size instead: for each number of sites, a
federation of its own (one small CT cohort per site, tests/federation/site_cohorts.py) is brought
up and timed, then the same statistics job over every site's dataset is timed through the
service's JobManager (after one warm-up job), with each site's memory (its process tree's RSS)
idle and at its peak during the jobs. The smallest federation is the baseline: the job time's
growth time(N)/time(3) is printed against N/3 (goal: at most linear in sites).

    /var/lib/workbench/venv/bin/python benchmarks/federation.py [--repeat 3]
    /var/lib/workbench/venv/bin/python benchmarks/federation.py --sites 3,10,30 [--repeat 3]

Writes benchmarks/results/federation.json and federation.png (with --sites: federation_sites.json
and federation_sites.png).
"""

import argparse
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results"
DATASETS = ["lung-ct", "kidney-ct", "liver-ct", "lung-ct-site2", "liver-ct-site3", "brain-mr"]
SERVICE = "workbench-federation"
POLL = 0.25  # both sides poll FLARE (or the service) at the same interval


def setup(workdir: Path):
    from imaging_workbench.catalog import accounts, datasets, grants
    from imaging_workbench.context import WorkbenchContext
    from imaging_workbench.deployment import validate_settings, with_defaults
    from imaging_workbench.dicom import ensure_demo_data
    from tests.waiting import free_port

    demo = ensure_demo_data(workdir / "demo", "small")
    settings = validate_settings(with_defaults({"state_dir": str(workdir / "state"),
                                                "hub": {"service_port": free_port()},
                                                "federation": {"fl_port": free_port(), "admin_port": free_port()}}))
    ctx = WorkbenchContext(settings, actor="benchmark")
    with ctx.session() as s:
        accounts.add_account(s, "benchmark", "alice")
        for spec, folder, _ in demo:
            datasets.add_dataset(s, "benchmark", spec.id, folder, modality=spec.modality, site=spec.site)
            grants.grant_access(s, "benchmark", "alice", spec.id, 1, "benchmark")
    return settings, ctx, {spec.id: folder for spec, folder, _ in demo}


def start_hub_and_service(workdir: Path, settings: dict):
    from tests.hubtools import HubProcess
    from tests.waiting import wait_for

    (workdir / "hub").mkdir()
    hub = HubProcess(workdir / "hub", settings)
    token = secrets.token_hex(16)
    port = hub.settings["hub"]["service_port"]
    (workdir / "hub" / "config.d" / "89-federation.py").write_text(
        "import os\nfrom imaging_workbench.hub.configurer import update_services\n"
        "from imaging_workbench.deployment import load_settings\n"
        f"update_services(c, load_settings(os.environ['WORKBENCH_SETTINGS']), [{{'name': {SERVICE!r}, "
        f"'url': 'http://127.0.0.1:{port}', 'api_token': {token!r}}}])\n")
    hub.start()
    hub.api("POST", "/users/alice")
    user_token = hub.user_token("alice", [f"access:services!service={SERVICE}"])
    env = {**os.environ, "JUPYTERHUB_API_TOKEN": token, "WORKBENCH_SETTINGS": str(hub.settings_file),
           "JUPYTERHUB_API_URL": f"http://127.0.0.1:{hub.settings['hub']['api_port']}/hub/api",
           "JUPYTERHUB_SERVICE_NAME": SERVICE, "JUPYTERHUB_SERVICE_PREFIX": f"/services/{SERVICE}/"}
    log = open(workdir / "service.log", "wb")
    service = subprocess.Popen([sys.executable, "-m", "imaging_workbench.federation.hub.service"], env=env,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/services/{SERVICE}/"
    import requests

    wait_for(lambda: _ok(requests, url + "api/health"), 60, what="the federation service")
    return hub, service, url, user_token


def _ok(requests, url):
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False


def through_service(fed) -> float:
    started = time.perf_counter()
    job = fed.submit("cohort-statistics", datasets=DATASETS)
    job.wait(timeout=600, interval=POLL, progress=False)
    result = job.result()
    assert result.status == "finished", result.raw.get("error")
    return time.perf_counter() - started


def straight_to_flare(settings, site_datasets, workdir: Path) -> float:
    from imaging_workbench.federation.hub.flare_session import FlareAdmin, download_result, read_result
    from imaging_workbench.federation.hub.job_folders import write_job
    from imaging_workbench.federation.algorithms import get_algorithm
    from imaging_workbench.federation.protocol.params import validate_params

    algorithm = get_algorithm("cohort-statistics")
    started = time.perf_counter()
    job_id = secrets.token_hex(6)
    folder = write_job(Path(tempfile.mkdtemp(dir=workdir)), algorithm, validate_params(algorithm, {}),
                       site_datasets, settings, f"direct-{job_id}", researcher="benchmark-direct", job_id=job_id)
    admin = FlareAdmin(settings)
    with admin.session() as sess:
        flare_id = sess.submit_job(str(folder))
        while not str(sess.get_job_meta(flare_id)["status"]).startswith("FINISHED"):
            time.sleep(POLL)
        result = read_result(download_result(sess, flare_id, workdir / "direct" / flare_id))
    assert result["status"] == "finished", result
    return time.perf_counter() - started


def site_part(folders: dict, workdir: Path, repeat: int) -> tuple[list, list]:
    """Seconds of one site's part of the statistics job with the disclosure layer and without it."""
    from imaging_workbench.federation.algorithms import ALGORITHMS, get_algorithm
    from imaging_workbench.federation.protocol.params import validate_params
    from imaging_workbench.federation.protocol.policy import DatasetPolicy
    from imaging_workbench.federation.site.data import SiteData, write_site_datasets
    from imaging_workbench.federation.site.policy_file import write_policy_if_missing
    from imaging_workbench.federation.site.release import run_task

    local = workdir / "site-part"
    local.mkdir()
    write_site_datasets(local, {d: str(f) for d, f in folders.items()})
    write_policy_if_missing(local, DatasetPolicy(epsilon_per_researcher=1e6, epsilon_total=1e6), sorted(ALGORITHMS))
    data, algorithm, ids = SiteData(local), get_algorithm("cohort-statistics"), sorted(folders)
    params = validate_params(algorithm, {})
    task = {"algorithm": algorithm.id, "params": params, "site_datasets": {"site-1": ids}, "round": 0, "rounds": 1,
            "researcher": "benchmark"}
    algorithm.site_run(params, task, data, ids, {})  # warm-up: the site's index, imports
    run_task(dict(task, job="warm-up"), "site-1", local, data, {})
    ours, baseline = [], []
    for i in range(repeat):
        started = time.perf_counter()
        algorithm.site_run(params, task, data, ids, {})
        baseline.append(time.perf_counter() - started)
        started = time.perf_counter()
        run_task(dict(task, job=f"run-{i}"), "site-1", local, data, {})
        ours.append(time.perf_counter() - started)
    return ours, baseline


def plot(ours, baseline, path: Path, layer=None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    rows = [(axes[0], ours, baseline, ["through the service", "straight to FLARE"], "submit to result",
             "cohort statistics, 3 sites"),
            (axes[1], *layer, ["with the disclosure layer", "site function alone"], "one site's part",
             "site-1's part, in process")]
    for ax, a, b, labels, what, title in rows:
        ax.bar(labels, [statistics.median(a), statistics.median(b)], color=["tab:blue", "tab:gray"])
        for i, values in enumerate((a, b)):
            ax.scatter([i] * len(values), values, color="black", zorder=3, s=12)
        ax.set_ylabel(f"seconds, {what} (median, runs as dots)")
        ax.set_title(f"{title}: ratio {statistics.median(a) / statistics.median(b):.2f}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sites", metavar="N,N,...", help="time federations of these sizes instead (e.g. 3,10,30)")
    args = parser.parse_args(argv)
    if args.sites:
        from federation_sites import main as sites_main  # this folder, beside this script

        return sites_main([int(n) for n in args.sites.split(",")], args.repeat)
    from imaging_workbench.federation import embedded
    from imaging_workbench.federation.client import Federation
    from imaging_workbench.federation.settings import federation_settings

    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wb-fed-bench-") as tmp:
        workdir = Path(tmp)
        workdir.chmod(0o755)
        settings, ctx, folders = setup(workdir)
        federation = federation_settings(settings)
        with ctx.session() as s:
            datasets = embedded.site_datasets_from_catalog(s, federation)
        site_datasets = {site_: sorted(set(ids) & set(DATASETS)) for site_, ids in datasets.items() if ids}
        hub = service = None
        try:
            embedded.up(federation, datasets)
            hub, service, url, token = start_hub_and_service(workdir, settings)
            fed = Federation(url=url, token=token)
            straight_to_flare(federation, site_datasets, workdir)  # warm-up: site indexes, imports
            ours, baseline = [], []
            for i in range(args.repeat):
                ours.append(through_service(fed))
                baseline.append(straight_to_flare(federation, site_datasets, workdir))
                print(f"run {i + 1}: service {ours[-1]:.2f} s, straight to FLARE {baseline[-1]:.2f} s", flush=True)
            layer_ours, layer_baseline = site_part({d: folders[d] for d in site_datasets["site-1"]}, workdir,
                                                   max(args.repeat, 5))
        finally:
            if service is not None:
                os.killpg(service.pid, signal.SIGTERM)
                service.wait(30)
            if hub is not None:
                hub.stop()
            embedded.down(federation)
    ratio = statistics.median(ours) / statistics.median(baseline)
    layer_ratio = statistics.median(layer_ours) / statistics.median(layer_baseline)
    summary = {"through_service_s": ours, "straight_to_flare_s": baseline,
               "median_service_s": statistics.median(ours), "median_flare_s": statistics.median(baseline),
               "ratio": ratio, "target_ratio": 1.10, "cpus": os.cpu_count(),
               "site_part_with_layer_s": layer_ours, "site_part_alone_s": layer_baseline,
               "median_with_layer_s": statistics.median(layer_ours), "median_alone_s": statistics.median(layer_baseline),
               "layer_ratio": layer_ratio}
    (RESULTS / "federation.json").write_text(json.dumps(summary, indent=1))
    plot(ours, baseline, RESULTS / "federation.png", (layer_ours, layer_baseline))
    print(f"median through the service {summary['median_service_s']:.2f} s, straight to FLARE "
          f"{summary['median_flare_s']:.2f} s, ratio {ratio:.3f} (target <= 1.10)")
    print(f"site-1's part: median with the disclosure layer {summary['median_with_layer_s']:.3f} s, site function "
          f"alone {summary['median_alone_s']:.3f} s, ratio {layer_ratio:.3f} (target <= 1.10); "
          f"plot: {RESULTS / 'federation.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
