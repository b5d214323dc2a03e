"""A sandbox hub of a test module's own: its own network, subnet and name prefix, so that a module
that bends the walls (the red team) never shares containers, volumes or a firewall chain with the
session's `sandbox_hub` of conftest.py, nor with another run of it.

- `Box`: the names of one such hub (network, subnet, container and volume prefix).
- `own_sandbox_hub`: a context manager that starts the hub on its network with the firewall
  up, and at exit removes everything of the box (containers, volumes, capped-home images and
  their loop devices, DOCKER-USER rules naming its addresses, the firewall chain, the network),
  also after a failure.
- `add_people_and_data`, `remove_box`: the two halves of that, for conftest's own hub.
- `start_servers`, `exec_in`, `python_in`: start several users' servers at once; run a command
  or a Python script inside a container as a given user.
"""

import ipaddress
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from imaging_workbench.catalog import accounts, datasets, grants
from imaging_workbench.context import WorkbenchContext
from imaging_workbench.deployment import validate_settings, with_defaults
from imaging_workbench.hub.network import ensure_firewall, ensure_network, gateway, remove_firewall, sandbox_open_ports

from ..hubtools import HubProcess
from ..waiting import wait_for

# Each user with a password; alice and bob hold a grant on their own dataset, carol none.
USERS = ("alice", "bob", "carol")
DATASETS = (("lung-a", "alice"), ("liver-b", "bob"))


@dataclass(frozen=True)
class Box:
    network: str
    subnet: str
    prefix: str  # of containers ("<prefix>-<user>") and home volumes ("<prefix>-home-<user>")

    @property
    def gateway(self) -> str:
        return gateway(self.subnet)

    def container(self, user: str) -> str:
        return f"{self.prefix}-{user}"

    def home_volume(self, user: str) -> str:
        return f"{self.prefix}-home-{user}"

    def spawner_config(self) -> str:
        return (f'c.WorkbenchSpawner.prefix = "{self.prefix}"\n'
                f'c.WorkbenchSpawner.home_volume = "{self.prefix}-home-{{username}}"\n')


def _settings(workdir: Path, box: Box) -> dict:
    return validate_settings(with_defaults({
        "state_dir": str(workdir / "state"),
        "sandbox": {"network": box.network, "subnet": box.subnet, "revocation_interval": 5,
                    "default_profile": "standard",
                    "profiles": {"standard": {"display": "Standard", "cpu": 1, "memory": "1G"}}},
    }))


def add_people_and_data(ctx: WorkbenchContext, data: Path) -> None:
    with ctx.session() as s:
        for user in USERS:
            accounts.add_account(s, "steward", user, f"{user}-password-123")
        for dataset_id, owner in DATASETS:
            folder = data / dataset_id
            folder.mkdir(parents=True)
            (folder / "scan-001.dcm.txt").write_text(f"pixels of {dataset_id}\n")
            folder.chmod(0o755)
            datasets.add_dataset(s, "steward", dataset_id, folder, site="site-1")
            grants.grant_access(s, "steward", owner, dataset_id, 7, "sandbox tests")


@contextmanager
def own_sandbox_hub(workdir: Path, docker, box: Box, extra_config: str = "", images_dir: Path | None = None):
    """A real hub whose sandboxes live in `box`; everything of the box is removed at exit.

    `images_dir`: where the hub's spawner keeps capped-home images (set in `extra_config`); their
    loop devices are detached at exit.
    """
    settings = _settings(workdir, box)
    add_people_and_data(WorkbenchContext(settings, actor="steward"), workdir / "datasets")
    hub = HubProcess(workdir, settings, api_ip=box.gateway, extra_config=box.spawner_config() + extra_config)
    hub.ctx = WorkbenchContext(hub.settings, actor="steward")
    try:
        ensure_network(docker, box.network, box.subnet)
        ensure_firewall(box.network, box.subnet, sandbox_open_ports(hub.settings))
        yield hub.start()
    finally:
        try:
            hub.stop()
        finally:
            remove_box(docker, box, images_dir)


def remove_box(docker, box: Box, images_dir: Path | None = None) -> None:
    """Remove the box's containers, home volumes, capped-home images, firewall chain and network."""
    for container in docker.containers.list(all=True, filters={"name": f"{box.prefix}-"}):
        container.remove(force=True)
    for volume in docker.volumes.list(filters={"name": f"{box.prefix}-"}):
        volume.remove(force=True)
    for image in sorted(images_dir.glob("*.ext4*")) if images_dir and images_dir.is_dir() else ():
        attached = subprocess.run(["losetup", "--associated", str(image)], capture_output=True, text=True).stdout
        for line in attached.splitlines():
            subprocess.run(["losetup", "--detach", line.split(":", 1)[0]], check=False)
        image.unlink()
    remove_forwarding_rules(box)
    remove_firewall(box.network)
    for network in docker.networks.list(names=[box.network]):
        network.remove()


def remove_forwarding_rules(box: Box) -> None:
    """Rules a test left in docker's DOCKER-USER chain for an address of the box (after a kill)."""
    listing = subprocess.run(["iptables", "-w", "-S", "DOCKER-USER"], capture_output=True, text=True).stdout
    subnet = ipaddress.ip_network(box.subnet)
    for line in listing.splitlines():
        words = line.split()
        addresses = [words[i + 1].split("/")[0] for i, w in enumerate(words[:-1]) if w in ("-s", "-d")]
        if words[:2] == ["-A", "DOCKER-USER"] and any(ipaddress.ip_address(a) in subnet for a in addresses):
            subprocess.run(["iptables", "-w", "-D", *words[1:]], check=False)


def start_servers(hub, users: list[str], timeout: float = 180) -> None:
    """Ask for every user's default server at once, then wait until all are ready."""
    for user in users:
        hub.api("POST", f"/users/{user}")  # the hub learns of users at their first login; 409 if known
        r = hub.api("POST", f"/users/{user}/server", json={})
        assert r.status_code in (201, 202), r.text

    def ready(user):
        server = hub.api("GET", f"/users/{user}").json()["servers"].get("")
        if server is None:
            raise AssertionError(f"{user}'s server failed to start:\n{hub.log_tail()}")
        return server["ready"]

    wait_for(lambda: all(ready(user) for user in users), timeout, what=f"the servers of {', '.join(users)}")


def exec_in(container, command: list[str] | str, user: str = "1000", timeout: int = 60,
            environment: dict | None = None) -> tuple[int, str]:
    """Run `command` (a shell line, or an argv) inside `container` as `user`, bounded by `timeout`."""
    argv = ["sh", "-c", command] if isinstance(command, str) else command
    code, output = container.exec_run(["timeout", str(timeout), *argv], user=user, environment=environment)
    return code, output.decode(errors="replace")


def python_in(container, script: str, *args: str, user: str = "1000", timeout: int = 60,
              environment: dict | None = None) -> tuple[int, str]:
    """Run a Python script inside `container` (the image's python3) with `args`."""
    return exec_in(container, ["python3", "-c", script, *args], user=user, timeout=timeout, environment=environment)
