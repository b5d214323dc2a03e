"""A clean stop: SIGTERM on the hub as `make up` runs it ends the hub, its proxy and its services
within 5 s, whether the FLARE sites run or not; `workbench down` stops everything and keeps all data.

The stack here is a deployment of its own (state, ports, FLARE server and sites), started by the
same script `make up` ends with, so the session's federation and hub are left alone.
"""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import requests
import yaml

from imaging_workbench.clock import utcnow
from imaging_workbench.context import WorkbenchContext
from imaging_workbench.deployment import validate_settings, with_defaults
from imaging_workbench.stack import STACK_ENV, STACK_LABEL, marked_processes, stack_id

from ..waiting import free_port, wait_for

REPO = Path(__file__).parents[2]
WORKBENCH = [sys.executable, "-m", "imaging_workbench.cli"]
SERVICES = ("imaging_workbench.hub.access_service", "jupyterhub_idle_culler", "imaging_workbench.federation.hub.service")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A deployment's settings and their file, its FLARE server and sites started, and one job the
    federation service will follow (so the service holds a FLARE session when it is stopped)."""
    from imaging_workbench.federation import embedded
    from imaging_workbench.federation.hub.job_store import FederatedJob
    from imaging_workbench.federation.settings import federation_settings

    workdir = tmp_path_factory.mktemp("stack")
    settings = validate_settings(with_defaults({
        "state_dir": str(workdir / "state"),
        "hub": {"port": free_port(), "api_ip": "127.0.0.1", "api_port": free_port(), "proxy_api_port": free_port(),
                "service_port": free_port(), "portal_port": free_port()},  # every port its own, the portal's too
        "federation": {"fl_port": free_port(), "admin_port": free_port()},
    }))
    settings_file = workdir / "workbench.yaml"
    settings_file.write_text(yaml.safe_dump(settings))
    ctx = WorkbenchContext(settings, actor="steward")
    with ctx.session() as s:
        s.add(FederatedJob(id="stuck", user="alice", algorithm="cohort-statistics", version="1.0", params={},
                           datasets=[], site_datasets={}, flare_job_id="no-such-flare-job", status="running",
                           submitted_at=utcnow(), deadline=utcnow() + timedelta(days=1)))
    federation = federation_settings(settings)
    embedded.up(federation, {}, timeout=120)
    try:
        yield {"settings": settings, "file": settings_file, "federation": federation, "ctx": ctx, "workdir": workdir}
    finally:
        embedded.down(federation)


def stack_processes(settings) -> list:
    return marked_processes({STACK_ENV: stack_id(settings)})


def start_hub(stack) -> subprocess.Popen:
    """`scripts/run_hub.sh`, the last step of `make up`, up with its three services."""
    env = {**os.environ, "WORKBENCH_SETTINGS": str(stack["file"])}
    log = open(stack["workdir"] / "run_hub.log", "ab")
    proc = subprocess.Popen(["bash", "scripts/run_hub.sh"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    log.close()
    port = stack["settings"]["hub"]["port"]
    service = f"http://127.0.0.1:{stack['settings']['hub']['service_port']}/services/workbench-federation/api/health"

    def up():
        if proc.poll() is not None:
            raise AssertionError(f"run_hub.sh exited:\n{(stack['workdir'] / 'run_hub.log').read_text()[-3000:]}")
        try:
            ready = requests.get(f"http://127.0.0.1:{port}/hub/api/", timeout=2).ok and requests.get(service, timeout=2).ok
        except requests.RequestException:
            return False
        commands = " ".join(p.command for p in stack_processes(stack["settings"]))
        return ready and all(s in commands for s in SERVICES) and "configurable-http-proxy" in commands

    wait_for(up, 90, what="the hub, its proxy and its three services")
    return proc


def stops_within(stack, proc, seconds: float) -> float:
    """SIGTERM `make up`'s hub script; return how long until nothing of the stack runs."""
    before = stack_processes(stack["settings"])
    started = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)
    try:
        wait_for(lambda: not stack_processes(stack["settings"]) and proc.poll() is not None, seconds, interval=0.1)
    except TimeoutError:
        log = (stack["workdir"] / "run_hub.log").read_text()[-2000:]
        raise AssertionError(f"{seconds} s after SIGTERM, run_hub.sh {'runs' if proc.poll() is None else 'ended'} "
                             f"and these still run: {stack_processes(stack['settings'])} "
                             f"(were: {[p.command[:60] for p in before]}); its log ends:\n{log}") from None
    return time.monotonic() - started


def test_sigterm_stops_hub_proxy_and_services_within_5_s_with_the_sites_up_then_down(stack):
    from imaging_workbench.federation import embedded

    proc = start_hub(stack)
    took_up = stops_within(stack, proc, 5)
    assert all(row["running"] for row in embedded.status(stack["federation"]).values()), "the sites must keep running"

    embedded.down(stack["federation"])
    proc = start_hub(stack)
    time.sleep(2)  # the service is now retrying its FLARE session for the job it follows
    took_down = stops_within(stack, proc, 5)
    print(f"hub, proxy and services stopped in {took_up:.1f} s (FLARE up) and {took_down:.1f} s (FLARE down)")


def test_workbench_down_stops_everything_keeps_the_data_and_a_second_run_is_a_no_op(stack, tmp_path):
    import docker as docker_sdk

    from imaging_workbench.catalog import audit, datasets
    from imaging_workbench.federation import embedded

    data = tmp_path / "cohort"
    data.mkdir()
    (data / "scan.dcm").write_bytes(b"DICM" * 64)
    with stack["ctx"].session() as s:
        datasets.add_dataset(s, "steward", "kept-ct", data, site="site-1")
    embedded.up(stack["federation"], {}, timeout=120)
    proc = start_hub(stack)
    docker = docker_sdk.from_env()
    sandbox = docker.containers.run("workbench-singleuser:latest", ["sleep", "300"], detach=True, network_mode="none",
                                    name=f"wbtest-down-{os.getpid()}",
                                    labels={STACK_LABEL: stack_id(stack["settings"])})
    try:
        first = subprocess.run([*WORKBENCH, "--settings", str(stack["file"]), "down"], capture_output=True, text=True,
                               timeout=120)
        assert first.returncode == 0, first.stderr
        assert "stopped hub" in first.stdout and f"stopped sandbox {sandbox.name}" in first.stdout
        assert all(f"stopped FLARE {name}" in first.stdout for name in ("server", *stack["federation"].sites))
        wait_for(lambda: proc.poll() is not None, 10, what="run_hub.sh to end with its hub")
        assert not stack_processes(stack["settings"])
        assert not any(row["running"] for row in embedded.status(stack["federation"]).values())
        assert not docker.containers.list(all=True, filters={"id": sandbox.id})

        second = subprocess.run([*WORKBENCH, "--settings", str(stack["file"]), "down"], capture_output=True,
                                text=True, timeout=60)
        assert second.returncode == 0 and "nothing was running" in second.stdout, second.stdout
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        for leftover in docker.containers.list(all=True, filters={"id": sandbox.id}):
            leftover.remove(force=True)
    with stack["ctx"].session() as s:
        assert [d.id for d in datasets.list_datasets(s)] == ["kept-ct"]
        assert audit.verify_chain(s) == []
    assert (data / "scan.dcm").read_bytes() == b"DICM" * 64
    assert stack["federation"].kit("site-1").is_dir()
