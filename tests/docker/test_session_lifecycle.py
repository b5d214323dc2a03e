"""A training session for ten learners, on the real hub and real sandboxes, through `workbench session`:
create from a roster (eight temporary accounts), pre-spawn before the start, status, a session
server holding the teaching dataset and not the learner's own (nor her home), the material and a
learner's edit surviving an update, other named servers refused, an instructor who can open a learner's session server
and no other server, collect (a learner's symlink to /etc stays a symlink: the copy is made in a
sandbox, never by the host), the instructor's download on the portal, and end: servers stopped,
grants ended, one archive per learner, temporary accounts gone, each step audited."""

import json
import re
import stat
import tarfile
from datetime import timedelta

import pytest
from dockerspawner import DockerSpawner
from sqlalchemy import select

from imaging_workbench.catalog import accounts, audit, datasets, grants
from imaging_workbench.catalog.models import SessionMember
from imaging_workbench.cli import main
from imaging_workbench.clock import utcnow
from imaging_workbench.sessions.homes import session_home_volume
from imaging_workbench.sessions.hub_api import SessionHub

from ..hubtools import log_in
from ..waiting import wait_for
from .conftest import HOME_VOLUME, PREFIX
from .sandboxes import exec_in

pytestmark = pytest.mark.docker

NAME, SERVER = "room-1", "session-room-1"
RESEARCH = "room-research"  # lr-02's own grant, which her session server must not mount
OWN = {"lr-01": "lr-01-password-123", "lr-02": "lr-02-password-123"}  # accounts of their own
LEARNERS = [*OWN, *(f"lt-{i:02}" for i in range(1, 9))]  # eight without: temporary accounts
INSTRUCTOR, INSTRUCTOR_PASSWORD = "iris", "iris-password-123"
PORTAL = "/services/workbench-portal"


def cli(hub, *args) -> int:
    return main(["--settings", str(hub.settings_file), "--as", "edu", "session", *args])


def container(docker, user):
    escape = DockerSpawner._escape  # docker names: each '-' of a user or server name becomes '-2d'
    return docker.containers.get(f"{PREFIX}-{escape(user)}--{escape(SERVER)}")


def server_state(hub, user, server):
    model = hub.api("GET", f"/users/{user}").json()
    return model.get("servers", {}).get(server) if "servers" in model else None


def session_server(hub, user):
    return server_state(hub, user, SERVER)


@pytest.fixture(scope="module")
def room(sandbox_hub, alice, tmp_path_factory):
    """The session, created and pre-spawned; alice's own server runs (the one no instructor may open)."""
    hub = sandbox_hub
    root = tmp_path_factory.mktemp("room")
    data, material = root / "room-ct", root / "material"
    for folder in (data, material):
        folder.mkdir()
    (data / "case-001.txt").write_text("the teaching case\n")
    (material / "01-intro.ipynb").write_text('{"cells": [], "version": 1}')
    (root / RESEARCH).mkdir()
    for path in (data, material, root, root / RESEARCH):
        path.chmod(0o755)
    with hub.ctx.session() as s:
        accounts.add_account(s, "edu", INSTRUCTOR, INSTRUCTOR_PASSWORD)
        for user, password in OWN.items():
            accounts.add_account(s, "edu", user, password)
        datasets.add_dataset(s, "edu", "room-ct", data, title="Teaching CT", site="site-1")
        datasets.add_dataset(s, "edu", RESEARCH, root / RESEARCH, title="lr-02's research", site="site-1")
        grants.grant_access(s, "steward", "lr-02", RESEARCH, 7, "her own research")
    roster = root / "roster.csv"
    roster.write_text("username,display_name\n" + "".join(f"{u},Learner {u}\n" for u in LEARNERS))
    start = utcnow() + timedelta(minutes=20)
    assert cli(hub, "create", NAME, "--roster", str(roster), "--instructors", INSTRUCTOR, "--start", start.isoformat(),
               "--end", (start + timedelta(hours=2)).isoformat(), "--dataset", "room-ct", "--material",
               str(material), "--profile", "standard", "--temporary-accounts") == 0
    _, login = log_in(hub.url, "lr-01", OWN["lr-01"])  # one learner has logged in before the session
    assert login.status_code == 302
    assert cli(hub, "prespawn", NAME, "--concurrency", "4") == 0
    assert utcnow() < start  # every server was ready before the session starts
    yield hub, material
    for user in LEARNERS:  # whatever a failed test left running
        hub.api("DELETE", f"/users/{user}/servers/{SERVER}", json={"remove": True})


