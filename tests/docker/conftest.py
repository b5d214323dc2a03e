"""Real dockerd, the real single-user image, a real hub on its own sandbox network."""

import pytest

from imaging_workbench.context import WorkbenchContext
from imaging_workbench.deployment import validate_settings, with_defaults
from imaging_workbench.hub.network import (
    docker_client, ensure_firewall, ensure_network, gateway, sandbox_open_ports,
)

from ..browser.servers import launch_chromium
from ..hubtools import HubProcess
from .sandboxes import Box, add_people_and_data, remove_box
from ..waiting import wait_for

NETWORK, SUBNET = "wbtest-sandbox", "172.29.249.0/24"
PREFIX = "wbtest"
# The portal's steward and the dataset they steward; test_portal_browser.py adds both to the catalog.
STEWARD, STEWARDED = "sam", "colon-e"
# The dataset test_dashboards.py shows on a dashboard (sam stewards it too), and the clinicians' group.
CLINICAL, CLINICIANS = "clinic-ct", ("clara",)
# Output checkers of the airlock tests (test_airlock_sandbox.py).
CHECKERS = ("olga", "oscar")
# Test servers and home volumes get their own names, apart from a `make up` on the same machine.
EXTRA_CONFIG = f'''
c.WorkbenchSpawner.prefix = "{PREFIX}"
'''
HOME_VOLUME = f"{PREFIX}-home-{{username}}"


@pytest.fixture(scope="session")
def docker():
    return docker_client()


@pytest.fixture(scope="session")
def sandbox_hub(tmp_path_factory, docker):
    workdir = tmp_path_factory.mktemp("dockerhub")
    settings = validate_settings(with_defaults({
        "state_dir": str(workdir / "state"),
        "roles": {"stewards": {STEWARDED: [STEWARD], CLINICAL: [STEWARD]}, "output_checkers": list(CHECKERS),
                  "clinicians": list(CLINICIANS)},
        "sandbox": {"home_volume": HOME_VOLUME, "network": NETWORK, "subnet": SUBNET, "revocation_interval": 5,
                    "default_profile": "standard",
                    "profiles": {"standard": {"display": "Standard", "cpu": 1, "memory": "1G"},
                                 "tiny": {"display": "Tiny", "cpu": 0.5, "memory": "256M"}}},
    }))
    ctx = WorkbenchContext(settings, actor="steward")
    add_people_and_data(ctx, workdir / "datasets")
    hub = HubProcess(workdir, settings, api_ip=gateway(SUBNET), extra_config=EXTRA_CONFIG)
    ensure_network(docker, NETWORK, SUBNET)
    ensure_firewall(NETWORK, SUBNET, sandbox_open_ports(hub.settings))
    hub.ctx = WorkbenchContext(hub.settings, actor="steward")
    try:
        yield hub.start()
    finally:
        try:
            hub.stop()
        finally:
            remove_box(docker, Box(NETWORK, SUBNET, PREFIX))


def start_server(hub, user: str, profile: str = "standard", timeout: float = 180) -> None:
    hub.api("POST", f"/users/{user}")  # the hub learns of users at their first login; 409 if known
    r = hub.api("POST", f"/users/{user}/server", json={"profile": profile})
    assert r.status_code in (201, 202), r.text

    def ready():
        server = hub.api("GET", f"/users/{user}").json()["servers"].get("")
        if server is None:
            raise AssertionError(f"{user}'s server failed to start:\n{hub.log_tail()}")
        return server["ready"]

    wait_for(ready, timeout, what=f"{user}'s server")


def stop_server(hub, user: str, timeout: float = 120) -> None:
    hub.api("DELETE", f"/users/{user}/server")
    wait_for(lambda: "" not in hub.api("GET", f"/users/{user}").json()["servers"], timeout,
             what=f"{user}'s server to stop")


def run_in(docker, user: str, command: str, timeout: int = 60) -> tuple[int, str]:
    """Run a shell command inside the user's sandbox, as the sandbox user."""
    container = docker.containers.get(f"{PREFIX}-{user}")
    code, output = container.exec_run(["timeout", str(timeout), "sh", "-c", command], user="1000")
    return code, output.decode(errors="replace")


@pytest.fixture(scope="session")
def alice(sandbox_hub):
    start_server(sandbox_hub, "alice")
    return sandbox_hub


@pytest.fixture(scope="session")
def bob(sandbox_hub):
    start_server(sandbox_hub, "bob")
    return sandbox_hub


@pytest.fixture(scope="session")
def approved_tool(sandbox_hub, tmp_path_factory):
    """tumour-seg 1.0.0 (tests/tool_bundles.py: a tiny CT UNet), added by adam and approved by rita,
    so in every sandbox's /tools."""
    from imaging_workbench.context import WorkbenchContext
    from imaging_workbench.tools import catalog

    from ..tool_bundles import write_bundle

    settings = {**sandbox_hub.settings, "roles": {**sandbox_hub.settings["roles"], "tool_reviewers": ["rita"]}}
    tool = catalog.add(WorkbenchContext(settings, actor="adam"), write_bundle(tmp_path_factory.mktemp("tool") / "seg"))
    return catalog.approve(WorkbenchContext(settings, actor="rita"), tool["id"], tool["version"])


@pytest.fixture(scope="session")
def chromium():
    """Debian's headless Chromium through Playwright, for the portal's browser tests."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)
        yield browser
        browser.close()
