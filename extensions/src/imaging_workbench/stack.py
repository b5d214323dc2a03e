"""The running workbench as one thing to stop: the hub with its proxy and services, the sandbox
containers and the FLARE federation of one deployment.

Everything a deployment starts carries its mark, `workbench:<state dir>`: the environment
variable WORKBENCH_STACK on the hub's proxy and services (set by the hub configuration), the
label org.workbench.stack on its sandbox containers. `down` stops by that mark and by pid files,
never by a program's name, so a second deployment or a test run on the same machine is left alone.
"""

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

STACK_ENV = "WORKBENCH_STACK"
STACK_LABEL = "org.workbench.stack"
HUB_PID_FILE = "jupyterhub.pid"


def stack_id(settings: dict) -> str:
    """The mark of one deployment's processes and containers."""
    return f"workbench:{Path(settings['state_dir']).resolve()}"


@dataclass(frozen=True)
class Proc:
    pid: int
    command: str


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, exited but not reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _ancestors(pid: int) -> set[int]:
    """`pid` and every process above it."""
    chain = set()
    while pid > 1 and pid not in chain:
        chain.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    return chain


def marked_processes(env: dict[str, str] | None = None, env_prefix: dict[str, str] | None = None) -> list[Proc]:
    """Live processes whose environment holds every `env` pair exactly, or a value starting with
    an `env_prefix` value (any one of them), other than this process and those above it (a
    script of the stack that runs this one carries the mark too)."""
    found = []
    mine = _ancestors(os.getpid())
    for entry in Path("/proc").glob("[0-9]*"):
        pid = int(entry.name)
        if pid in mine or not alive(pid):
            continue
        environ = _environ(pid)
        exact = bool(env) and all(environ.get(k) == v for k, v in env.items())
        prefixed = any(environ.get(k, "\0").startswith(v) for k, v in (env_prefix or {}).items())
        if exact or prefixed:
            found.append(Proc(pid, _command(pid)))
    return sorted(found, key=lambda p: p.pid)


def terminate(pids: list[int], timeout: float = 5.0) -> list[int]:
    """SIGTERM each pid, SIGKILL what still runs after `timeout` s; returns the pids that ran."""
    ran = [pid for pid in pids if alive(pid)]
    for pid in ran:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(pid) for pid in ran):
        _reap(ran)
        time.sleep(0.1)
    for pid in ran:
        if alive(pid):
            _signal(pid, signal.SIGKILL)
    return ran


def _signal(pid: int, sig) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _reap(pids: list[int]) -> None:
    """Collect those of `pids` that are this process's own children and have exited."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def hub_pid(settings: dict) -> int | None:
    """The pid of this deployment's hub, from the pid file the hub writes, if it runs."""
    try:
        pid = int((Path(settings["state_dir"]) / HUB_PID_FILE).read_text())
    except (OSError, ValueError):
        return None
    return pid if alive(pid) and "jupyterhub" in _command(pid) else None


def stop_hub(settings: dict, timeout: float = 10.0) -> list[str]:
    """Stop the hub (it stops its proxy and services), then anything of the stack's still running
    (left by a hub that was killed hard). Returns what was stopped, one line each."""
    stopped = []
    pid = hub_pid(settings)
    if pid:
        terminate([pid], timeout)
        stopped.append(f"hub (pid {pid})")
    for proc in marked_processes({STACK_ENV: stack_id(settings)}):
        if terminate([proc.pid]):
            stopped.append(f"{proc.command[:80]} (pid {proc.pid})")
    return stopped


def stop_sandboxes(settings: dict, docker=None) -> list[str]:
    """Stop and remove this deployment's sandbox containers; home volumes stay."""
    from .errors import WorkbenchError
    from .hub.network import docker_client

    try:
        docker = docker or docker_client()
    except WorkbenchError:
        return []  # no dockerd, so no sandbox runs
    stopped = []
    for container in docker.containers.list(all=True, filters={"label": f"{STACK_LABEL}={stack_id(settings)}"}):
        container.remove(force=True)
        stopped.append(f"sandbox {container.name}")
    return stopped


def down(settings: dict) -> list[str]:
    """Stop everything `make up` started for the deployment `settings` describe: the hub with its
    proxy and services, the sandboxes, the FLARE server and sites. Keeps every file, database and
    volume; a second call stops nothing. Returns what was stopped, one line each."""
    from .federation import embedded
    from .federation.settings import federation_settings

    stopped = stop_hub(settings)
    stopped += stop_sandboxes(settings)
    stopped += [f"FLARE {name}" for name in embedded.down(federation_settings(settings))]
    return stopped