def test_prespawn_readies_every_learner_before_the_start_and_status_says_who_logged_in(room, capsys):
    hub, _ = room
    assert all((session_server(hub, u) or {}).get("ready") for u in LEARNERS)
    capsys.readouterr()
    assert cli(hub, "status", NAME, "--json") == 0
    rows = {r["learner"]: r for r in json.loads(capsys.readouterr().out)}
    assert {u: r["server"] for u, r in rows.items()} == {u: "ready" for u in LEARNERS}
    assert rows["lr-01"]["logged_in"] != "not yet"
    assert [u for u, r in rows.items() if r["logged_in"] == "not yet"] == LEARNERS[1:]
    assert not any(r["spawn_error"] for r in rows.values())
    service = SessionHub.from_settings(hub.settings)  # the test's own hub token reads no groups
    assert service.http.get(f"{service.url}/groups/group-session-{NAME}").json()["users"] == sorted(LEARNERS)


def test_a_session_server_holds_the_teaching_dataset_and_material_not_the_learners_own(room, docker):
    box = container(docker, "lr-02")
    assert exec_in(box, "ls /data") == (0, "room-ct\n")  # not her own research dataset
    code, listing = exec_in(box, f"ls ~/sessions/{NAME} ~/examples")
    assert code == 0 and "01-intro.ipynb" in listing and "researcher" in listing
    homes = [m["Name"] for m in box.attrs["Mounts"] if m["Destination"] == "/home/jovyan"]
    assert homes == [session_home_volume(HOME_VOLUME, "lr-02", SERVER)]  # not her own home volume


@pytest.mark.parametrize("user, server, refusal", [
    (INSTRUCTOR, SERVER, f"{INSTRUCTOR} is not a learner of training session '{NAME}'"),
    ("lr-01", "scratch", "named servers are for training sessions"),
    ("lr-01", "session-no-such", "training session 'no-such' is not running"),
])
def test_other_named_servers_are_refused(room, user, server, refusal):
    hub, _ = room
    hub.api("POST", f"/users/{user}")  # the hub learns of users at their first login; 409 if known
    r = hub.api("POST", f"/users/{user}/servers/{server}", json={})
    if r.status_code in (201, 202):  # the refusal may come after the hub accepted the request
        wait_for(lambda: not (server_state(hub, user, server) or {}).get("pending"), 60, what="the spawn to end")
        assert server_state(hub, user, server) is None
    assert refusal in hub.log_tail(200)


def test_a_learners_edit_survives_a_material_update(room, docker):
    hub, material = room
    edited = '{"cells": [], "mine": true}'
    code, _ = exec_in(container(docker, "lr-02"), ["sh", "-c", f"printf '%s' '{edited}' > ~/sessions/{NAME}/01-intro.ipynb"])
    assert code == 0
    (material / "01-intro.ipynb").write_text('{"cells": [], "version": 2}')
    (material / "02-more.ipynb").write_text('{"cells": []}')
    hub.api("DELETE", f"/users/lr-02/servers/{SERVER}")
    wait_for(lambda: session_server(hub, "lr-02") is None, 120, what="lr-02's server to stop")
    assert hub.api("POST", f"/users/lr-02/servers/{SERVER}", json={}).status_code in (201, 202)
    wait_for(lambda: (session_server(hub, "lr-02") or {}).get("ready"), 180, what="lr-02's server to start again")
    box = container(docker, "lr-02")
    folder = f"/home/jovyan/sessions/{NAME}"
    assert exec_in(box, ["cat", f"{folder}/01-intro.ipynb"]) == (0, edited)
    assert exec_in(box, ["cat", f"{folder}/01-intro (updated).ipynb"]) == (0, '{"cells": [], "version": 2}')
    assert exec_in(box, ["ls", folder])[1].split() == ["01-intro", "(updated).ipynb", "01-intro.ipynb",
                                                      "02-more.ipynb"]


def test_an_instructor_opens_a_learners_session_server_and_no_other_server(room):
    hub, _ = room
    http, login = log_in(hub.url, INSTRUCTOR, INSTRUCTOR_PASSWORD)
    assert login.status_code == 302
    consent = http.get(f"{hub.url}/user/lt-03/{SERVER}/lab", timeout=60)  # through the server's OAuth with the hub
    assert "/hub/api/oauth2/authorize" in consent.url  # the hub asks before letting one user into another's server
    lab = http.post(consent.url, data=re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', consent.text),
                    timeout=60)
    assert lab.status_code == 200 and lab.url.endswith(f"/user/lt-03/{SERVER}/lab"), (lab.status_code, lab.url)
    listing = http.get(f"{hub.url}/user/lt-03/{SERVER}/api/contents/home/jovyan/sessions/{NAME}", timeout=60)  # root_dir is /
    assert listing.status_code == 200 and "01-intro.ipynb" in listing.text
    other = http.get(f"{hub.url}/user/alice/lab", timeout=60)  # alice's own server runs
    assert other.status_code == 403, (other.status_code, other.url)


