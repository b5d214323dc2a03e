"""An operator's notebook runs top to bottom before it is published as a dashboard, as its
dashboard will: in a throwaway sandbox of its owner, with the dashboard's datasets read-only where
its server will mount them, the home in memory, the sandbox's limits and hardening, and no network
at all. Never on the host, which runs as root and sees every dataset."""

import tempfile
import time
from pathlib import Path

from docker.errors import APIError, ImageNotFound

from .batch import container as batch_box
from .errors import WorkbenchError
from .hub.mount_plan import HOME, plan_server
from .hub.network import docker_client
from .stack import STACK_LABEL, stack_id

NOTEBOOK_DIR = "/opt/workbench/check"
HOME_TMPFS = "rw,nosuid,nodev,size=64m,uid=1000,gid=100,mode=0700"
TIMEOUT_S = 900


def first_failing_cell(ctx, owner: str, datasets: list[str], notebook: str, data: bytes) -> str | None:
    """None when every cell of the notebook (`notebook`, its bytes `data`) ran in `owner`'s
    sandbox on `datasets`; else which cell failed and how.

    Raises:
        WorkbenchError: the sandbox could not run it (no image, docker refused, past TIMEOUT_S).
    """
    settings, sandbox = ctx.settings, ctx.settings["sandbox"]
    with ctx.session() as s:
        plan = plan_server(s, owner, "", "dashboard", profile=sandbox["profiles"][sandbox["default_profile"]],
                           home_volume="", only=datasets, state_dir=settings["state_dir"])
    config = batch_box.host_config(plan, sandbox["pids_limit"])
    for key in ("dns", "dns_opt", "sysctls"):  # settings of a network it does not have
        config.pop(key)
    config["tmpfs"][HOME] = HOME_TMPFS
    client = docker_client()
    with tempfile.TemporaryDirectory(prefix="workbench-dashboard-") as folder:
        Path(folder).chmod(0o755)  # read by the sandbox's uid 1000
        (Path(folder) / notebook).write_bytes(data)
        (Path(folder) / notebook).chmod(0o444)
        volumes = {path: {"bind": target, "mode": "ro"} for target, path in plan.read_only_paths.items()}
        volumes[folder] = {"bind": NOTEBOOK_DIR, "mode": "ro"}
        try:
            client.images.get(sandbox["image"])  # docker-py's run would pull a missing image from a registry
            box = client.containers.run(
                sandbox["image"], ["python3", "-m", "imaging_workbench.dashboards", f"{NOTEBOOK_DIR}/{notebook}"],
                detach=True, user=batch_box.SANDBOX_USER, working_dir=HOME, network_mode="none", volumes=volumes,
                environment={"WORKBENCH_DATASETS": ",".join(sorted(plan.datasets)), "WORKBENCH_DATA_ROOT": "/data",
                             "HOME": HOME, "PYTHONUNBUFFERED": "1"},
                labels={STACK_LABEL: stack_id(settings)}, **config)
        except ImageNotFound:
            raise WorkbenchError(f"the sandbox image {sandbox['image']} is not on this host",
                                 "build it: bash scripts/ensure_images.sh (or fix sandbox.image in the site file)") from None
        except APIError as e:
            raise WorkbenchError(f"dockerd would not start {owner}'s sandbox for {notebook}: {e.explanation or e}",
                                 "see dockerd's log") from None
        started = time.monotonic()
        try:
            try:
                code = box.wait(timeout=TIMEOUT_S)["StatusCode"]
            except Exception as e:  # docker-py reports its timeout as ReadTimeout or ConnectionError
                if time.monotonic() - started < TIMEOUT_S:
                    raise WorkbenchError(f"dockerd lost the run of {notebook} in {owner}'s sandbox ({e})",
                                         "see dockerd's log, then publish again") from None
                raise WorkbenchError(f"{notebook} did not finish in {TIMEOUT_S} s in {owner}'s sandbox",
                                     "make it faster: a dashboard runs it at every page view") from None
            out = box.logs(stdout=True, stderr=False).decode(errors="replace").strip().splitlines()
            err = box.logs(stdout=False, stderr=True).decode(errors="replace").strip()
        finally:
            box.remove(force=True)
    if code == 0:
        return None
    if code == 1 and out:
        return out[-1]
    raise WorkbenchError(f"{owner}'s sandbox could not run {notebook} (exit {code}): {err[-500:]}",
                         "see dockerd's log; a memory limit ends a run with exit 137")
