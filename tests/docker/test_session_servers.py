"""A training session's server on real sandboxes: a learner's `session-NAME` server mounts the
teaching dataset and nothing else of theirs, has a home of its own (whoever helps in it sees
none of the learner's own work), and finds the session's material in ~/sessions/NAME; anyone not
on the roster, and any other named server, is refused."""

from datetime import timedelta

import pytest
from dockerspawner import DockerSpawner

from imaging_workbench.catalog import accounts, datasets, training_sessions
from imaging_workbench.clock import utcnow

from ..waiting import wait_for
from .conftest import PREFIX
from .sandboxes import exec_in

pytestmark = pytest.mark.docker

SESSION, SERVER = "bio-101", "session-bio-101"
LEARNER = "alice"  # holds her own research grant (lung-a) in the docker tier's hub


@pytest.fixture(scope="module")
def course(sandbox_hub, tmp_path_factory):
    root = tmp_path_factory.mktemp("session-course")
    data, material = root / "teaching-ct", root / "material"
    for folder in (data, material):
        folder.mkdir()
    (data / "case-001.dcm.txt").write_text("pixels of the teaching case\n")
    (material / "01-intro.ipynb").write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    for path in (data, material, root):
        path.chmod(0o755)
    start = utcnow() - timedelta(minutes=5)
    with sandbox_hub.ctx.session() as s:
        accounts.add_account(s, "edu", "ines")
        datasets.add_dataset(s, "edu", "teaching-ct", data, title="Teaching CT", site="site-1")
        training_sessions.create_session(s, "edu", training_sessions.SessionPlan(
            name=SESSION, learners=[LEARNER], instructors=["ines"], starts_at=start, ends_at=start + timedelta(hours=3),
            dataset_id="teaching-ct", material=str(material), profile="standard"))
    return sandbox_hub


def server_state(hub, user, name):
    return hub.api("GET", f"/users/{user}").json()["servers"].get(name)


def test_a_learners_session_server_holds_the_teaching_dataset_only_and_the_material(course, docker):
    hub = course
    hub.api("POST", f"/users/{LEARNER}")  # the hub learns of users at their first login; 409 if known
    r = hub.api("POST", f"/users/{LEARNER}/servers/{SERVER}", json={})
    assert r.status_code in (201, 202), r.text
    wait_for(lambda: (server_state(hub, LEARNER, SERVER) or {}).get("ready"), 180, what="the session server")
    try:
        escaped = DockerSpawner._escape(SERVER)  # docker names: each '-' of a server name becomes '-2d'
        container = docker.containers.get(f"{PREFIX}-{LEARNER}--{escaped}")
        assert exec_in(container, "ls /data") == (0, "teaching-ct\n")  # not her own lung-a
        code, listing = exec_in(container, f"ls ~/sessions/{SESSION} ~/examples")
        assert code == 0 and "01-intro.ipynb" in listing and "researcher" in listing
        homes = [m["Name"] for m in container.attrs["Mounts"] if m["Destination"] == "/home/jovyan"]
        assert homes == [f"{PREFIX}-home-{LEARNER}--{escaped}"]  # not her own home volume
    finally:
        hub.api("DELETE", f"/users/{LEARNER}/servers/{SERVER}")
        wait_for(lambda: server_state(hub, LEARNER, SERVER) is None, 120, what="the session server to stop")


@pytest.mark.parametrize("user, server, refusal", [
    ("ines", SERVER, f"ines is not a learner of training session '{SESSION}'"),
    (LEARNER, "scratch", "named servers are for training sessions"),
    (LEARNER, "session-no-such", "training session 'no-such' is not running"),
])
def test_other_named_servers_are_refused(course, user, server, refusal):
    hub = course
    hub.api("POST", f"/users/{user}")
    r = hub.api("POST", f"/users/{user}/servers/{server}", json={})
    if r.status_code in (201, 202):  # the refusal may come after the hub accepted the request
        wait_for(lambda: server_state(hub, user, server) is None or not server_state(hub, user, server)["pending"],
                 60, what="the spawn to end")
        assert server_state(hub, user, server) is None
    assert refusal in hub.log_tail(200)
