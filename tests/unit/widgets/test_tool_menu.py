"""The "Run tool" menu and `CaseViewer.show_tool_result`: real tiny tools added and approved in a temp
state dir (tests/tool_bundles.py), run on a real synthetic CT series with its stored SEG. The overlay
holds the SEG's segments, the tool's and their overlaps, each a toggle; a second tool replaces the
first tool's layer; a refused run shows why and changes nothing; the saved SEG loads back."""

import json

import numpy as np
import pytest

from imaging_workbench import Tools
from imaging_workbench.context import WorkbenchContext
from imaging_workbench.deployment import validate_settings, with_defaults
from imaging_workbench.dicom import load_segmentation, load_series
from imaging_workbench.dicom.synth import generate_cohort, generate_mr_series
from imaging_workbench.tools import catalog
from imaging_workbench.widgets import CaseBrowser, CaseViewer, ToolMenu

from ...tool_bundles import METADATA, write_bundle
from .test_browser import FakeIndex

MR_INPUT = {"network_data_format": {"inputs": {"image": {**METADATA["network_data_format"]["inputs"]["image"],
                                                         "modality": "MR", "format": "magnitude"}}}}


@pytest.fixture(scope="module")
def catalog_file(tmp_path_factory):
    """Approved: tumour-seg 1.0.0 and lesion-seg 1.0.0 (CT), brain-seg 1.0.0 (MR); a draft CT tool."""
    root = tmp_path_factory.mktemp("tool-menu")
    settings = validate_settings(with_defaults({"state_dir": str(root / "state"), "database_url": None}))
    settings["roles"]["tool_reviewers"] = ["rita", "ravi"]
    rita, ravi = (WorkbenchContext(settings, actor=a) for a in ("rita", "ravi"))
    for tool_id, card, metadata in [("tumour-seg", {}, None), ("lesion-seg", {"id": "lesion-seg"}, None),
                                    ("brain-seg", {"id": "brain-seg", "modality": "MR", "body_part": "head"}, MR_INPUT),
                                    ("draft-seg", {"id": "draft-seg"}, None)]:
        catalog.add(rita, write_bundle(root / "bundles" / tool_id, card=card, metadata=metadata))
        if tool_id != "draft-seg":
            catalog.approve(ravi, tool_id, "1.0.0")
    return catalog.tools_dir(settings) / "catalog.json"


@pytest.fixture(scope="module")
def ct(tmp_path_factory):
    """A synthetic chest CT with its stored SEG (organs and a tumour)."""
    return generate_cohort(tmp_path_factory.mktemp("ct"), "lung-ct", 1, modality="CT", region="chest",
                           tumour_organ="lung", shape=(12, 32, 32), seed=5, workers=1)[0]


@pytest.fixture
def viewer(ct):
    return CaseViewer(load_series(ct.folder), segmentation=ct.seg_path)


def labels_of(menu) -> list[str]:
    return [s["label"] for s in menu.viewer.segments]


def test_the_menu_lists_only_the_approved_tools_for_the_series_modality(catalog_file, viewer, ct, tmp_path):
    menu = ToolMenu(viewer, Tools(catalog=catalog_file))
    assert [value for _, value in menu.choice.options] == [("lesion-seg", "1.0.0"), ("tumour-seg", "1.0.0")]
    assert not menu.run_button.disabled and menu.save_button.disabled

    mr = generate_mr_series(tmp_path / "mr", shape=(8, 16, 16), seed=1)
    mr_menu = ToolMenu(CaseViewer(mr.folder), Tools(catalog=catalog_file))
    assert [value for _, value in mr_menu.choice.options] == [("brain-seg", "1.0.0")]

    ct_only = tmp_path / "ct-only" / "catalog.json"  # a deployment whose only tools are for CT
    ct_only.parent.mkdir()
    ct_only.write_text(json.dumps({"tools": [c for c in Tools(catalog=catalog_file).cards() if c["modality"] == "CT"]}))
    none = ToolMenu(CaseViewer(mr.folder), Tools(catalog=ct_only))
    assert list(none.choice.options) == [] and none.run_button.disabled
    assert "no approved tool for MR" in none.status.value


