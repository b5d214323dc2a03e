"""WorkbenchSpawner: DockerSpawner that mounts exactly the user's approved datasets, read-only,
into a locked-down container, and audits every start and stop."""

import asyncio
import subprocess
from pathlib import Path

from docker.errors import APIError, NotFound
from dockerspawner import DockerSpawner
from jupyterhub.traitlets import ByteSpecification
from traitlets import Dict, Integer, List, Unicode, default

from ..sessions.homes import session_home_template
from ..errors import WorkbenchError
from . import profiles as profile_rules
from .catalog_link import in_catalog
from .mount_plan import lost_datasets
from .network import docker_client, drop_default_route, missing_walls
from .server_start import HOME_OWNER, plan_and_open_mount, record_stop, sandbox_env, user_error


def host_has_gpus() -> bool:
    return Path("/dev/nvidia0").exists() or Path("/dev/nvidiactl").exists()


SHIPPED_EXAMPLES = "/opt/workbench/examples"  # the image's copy of notebooks/researcher and notebooks/clinician
HOME_IMAGE_LABEL = "org.imaging-workbench.home-image"


def _run(*command: str) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True)
    except FileNotFoundError:
        raise WorkbenchError(f"{command[0]} is not installed on the hub's host",
                             "install util-linux, iproute2 and e2fsprogs there (scripts/ensure_host.sh)") from None
    if result.returncode != 0:
        raise WorkbenchError(f"'{' '.join(command)}' failed: {result.stderr.strip()}",
                             "the hub must run as root (network namespaces, loop devices for capped homes)")
    return result.stdout


def ensure_home_image(image: Path, size: int) -> None:
    """An ext4 filesystem of `size` bytes in the file `image`, its root owned by the sandbox user.

    The file is sparse: the host's disk fills only as the user writes. An existing image is kept
    as it is, whatever its size (growing one is an operator's resize2fs)."""
    if image.exists():
        return
    image.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = image.with_name(image.name + ".partial")
    with open(partial, "wb") as f:
        f.truncate(size)
    _run("mkfs.ext4", "-q", "-F", "-m", "0", "-E", f"root_owner={HOME_OWNER}", str(partial))
    # Empty, docker copies the image's /home/jovyan (its dotfiles) in at first use, as into a plain volume.
    _run("debugfs", "-w", "-R", "rmdir lost+found", str(partial))
    partial.rename(image)


def ensure_loop_device(image: Path) -> str:
    """The loop device backing `image`, attached now if none is (a reboot detaches them all)."""
    attached = _run("losetup", "--associated", str(image))
    if attached:
        return attached.split(":", 1)[0]
    return _run("losetup", "--find", "--show", str(image)).strip()


def ensure_capped_home(client, name: str, image: Path, size: int) -> None:
    """The docker volume `name` as a mount of the ext4 image `image` through its loop device: a
    home that refuses writes past `size` bytes (a plain volume grows until the host's disk is full).

    The volume only points at the device; the files live in the image. So a volume that points at
    another device (after a reboot) is replaced, while a volume of that name that is no such
    pointer (an uncapped home from before) is left alone and the start refused: replacing it
    would hide its files.
    """
    ensure_home_image(image, size)
    options = {"type": "ext4", "device": ensure_loop_device(image), "o": "nosuid,nodev"}
    try:
        volume = client.volumes.get(name)
    except NotFound:
        volume = None
    if volume is not None:
        if (volume.attrs.get("Labels") or {}).get(HOME_IMAGE_LABEL) != str(image):
            raise WorkbenchError(f"the home volume '{name}' exists and is not a size-capped home",
                                 "copy its files into the capped home, or unset WorkbenchSpawner.home_size")
        if volume.attrs.get("Options") == options:
            return
    try:
        if volume is not None:
            volume.remove()
        client.volumes.create(name, driver="local", driver_opts=options, labels={HOME_IMAGE_LABEL: str(image)})
    except APIError as e:
        raise WorkbenchError(f"docker could not point the home volume '{name}' at {options['device']}: {e.explanation}",
                             "stop whatever container still uses that volume and start again") from None


