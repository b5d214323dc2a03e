"""The tool the workbench ships, lung-nodule-seg: made by a recorded run of the platform's federated
training (scripts/train_shipped_tool.py, its log and result beside the weights), it passes every
check of `workbench tools add`, and on lung CT series generated apart from its training cases it
segments the nodules at Dice >= 0.7, run as a user runs it (whole series, the card's pipeline)."""

import json
import statistics

import pytest
import yaml

from imaging_workbench.cli import main
from imaging_workbench.context import WorkbenchContext
from imaging_workbench.tools import catalog, shipped
from imaging_workbench.tools.notebook import Tools

TOOL = "lung-nodule-seg"


@pytest.fixture(scope="module")
def bundle():
    [folder] = [b for b in shipped.shipped_bundles() if b.name == TOOL]
    return folder


def test_its_card_carries_the_federated_run_that_made_it(bundle):
    card = json.loads((bundle / "workbench_card.json").read_text())
    result = json.loads((bundle / "result.json").read_text())
    provenance = card["provenance"]
    assert provenance["algorithm"].startswith("federated-training") and provenance["status"] == "finished"
    assert provenance["sites"] == ["site-1", "site-2"]
    assert provenance["datasets"] == {"site-1": ["lung-ct"], "site-2": ["lung-ct-site2"]}
    assert provenance["federated_dice_per_round"] == [r["dice"] for r in result["rounds"]]
    assert all(report["policy"]["weights"] == "min-count" for report in result["sites"].values())
    log = (bundle / "training.log").read_text()
    assert f"job {provenance['job']} submitted" in log and "held-out Dice" in log


def test_it_segments_held_out_lung_nodules_at_dice_0_7(bundle, settings, tmp_path):
    settings_file = tmp_path / "workbench.yaml"
    settings_file.write_text(yaml.safe_dump({"state_dir": settings["state_dir"], "roles": {"tool_reviewers": ["rita"]}}))
    for _ in range(2):  # a second run finds it added and approved
        assert main(["--settings", str(settings_file), "--as", "platform", "tools", "add-shipped",
                     "--approve-as", "rita"]) == 0
    [tool] = catalog.list_tools(WorkbenchContext(settings, actor="rita"))
    assert (tool["id"], tool["state"], tool["added_by"], tool["approved_by"]) == (TOOL, "approved", "platform", "rita")
    cohort = shipped.held_out_cohort(tmp_path / "held-out")
    scores = shipped.held_out_dice(Tools(catalog.tools_dir(settings) / "catalog.json"), TOOL, cohort)
    print(f"held-out Dice of {TOOL}: mean {statistics.fmean(scores):.3f} over {len(scores)} series")
    assert len(scores) == shipped.HELD_OUT["patients"]
    assert statistics.fmean(scores) >= 0.7, scores
