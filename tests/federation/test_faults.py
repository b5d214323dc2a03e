"""Faults: a site dies mid-job, the service restarts mid-job; every job still reaches a final state."""

import time

import pytest

from ..waiting import wait_for

pytestmark = pytest.mark.federation


def test_service_restart_during_a_job_keeps_following_it(client_for, fed_service):
    fed = client_for("alice")
    job = fed.submit("cohort-statistics", datasets=["lung-ct", "liver-ct", "liver-ct-site3"])
    fed_service.restart()  # SIGKILL: nothing is flushed on the way out
    job.wait(timeout=180, progress=False)
    assert job.state == "finished", job.row["error"]
    assert job.result().table["count"].notna().any()


def test_a_site_killed_mid_job_gives_a_partial_result_naming_it(client_for, federation, tmp_path):
    from imaging_workbench.federation import embedded

    fed = client_for("alice")
    job = fed.submit("federated-training", datasets=["lung-ct", "liver-ct", "liver-ct-site3"], rounds=3,
                     local_steps=20)
    try:
        wait_for(lambda: job.status()["status"] == "running" and job.sites()["site-3"].get("state") == "running",
                 120, what="the training job to run at site-3")
        started = time.monotonic()
        embedded.kill_site(federation, "site-3")
        job.wait(timeout=federation.task_timeout + 120, progress=False)
        elapsed = time.monotonic() - started
    finally:
        embedded.start_participant(federation, "site-3")
        from imaging_workbench.federation.hub.flare_session import FlareAdmin

        wait_for(lambda: "site-3" in FlareAdmin(federation).connected_sites(), 90, interval=1,
                 what="site-3 to reconnect")
    assert job.state == "partial", (job.state, job.row["error"])
    assert "site-3" in job.row["error"] and "site-1" not in job.row["error"]
    assert elapsed < federation.task_timeout + 90
    result = job.result(dest=tmp_path)
    assert result.raw["sites"]["site-3"]["status"] == "failed"
    assert result.model_file is not None
