"""Access that ends when it should, on real sandboxes: any number of revocations for the same user,
a revocation that lands while the server is starting, and an expiry that passes while it runs.

The docker tier's access service checks every 5 s, so each server must be gone within 10 s."""

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from imaging_workbench.catalog import accounts, audit, datasets, grants
from imaging_workbench.catalog.models import Grant, ServerMount
from imaging_workbench.clock import utcnow

from ..waiting import wait_for
from .conftest import PREFIX, run_in, start_server

pytestmark = pytest.mark.docker
USER, DATASET = "dave", "kidney-d"


@pytest.fixture(scope="module")
def dave(sandbox_hub, tmp_path_factory):
    folder = tmp_path_factory.mktemp("revocation") / DATASET
    folder.mkdir()
    (folder / "scan-001.dcm.txt").write_text("pixels of kidney-d\n")
    for path in (folder, folder.parent):
        path.chmod(0o755)
    with sandbox_hub.ctx.session() as s:
        accounts.add_account(s, "steward", USER, "dave-password-123")
        datasets.add_dataset(s, "steward", DATASET, folder, site="site-1")
    sandbox_hub.api("POST", f"/users/{USER}")
    return sandbox_hub


def interval(hub) -> float:
    return hub.settings["sandbox"]["revocation_interval"]


def server_running(hub) -> bool:
    return "" in hub.api("GET", f"/users/{USER}").json()["servers"]


def seconds_until_stopped(hub, limit: float) -> float:
    started = time.monotonic()
    wait_for(lambda: not server_running(hub), limit + 30, interval=0.5, what=f"{USER}'s server to stop")
    return time.monotonic() - started


def grant(hub):
    with hub.ctx.session() as s:
        grants.grant_access(s, "steward", USER, DATASET, 7, "revocation tests")


def revoke(hub):
    with hub.ctx.session() as s:
        grants.revoke_access(s, "steward", USER, DATASET)


def last_revocation(hub) -> dict:
    with hub.ctx.session() as s:
        return audit.events(s, action="server.revoked")[-1].details


def test_revoking_three_times_in_a_row_stops_the_server_each_time(dave, docker):
    hub, took = dave, []
    for _ in range(3):
        grant(hub)
        start_server(hub, USER)
        assert run_in(docker, USER, f"ls /data/{DATASET}")[0] == 0
        revoke(hub)
        took.append(seconds_until_stopped(hub, 2 * interval(hub)))
        assert last_revocation(hub)["reasons"] == {DATASET: "revoked"}
    print(f"revocations enforced after {', '.join(f'{t:.1f}' for t in took)} s (interval {interval(hub)} s)")
    assert max(took) <= 2 * interval(hub), took


def test_a_revocation_during_the_spawn_never_leaves_the_server_running_with_the_dataset(dave, docker):
    hub = dave
    grant(hub)
    spawn = threading.Thread(target=lambda: hub.api("POST", f"/users/{USER}/server", json={"profile": "standard"}))
    spawn.start()

    def mount_recorded():  # the plan is made and the container is being created
        with hub.ctx.session() as s:
            return s.scalars(select(ServerMount).where(ServerMount.user == USER,
                                                       ServerMount.stopped_at.is_(None))).first() is not None

    wait_for(mount_recorded, 60, interval=0.05, what=f"{USER}'s spawn to record its mounts")
    revoke(hub)
    spawn.join(60)
    seconds_until_stopped(hub, 2 * interval(hub))
    assert not docker.containers.list(filters={"name": f"{PREFIX}-{USER}"})
    with hub.ctx.session() as s:
        assert s.scalars(select(ServerMount).where(ServerMount.user == USER, ServerMount.stopped_at.is_(None))).all() == []


def test_an_expiry_that_passes_while_the_server_runs_stops_it(dave):
    hub = dave
    grant(hub)
    start_server(hub, USER)
    with hub.ctx.session() as s:
        live = s.scalars(select(Grant).where(Grant.user == USER, Grant.revoked_at.is_(None))).one()
        live.expires_at = utcnow() + timedelta(seconds=2)
    time.sleep(2)  # the grant's end passes while the server runs
    took = seconds_until_stopped(hub, 2 * interval(hub))
    assert took <= 2 * interval(hub)
    assert last_revocation(hub)["reasons"] == {DATASET: "expired"}
