"""A real JupyterHub with our configuration, demo accounts in a fresh catalog; no docker needed."""

import pytest

from imaging_workbench.context import WorkbenchContext
from imaging_workbench.hub.commands import ensure_demo_users
from imaging_workbench.site import DEFAULTS, _merge, validate_site

from ..hubtools import HubProcess


@pytest.fixture(scope="module")
def hub_site(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("hub")
    return workdir, validate_site(_merge(DEFAULTS, {"state_dir": str(workdir / "state")}))


@pytest.fixture(scope="module")
def logins(hub_site):
    return ensure_demo_users(WorkbenchContext(hub_site[1], actor="steward"))


@pytest.fixture(scope="module")
def hub_extra_config():
    """Configuration lines loaded after ours (a test module overrides this to change the hub)."""
    return ""


@pytest.fixture(scope="module")
def hub(hub_site, logins, hub_extra_config):
    workdir, site = hub_site
    process = HubProcess(workdir, site, extra_config=hub_extra_config)
    try:
        yield process.start()
    finally:
        process.stop()
