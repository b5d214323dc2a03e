"""WorkbenchSpawner: DockerSpawner that mounts exactly the user's approved datasets, read-only,
into a locked-down container, and audits every start and stop."""

from pathlib import Path

from dockerspawner import DockerSpawner
from sqlalchemy import select
from traitlets import Dict, Integer, Unicode, default

from ..catalog import audit
from ..catalog.models import ServerMount
from ..clock import utcnow
from ..errors import WorkbenchError
from . import profiles as profile_rules
from .catalog_link import in_catalog
from .mount_plan import DATA_ROOT, lost_datasets, plan_server


def host_has_gpus() -> bool:
    return Path("/dev/nvidia0").exists() or Path("/dev/nvidiactl").exists()


def _plan_and_open_mount(session, user, server_name, container, profile_name, profile, home_volume):
    """The server's plan, with its mounts recorded before the container exists: a revocation that
    lands while the container starts then finds them (and the spawn re-checks them after)."""
    plan = plan_server(session, user, server_name, "named" if server_name else "default", profile=profile,
                       home_volume=home_volume)
    session.add(ServerMount(user=user, server_name=server_name, container=container,
                            datasets=sorted(plan.datasets), started_at=utcnow()))
    audit.record(session, "hub", "server.start", f"{user}/{server_name}", container=container,
                 datasets=sorted(plan.datasets), profile=profile_name)
    return plan


def _lost_since_start(session, user, datasets) -> dict[str, str]:
    return lost_datasets(session, user, datasets)


def _record_stop(session, user, server_name, container):
    open_mounts = session.scalars(select(ServerMount).where(
        ServerMount.user == user, ServerMount.server_name == server_name, ServerMount.stopped_at.is_(None)))
    datasets = set()
    for mount in open_mounts:
        mount.stopped_at = utcnow()
        datasets.update(mount.datasets)
    audit.record(session, "hub", "server.stop", f"{user}/{server_name}", container=container,
                 datasets=sorted(datasets))


class WorkbenchSpawner(DockerSpawner):
    """A sandbox per user: approved datasets at /data/<id> (read-only), a home volume, no way out."""

    catalog_url = Unicode(help="SQLAlchemy URL of the workbench catalog (grants, audit).").tag(config=True)
    audit_key_file = Unicode("", help="The audit trail's key file (default: beside a SQLite catalog).").tag(config=True)

    profiles = Dict(help="Resource profiles: name -> {display, cpu, memory, gpus}.").tag(config=True)
    default_profile = Unicode("standard", help="Profile used when none is chosen.").tag(config=True)
    pids_limit = Integer(256, help="Most processes a sandbox may run.").tag(config=True)
    tmp_size = Unicode("1g", help="Size of the in-memory /tmp of a sandbox.").tag(config=True)
    home_volume = Unicode("workbench-home-{username}", help="Docker volume holding the user's home.").tag(config=True)
    federation_url = Unicode("", help="URL sandboxes use for the federation service.").tag(config=True)

    _mounts: dict = {}  # dataset id -> host folder of the current start (from its mount plan)

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

    @default("options_form")
    def _options_form(self):
        return lambda spawner: profile_rules.options_form(spawner.available_profiles(), spawner.default_profile)

    def options_from_form(self, formdata):
        return {"profile": profile_rules.choose(self.available_profiles(), self.default_profile, formdata)}

    @property
    def profile_name(self) -> str:
        return profile_rules.choose(self.available_profiles(), self.default_profile, self.user_options or {})

    def _sandbox_host_config(self, gpus: int) -> dict:
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
        }
        if gpus:
            import docker

            config["device_requests"] = [docker.types.DeviceRequest(count=gpus, capabilities=[["gpu"]])]
        return config

    def get_env(self):
        env = super().get_env()
        env["WORKBENCH_DATASETS"] = ",".join(sorted(self._mounts))
        env["WORKBENCH_DATA_ROOT"] = DATA_ROOT
        if self.federation_url:
            env["WORKBENCH_FEDERATION_URL"] = self.federation_url
        return env

    async def start(self):
        try:
            profile_name = self.profile_name
        except ValueError as e:
            raise self._user_error(str(e)) from None
        try:
            plan = await self._in_catalog(_plan_and_open_mount, self.user.name, self.name,
                                    self.container_name, profile_name, self.profiles[profile_name],
                                    self.home_volume)
        except WorkbenchError as e:
            raise self._user_error(str(e)) from None
        self._mounts = plan.datasets
        self.mem_limit, self.cpu_limit = plan.limits["mem_limit"], plan.limits["cpu_limit"]
        self.volumes = plan.docker_volumes()
        self.extra_host_config = self._sandbox_host_config(plan.limits["gpus"])
        self.log.info("Starting %s for %s with datasets %s (profile %s)", self.container_name, self.user.name,
                      sorted(self._mounts) or "none", profile_name)
        try:
            result = await super().start()
        except Exception:
            await self._in_catalog(_record_stop, self.user.name, self.name, self.container_name)
            raise
        lost = await self._in_catalog(_lost_since_start, self.user.name, sorted(self._mounts))
        if lost:  # access ended while the container started: it must not run with the dataset
            await self.stop(now=True)
            raise self._user_error(f"access to {', '.join(lost)} ended while your server was starting; "
                                   "start it again to get the datasets you hold now")
        return result

    async def stop(self, now=False):
        await super().stop(now=now)
        await self._in_catalog(_record_stop, self.user.name, self.name, self.container_name)

    async def _in_catalog(self, fn, *args):
        return await in_catalog(self.catalog_url, fn, *args, key_file=self.audit_key_file or None)

    def _user_error(self, message: str) -> Exception:
        error = RuntimeError(message)
        error.jupyterhub_message = message  # shown on the spawn-pending page instead of a traceback
        return error
