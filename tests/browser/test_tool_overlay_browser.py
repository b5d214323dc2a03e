"""Add -> approve -> run -> overlay, in real headless Chromium, in JupyterLab and in Voila, offline.

The notebook (written by `tool_notebook` into the shared `notebooks` folder) adds and approves a
real tiny MONAI bundle (tests/tool_bundles.py) in its own state dir, and shows a CaseViewer of a
synthetic CT series with its stored SEG above a ToolMenu. The test clicks Run in the page: the
tool's segments join the SEG's toggles and the overlay's voxels are replaced (maskVersion grows).
The `page` fixture fails a test on any request off 127.0.0.1.
"""

import pytest

from .conftest import REPO
from .servers import write_notebook
from .viewer_page import VIEWER, dataset, open_in_lab, wait_loaded
from ..waiting import wait_for

pytestmark = pytest.mark.browser

TOOL_CELL = '''
import importlib.util, tempfile
from pathlib import Path

import ipywidgets as W
from imaging_workbench import Tools
from imaging_workbench.context import WorkbenchContext
from imaging_workbench.deployment import validate_settings, with_defaults
from imaging_workbench.dicom.synth import generate_cohort
from imaging_workbench.tools import catalog
from imaging_workbench.widgets import CaseViewer, ToolMenu

spec = importlib.util.spec_from_file_location("tool_bundles", {bundles!r})
tool_bundles = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tool_bundles)

root = Path(tempfile.mkdtemp(dir={state!r}))  # one state dir per kernel: Lab and Voila each build their own
settings = validate_settings(with_defaults({{"state_dir": str(root / "state"), "database_url": None}}))
settings["roles"]["tool_reviewers"] = ["rita", "ravi"]
catalog.add(WorkbenchContext(settings, actor="rita"), tool_bundles.write_bundle(root / "bundle"))
catalog.approve(WorkbenchContext(settings, actor="ravi"), "tumour-seg", "1.0.0")
ct = generate_cohort(root / "data", "lung-ct", 1, modality="CT", region="chest", tumour_organ="lung",
                     shape=(12, 32, 32), seed=5, workers=1)[0]
viewer = CaseViewer(ct.folder, segmentation=ct.seg_path)
W.VBox([viewer, ToolMenu(viewer, Tools(catalog=catalog.tools_dir(settings) / "catalog.json"))])
'''


@pytest.fixture(scope="session")
def tool_notebook(notebooks, tmp_path_factory) -> str:
    state = tmp_path_factory.mktemp("tool-overlay-state")
    write_notebook(notebooks / "tool_overlay.ipynb",
                   TOOL_CELL.format(bundles=str(REPO / "tests" / "tool_bundles.py"), state=str(state)))
    return "tool_overlay.ipynb"


def segment_labels(page) -> list[str]:
    return page.eval_on_selector_all(f"{VIEWER} .wb-seg", "els => els.map(e => e.textContent.trim())")


def run_the_tool_and_see_its_overlay(page):
    wait_for(lambda: segment_labels(page) and dataset(page, "maskVersion"), 60, 0.2, "the stored SEG's overlay")
    stored, before = segment_labels(page), int(dataset(page, "maskVersion"))
    assert stored and not any("tumour-seg" in label for label in stored)
    page.wait_for_selector(".wb-tool-run:not([disabled])", timeout=30_000)
    page.click(".wb-tool-run")
    page.wait_for_selector(".wb-tool-status:has-text('done: tumour-seg 1.0.0')", timeout=60_000)
    wait_for(lambda: "tumour (tumour-seg 1.0.0)" in segment_labels(page), 30, 0.2, "the tool's segment toggle")
    wait_for(lambda: int(dataset(page, "maskVersion") or -1) > before, 30, 0.2, "the tool's overlay voxels")
    labels = segment_labels(page)
    assert labels[:len(stored)] == stored  # the SEG's segments stay, first, as they were
    assert any("SEG and tumour-seg agree" in label or "(SEG) overlaps" in label for label in labels)
    assert page.eval_on_selector(".wb-tool-save", "el => el.disabled") is False


def test_a_tools_mask_shows_beside_the_stored_seg_in_voila(page, voila, tool_notebook):
    page.goto(voila.url(f"voila/render/{tool_notebook}"))
    wait_loaded(page, timeout=120_000)
    run_the_tool_and_see_its_overlay(page)


def test_a_tools_mask_shows_beside_the_stored_seg_in_jupyterlab(page, lab, tool_notebook):
    # A workspace of its own: Lab restores a workspace's open tabs, and the default one's are the
    # other Lab tests' (a hidden tab of this notebook there would hold the first `.wb-viewer`).
    open_in_lab(page, lab, f"lab/workspaces/tool-overlay/tree/{tool_notebook}", timeout=120_000)
    run_the_tool_and_see_its_overlay(page)
