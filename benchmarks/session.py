"""Training-session pre-spawn: time until every learner's session server is ready, for rooms of
10, 30 and 60 learners, against the same number of plain sequential spawns of the same servers,
measured in the same run on one real hub with real sandboxes.

    python benchmarks/session.py [--rooms 10,30,60] [--concurrency 4] [--rounds 1]

For each room size: a session with that many temporary accounts is created; `workbench session
prespawn`'s function starts them (`--concurrency` at a time, shared with the instructor); the
servers are stopped; the same servers are then started one after another, each waited for.
Rounds alternate which goes first. Prints, per room, ours, the baseline, the ratio, and spawn
errors (the goal is none); saves benchmarks/results/session.png.
Needs root, dockerd and the images (make test or make up sets them up)."""

import argparse
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).parents[1]))

from imaging_workbench.catalog import accounts, datasets, training_sessions  # noqa: E402
from imaging_workbench.clock import utcnow  # noqa: E402
from imaging_workbench.context import WorkbenchContext  # noqa: E402
from imaging_workbench.deployment import validate_settings, with_defaults  # noqa: E402
from imaging_workbench.hub.network import (  # noqa: E402
    docker_client, ensure_firewall, ensure_network, gateway, sandbox_open_ports,
)
from imaging_workbench.sessions.hub_api import SessionHub  # noqa: E402
from imaging_workbench.sessions.prespawn import follow_spawn, prespawn  # noqa: E402
from tests.hubtools import HubProcess  # noqa: E402

NETWORK, SUBNET, PREFIX = "wbbench-sandbox", "172.29.250.0/24", "wbbench"
CONFIG = f'c.WorkbenchSpawner.prefix = "{PREFIX}"\n'
INSTRUCTOR = "ines"


def make_room(ctx, size: int, data: Path, material: Path) -> tuple[str, list[str]]:
    name = f"room-{size}"
    learners = [f"{name}-{i:03}" for i in range(size)]
    start = utcnow() + timedelta(hours=1)
    with ctx.session() as s:
        training_sessions.create_session(s, "benchmark", training_sessions.SessionPlan(
            name=name, learners=learners, instructors=[INSTRUCTOR], starts_at=start, ends_at=start + timedelta(hours=2),
            dataset_id="teaching-ct", material=str(material), profile="standard"), temporary_accounts=True)
    return name, learners


def stop_all(hub: SessionHub, learners: list[str], server: str) -> None:
    for user in learners:
        hub.stop_server(user, server)
    for user in learners:
        hub.wait_stopped(user, server, timeout=300)


def ours(hub: SessionHub, name: str, learners: list[str], concurrency: int) -> tuple[float, int]:
    start = time.monotonic()
    errors = prespawn(hub, name, learners, [INSTRUCTOR], concurrency)
    return time.monotonic() - start, sum(e is not None for e in errors.values())


def sequential(hub: SessionHub, name: str, learners: list[str]) -> tuple[float, int]:
    server, failed = training_sessions.server_name(name), 0
    start = time.monotonic()
    for user in tqdm(learners, desc=f"sequential {name}", unit="server"):
        hub.start_server(user, server)
        failed += follow_spawn(hub, user, server, 300) is not None
    return time.monotonic() - start, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rooms", default="10,30,60")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    sizes = [int(n) for n in args.rooms.split(",")]
    docker = docker_client()
    ensure_network(docker, NETWORK, SUBNET)
    results = {size: {"ours": [], "sequential": [], "errors": 0} for size in sizes}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        settings = validate_settings(with_defaults({"state_dir": str(workdir / "state"),
                                                    "sandbox": {"network": NETWORK, "subnet": SUBNET,
                                                                "home_volume": f"{PREFIX}-home-{{username}}"}}))
        ctx = WorkbenchContext(settings, actor="benchmark")
        data, material = workdir / "teaching-ct", workdir / "material"
        for folder in (data, material):
            folder.mkdir(mode=0o755)
        workdir.chmod(0o755)
        (material / "01-intro.ipynb").write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
        with ctx.session() as s:
            accounts.add_account(s, "benchmark", INSTRUCTOR)
            datasets.add_dataset(s, "benchmark", "teaching-ct", data)
        rooms = {size: make_room(ctx, size, data, material) for size in sizes}
        hub_process = HubProcess(workdir, settings, api_ip=gateway(SUBNET), extra_config=CONFIG)
        ensure_firewall(NETWORK, SUBNET, sandbox_open_ports(hub_process.settings))
        hub_process.start()
        try:
            hub = SessionHub.from_settings(hub_process.settings)
            for round_ in range(args.rounds):
                for size, (name, learners) in rooms.items():
                    server = training_sessions.server_name(name)
                    runs = [("ours", lambda: ours(hub, name, learners, args.concurrency)),
                            ("sequential", lambda: sequential(hub, name, learners))]
                    for label, run in runs if round_ % 2 == 0 else runs[::-1]:
                        seconds, failed = run()
                        results[size][label].append(seconds)
                        results[size]["errors"] += failed
                        stop_all(hub, learners, server)
        finally:
            hub_process.stop()
            for container in docker.containers.list(all=True, filters={"name": f"{PREFIX}-"}):
                container.remove(force=True)
            for volume in docker.volumes.list(filters={"name": f"{PREFIX}-home-"}):
                volume.remove(force=True)
    for size, r in results.items():
        mine, base = statistics.median(r["ours"]), statistics.median(r["sequential"])
        print(f"{size} learners: pre-spawn ({args.concurrency} at once) {mine:.1f} s, sequential spawns {base:.1f} s, "
              f"ratio {mine / base:.2f}, spawn errors {r['errors']}")
    plot(results, args)


def plot(results: dict, args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = list(results)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(sizes, [statistics.median(results[n]["sequential"]) for n in sizes], "o-", label="sequential spawns")
    ax.plot(sizes, [statistics.median(results[n]["ours"]) for n in sizes], "o-",
            label=f"session prespawn ({args.concurrency} at once)")
    ax.set_xlabel("learners")
    ax.set_ylabel("seconds until all are ready")
    ax.legend()
    fig.tight_layout()
    out = Path(__file__).parent / "results" / "session.png"
    out.parent.mkdir(exist_ok=True)
    fig.savefig(out, dpi=120)
    print(f"plot: {out}")


if __name__ == "__main__":
    main()
