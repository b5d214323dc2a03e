"""Ten users at once, each through the login page with a session of their own (tests/docker/crowd.py):
all ready with no error, each reaching their own server and not another's, each seeing exactly
their own dataset through the federation service from inside their sandbox; afterwards no server
and no container is left. And a start that fails under load (the server does not answer in time)
is reported with the hub's reason, tried once more, and leaves nothing half-started behind.
benchmarks/load.py runs the same journey for 100 users."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from imaging_workbench.catalog import accounts, datasets, grants
from imaging_workbench.catalog.models import ServerMount

from ..waiting import wait_for
from .conftest import PREFIX
from .crowd import visit
from .sandboxes import Box, own_sandbox_hub

pytestmark = pytest.mark.docker
USERS = [f"crowd{i}" for i in range(10)]
SLOW = Box(network="wbtest-slow-sandbox", subnet="172.29.247.0/24", prefix="wbtest-slow")
# Servers get a second to answer: every start fails the way a start fails on an overloaded machine.
IMPATIENT = "c.WorkbenchSpawner.start_timeout = 1\nc.WorkbenchSpawner.http_timeout = 1\n"


def password(user: str) -> str:
    return f"{user}-password-123"


@pytest.fixture(scope="module")
def crowd(sandbox_hub, docker, tmp_path_factory):
    """The ten users, each with a one-file dataset of their own at site-1, after their visits."""
    data = tmp_path_factory.mktemp("crowd-data")
    with sandbox_hub.ctx.session() as s:
        for user in USERS:
            accounts.add_account(s, "steward", user, password(user))
            folder = data / f"{user}-ct"
            folder.mkdir(mode=0o755)
            (folder / "scan-001.dcm.txt").write_text(f"pixels of {user}'s dataset\n")
            datasets.add_dataset(s, "steward", f"{user}-ct", folder, site="site-1")
            grants.grant_access(s, "steward", user, f"{user}-ct", 7, "load test")
    with ThreadPoolExecutor(len(USERS)) as pool:
        visits = list(pool.map(lambda u: visit(sandbox_hub, u, password(u), "standard", docker, f"{PREFIX}-{u}",
                                               timeout=240), USERS))
    yield {v.user: v for v in visits}
    for user in USERS:
        sandbox_hub.api("DELETE", f"/users/{user}/server")
    wait_for(lambda: not any("" in sandbox_hub.api("GET", f"/users/{u}").json()["servers"] for u in USERS), 120,
             what="the crowd's servers to stop")
    assert not docker.containers.list(all=True, filters={"name": f"{PREFIX}-crowd"})


def test_ten_users_at_once_all_reach_their_server_and_the_federation_service(crowd):
    errors = {user: v.error for user, v in crowd.items() if not v.ok}
    assert not errors, errors
    for user, v in crowd.items():
        assert "started" in v.server_status, v.server_status
        assert v.federation_datasets == [f"{user}-ct"], (user, v.federation_datasets)


def test_a_user_cannot_reach_another_users_server_with_their_own_cookie(sandbox_hub, crowd):
    alice, bob = USERS[0], USERS[1]  # both servers run
    http = crowd[alice].http
    assert http.get(f"{sandbox_hub.url}/user/{alice}/api/status", timeout=60).status_code == 200
    for path in (f"/user/{bob}/api/status", f"/user/{bob}/", f"/user/{bob}/api/contents/home/jovyan"):
        r = http.get(f"{sandbox_hub.url}{path}", timeout=60)
        assert r.status_code == 403, (path, r.status_code, r.url)


@pytest.mark.slow  # a hub of its own (the short timeouts): 60-65 s on a busy machine, most of it its start and stop
def test_a_start_that_fails_under_load_is_retried_once_and_leaves_nothing_half_started(tmp_path, docker):
    user = "alice"  # of sandboxes.py, with a grant on lung-a
    with own_sandbox_hub(tmp_path, docker, SLOW, extra_config=IMPATIENT) as hub:
        seen = visit(hub, user, f"{user}-password-123", "standard", docker, SLOW.container(user), timeout=120)
        assert seen.attempts == 2 and len(seen.failures) == 2, seen
        assert all("didn't respond in 1 seconds" in f or "start_timeout" in f for f in seen.failures), seen.failures
        assert seen.error and seen.ready_s is None
        wait_for(lambda: "" not in hub.api("GET", f"/users/{user}").json()["servers"], 60,
                 what="the failed start's end")
        assert not docker.containers.list(all=True, filters={"name": SLOW.container(user)})
        with hub.ctx.session() as s:  # both starts' mounts closed in the catalog
            mounts = s.scalars(select(ServerMount).where(ServerMount.user == user)).all()
            assert len(mounts) == 2, mounts
            assert all(m.stopped_at for m in mounts), [(m.started_at, m.stopped_at) for m in mounts]
