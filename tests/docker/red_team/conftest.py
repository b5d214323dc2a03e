"""Fixtures of the red team (see test modules): one hub of its own on its own network, alice's
and bob's sandboxes, twins of alice's sandbox that lack one wall, the printed ledger, and the check
after each test that the sandboxes and the hub still work."""

import secrets

import pytest
import requests

from ..sandboxes import exec_in, own_sandbox_hub, start_servers
from .tools import BOX, LEDGER, NOTES, hub_config, twin_settings


@pytest.fixture(scope="package", autouse=True)
def red_team_summary(request):
    yield
    refused = sum(a.refused for a in LEDGER)
    shown = sum(a.twin_got_through for a in LEDGER)
    lines = [f"red team: {len(LEDGER)} attempts, {refused} refused; "
             f"{shown} shown to succeed against their weakened sandbox", *NOTES]
    if request.config.option.verbose > 0 or refused < len(LEDGER) or shown < len(LEDGER):
        lines += [f"  {'refused ' if a.refused else 'THROUGH '} {'twin-ok ' if a.twin_got_through else 'TWIN-NO '}"
                  f"{a.name}  (twin: {a.twin})  {a.evidence[:200]}" for a in LEDGER]
    with request.config.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():
        print("\n" + "\n".join(lines))


# ---- the hub, the two sandboxes, the twins

@pytest.fixture(scope="package")
def red_hub(tmp_path_factory, docker):
    workdir = tmp_path_factory.mktemp("redteam")
    images, widened = workdir / "homes", secrets.token_hex(16)
    with own_sandbox_hub(workdir, docker, BOX, hub_config(images, widened), images_dir=images) as hub:
        hub.widened_token = widened
        start_servers(hub, ["alice", "bob"])
        hub.api("POST", "/users/carol")  # known to the hub, without a server
        hub.alice_token = hub.user_token("alice")  # the host's check that her server still answers
        yield hub


@pytest.fixture(scope="package")
def alice(red_hub, docker):
    return docker.containers.get(BOX.container("alice"))


@pytest.fixture(scope="package")
def bob(red_hub, docker):
    return docker.containers.get(BOX.container("bob"))


@pytest.fixture(autouse=True)
def sandboxes_and_hub_keep_working(red_hub, alice, bob):
    """After each test: both sandboxes run a command, both servers are up, alice's answers."""
    yield
    for sandbox in (alice, bob):
        assert exec_in(sandbox, "echo alive") == (0, "alive\n"), sandbox.name
    for user in ("alice", "bob"):
        assert red_hub.api("GET", f"/users/{user}").json()["servers"][""]["ready"], user
    r = requests.get(f"{red_hub.url}/user/alice/api/status", timeout=30,
                     headers={"Authorization": f"token {red_hub.alice_token}"})
    assert r.status_code == 200, r.text


@pytest.fixture
def twin(docker, alice):
    """Start a twin of alice's sandbox: `twin(kind, **changes)` with the one wall `changes` drop."""
    started = []

    def start(kind: str, **changes):
        container = docker.containers.run(name=f"{BOX.prefix}-twin-{kind}", detach=True,
                                          **{"command": ["sleep", "infinity"], **twin_settings(alice), **changes})
        started.append(container)
        container.reload()
        return container

    yield start
    for container in started:
        container.remove(force=True)
