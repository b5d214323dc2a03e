"""Secrets and state under the state directory are readable by their owner only (private_state.py):
after the steps of `make up` the unit tier can run, after the repair of an older install, and as
soon as the federation's files are made; the demo data and dataset folders stay readable."""

import os
import stat
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from traitlets.config import Config

from imaging_workbench.catalog import datasets
from imaging_workbench.catalog.audit_key import key_file
from imaging_workbench.catalog.dataset_paths import DEMO_DATA
from imaging_workbench.deployment import catalog_url
from imaging_workbench.dicom.demo import DEMO_DATASETS, ensure_demo_data
from imaging_workbench.federation import embedded
from imaging_workbench.federation.provision import ensure_embedded_kits
from imaging_workbench.federation.settings import federation_settings
from imaging_workbench.hub.commands import ensure_demo_users
from imaging_workbench.hub.configurer import update_hub
from imaging_workbench.private_state import ensure_private_state, ensure_state_dir

# What group and others may do under the state directory, on purpose. Everything else: nothing.
ALLOWED = {
    ".": 0o011,  # pass through, never list: the demo data is below it (why: private_state.py)
}
# The sandbox user (uid 1000) reads the demo data, dashboards' pinned notebooks and the AI tools:
# left a+rX as they were made.
PUBLIC = [DEMO_DATA, "dashboards", "tools"]


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def open_to_others(state: Path) -> list[str]:
    """Every path under `state` that group or others may use beyond ALLOWED, with its mode."""
    found = []
    for dirpath, dirnames, filenames in os.walk(state):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if str((here / d).relative_to(state)) not in PUBLIC]
        for path in [here, *(here / name for name in filenames)]:
            name = str(path.relative_to(state))
            if mode(path) & 0o077 & ~ALLOWED.get(name, 0):
                found.append(f"{mode(path):03o} {name}")
    return found


@pytest.fixture
def make_up_umask():
    """The umask `make up` usually runs with (a stricter one would hide a file made open)."""
    old = os.umask(0o022)
    yield
    os.umask(old)


class HubFiles:
    """The files a previous hub run left at the paths update_hub names, with the modes it gives them."""

    def __init__(self, c: Config):
        self.db = Path(make_url(c.JupyterHub.db_url).database)
        self.cookie_secret = Path(c.JupyterHub.cookie_secret_file)
        self.pid_files = [Path(c.JupyterHub.pid_file), Path(c.ConfigurableHTTPProxy.pid_file)]

    def write(self) -> None:
        for path in [self.db, *self.pid_files]:
            path.write_text("x")  # SQLite and the pid files: 0644 under umask 022
        self.cookie_secret.write_text("ab" * 32)
        self.cookie_secret.chmod(0o600)  # as JupyterHub does right after writing it


@pytest.fixture
def made_up(settings, ctx, dataset_dir, make_up_umask, copy_small_lung_ct):
    """The state directory after the `make up` steps that need no docker and no FLARE process."""
    state = ctx.state_dir
    copy_small_lung_ct(state / DEMO_DATA)  # generated once per session; ensure_demo_data then finds it
    ensure_demo_data(state / DEMO_DATA, "small", datasets=DEMO_DATASETS[:1])
    dataset = dataset_dir("ct-a")
    with ctx.session() as s:  # the catalog, and the audit key with the first audited change
        datasets.add_dataset(s, ctx.actor, "ct-a", dataset)
    federation = federation_settings(settings)
    ensure_embedded_kits(federation)
    ensure_demo_users(ctx)
    c = Config()
    update_hub(c, settings)
    hub = HubFiles(c)
    hub.write()
    ctx.engine.dispose()
    for folder, name in (("dashboards/review", "review.ipynb"), ("tools/seg/1", "model.pt")):  # as published
        (state / folder).mkdir(mode=0o755, parents=True)
        (state / folder / name).write_text("{}")
        (state / folder / name).chmod(0o444)
    return {"state": state, "federation": federation, "hub": hub, "dataset": dataset}


def secrets_of(settings, made_up):
    """Each secret file and folder the workbench keeps, found where the code names it."""
    federation, hub = made_up["federation"], made_up["hub"]
    files = [Path(make_url(catalog_url(settings)).database), key_file(settings), made_up["state"] / "demo-logins.json",
             hub.db, hub.cookie_secret, *sorted(federation.prod_dir.rglob("*.key"))]
    folders = [federation.workdir, federation.prod_dir, *(p for p in federation.prod_dir.rglob("*") if p.is_dir())]
    return files, folders


