"""CaseViewer in real headless Chromium, in JupyterLab and in Voila, with no way off 127.0.0.1."""

import pytest
import requests

from .viewer_page import VIEWER, dataset, open_in_lab, pixel, wait_attr, wait_loaded

pytestmark = pytest.mark.browser

# Mediastinum window (W 350, L 50): 40 HU -> (40 - (50 - 175)) * 255 / 350 = 120.2 -> 120.
TISSUE_GREY = 120
TISSUE_VOXEL = (8, 12)  # (x, y) inside the tissue block, away from the crosshair at (20, 16)
TOLERANCE = 2


def assert_grey(rgba, value):
    assert all(abs(c - value) <= TOLERANCE for c in rgba[:3]), f"expected grey {value}, got {rgba}"


def check_viewer(page):
    x, y = TISSUE_VOXEL
    z = int(dataset(page, "axial"))
    assert z == 12
    tumour = pixel(page, "axial", x, y, z)
    assert tumour[0] > 170 and abs(tumour[1] - 60) <= TOLERANCE, f"red overlay expected on the tumour, got {tumour}"
    page.click(f"{VIEWER} input[data-segment='1']")  # hide the segment
    page.wait_for_function("() => !document.querySelector(\"input[data-segment='1']\").checked")
    assert_grey(pixel(page, "axial", x, y, z), TISSUE_GREY)
    assert_grey(pixel(page, "axial", 2, 2, z), 0)  # air
    page.click(f"{VIEWER} input[data-segment='1']")  # and show it again
    assert pixel(page, "axial", x, y, z)[0] > 170

    page.focus(VIEWER)
    page.keyboard.press("ArrowUp")
    wait_attr(page, "axial", "13")
    for _ in range(7):
        page.keyboard.press("ArrowUp")
    wait_attr(page, "axial", "20")  # past the blocks: air
    assert_grey(pixel(page, "axial", x, y, 20), 0)
    page.keyboard.press("ArrowDown")
    wait_attr(page, "axial", "19")
    assert pixel(page, "axial", x, y, 19)[0] > 170


def test_viewer_renders_in_jupyterlab(page, lab):
    open_in_lab(page, lab, "lab/tree/viewer.ipynb")
    check_viewer(page)
    labels = page.eval_on_selector_all(".wb-axial .wb-orient", "els => els.map(e => e.textContent)")
    assert labels == ["A", "P", "R", "L"]


def test_lab_slice_changes_reach_the_kernel(page, lab):
    open_in_lab(page, lab, "lab/tree/viewer.ipynb")
    page.focus(VIEWER)
    page.keyboard.press("ArrowDown")
    wait_attr(page, "axial", "11")
    page.evaluate("""() => {
        const nb = window.jupyterapp.shell.currentWidget;
        nb.content.activeCellIndex = 0;
        window.jupyterapp.commands.execute('notebook:insert-cell-below');
    }""")
    page.evaluate("""() => {
        const nb = window.jupyterapp.shell.currentWidget;
        nb.content.activeCell.model.sharedModel.setSource('print("slice is", viewer.slice)');
        return window.jupyterapp.commands.execute('notebook:run-cell');
    }""")
    page.wait_for_selector("text=slice is 11", timeout=30_000)


def test_viewer_renders_in_voila_without_cdn(page, voila):
    html = requests.get(voila.url("voila/render/viewer.ipynb"), timeout=120).text
    assert "cdn." not in html and "https://" not in html.replace("https://github.com/pallets/jinja/issues", "")
    page.goto(voila.url("voila/render/viewer.ipynb"))
    wait_loaded(page, timeout=120_000)
    check_viewer(page)