def test_collect_snapshots_each_learners_folder_for_the_instructors_only(room, docker, capsys):
    hub, _ = room
    code, _ = exec_in(container(docker, "lt-04"), ["sh", "-c", f"rm -rf ~/sessions/{NAME} && ln -s /etc ~/sessions/{NAME}"])
    assert code == 0
    assert cli(hub, "collect", NAME) == 0
    [snapshot] = (hub.settings_file.parent / "state" / "sessions" / NAME / "collected").iterdir()
    files = {p.name: p for p in snapshot.iterdir()}
    assert set(files) == {f"{u}.tar.gz" for u in LEARNERS}
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o440 for p in files.values())
    with tarfile.open(files["lr-02.tar.gz"]) as tar:
        assert tar.extractfile(f"sessions/{NAME}/01-intro.ipynb").read() == b'{"cells": [], "mine": true}'
    with tarfile.open(files["lt-04.tar.gz"]) as tar:  # the learner's link to /etc, and nothing of the host's /etc
        assert [(m.name, m.issym()) for m in tar.getmembers()] == [(f"sessions/{NAME}", True)]

    url = f"{hub.url}{PORTAL}/teaching/{NAME}/collected/{snapshot.name}/lr-02.tar.gz"
    instructor, _ = log_in(hub.url, INSTRUCTOR, INSTRUCTOR_PASSWORD)
    page = instructor.get(f"{hub.url}{PORTAL}/teaching", timeout=60)
    assert page.status_code == 200 and f'data-snapshot="{snapshot.name}"' in page.text
    got = instructor.get(url, timeout=60)
    assert got.status_code == 200 and got.content == files["lr-02.tar.gz"].read_bytes()
    assert got.headers["Content-Disposition"].startswith("attachment")
    learner, _ = log_in(hub.url, "lr-02", OWN["lr-02"])
    assert learner.get(url, timeout=60).status_code == 404  # not even their own: the snapshot is the instructors'


def test_end_stops_archives_ends_grants_and_removes_temporary_accounts(room, docker):
    hub, _ = room
    with hub.ctx.session() as s:
        passwords = {m.user: m.one_time_password for m in s.scalars(select(SessionMember)) if m.temporary}
    assert len(passwords) == 8
    assert cli(hub, "end", NAME) == 0
    assert all(session_server(hub, u) is None for u in LEARNERS)
    archive = hub.settings_file.parent / "state" / "sessions" / NAME / "archive"
    assert sorted(p.name for p in archive.iterdir()) == sorted(f"{u}.tar.gz" for u in LEARNERS)
    with tarfile.open(archive / "lr-02.tar.gz") as tar:
        assert tar.extractfile(f"./sessions/{NAME}/01-intro.ipynb").read() == b'{"cells": [], "mine": true}'
    volumes = {v.name for v in docker.volumes.list()}
    assert not {session_home_volume(HOME_VOLUME, u, SERVER) for u in LEARNERS} & volumes
    with hub.ctx.session() as s:
        assert not any(grants.approved_dataset_ids(s, u) for u in LEARNERS if u != "lr-02")
        assert grants.approved_dataset_ids(s, "lr-02") == [RESEARCH]  # a grant the session did not give stays
        trail = [(e.action, e.subject) for e in audit.events(s)]
    for step in ("session.stop", "session.archive", "session.end"):
        assert (step, NAME) in trail
    assert sum(a == "access.ended" and s.endswith("/room-ct") for a, s in trail) == len(LEARNERS)
    for user, password in passwords.items():
        assert ("user.remove", user) in trail
        assert log_in(hub.url, user, password)[1].status_code != 302  # the one-time password no longer logs in
        assert hub.api("GET", f"/users/{user}").status_code == 404
    assert log_in(hub.url, "lr-01", OWN["lr-01"])[1].status_code == 302  # own accounts stay
    r = hub.api("POST", f"/users/lr-01/servers/{SERVER}", json={})  # 500: refused before the hub answered
    if r.status_code in (201, 202):
        wait_for(lambda: not (session_server(hub, "lr-01") or {}).get("pending"), 60, what="the refused spawn to end")
    assert session_server(hub, "lr-01") is None  # an ended session's server no longer starts
    assert f"training session '{NAME}' is not running" in r.text + hub.log_tail(200)
