"""A real JupyterHub with our configuration, demo accounts in a fresh catalog; no docker needed."""

import pytest

from imaging_workbench.context import WorkbenchContext
from imaging_workbench.deployment import validate_settings, with_defaults
from imaging_workbench.hub.commands import ensure_demo_users

from ..hubtools import HubProcess


@pytest.fixture(scope="module")
def hub_settings(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("hub")
    return workdir, validate_settings(with_defaults({"state_dir": str(workdir / "state")}))


@pytest.fixture(scope="module")
def logins(hub_settings):
    return ensure_demo_users(WorkbenchContext(hub_settings[1], actor="steward"))


@pytest.fixture(scope="module")
def hub_extra_config():
    """Configuration lines loaded after ours (a test module overrides this to change the hub)."""
    return ""


@pytest.fixture(scope="module")
def hub(hub_settings, logins, hub_extra_config):
    workdir, settings = hub_settings
    process = HubProcess(workdir, settings, extra_config=hub_extra_config)
    try:
        yield process.start()
    finally:
        process.stop()
