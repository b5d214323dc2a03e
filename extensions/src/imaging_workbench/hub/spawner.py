"""WorkbenchSpawner: DockerSpawner that mounts exactly the user's approved datasets, read-only,
into a locked-down container, and audits every start and stop."""

import os
from pathlib import Path

from dockerspawner import DockerSpawner
from sqlalchemy import select
from traitlets import Dict, Integer, Unicode, default

from ..catalog import audit
from ..catalog.datasets import check_folder
from ..catalog.grants import live_grants
from ..catalog.models import ServerMount
from ..clock import utcnow
from ..errors import WorkbenchError
from . import profiles as profile_rules
from .catalog_link import in_catalog

DATA_ROOT = "/data"
HOME = "/home/jovyan"


def host_has_gpus() -> bool:
    return Path("/dev/nvidia0").exists() or Path("/dev/nvidiactl").exists()


def _approved_mounts(session, user: str) -> dict[str, str]:
    """dataset id -> host folder, for the user's live grants; a missing folder stops the spawn."""
    mounts = {}
    for grant in live_grants(session, user):
        try:
            mounts[grant.dataset_id] = str(check_folder(grant.dataset.host_path))
        except WorkbenchError as e:
            raise WorkbenchError(f"your approved dataset '{grant.dataset_id}' cannot be mounted: {e.message}",
                                 "tell the data steward; the server starts once the folder is back") from None
    return mounts


def _record_start(session, user, server_name, container, mounts, profile):
    session.add(ServerMount(user=user, server_name=server_name, container=container,
                            datasets=sorted(mounts), started_at=utcnow()))
    audit.record(session, "hub", "server.start", f"{user}/{server_name}", container=container,
                 datasets=sorted(mounts), profile=profile)


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

    profiles = Dict(help="Resource profiles: name -> {display, cpu, memory, gpus}.").tag(config=True)
    default_profile = Unicode("standard", help="Profile used when none is chosen.").tag(config=True)
    pids_limit = Integer(256, help="Most processes a sandbox may run.").tag(config=True)
    tmp_size = Unicode("1g", help="Size of the in-memory /tmp of a sandbox.").tag(config=True)
    home_volume = Unicode("workbench-home-{username}", help="Docker volume holding the user's home.").tag(config=True)
    federation_url = Unicode("", help="URL sandboxes use for the federation service.").tag(config=True)

    _mounts: dict = {}  # dataset id -> host folder of the current start

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
        limits = profile_rules.limits(self.profiles[profile_name])
        self.mem_limit, self.cpu_limit = limits["mem_limit"], limits["cpu_limit"]
        try:
            self._mounts = await in_catalog(self.catalog_url, _approved_mounts, self.user.name)
        except WorkbenchError as e:
            raise self._user_error(str(e)) from None
        self.volumes = {self.home_volume: HOME,
                        **{path: {"bind": f"{DATA_ROOT}/{ds}", "mode": "ro"} for ds, path in self._mounts.items()}}
        self.extra_host_config = self._sandbox_host_config(limits["gpus"])
        self.log.info("Starting %s for %s with datasets %s (profile %s)", self.container_name, self.user.name,
                      sorted(self._mounts) or "none", profile_name)
        result = await super().start()
        await in_catalog(self.catalog_url, _record_start, self.user.name, self.name, self.container_name,
                         self._mounts, profile_name)
        return result

    async def stop(self, now=False):
        await super().stop(now=now)
        await in_catalog(self.catalog_url, _record_stop, self.user.name, self.name, self.container_name)

    def _user_error(self, message: str) -> Exception:
        error = RuntimeError(message)
        error.jupyterhub_message = message  # shown on the spawn-pending page instead of a traceback
        return error
