"""The batch container: started with the user's mount plan (only the dataset of the run,
read-only; the user's home), the profile's limits, on the sandbox network with its default route
removed, and the spawner's hardening (read-only root, no capabilities, no-new-privileges, uid 1000,
no resolver, no IPv6). Its outcome is read from its log, never from the user's home on the host."""

import hashlib
import json

from docker.errors import NotFound

from ..hub.mount_plan import HOME, MountPlan
from ..hub.network import drop_default_route
from ..stack import STACK_LABEL, stack_id
from .protocol import LABEL

SANDBOX_USER = "1000:100"
TMP_SIZE = "1g"


def container_name(settings: dict, run_id: int) -> str:
    """Unique per deployment: two deployments (or test runs) on one host number their runs alike."""
    return f"wb-batch-{hashlib.sha1(stack_id(settings).encode()).hexdigest()[:8]}-{run_id}"


def host_config(plan: MountPlan, pids_limit: int) -> dict:
    limits = plan.limits
    config = {
        "read_only": True,
        "tmpfs": {"/tmp": f"rw,nosuid,nodev,size={TMP_SIZE},mode=1777", "/run": "rw,nosuid,nodev,size=16m"},
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "pids_limit": pids_limit,
        "mem_limit": limits["mem_limit"],
        "memswap_limit": limits["mem_limit"],
        "nano_cpus": int(limits["cpu_limit"] * 1e9),
        "dns": ["127.0.0.1"],
        "dns_opt": ["timeout:1", "attempts:1"],  # no resolver answers: a lookup fails in a second, not ten
        "sysctls": {"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1"},
    }
    if limits["gpus"]:
        import docker

        config["device_requests"] = [docker.types.DeviceRequest(count=limits["gpus"], capabilities=[["gpu"]])]
    return config


def start(client, settings: dict, run_id: int, name: str, image: str, plan: MountPlan, spec: dict):
    """Start the runner (in_sandbox.py) and close its network; a start that cannot close it is removed.

    Raises:
        WorkbenchError: the default route could not be removed (from drop_default_route).
    """
    box = settings["sandbox"]
    volumes = {source: target if isinstance(target, dict) else {"bind": target, "mode": "rw"}
               for source, target in plan.docker_volumes().items()}
    container = client.containers.run(
        image, ["python3", "-m", "imaging_workbench.batch.in_sandbox", json.dumps(spec)], name=name, detach=True,
        user=SANDBOX_USER, working_dir=HOME, network=box["network"], volumes=volumes,
        environment={"WORKBENCH_DATASETS": ",".join(sorted(plan.datasets)), "WORKBENCH_DATA_ROOT": "/data",
                     "HOME": HOME, "PYTHONUNBUFFERED": "1"},
        labels={LABEL: str(run_id), STACK_LABEL: stack_id(settings)}, **host_config(plan, box["pids_limit"]))
    try:
        container.reload()
        drop_default_route(container.attrs["State"]["Pid"], name)
    except Exception:
        container.remove(force=True)
        raise
    return container


def outcome(client, name: str) -> tuple[str, str, str] | None:
    """(status, stdout, stderr) of the container `name`: status "running" or "exited" (None: gone)."""
    try:
        container = client.containers.get(name)
    except NotFound:
        return None
    status = "running" if container.status in ("created", "running", "restarting") else "exited"
    out = container.logs(stdout=True, stderr=False).decode(errors="replace")
    err = container.logs(stdout=False, stderr=True).decode(errors="replace")
    return status, out, err


def remove(client, name: str) -> None:
    try:
        client.containers.get(name).remove(force=True)
    except NotFound:
        pass
