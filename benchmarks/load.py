"""A hundred users at once: N demo users log in through the login page and start their servers
together, each on its own thread with its own HTTP session, then reach their server through the
proxy and the federation service from inside their sandbox (tests/docker/crowd.py: the journey).

    python benchmarks/load.py --users 100 [--profile small] [--spawn-limit N] [--retry-after MIN MAX]
                              [--memory-floor 3]

A fresh deployment in a scratch folder on a network of its own (wbload-sandbox); each user holds a
small dataset of their own at site-1, and the federation service must list exactly it. Prints the
time until all are ready, p50/p95 per user, the starts that failed (with reasons; each is tried
once more) and the 429s of the hub's concurrent spawn limit, the hub API's latency (GET
/hub/api/users/<name> every 0.5 s) under that load against the same probe on the idle hub just
before (the baseline, same run, same hub), and each idle sandbox's memory (its cgroup's usage less
inactive page cache, as `docker stats` counts it) after --settle seconds. Before each start the
host's MemAvailable must stay above --memory-floor GiB: users past that are not started, and the
number that fit is reported. Everything it made is removed at the end, also after Ctrl-C.
Writes benchmarks/results/load-<N>.json and load-<N>.png. Needs root, dockerd and the images.
"""

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).parents[1]))

from imaging_workbench.catalog import accounts, datasets, grants  # noqa: E402
from imaging_workbench.context import WorkbenchContext  # noqa: E402
from imaging_workbench.deployment import validate_settings, with_defaults  # noqa: E402
from imaging_workbench.hub.network import (  # noqa: E402
    docker_client, ensure_firewall, ensure_network, sandbox_open_ports,
)
from tests.docker.crowd import ApiProbe, percentile, visit  # noqa: E402
from tests.docker.sandboxes import Box, remove_box  # noqa: E402
from tests.hubtools import HubProcess  # noqa: E402
from tests.waiting import wait_for  # noqa: E402

BOX = Box(network="wbload-sandbox", subnet="172.29.246.0/24", prefix="wbload")
RESULTS = Path(__file__).parent / "results"
PROFILES = {"small": {"display": "Small: 1 CPU, 512 MB", "cpu": 1, "memory": "512M"},
            "standard": {"display": "Standard: 1 CPU, 1 GB", "cpu": 1, "memory": "1G"}}
GIB = 1024 ** 3


def mem_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def cgroup_dir(container, v1_controller: str) -> Path:
    """The container's cgroup folder: v1 with the cgroupfs driver, else v2 (systemd or cgroupfs driver)."""
    for folder in (Path("/sys/fs/cgroup") / v1_controller / "docker" / container.id,
                   Path("/sys/fs/cgroup/system.slice") / f"docker-{container.id}.scope",
                   Path("/sys/fs/cgroup/docker") / container.id):
        if folder.is_dir():
            return folder
    raise RuntimeError(f"no {v1_controller} cgroup found for container {container.name}")


def container_memory(container) -> int:
    """Bytes a container uses: its cgroup's usage less inactive file cache (what `docker stats` shows)."""
    folder = cgroup_dir(container, "memory")
    usage = folder / "memory.usage_in_bytes"
    usage = usage if usage.exists() else folder / "memory.current"
    stat = dict(line.split() for line in (folder / "memory.stat").read_text().splitlines())
    return int(usage.read_text()) - int(stat.get("total_inactive_file", stat.get("inactive_file", 0)))


def container_cpu(container) -> float:
    """CPU seconds a container has used since it started."""
    folder = cgroup_dir(container, "cpuacct")
    if (folder / "cpuacct.usage").exists():
        return int((folder / "cpuacct.usage").read_text()) / 1e9
    return int(dict(line.split() for line in (folder / "cpu.stat").read_text().splitlines())["usage_usec"]) / 1e6


