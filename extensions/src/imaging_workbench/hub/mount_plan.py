"""What a server gets: the one place that decides, for a user and a server, which datasets it
mounts (read-only, at /data/<id>) with each one's index file (read-only, at /data-index/<id>.sqlite,
dicom/index_files.py), the AI tools' folder (read-only, at /tools: the catalogue's
bundles and the approved tools' cards, tools/catalog.py), its home volume and its resource limits. (What it may reach
on the network is the sandbox network's firewall, the same for every server.)

The docker spawner turns a plan into binds and container settings; revocation compares a running
server's mounts with the plan of this moment; a Kubernetes spawner would turn the same plan into
volumes and network policies.
"""

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..catalog.dataset_paths import check_registered
from ..catalog.grants import FEDERATED, SANDBOX, live_grants
from ..catalog.models import Grant
from ..dicom.index_files import INDEX_FOLDER, index_file
from ..errors import WorkbenchError
from . import profiles as profile_rules

DATA_ROOT = "/data"
INDEX_ROOT = "/data-index"  # the steward's index file of each mounted dataset, <id>.sqlite
HOME = "/home/jovyan"
TOOLS_ROOT = "/tools"
TOOLS_FOLDER = "tools"  # <state_dir>/tools: the only part of the state directory a sandbox sees
# Server kinds: a user's own servers (default, named), later a dashboard that serves only Voila
# on the datasets it was published with, a training session's server, and batch runs.
KINDS = ("default", "named", "dashboard", "session", "batch")


@dataclass(frozen=True)
class MountPlan:
    """Everything a server of `user` gets; `datasets` maps dataset id -> host folder."""

    user: str
    server_name: str
    kind: str
    datasets: dict[str, str]
    home_volume: str
    limits: dict
    tools: str = ""  # host folder of the AI tools, mounted at TOOLS_ROOT ("": none)
    indexes: dict[str, str] = field(default_factory=dict)  # dataset id -> host index file
    read_only_paths: dict[str, str] = field(init=False)

    def __post_init__(self):
        paths = {f"{DATA_ROOT}/{ds}": path for ds, path in sorted(self.datasets.items())}
        # An index lists a dataset's patients and series: only a mounted dataset's index goes in.
        paths.update({f"{INDEX_ROOT}/{ds}.sqlite": path for ds, path in sorted(self.indexes.items())
                      if ds in self.datasets})
        if self.tools:
            paths[TOOLS_ROOT] = self.tools
        object.__setattr__(self, "read_only_paths", paths)

    def docker_volumes(self) -> dict:
        """DockerSpawner `volumes`: the home volume, then each dataset and the tools read-only."""
        return {self.home_volume: HOME,
                **{path: {"bind": target, "mode": "ro"} for target, path in self.read_only_paths.items()}}


def ensure_tools_folder(state_dir: str) -> Path:
    """The AI tools' folder, made 0755 when missing: it exists before any sandbox starts, so a tool
    approved later appears in running sandboxes too."""
    folder = Path(state_dir) / TOOLS_FOLDER
    folder.mkdir(mode=0o755, exist_ok=True)
    return folder


def granted_datasets(session: Session, user: str, only: list[str] | None = None,
                     state_dir: str | None = None) -> dict[str, str]:
    """dataset id -> host folder for `user`'s live sandbox grants (restricted to `only` when given);
    federated grants mount nothing.

    Each folder is checked again, cheaply (no walk): it must still resolve to the path
    registered and not be a system folder, nor in the deployment's `state_dir` when one is given
    (catalog/dataset_paths.py).

    Raises:
        WorkbenchError: a granted dataset's folder is missing, unreadable or refused (the spawn stops).
    """
    mounts = {}
    for grant in live_grants(session, user, modes=(SANDBOX,)):
        if only is not None and grant.dataset_id not in only:
            continue
        try:
            mounts[grant.dataset_id] = str(check_registered(grant.dataset.host_path, state_dir))
        except WorkbenchError as e:
            raise WorkbenchError(f"your approved dataset '{grant.dataset_id}' cannot be mounted: {e.message}",
                                 "tell the data steward; the server starts once the folder is back") from None
    return mounts


def plan_server(session: Session, user: str, server_name: str = "", kind: str = "default", *,
                profile: dict, home_volume: str, only: list[str] | None = None,
                state_dir: str | None = None) -> MountPlan:
    """The plan for one server of `user` now.

    Args:
        profile: the chosen resource profile ({cpu, memory, gpus}).
        home_volume: the user's home volume name.
        only: for dashboards and sessions, the datasets the server is for (a subset of the grants).
        state_dir: the deployment's state directory, which no dataset may be in (or above); its
            tools folder, when there, is mounted, and each granted dataset's index file.

    Raises:
        ValueError: unknown `kind`.
    """
    if kind not in KINDS:
        raise ValueError(f"server kind must be one of {', '.join(KINDS)}, not {kind!r}")
    tools = Path(state_dir) / TOOLS_FOLDER if state_dir else None
    datasets = granted_datasets(session, user, only, state_dir)
    return MountPlan(user=user, server_name=server_name, kind=kind, datasets=datasets,
                     home_volume=home_volume, limits=profile_rules.limits(profile),
                     tools=str(tools) if tools and tools.is_dir() else "",
                     indexes=dataset_indexes(state_dir, datasets) if state_dir else {})


def dataset_indexes(state_dir: str, datasets) -> dict[str, str]:
    """dataset id -> its index file under `<state_dir>/indexes`, for those of `datasets` that have one
    (a sandbox indexes a dataset without one itself)."""
    folder = Path(state_dir) / INDEX_FOLDER
    files = {ds: index_file(folder, ds) for ds in datasets}
    return {ds: str(path) for ds, path in sorted(files.items()) if path.is_file()}


def lost_datasets(session: Session, user: str, mounted: list[str]) -> dict[str, str]:
    """Of the datasets a running server of `user` mounts, those no longer granted for a sandbox now,
    each with why ("revoked", "expired", or "federated only": the grant now in force mounts nothing)."""
    live = {g.dataset_id: g.mode for g in live_grants(session, user)}
    lost = {dataset_id: "federated only" for dataset_id in mounted if live.get(dataset_id) == FEDERATED}
    for dataset_id in sorted(set(mounted) - live.keys()):
        latest = session.scalars(select(Grant).where(Grant.user == user, Grant.dataset_id == dataset_id)
                                 .order_by(Grant.granted_at.desc()).limit(1)).first()
        lost[dataset_id] = "revoked" if latest is None or latest.revoked_at is not None else "expired"
    return dict(sorted(lost.items()))