class WorkbenchSpawner(profile_rules.ProfileChoice, DockerSpawner):
    """A sandbox per user: approved datasets at /data/<id> (read-only), a home volume, no way out."""

    catalog_url = Unicode(help="SQLAlchemy URL of the workbench catalog (grants, audit).").tag(config=True)
    audit_key_file = Unicode("", help="The audit trail's key file (default: beside a SQLite catalog).").tag(config=True)

    profiles = Dict(help="Resource profiles: name -> {display, cpu, memory, gpus}.").tag(config=True)
    default_profile = Unicode("standard", help="Profile used when none is chosen.").tag(config=True)
    pids_limit = Integer(256, help="Most processes a sandbox may run.").tag(config=True)
    tmp_size = Unicode("1g", help="Size of the in-memory /tmp of a sandbox.").tag(config=True)
    home_volume = Unicode("workbench-home-{username}", help="Docker volume holding the user's home.").tag(config=True)
    home_size = ByteSpecification(None, allow_none=True, help=(
        "Most a user's home may hold, e.g. '20G'. The home volume is then an ext4 image of that size "
        "(one file per user under home_images_dir, mounted through a loop device: the hub must run as "
        "root), and writes past it fail with 'No space left on device'. Unset: a plain docker volume, "
        "bounded only by the host's disk. An image keeps the size it was made with.")).tag(config=True)
    home_images_dir = Unicode("/var/lib/workbench/homes", help=(
        "Host folder of the size-capped homes' images (<home volume name>.ext4), when home_size is set."
    )).tag(config=True)
    federation_url = Unicode("", help="URL sandboxes use for the federation service.").tag(config=True)
    portal_url = Unicode("", help="URL sandboxes use for the portal's API (release requests).").tag(config=True)
    material = List(List(Unicode()), default_value=[[SHIPPED_EXAMPLES, "examples"]],
                    help="[folder in the image, folder in the home] pairs delivered at each start without "
                         "overwriting the user's changes (imaging_workbench/material.py).").tag(config=True)
    state_dir = Unicode("", help="The deployment's state directory: no mounted dataset may be in it or above it "
                                 "(checked again at every spawn).").tag(config=True)
    sandbox_subnet = Unicode(help="Subnet of the sandbox network; checked at every spawn with its firewall.").tag(
        config=True)
    firewall_ports = List(Integer(), help="Host ports the sandbox firewall opens on the bridge gateway (the hub API, "
                                          "the federation service); checked at every spawn.").tag(config=True)

    _mounts: dict = {}  # dataset id -> host folder of the current start (from its mount plan)
    _material: list = []  # `material` plus, for a session's server, the session's (of the current start)
    _kind_env: dict = {}  # what the server's kind adds to its environment (a dashboard's config)

    @default("remove")
    def _remove(self):  # a fresh container each start, so mounts follow the grants of that moment
        return True

    @default("pull_policy")
    def _pull_policy(self):  # images are built locally; there is no registry to pull from
        return "never"

    def available_profiles(self) -> dict:
        """GPU profiles are offered only where the host has NVIDIA devices."""
        gpus = host_has_gpus()
        return {name: p for name, p in self.profiles.items() if gpus or not int(p.get("gpus", 0))}

    def _sandbox_host_config(self, gpus: int, home_in_memory: bool = False) -> dict:
        config = {
            "read_only": True,
            "tmpfs": {"/tmp": f"rw,nosuid,nodev,size={self.tmp_size},mode=1777", "/run": "rw,nosuid,nodev,size=16m"},
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "pids_limit": self.pids_limit,
            "memswap_limit": self.mem_limit,  # no swap: a memory hog is killed at the limit
            # No resolver: a sandbox reaches the hub by address and has no name to look up,
            # so docker's embedded DNS gets no upstream to forward outside names to.
            "dns": ["127.0.0.1"],
            # No IPv6 at all: the sandbox firewall chain is IPv4 (docker's default is off; say so).
            "sysctls": {"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1"},
        }
        if home_in_memory:
            config["tmpfs"]["/home/jovyan"] = "rw,nosuid,nodev,size=64m,uid=1000,gid=100,mode=0700"
        if gpus:
            import docker

            config["device_requests"] = [docker.types.DeviceRequest(count=gpus, capabilities=[["gpu"]])]
        return config

    def get_env(self):
        env = super().get_env()
        env.update(sandbox_env(self._mounts, self.federation_url, self.portal_url, self._material, self._kind_env))
        return env

    async def start(self):
        try:
            profile_name = self.profile_name
        except ValueError as e:
            raise self._user_error(str(e)) from None
        await self._check_walls()
        if self.home_size and not self.name:
            await self._ensure_capped_home()
        # A session's server has a home of its own: whoever helps in it sees none of the learner's own work.
        home_volume = session_home_template(self.home_volume) if self.name else self.home_volume
        try:
            plan, extra = await self._in_catalog(plan_and_open_mount, self.user.name, self.name,
                                                 self.container_name, profile_name, self.profiles,
                                                 home_volume, self.state_dir)
        except WorkbenchError as e:
            raise self._user_error(str(e)) from None
        self._mounts = plan.datasets
        self.mem_limit, self.cpu_limit = plan.limits["mem_limit"], plan.limits["cpu_limit"]
        self.volumes = {**plan.docker_volumes(), **extra["binds"]}
        if not extra["home"]:  # a dashboard: clinicians who open it see nothing of its owner's home
            self.volumes.pop(plan.home_volume)
        self._material = [*self.material, *extra["material"]] if extra["home"] else []
        self._kind_env = extra["env"]
        self.extra_host_config = self._sandbox_host_config(plan.limits["gpus"], home_in_memory=not extra["home"])
        self.log.info("Starting %s for %s with datasets %s (profile %s)", self.container_name, self.user.name,
                      sorted(self._mounts) or "none", profile_name)
        try:
            result = await super().start()
        except Exception:
            await self._in_catalog(record_stop, self.user.name, self.name, self.container_name)
            raise
        try:
            await self._drop_default_route()
        except WorkbenchError as e:
            await self.stop(now=True)
            raise self._user_error(f"your server's network could not be closed: {e.message}; tell an operator") from None
        lost = await self._in_catalog(lost_datasets, self.user.name, sorted(self._mounts))
        if lost:  # access ended while the container started: it must not run with the dataset
            await self.stop(now=True)
            raise self._user_error(f"access to {', '.join(lost)} ended while your server was starting; "
                                   "start it again to get the datasets you hold now")
        return result

    async def stop(self, now=False):
        await super().stop(now=now)
        await self._in_catalog(record_stop, self.user.name, self.name, self.container_name)

    async def _drop_default_route(self) -> None:
        """Docker gives a container on an internal network a default route via the bridge; a
        sandbox needs none (the hub and the federation service are on its own subnet), so it goes:
        traffic for anywhere else fails at once, inside the sandbox."""
        pid = (await self.docker("inspect_container", self.container_id))["State"]["Pid"]
        await asyncio.to_thread(drop_default_route, pid, self.container_name)

    async def _check_walls(self) -> None:
        """No sandbox starts without its walls: a reboot drops the firewall chain, and without it
        a sandbox reaches whatever listens on the host."""
        missing = await asyncio.to_thread(lambda: missing_walls(docker_client(), self.network_name,
                                                                self.sandbox_subnet, self.firewall_ports))
        if missing:
            self.log.error("Refusing to start %s: %s", self.container_name, "; ".join(missing))
            raise self._user_error(f"the sandbox network is not safe to start in ({'; '.join(missing)}); an operator "
                                   "restores it with 'workbench sandbox-network' (make up does it)")

    async def _ensure_capped_home(self) -> None:
        name = self.format_volume_name(self.home_volume, self)
        image = Path(self.home_images_dir) / f"{name}.ext4"
        try:
            await asyncio.to_thread(lambda: ensure_capped_home(docker_client(), name, image, self.home_size))
        except WorkbenchError as e:
            self.log.error("Refusing to start %s: %s (%s)", self.container_name, e.message, e.hint)
            raise self._user_error(f"your home folder cannot be mounted: {e.message}; tell an operator") from None

    async def _in_catalog(self, fn, *args):
        return await in_catalog(self.catalog_url, fn, *args, key_file=self.audit_key_file or None)

    def _user_error(self, message: str) -> Exception:
        return user_error(message)  # shown on the spawn-pending page instead of a traceback