def test_after_make_up_every_secret_is_its_owners_and_nothing_else_is_open(settings, made_up):
    ensure_private_state(settings)
    files, folders = secrets_of(settings, made_up)
    assert len(list(made_up["federation"].prod_dir.rglob("*.key"))) == 5  # the server's, 3 sites' and the service's
    assert {str(f): f"{mode(f):03o}" for f in files} == {str(f): "600" for f in files}
    assert {str(f): f"{mode(f):03o}" for f in folders} == {str(f): "700" for f in folders}
    assert open_to_others(made_up["state"]) == []


def test_an_older_install_is_repaired_and_each_change_reported(made_up, cli):
    state = made_up["state"]
    loosened = []
    for dirpath, dirnames, filenames in os.walk(state):  # what the previous release left: 0755 and 0644
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if d not in PUBLIC or here != state]
        for path, loose in [(here, 0o755), *((here / name, 0o644) for name in filenames)]:
            path.chmod(loose)
            loosened.append(path)
    assert len(open_to_others(state)) == len(loosened)

    rc, out, err = cli("private-state")
    assert rc == 0, err
    assert f"755 -> 711  {state}\n" in out
    for path in loosened[1:]:
        assert (f"755 -> 700  {path}\n" if path.is_dir() else f"644 -> 600  {path}\n") in out
    assert out.count(" -> ") == len(loosened)
    assert open_to_others(state) == []
    assert f"except for the sandbox user (uid 1000): {', '.join(str(state / p) for p in sorted(PUBLIC))}\n" in out

    rc, out, _ = cli("private-state")
    assert rc == 0 and " -> " not in out and "already readable by its owner only" in out


def test_the_demo_data_dashboards_tools_and_dataset_folders_stay_readable_by_others(settings, made_up):
    state, dataset = made_up["state"], made_up["dataset"]
    public = [dataset, *dataset.rglob("*"), *(p for name in PUBLIC for p in [state / name, *(state / name).rglob("*")])]
    before = {str(p): mode(p) for p in public}
    ensure_private_state(settings)
    assert {str(p): mode(p) for p in public} == before
    assert all(before[str(p)] & 0o005 == 0o005 for p in public if p.is_dir())  # others list and enter them
    assert mode(state) & 0o001  # and pass through the state directory to the demo data


def test_a_stricter_mode_stays_and_a_symlink_out_is_not_followed(settings, made_up, tmp_path):
    state = made_up["state"]
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("not ours")
    outside.chmod(0o644)
    (state / "link").symlink_to(outside)
    state.chmod(0o700)
    ensure_private_state(settings)
    assert mode(outside) == 0o644
    assert mode(state) == 0o700


def test_a_new_state_dir_is_made_traverse_only(settings, make_up_umask):
    assert mode(ensure_state_dir(settings)) == 0o711


def test_kits_are_private_as_soon_as_they_are_provisioned(settings, make_up_umask):
    federation = federation_settings(settings)
    ensure_embedded_kits(federation)
    assert open_to_others(Path(settings["state_dir"])) == []
    assert mode(federation.kit("server") / "startup" / "start.sh") == 0o700  # NVFlare's 0755, tightened; still runs


def test_a_federation_workdir_outside_the_state_dir_is_made_private_too(tmp_path, make_up_umask):
    from imaging_workbench.deployment import validate_settings, with_defaults

    settings = validate_settings(with_defaults({"state_dir": str(tmp_path / "state"),
                                                "federation": {"workdir": str(tmp_path / "flare")}}))
    (tmp_path / "state").mkdir()
    ensure_embedded_kits(federation_settings(settings))
    (tmp_path / "flare" / "results").mkdir(mode=0o755)
    ensure_private_state(settings)
    assert open_to_others(tmp_path / "flare") == []


class RecordingPopen:
    """Stands for a FLARE participant's process: records how it was started, starts nothing."""

    started: list[dict] = []

    def __init__(self, command, **kwargs):
        self.pid = os.getpid()  # alive, so pid_of() counts it as running
        RecordingPopen.started.append(kwargs)


def test_a_started_participant_logs_and_writes_its_pid_file_privately(settings, make_up_umask, monkeypatch):
    federation = federation_settings(settings)
    ensure_embedded_kits(federation)
    monkeypatch.setattr(embedded.subprocess, "Popen", RecordingPopen)
    monkeypatch.setattr(RecordingPopen, "started", [])
    embedded.start_participant(federation, "site-1")
    assert RecordingPopen.started[-1]["umask"] == 0o077  # what FLARE writes (jobs, snapshots) is private too
    assert {p.name: mode(p) for p in federation.workdir.iterdir() if p.name in ("logs", "run")} == {
        "logs": 0o700, "run": 0o700}
    assert mode(embedded.log_file(federation, "site-1")) == 0o600
    assert open_to_others(Path(settings["state_dir"])) == []
