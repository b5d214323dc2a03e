"""Spawn time: WorkbenchSpawner (grants, read-only mounts, lockdown, audit) against plain
DockerSpawner with the same image and network, measured in the same run on the same machine.

    python benchmarks/spawn.py [--runs 10] [--crowd 10] [--rounds 2]

Prints the median time for one user and the (median over rounds) time until all of `--crowd`
users started at once are ready, for both, and the ratio (ours / baseline). Single spawns are
bimodal (~2.4 s or ~4.1 s, as the hub's readiness poll falls), so take many. Rounds alternate
which spawner goes first, so neither gains from warm caches. Saves benchmarks/results/spawn.png.
Needs root, dockerd and the images (make test or make up sets them up)."""

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).parents[1]))

from imaging_workbench.catalog import accounts, datasets, grants  # noqa: E402
from imaging_workbench.context import WorkbenchContext  # noqa: E402
from imaging_workbench.deployment import validate_settings, with_defaults  # noqa: E402
from imaging_workbench.hub.network import sandbox_open_ports  # noqa: E402
from imaging_workbench.hub.network import docker_client, ensure_firewall, ensure_network, gateway  # noqa: E402
from tests.hubtools import HubProcess  # noqa: E402
from tests.waiting import wait_for  # noqa: E402

NETWORK, SUBNET, PREFIX = "wbbench-sandbox", "172.29.250.0/24", "wbbench"
OURS = f'c.WorkbenchSpawner.prefix = "{PREFIX}"\nc.WorkbenchSpawner.home_volume = "{PREFIX}-home-{{username}}"\n'
BASELINE = f'''
c.JupyterHub.spawner_class = "docker"
c.DockerSpawner.image = c.WorkbenchSpawner.image
c.DockerSpawner.network_name = c.WorkbenchSpawner.network_name
c.DockerSpawner.use_internal_ip = True
c.DockerSpawner.remove = True
c.DockerSpawner.pull_policy = "never"
c.DockerSpawner.prefix = "{PREFIX}"
c.DockerSpawner.notebook_dir = "/"
c.DockerSpawner.mem_limit = "4G"
'''


def spawn(hub, user: str) -> float:
    hub.api("POST", f"/users/{user}")  # known to the hub (409 once it is)
    start = time.monotonic()
    r = hub.api("POST", f"/users/{user}/server", json={"profile": "standard"})
    r.raise_for_status()
    wait_for(lambda: hub.api("GET", f"/users/{user}").json()["servers"].get("", {}).get("ready"), 300,
             interval=0.25, what=f"{user}'s server")
    return time.monotonic() - start


def stop(hub, user: str) -> None:
    hub.api("DELETE", f"/users/{user}/server")
    wait_for(lambda: "" not in hub.api("GET", f"/users/{user}").json()["servers"], 120, what="stop")


def measure(label: str, extra_config: str, runs: int, crowd: int, workdir: Path) -> dict:
    (workdir / label).mkdir(parents=True)
    settings = validate_settings(with_defaults({"state_dir": str(workdir / label / "state"),
                                           "sandbox": {"network": NETWORK, "subnet": SUBNET}}))
    ctx = WorkbenchContext(settings, actor="benchmark")
    users = [f"user{i}" for i in range(crowd)]
    data = workdir / label / "dataset"
    data.mkdir(mode=0o755)
    with ctx.session() as s:
        datasets.add_dataset(s, "benchmark", "bench-ct", data)
        for user in users:
            accounts.add_account(s, "benchmark", user, "unused-password")
            grants.grant_access(s, "benchmark", user, "bench-ct", 1, "spawn benchmark")
    hub = HubProcess(workdir / label, settings, api_ip=gateway(SUBNET), extra_config=extra_config)
    ensure_firewall(NETWORK, SUBNET, sandbox_open_ports(hub.settings))
    hub.start()
    try:
        singles = []
        for _ in tqdm(range(runs), desc=f"{label}: one user", unit="spawn"):
            singles.append(spawn(hub, users[0]))
            stop(hub, users[0])
        start = time.monotonic()
        with ThreadPoolExecutor(crowd) as pool:
            list(tqdm(pool.map(lambda u: spawn(hub, u), users), total=crowd, desc=f"{label}: {crowd} at once"))
        crowd_time = time.monotonic() - start
        for user in users:
            stop(hub, user)
    finally:
        hub.stop()
    return {"single": singles, "crowd": crowd_time}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--crowd", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    docker = docker_client()
    ensure_network(docker, NETWORK, SUBNET)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        try:
            results = {"dockerspawner": {"single": [], "crowd": []}, "workbench": {"single": [], "crowd": []}}
            contenders = [("dockerspawner", BASELINE), ("workbench", OURS)]
            for round_ in range(args.rounds):
                for label, config in contenders if round_ % 2 == 0 else contenders[::-1]:
                    measured = measure(label, config, args.runs, args.crowd, workdir / f"round{round_}")
                    results[label]["single"] += measured["single"]
                    results[label]["crowd"].append(measured["crowd"])
            baseline, ours = results["dockerspawner"], results["workbench"]
        finally:
            for container in docker.containers.list(all=True, filters={"name": f"{PREFIX}-"}):
                container.remove(force=True)
            for volume in docker.volumes.list(filters={"name": f"{PREFIX}-home-"}):
                volume.remove(force=True)
    one_ours, one_base = statistics.median(ours["single"]), statistics.median(baseline["single"])
    crowd_ours, crowd_base = statistics.median(ours["crowd"]), statistics.median(baseline["crowd"])
    print(f"one user, median of {len(ours['single'])}: ours {one_ours:.2f} s, DockerSpawner {one_base:.2f} s, "
          f"ratio {one_ours / one_base:.2f}")
    print(f"{args.crowd} users at once, median of {args.rounds}: ours {crowd_ours:.1f} s, "
          f"DockerSpawner {crowd_base:.1f} s, ratio {crowd_ours / crowd_base:.2f}")
    plot(ours, baseline, args)


def plot(ours: dict, baseline: dict, args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.boxplot([baseline["single"], ours["single"]], tick_labels=["DockerSpawner", "WorkbenchSpawner"])
    left.set_ylabel("seconds to ready")
    left.set_title(f"one user ({len(ours['single'])} runs)")
    right.boxplot([baseline["crowd"], ours["crowd"]], tick_labels=["DockerSpawner", "WorkbenchSpawner"])
    right.set_title(f"{args.crowd} users at once")
    fig.tight_layout()
    out = Path(__file__).parent / "results" / "spawn.png"
    out.parent.mkdir(exist_ok=True)
    fig.savefig(out, dpi=120)
    print(f"plot: {out}")


if __name__ == "__main__":
    main()
