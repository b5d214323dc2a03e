"""The embedded federation: one FLARE server and the sites as local processes.

Each participant runs from its provisioned kit under `<workdir>/kits/<name>`, in its own
process group (so `down` stops it with its job processes), logging to `<workdir>/logs/`.
"""

import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from ..errors import WorkbenchError
from ..private_state import PRIVATE_DIR, PRIVATE_UMASK, open_private
from ..process_tree import descendants
from .protocol.allowlist import allow_list_status
from .provision import ensure_embedded_kits
from .settings import FederationSettings
from .site.data import write_site_datasets

SERVER_MODULE = "nvflare.private.fed.app.server.server_train"
CLIENT_MODULE = "nvflare.private.fed.app.client.client_train"


def _pid_file(settings: FederationSettings, name: str) -> Path:
    return settings.workdir / "run" / f"{name}.pid"


def log_file(settings: FederationSettings, name: str) -> Path:
    return settings.workdir / "logs" / f"{name}.log"


def pid_of(settings: FederationSettings, name: str) -> int | None:
    """The pid of a running participant, or None."""
    path = _pid_file(settings, name)
    try:
        pid = int(path.read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    try:  # a zombie (exited, not yet reaped) counts as stopped
        if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
            return None
    except OSError:
        pass
    return pid


def _command(settings: FederationSettings, name: str) -> list[str]:
    kit = settings.kit(name)
    if name == "server":
        return [sys.executable, "-u", "-m", SERVER_MODULE, "-m", str(kit), "-s", "fed_server.json",
                "--set", "secure_train=true", "config_folder=config", "org=workbench"]
    return [sys.executable, "-u", "-m", CLIENT_MODULE, "-m", str(kit), "-s", "fed_client.json",
            "--set", "secure_train=true", f"uid={name}", f"org={name.replace('-', '_')}", "config_folder=config"]


def start_participant(settings: FederationSettings, name: str) -> int:
    """Start one participant unless it runs; returns its pid."""
    pid = pid_of(settings, name)
    if pid:
        return pid
    for sub in ("run", "logs"):
        (settings.workdir / sub).mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    log = open_private(log_file(settings, name), os.O_WRONLY | os.O_APPEND)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # The umask keeps what the participant writes (job folders, snapshots, results) to its owner.
    proc = subprocess.Popen(_command(settings, name), cwd=settings.kit(name), stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True, env=env, umask=PRIVATE_UMASK)
    os.close(log)
    with os.fdopen(open_private(_pid_file(settings, name)), "w") as f:
        f.write(str(proc.pid))
    return proc.pid


def _kill_all(pids: list[int], sig) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def stop_participant(settings: FederationSettings, name: str, timeout: float = 15) -> bool:
    """Stop one participant and its job processes (SIGTERM, then SIGKILL); True if it ran."""
    pid = pid_of(settings, name)
    if not pid:
        _pid_file(settings, name).unlink(missing_ok=True)
        return False
    jobs = descendants(pid)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + (timeout if sig == signal.SIGTERM else 5)
        while time.monotonic() < deadline and pid_of(settings, name):
            _reap(pid)
            time.sleep(0.2)
        if not pid_of(settings, name):
            break
    _kill_all(descendants(pid) + jobs, signal.SIGKILL)
    _pid_file(settings, name).unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def kill_site(settings: FederationSettings, name: str) -> None:
    """SIGKILL a site and its job processes at once (a crash, for fault drills)."""
    pid = pid_of(settings, name)
    if pid:
        _kill_all(descendants(pid), signal.SIGKILL)
        os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and pid_of(settings, name):
            _reap(pid)
            time.sleep(0.1)


def site_datasets_from_catalog(session, settings: FederationSettings) -> dict[str, dict[str, str]]:
    """{site: {dataset id: folder}} from the catalog's datasets whose `site` is a federation site."""
    from ..catalog.datasets import list_datasets

    out = {name: {} for name in settings.sites}
    for dataset in list_datasets(session):
        if dataset.site in out:
            out[dataset.site][dataset.id] = dataset.host_path
    return out


def default_timeout(settings: FederationSettings) -> float:
    """Seconds `up` waits for the sites: 30 sites started at once on 2 cores took 36 s to register."""
    return 60 + 3 * len(settings.sites)


def up(settings: FederationSettings, site_datasets: dict[str, dict[str, str]], timeout: float | None = None,
       require_all: bool = True) -> dict:
    """Provision what is missing, write each site's dataset list, start what is not running, and wait
    (at most `timeout`, default `default_timeout`) until every site is connected. Returns `status()`.

    Every site starts at once (30 on 2 cores all registered within 36 s, 90 MB each: nothing to
    stagger). A site whose process exits, or that has not registered by the deadline, is left
    out: its row says so; with `require_all` it is an error naming it.
    """
    from .hub.flare_session import FlareAdmin

    ensure_embedded_kits(settings)
    for name in settings.sites:
        write_site_datasets(settings.kit(name) / "local", site_datasets.get(name, {}))
    start_participant(settings, "server")
    for name in settings.sites:
        start_participant(settings, name)
    admin = FlareAdmin(settings)
    deadline = time.monotonic() + (timeout or default_timeout(settings))
    connected = []
    while True:
        if not pid_of(settings, "server"):
            raise WorkbenchError("the FLARE server exited while starting",
                                 f"see its log: {log_file(settings, 'server')}")
        try:
            connected = admin.connected_sites(timeout=5)
        except WorkbenchError:
            connected = []
        waiting = [name for name in settings.sites if name not in connected and pid_of(settings, name)]
        if not waiting or time.monotonic() > deadline:
            break
        time.sleep(1)
    rows = status(settings, connected)
    missing = not_connected(rows)
    if require_all and missing:
        named = "; ".join(f"{site} ({why})" for site, why in missing.items())
        raise WorkbenchError(f"sites not connected after starting: {named}",
                             f"see their logs in {settings.workdir / 'logs'}")
    return rows


def not_connected(rows: dict) -> dict[str, str]:
    """{site: why} for each site of `status()` that is not connected: not running, or running
    without having registered with the server."""
    return {name: "running, not registered with the server" if row["running"] else "not running"
            for name, row in rows.items() if name != "server" and not row["connected"]}


def down(settings: FederationSettings) -> list[str]:
    """Stop the sites (also any left running by an `up` with more sites), then the server; returns
    the names that were running."""
    started = sorted(p.stem for p in (settings.workdir / "run").glob("*.pid") if p.stem != "server")
    stopped = [name for name in dict.fromkeys([*settings.sites, *started]) if stop_participant(settings, name)]
    if stop_participant(settings, "server"):
        stopped.append("server")
    return stopped


def status(settings: FederationSettings, connected: list | None = None) -> dict:
    """{participant: {pid, running, connected, rss_mb, allow_list, allow_list_matches, policy}} for the
    server and each site: `rss_mb` the resident memory of its process and its job processes,
    `allow_list` the size of its class allow-list, `allow_list_matches` whether it is exactly the
    workbench's, `policy` 'ok' or what is wrong with the site's policy file."""
    from .hub.flare_session import FlareAdmin

    if connected is None and pid_of(settings, "server"):
        try:
            connected = FlareAdmin(settings).connected_sites(timeout=5)
        except WorkbenchError:
            connected = []
    connected = connected or []
    rows = {}
    for name in ("server", *settings.sites):
        pid = pid_of(settings, name)
        rows[name] = {"pid": pid, "running": bool(pid),
                      "connected": bool(pid) and (name == "server" or name in connected),
                      "rss_mb": round(rss_mb(pid), 1) if pid else None,
                      **allow_list_status(settings.kit(name) / "local", "server" if name == "server" else "client"),
                      "policy": "" if name == "server" else policy_status(settings.kit(name) / "local")}
    return rows


def rss_mb(pid: int) -> float:
    """Resident memory of `pid` and every process below it (a site's job processes), in MiB; pages
    they share are counted once per process, as `ps` does."""
    kib = 0
    for p in (pid, *descendants(pid)):
        try:
            with open(f"/proc/{p}/status") as f:
                kib += next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
        except OSError:  # it ended meanwhile
            pass
    return kib / 1024


def site_memory(rows: dict) -> dict:
    """{'median_mb', 'max_mb', 'sites'} over the running sites of `status()` (None when none runs)."""
    values = [row["rss_mb"] for name, row in rows.items() if name != "server" and row["rss_mb"] is not None]
    if not values:
        return {"median_mb": None, "max_mb": None, "sites": 0}
    return {"median_mb": round(statistics.median(values), 1), "max_mb": max(values), "sites": len(values)}


def policy_status(local_dir: Path) -> str:
    """'ok', or the site policy file's problem with its line (the site refuses every job until fixed)."""
    from .site.policy_file import load_site_policy

    try:
        load_site_policy(local_dir)
    except WorkbenchError as e:
        return e.message
    return "ok"
