"""No sandbox starts without its walls: with the firewall chain gone (as after a reboot), a spawn is
refused naming what is missing and how to restore it; once restored, spawns work again."""

import pytest

from imaging_workbench.catalog import accounts
from imaging_workbench.hub.network import ensure_firewall, remove_firewall, sandbox_open_ports

from ..waiting import wait_for
from .conftest import NETWORK, PREFIX, SUBNET, start_server, stop_server

pytestmark = pytest.mark.docker
USER = "erin"


def test_a_spawn_without_the_firewall_chain_is_refused_and_works_once_it_is_restored(sandbox_hub, docker):
    hub = sandbox_hub
    with hub.ctx.session() as s:
        accounts.add_account(s, "steward", USER, "erin-password-123")
    hub.api("POST", f"/users/{USER}")
    remove_firewall(NETWORK)
    try:
        r = hub.api("POST", f"/users/{USER}/server", json={"profile": "standard"})
        wait_for(lambda: "" not in hub.api("GET", f"/users/{USER}").json()["servers"], 60, what="the spawn to end")
        assert r.status_code >= 400, r.text
        refusal = f"Refusing to start {PREFIX}-{USER}"
        assert refusal in hub.log_tail(200) and "firewall chain" in hub.log_tail(200)
        assert "workbench sandbox-network" in r.text, r.text
        assert not docker.containers.list(all=True, filters={"name": f"{PREFIX}-{USER}"})
    finally:
        ensure_firewall(NETWORK, SUBNET, sandbox_open_ports(hub.settings))
    start_server(hub, USER)
    stop_server(hub, USER)
