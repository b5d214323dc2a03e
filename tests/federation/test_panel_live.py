"""FederatedJobPanel driving a job on the live service: real hub token, real FLARE sites."""

import pytest

from ..waiting import wait_for

pytestmark = pytest.mark.federation


def test_panel_offers_only_granted_datasets_and_follows_a_job_to_its_result(client_for):
    from imaging_workbench.federation.panel import FederatedJobPanel

    panel = FederatedJobPanel(client_for("bob"), poll=0.25)
    assert [value for _, value in panel.datasets.options] == ["lung-ct"]  # bob's one grant
    panel.algorithm.value = "cohort-statistics"
    panel.datasets.value = ("lung-ct",)
    job = panel.submit()
    assert job is not None, panel.message.value
    wait_for(lambda: job.state in ("finished", "partial", "failed", "cancelled"), 240, what="the panel's job")
    wait_for(lambda: "finished" in panel.message.value, 30, what="the panel to show the final state")
    assert [bar.bar_style for bar in panel.progress.children] == ["success"]
    table = panel.job.result().table
    assert "patients" in set(table["variable"])
