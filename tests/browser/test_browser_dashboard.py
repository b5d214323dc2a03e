"""Bad input and the CaseBrowser dashboard, served by Voila with the workbench template."""

import pytest

from imaging_workbench.dicom.demo import SIZES

from .viewer_page import VIEWER, dataset, wait_loaded

pytestmark = pytest.mark.browser


def test_a_series_that_fails_to_load_shows_the_message_inside_the_widget(page, voila):
    page.goto(voila.url("voila/render/broken.ipynb"))
    page.wait_for_selector(f'{VIEWER}[data-state="error"]', timeout=120_000)
    assert "/nonexistent/series-folder does not exist" in page.inner_text(f"{VIEWER} .wb-error")
    assert not page.is_visible(f"{VIEWER} canvas")


def test_case_browser_opens_the_selected_series_with_its_segmentation(page, voila):
    page.goto(voila.url("voila/render/browser.ipynb"))
    page.wait_for_selector(".wb-series-table select option", timeout=120_000)
    n = SIZES["small"][0]  # the demo_data fixture: one small lung CT cohort
    assert f"1 dataset(s), {n} patient(s), {n} series" in page.inner_text(".wb-browser")
    assert page.locator(".wb-series-table select option").count() == 5  # page_size
    assert f"page 1 of {-(-n // 5)}" in page.inner_text(".wb-browser")
    page.locator(".wb-series-table select").select_option(index=1)
    wait_loaded(page)
    assert dataset(page, "maskVersion") == "1"
    assert page.locator(f"{VIEWER} input[data-segment]").count() >= 1
    assert "LUNGCT-0002" in page.inner_text(f"{VIEWER} .wb-header")


def test_view_3d_draws_offline_in_voila(page, voila):
    page.goto(voila.url("voila/render/view3d.ipynb"))
    canvas = page.wait_for_selector(".jp-OutputArea-output canvas", timeout=120_000)
    box = canvas.bounding_box()
    assert box["width"] > 100 and box["height"] > 100


def test_the_shipped_cohort_overview_renders_its_table_chart_and_viewer_offline(page, voila):
    page.goto(voila.url("voila/render/cohort_overview.ipynb"))
    wait_loaded(page, timeout=120_000)
    assert dataset(page, "maskVersion") == "1"  # the first segmented case, with its overlay
    body = page.inner_text("body")
    assert "Cohort overview of 1 dataset(s): lung-ct" in body and "import" not in body  # no code shown
    assert page.locator("table").count() >= 1 and page.locator("img").count() >= 1  # the summary and its chart
