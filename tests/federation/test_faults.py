"""Faults: the service restarts mid-job; a site dies with two jobs in flight (one mid-training,
one right after committing a charge); every job still reaches a final state, and the site's
ledger keeps the charge whose result never left."""

import subprocess
import sys
import time

import pytest

from ..waiting import wait_for
from .site_admin import charges, ledger

pytestmark = pytest.mark.federation


def test_service_restart_during_a_job_keeps_following_it(client_for, fed_service):
    fed = client_for("alice")
    job = fed.submit("cohort-statistics", datasets=["lung-ct", "liver-ct", "liver-ct-site3"])
    fed_service.restart()  # SIGKILL: nothing is flushed on the way out
    job.wait(timeout=180, progress=False)
    assert job.state == "finished", job.row["error"]
    assert job.result().table["count"].notna().any()


def statistics(fed, datasets, timeout=180, **params):
    return fed.submit("cohort-statistics", datasets=datasets, **params).wait(timeout=timeout, progress=False)


@pytest.fixture(scope="module")
def site_3_crash(client_for, federation):
    """alice's training job runs at site-3 when erin's statistics job there commits its charge and
    the site dies (the fault drill, for erin's jobs only): one crash, both jobs' waits at once.
    Returns both jobs and the seconds from the crash to the training job's end."""
    from imaging_workbench.federation import embedded
    from imaging_workbench.federation.hub.flare_session import FlareAdmin
    from imaging_workbench.federation.site.release import DRILL_FILE

    training = client_for("alice").submit("federated-training", rounds=3, local_steps=20,
                                          datasets=["lung-ct", "liver-ct", "liver-ct-site3"])
    drill = federation.kit("site-3") / "local" / DRILL_FILE
    try:
        wait_for(lambda: training.status()["status"] == "running"
                 and training.sites()["site-3"].get("state") == "running",
                 120, what="the training job to run at site-3")
        drill.write_text("after-charge erin")
        charged = client_for("erin").submit("cohort-statistics", datasets=["lung-ct", "brain-mr"], epsilon=1.0)
        wait_for(lambda: embedded.pid_of(federation, "site-3") is None, 120, interval=0.2,
                 what="site-3 to die at the drill")
        crashed = time.monotonic()
        training.wait(timeout=federation.task_timeout + 120, progress=False)
        elapsed = time.monotonic() - crashed
        charged.wait(timeout=federation.task_timeout + 120, progress=False)
    finally:
        drill.unlink(missing_ok=True)
        embedded.kill_site(federation, "site-3")  # whatever the drill left
        embedded.start_participant(federation, "site-3")
    wait_for(lambda: "site-3" in FlareAdmin(federation).connected_sites(), 90, interval=1, what="site-3 to reconnect")
    return training, charged, elapsed


def test_a_site_killed_mid_job_gives_a_partial_result_naming_it(site_3_crash, federation, tmp_path):
    job, _, elapsed = site_3_crash
    assert job.state == "partial", (job.state, job.row["error"])
    assert "site-3" in job.row["error"] and "site-1" not in job.row["error"]
    assert elapsed < federation.task_timeout + 90
    result = job.result(dest=tmp_path)
    assert result.raw["sites"]["site-3"]["status"] == "failed"
    assert result.model_file is not None


def test_a_site_killed_between_charge_and_send_keeps_the_charge_and_the_budget_survives_restarts(
        site_3_crash, client_for, federation):
    _, job, _ = site_3_crash
    fed = client_for("erin")
    assert job.state == "partial" and "site-3" in job.row["error"], job.row["error"]
    interrupted = [r for r in charges(federation, "site-3", "erin", "brain-mr") if r["job_id"] == job.id]
    assert [r["status"] for r in interrupted] == ["charged"]  # and never released

    after = statistics(fed, ["brain-mr"], epsilon=1.0)
    assert after.state == "finished", after.row["error"]
    rows = charges(federation, "site-3", "erin", "brain-mr")
    assert {r["job_id"]: r["status"] for r in rows} == {job.id: "unreleased", after.id: "released"}
    assert after.result().raw["sites"]["site-3"]["budget"]["datasets"]["brain-mr"]["spent"] == pytest.approx(2.0)

    kit = str(federation.kit("site-3"))
    reset = subprocess.run([sys.executable, "-m", "imaging_workbench.cli", "site", "budget", "reset", "--kit", kit,
                            "--researcher", "erin", "--dataset", "brain-mr", "--reason", "drill over",
                            "--admin", "site3-admin"], capture_output=True, text=True, timeout=60)
    assert reset.returncode == 0, reset.stderr
    trail = ledger(federation, "site-3").audit_rows()
    assert any(r["action"] == "reset" and r["actor"] == "site3-admin" and r["researcher"] == "erin" for r in trail)
    assert statistics(fed, ["brain-mr"], epsilon=1.0).result().raw["sites"]["site-3"]["budget"]["datasets"][
        "brain-mr"]["spent"] == pytest.approx(1.0)