def test_run_shows_the_tools_segments_beside_the_stored_seg_and_their_agreement(catalog_file, viewer, ct):
    stored_labels, stored_segments = load_segmentation(ct.seg_path, viewer.volume)
    before = viewer.mask_version
    menu = ToolMenu(viewer, Tools(catalog=catalog_file))
    menu.choice.value = ("tumour-seg", "1.0.0")
    menu.run_button.click()

    result = menu.result
    assert result is not None and result.tool["id"] == "tumour-seg" and not menu.run_button.disabled
    assert viewer.mask_version == before + 1 and viewer.tool_result is result
    segments = {s["number"]: s for s in viewer.segments}
    assert [segments[s["number"]]["label"] for s in stored_segments] == [s["label"] for s in stored_segments]
    tool_numbers = [n for n, s in segments.items() if s["label"] == "tumour (tumour-seg 1.0.0)"]
    assert len(tool_numbers) == 1 and tool_numbers[0] > max(s["number"] for s in stored_segments)
    assert sorted(viewer.visible_segments) == sorted(segments)
    assert len({s["color"] for s in viewer.segments}) == len(viewer.segments)  # every kind its own colour

    # The label map, by construction: SEG alone, tool alone, and one segment per overlapping pair.
    shown, tool = viewer._labels, result.labels > 0
    seg = stored_labels > 0
    assert np.array_equal(shown[seg & ~tool], stored_labels[seg & ~tool])
    assert (shown[tool & ~seg] == tool_numbers[0]).all() and (tool & ~seg).any()
    pairs = sorted(set(stored_labels[seg & tool].tolist()))
    assert pairs, "the random tool should overlap the stored SEG somewhere"
    by_label = {s["label"]: n for n, s in segments.items()}
    for number in pairs:
        name = next(s["label"] for s in stored_segments if s["number"] == number)
        text = (f"{name}: SEG and tumour-seg agree" if name.lower().startswith("tumour")
                else f"{name} (SEG) overlaps tumour (tumour-seg)")
        assert (shown[(stored_labels == number) & tool] == by_label[text]).all()
    assert len(segments) == len(stored_segments) + 1 + len(pairs)
    assert "done: tumour-seg 1.0.0: tumour" in menu.status.value and " ml" in menu.status.value


def test_a_second_tool_replaces_the_first_tools_layer_and_keeps_the_seg(catalog_file, viewer, ct):
    stored = [(s["number"], s["label"], s["color"]) for s in viewer.segments]
    menu = ToolMenu(viewer, Tools(catalog=catalog_file))
    menu.choice.value = ("tumour-seg", "1.0.0")
    menu.run_button.click()
    menu.choice.value = ("lesion-seg", "1.0.0")
    menu.run_button.click()
    assert viewer.tool_result.tool["id"] == "lesion-seg"
    assert not any("tumour-seg" in label for label in labels_of(menu))
    assert "tumour (lesion-seg 1.0.0)" in labels_of(menu)
    assert [(s["number"], s["label"], s["color"]) for s in viewer.segments][:len(stored)] == stored


def test_a_refused_run_shows_why_and_changes_no_overlay(catalog_file, viewer):
    segments, version, shown = list(viewer.segments), viewer.mask_version, viewer._labels.copy()
    menu = ToolMenu(viewer, Tools(catalog=catalog_file, memory_limit="1M"))  # the card needs 2G
    menu.run_button.click()
    assert "did not run" in menu.status.value and "needs 2G of memory" in menu.status.value
    assert "what to do:" in menu.status.value and "Traceback" not in menu.status.value
    assert viewer.segments == segments and viewer.mask_version == version
    assert np.array_equal(viewer._labels, shown)
    assert menu.result is None and menu.save_button.disabled and not menu.run_button.disabled


def test_save_writes_a_seg_that_loads_back_onto_the_series(catalog_file, viewer, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    menu = ToolMenu(viewer, Tools(catalog=catalog_file))
    menu.choice.value = ("tumour-seg", "1.0.0")
    menu.run_button.click()
    menu.save_button.click()
    path = tmp_path / "tool-results" / "tumour-seg" / f"{viewer.volume.series_uid}.dcm"
    assert path.is_file() and str(path) in menu.status.value
    labels, segments = load_segmentation(path, viewer.volume)
    assert labels.shape == viewer.volume.array.shape
    assert np.array_equal(labels, menu.result.labels)
    assert [s["label"] for s in segments] == ["tumour"]


def test_without_a_stored_seg_the_tools_labels_show_alone(catalog_file, ct):
    viewer = CaseViewer(load_series(ct.folder))
    result = Tools(catalog=catalog_file).run("tumour-seg", viewer.volume)
    viewer.show_tool_result(result)
    assert [s["label"] for s in viewer.segments] == ["tumour (tumour-seg 1.0.0)"]
    assert np.array_equal(viewer._labels, result.labels)


def test_a_result_on_another_grid_is_refused_naming_both_shapes(catalog_file, ct, viewer):
    result = Tools(catalog=catalog_file).run("tumour-seg", viewer.volume)
    result.labels = result.labels[:-1]
    with pytest.raises(ValueError, match=r"labels \(11, 32, 32\), this viewer's series \(12, 32, 32\)"):
        viewer.show_tool_result(result)


def test_the_browser_offers_the_menu_when_given_tools(catalog_file):
    browser = CaseBrowser(source=FakeIndex(n=4), tools=Tools(catalog=catalog_file))
    browser.open_series("lung-ct", "1.3.0")
    assert isinstance(browser.tool_menu, ToolMenu) and browser.tool_menu in browser.viewer_box.children
    assert CaseBrowser(source=FakeIndex(n=4), tools=False).tool_menu is None
