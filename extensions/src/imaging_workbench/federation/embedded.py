"""The embedded federation: one FLARE server and the sites as local processes.

Each participant runs from its provisioned kit under `<workdir>/kits/<name>`, in its own
process group (so `down` stops it with its job processes), logging to `<workdir>/logs/`.
"""

import os
import signal
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


def up(settings: FederationSettings, site_datasets: dict[str, dict[str, str]], timeout: float = 120) -> dict:
    """Provision if needed, write each site's dataset list, start what is not running, and wait
    until every site is connected. Returns `status()`."""
    from .hub.flare_session import FlareAdmin

    ensure_embedded_kits(settings)
    for name in settings.sites:
        write_site_datasets(settings.kit(name) / "local", site_datasets.get(name, {}))
    start_participant(settings, "server")
    for name in settings.sites:
        start_participant(settings, name)
    admin = FlareAdmin(settings)
    deadline = time.monotonic() + timeout
    connected = []
    while time.monotonic() < deadline:
        for name in ("server", *settings.sites):
            if not pid_of(settings, name):
                raise WorkbenchError(f"FLARE participant {name} exited while starting",
                                     f"see its log: {log_file(settings, name)}")
        try:
            connected = admin.connected_sites(timeout=5)
        except WorkbenchError:
            connected = []
        if set(settings.sites) <= set(connected):
            return status(settings, connected)
        time.sleep(1)
    raise WorkbenchError(f"sites not connected after {timeout:.0f} s: {sorted(set(settings.sites) - set(connected))}",
                         f"see the logs in {settings.workdir / 'logs'}")


def down(settings: FederationSettings) -> list[str]:
    """Stop the sites, then the server; returns the names that were running."""
    stopped = [name for name in settings.sites if stop_participant(settings, name)]
    if stop_participant(settings, "server"):
        stopped.append("server")
    return stopped


def status(settings: FederationSettings, connected: list | None = None) -> dict:
    """{participant: {pid, running, connected, allow_list, allow_list_matches, policy}} for the server
    and each site: `allow_list` is the size of its class allow-list, `allow_list_matches` whether it
    is exactly the workbench's, `policy` 'ok' or what is wrong with the site's policy file."""
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
                      **allow_list_status(settings.kit(name) / "local", "server" if name == "server" else "client"),
                      "policy": "" if name == "server" else policy_status(settings.kit(name) / "local")}
    return rows


def policy_status(local_dir: Path) -> str:
    """'ok', or the site policy file's problem with its line (the site refuses every job until fixed)."""
    from .site.policy_file import load_site_policy

    try:
        load_site_policy(local_dir)
    except WorkbenchError as e:
        return e.message
    return "ok"