def deploy(workdir: Path, users: list[str], spawn_limit: int | None, start_timeout: int,
           retry_after: list[int] | None) -> HubProcess:
    """The scratch deployment: the users, a one-file dataset of each user's own at site-1, the hub."""
    settings = validate_settings(with_defaults({
        "state_dir": str(workdir / "state"),
        "sandbox": {"network": BOX.network, "subnet": BOX.subnet, "default_profile": "small", "profiles": PROFILES,
                    "start_timeout": start_timeout,
                    **({"concurrent_spawns": spawn_limit} if spawn_limit is not None else {})}}))
    with WorkbenchContext(settings, actor="benchmark").session() as s:
        for user in users:
            accounts.add_account(s, "benchmark", user, f"{user}-password")
            folder = workdir / "datasets" / f"{user}-ct"
            folder.mkdir(parents=True)
            (folder / "scan-001.dcm.txt").write_text(f"pixels of {user}'s dataset\n")
            folder.chmod(0o755)
            datasets.add_dataset(s, "benchmark", f"{user}-ct", folder, site="site-1")
            grants.grant_access(s, "benchmark", user, f"{user}-ct", 1, "load benchmark")
    retry = f"c.JupyterHub.spawn_throttle_retry_range = {tuple(retry_after)}\n" if retry_after else ""
    return HubProcess(workdir, settings, api_ip=BOX.gateway, extra_config=BOX.spawner_config() + retry)


def run_crowd(hub, docker, users: list[str], profile: str, timeout: float, floor: int) -> tuple[list, float]:
    """Every user's journey at once; the visits and the seconds until the last one ended."""
    memory_lock = threading.Lock()

    def may_spawn():
        with memory_lock:
            available = mem_available()
            return True if available >= floor else f"MemAvailable {available / GIB:.1f} GiB is below the floor"

    start = time.monotonic()
    with ThreadPoolExecutor(len(users)) as pool:
        futures = [pool.submit(visit, hub, user, f"{user}-password", profile, docker, BOX.container(user), timeout,
                               may_spawn) for user in users]
        visits = [f.result() for f in tqdm(as_completed(futures), total=len(users), desc="users ready", unit="user")]
    return sorted(visits, key=lambda v: v.user), time.monotonic() - start


def stop_all(hub, users: list[str], timeout: float = 300) -> float:
    start = time.monotonic()
    for user in users:
        hub.api("DELETE", f"/users/{user}/server")

    def running():
        return [u for u in users if "" in (hub.api("GET", f"/users/{u}").json().get("servers") or {})]

    wait_for(lambda: not running(), timeout, interval=1, what="every server to stop")
    return time.monotonic() - start


def measure(args) -> dict:
    docker = docker_client()
    users = [f"load{i:03d}" for i in range(args.users)]
    result = {"users": args.users, "profile": args.profile, "spawn_limit": args.spawn_limit,
              "retry_after": args.retry_after,
              "host_mem_available_gib": {"before": mem_available() / GIB}}
    with tempfile.TemporaryDirectory() as tmp:
        hub = deploy(Path(tmp), users, args.spawn_limit, args.start_timeout, args.retry_after)
        probe = None
        try:
            ensure_network(docker, BOX.network, BOX.subnet)
            ensure_firewall(BOX.network, BOX.subnet, sandbox_open_ports(hub.settings))
            hub.start()
            hub.api("POST", f"/users/{users[0]}").raise_for_status()  # the probe's subject
            probe = ApiProbe(hub, users[0]).start("idle")
            time.sleep(args.idle)  # the idle baseline
            probe.mark("load")
            visits, crowd_s = run_crowd(hub, docker, users, args.profile, args.timeout, int(args.memory_floor * GIB))
            probe.mark("after")
            ready = [v for v in visits if v.ok]
            result.update(visits=[{k: v for k, v in vars(v).items() if k != "http"} for v in visits],
                          crowd_s=crowd_s, ready=len(ready))
            time.sleep(args.settle)  # idle servers: their start's page cache and imports settle
            containers = [docker.containers.get(BOX.container(v.user)) for v in ready]
            result["sandbox_mem_mib"] = [container_memory(c) / 2 ** 20 for c in containers]
            result["sandbox_cpu_s"] = [container_cpu(c) for c in containers]  # its start, then idling
            result["host_mem_available_gib"]["loaded"] = mem_available() / GIB
            result["stop_s"] = stop_all(hub, users)
            result["host_mem_available_gib"]["after"] = mem_available() / GIB
        finally:
            if probe:
                probe.stop()
                result["api_latency_s"], result["api_errors"] = probe.samples, probe.errors
            try:
                hub.stop()
            finally:
                remove_box(docker, BOX)
        result["left_behind"] = [c.name for c in docker.containers.list(all=True, filters={"name": f"{BOX.prefix}-"})]
    return result


def report(result: dict) -> None:
    visits = result["visits"]
    ready_s = [v["ready_s"] for v in visits if v["error"] is None]
    errors = [v for v in visits if v["error"]]
    failures = [(v["user"], f) for v in visits for f in v["failures"]]
    n = result["users"]
    print(f"{result['ready']}/{n} users ready with their server, the server's /api/status and the federation "
          f"service answering; all ended in {result['crowd_s']:.1f} s")
    if ready_s:
        print(f"time to ready per user: p50 {percentile(ready_s, 50):.1f} s, p95 {percentile(ready_s, 95):.1f} s, "
              f"max {max(ready_s):.1f} s; throttled (429, waited out) {sum(v['throttled'] for v in visits)} times")
    print(f"errors: {len(errors)}; failed starts retried: {len(failures)}")
    for user, reason in failures:
        print(f"  failed start of {user}: {reason[:200]}")
    for v in errors:
        print(f"  {v['user']}: {v['error'][:300]}")
    latency = result.get("api_latency_s", {})
    idle, load = latency.get("idle", []), latency.get("load", [])
    if idle and load:
        i50, i95, l50, l95 = (percentile(idle, 50), percentile(idle, 95), percentile(load, 50), percentile(load, 95))
        print(f"hub API GET /users/<name>: idle p50 {i50 * 1000:.0f} ms p95 {i95 * 1000:.0f} ms ({len(idle)} samples), "
              f"under load p50 {l50 * 1000:.0f} ms p95 {l95 * 1000:.0f} ms ({len(load)}); "
              f"ratio load/idle p95 {l95 / i95:.1f}")
    mem = result.get("sandbox_mem_mib", [])
    if mem:
        host = result["host_mem_available_gib"]
        per_host = (host["before"] - host["loaded"]) * 1024 / len(mem)
        print(f"idle sandbox memory ({result['profile']} profile, {len(mem)} sandboxes): "
              f"median {statistics.median(mem):.0f} MiB, max {max(mem):.0f} MiB; "
              f"host MemAvailable {host['before']:.1f} -> {host['loaded']:.1f} GiB "
              f"({per_host:.0f} MiB per sandbox, hub and proxy included)")
    if result.get("sandbox_cpu_s"):
        print(f"CPU per sandbox from its start to now: median {statistics.median(result['sandbox_cpu_s']):.1f} s")
    print(f"left behind: {result['left_behind'] or 'nothing'}")


def plot(result: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(13, 3.8))
    ready_s = sorted(v["ready_s"] for v in result["visits"] if v["error"] is None)
    left.plot(ready_s, [(i + 1) / result["users"] for i in range(len(ready_s))], drawstyle="steps-post")
    left.set_xlabel("seconds from asking to ready")
    left.set_ylabel("share of users ready")
    left.set_title(f"{result['users']} users at once")
    latency = result.get("api_latency_s", {})
    labels = [k for k in ("idle", "load") if latency.get(k)]
    middle.boxplot([[s * 1000 for s in latency[k]] for k in labels], tick_labels=labels)
    middle.set_ylabel("ms")
    middle.set_title("hub API GET /users/<name>")
    right.hist(result.get("sandbox_mem_mib", []), bins=20)
    right.set_xlabel("MiB per idle sandbox")
    right.set_title(f"memory ({result['profile']} profile)")
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="small")
    parser.add_argument("--spawn-limit", type=int, default=None,
                        help="the hub's concurrent spawn limit (default: the deployment's sandbox.concurrent_spawns)")
    parser.add_argument("--retry-after", type=int, nargs=2, metavar=("MIN", "MAX"),
                        help="the Retry-After range of a 429 (spawn_throttle_retry_range; default: the deployment's)")
    parser.add_argument("--start-timeout", type=int, default=120, help="sandbox.start_timeout of the deployment")
    parser.add_argument("--timeout", type=float, default=900, help="seconds each user's journey may take")
    parser.add_argument("--memory-floor", type=float, default=3, help="GiB of MemAvailable kept free")
    parser.add_argument("--idle", type=float, default=10, help="seconds of the idle API baseline")
    parser.add_argument("--settle", type=float, default=20, help="seconds before idle sandboxes' memory is read")
    args = parser.parse_args()
    result = measure(args)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"load-{args.users}.json"
    out.write_text(json.dumps(result, indent=1))
    report(result)
    plot(result, out.with_suffix(".png"))
    print(f"results: {out}, plot: {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
