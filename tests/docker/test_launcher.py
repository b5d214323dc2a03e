"""A new researcher finds the workbench in JupyterLab (our extension, extensions/lab): the file
browser shows ~/examples, where the server's start delivered the shipped researcher and
clinician notebooks from the image (imaging_workbench/material.py, whose keeping of a user's
edits tests/unit/test_material.py and a session server's restart in test_session_lifecycle.py
show), the launcher offers "Browse cases" and "New federated job", and each card
opens a new notebook in the home, never over an existing one, whose widget runs: the CaseBrowser
lists the approved dataset and opens a case in the viewer, the federated job form offers its
algorithms. Through the real hub and the real sandbox; every request off 127.0.0.1 is refused
and counted (OfflineGuard), and the count must be zero.

Then, on the same server, nothing leaves for the web from the other pages a user opens: the hub's
pages, the sandbox's Voila rendering a notebook that holds LaTeX (so MathJax is wanted: it is
typeset by the MathJax the sandbox's server ships), and 404 pages of the hub, the server and Voila.
Screenshots show what each page looks like without the web."""

import json
import os
import shlex

import pytest

from imaging_workbench.catalog import accounts, datasets, grants
from imaging_workbench.dicom.synth import generate_cohort

from ..browser.servers import OfflineGuard, signed_in_page
from ..browser.viewer_page import VIEWER, wait_loaded
from ..screenshots import save_screenshot
from .conftest import run_in, start_server, stop_server

pytestmark = [pytest.mark.docker, pytest.mark.browser]

USER, PASSWORD = "lena", "lena-password-123"  # a new user: no server, no files before this test
DATASET, PATIENTS = "launcher-ct", 2
CATEGORY = "Imaging Workbench"
HOME = "/home/jovyan"
MINE = "# lena's own notes\n"  # in ~/cases-1.ipynb before she clicks: it must survive
LATEX = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# Windowing\n",
                                                                      "$$ y = \\frac{x - c}{w} + \\frac{1}{2} $$"]},
                   {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                    "source": ["print('window ready')"]}],
         "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
         "nbformat": 4, "nbformat_minor": 5}
SHIPPED = ["./clinician/case_review.ipynb", "./clinician/cohort_overview.ipynb", "./researcher/federated_statistics.ipynb",
           "./researcher/run_tool.ipynb", "./researcher/view_case.ipynb"]


@pytest.fixture(scope="module")
def lenas_server(sandbox_hub, tmp_path_factory):
    """lena with a sandbox grant on a small synthetic lung CT cohort of her own, server started."""
    folder = tmp_path_factory.mktemp("launcher-data") / DATASET
    generate_cohort(folder, DATASET, PATIENTS, modality="CT", region="chest", tumour_organ="lung",
                    shape=(16, 32, 32), workers=1)
    for dirpath, _, filenames in os.walk(folder):  # the sandbox reads it as uid 1000
        os.chmod(dirpath, 0o755)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)
    with sandbox_hub.ctx.session() as s:
        accounts.add_account(s, "steward", USER, PASSWORD)
        datasets.add_dataset(s, "steward", DATASET, folder, site="site-1")
        grants.grant_access(s, "steward", USER, DATASET, 7, "launcher test")
    start_server(sandbox_hub, USER)
    yield sandbox_hub
    stop_server(sandbox_hub, USER)


def card(page, label: str):
    return page.locator(f'.jp-LauncherCard[data-category="{CATEGORY}"]', has_text=label)


def open_from_launcher(page, label: str, notebook: str):
    """Click the launcher card `label`; wait for the tab of the new notebook `notebook`."""
    card(page, label).click()
    page.locator(".lm-TabBar-tabLabel", has_text=notebook).wait_for(timeout=60_000)
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")


def output_text(notebook) -> str:
    return notebook.locator(".jp-OutputArea").first.inner_text() if notebook.locator(".jp-OutputArea").count() else ""


def test_a_new_user_opens_a_case_and_a_federated_job_from_the_launcher(lenas_server, docker, chromium):
    hub, guard = lenas_server, OfflineGuard()
    code, out = run_in(docker, USER, f"cd {HOME}/examples && find . -name '*.ipynb' | sort")
    assert (code, out.split()) == (0, SHIPPED), out
    code, out = run_in(docker, USER, f"printf %s {shlex.quote(MINE)} > {HOME}/cases-1.ipynb")
    assert code == 0, out
    page = signed_in_page(chromium, guard, hub.url, USER, PASSWORD, f"/user/{USER}/lab")
    try:
        page.locator(".jp-DirListing-itemText").get_by_text("examples", exact=True).wait_for(timeout=90_000)
        try:
            card(page, "Browse cases").wait_for(timeout=30_000)
        except Exception as e:
            raise AssertionError(f"the launcher has no {CATEGORY} cards: is @imaging-workbench/lab in the image "
                                 "(jupyter labextension list)?") from e
        assert card(page, "New federated job").count() == 1
        save_screenshot(page, "launcher-01-new-user")

        notebook = open_from_launcher(page, "Browse cases", "cases-2.ipynb")  # cases-1.ipynb is hers
        table = notebook.locator(".wb-series-table select option")
        try:
            table.first.wait_for(timeout=120_000)
        except Exception as e:
            raise AssertionError(f"no CaseBrowser in the new notebook; its output: {output_text(notebook)!r}") from e
        assert f"1 dataset(s), {PATIENTS} patient(s), {PATIENTS} series" in notebook.locator(".wb-browser").inner_text()
        notebook.locator(".wb-series-table select").select_option(index=0)
        wait_loaded(page, timeout=120_000)
        assert "LAUNCHERCT-000" in notebook.locator(f"{VIEWER} .wb-header").inner_text()  # a patient of the cohort
        save_screenshot(page, "launcher-02-case-open")

        page.locator('[data-command="launcher:create"]').first.click()
        notebook = open_from_launcher(page, "New federated job", "federated-job-1.ipynb")
        try:
            notebook.locator(".jp-OutputArea button", has_text="Submit").wait_for(timeout=120_000)
        except Exception as e:
            raise AssertionError(f"no federated job form in the new notebook; its output: {output_text(notebook)!r}") from e
        save_screenshot(page, "launcher-03-federated-job")
    finally:
        page.context.close()
    assert guard.blocked == [], f"pages asked the web for: {guard.blocked}"

    code, listing = run_in(docker, USER, f"cat {HOME}/cases-1.ipynb; cd {HOME} && ls *.ipynb")
    assert code == 0, listing
    assert listing == MINE + "cases-1.ipynb\ncases-2.ipynb\nfederated-job-1.ipynb\n"


def test_no_page_asks_the_web_for_anything(lenas_server, docker, chromium):
    hub, guard = lenas_server, OfflineGuard()
    code, out = run_in(docker, USER, f"mkdir -p {HOME}/offline && cat > {HOME}/offline/latex.ipynb <<'EOF'\n{json.dumps(LATEX)}\nEOF")
    assert code == 0, out
    page = signed_in_page(chromium, guard, hub.url, USER, PASSWORD, "/hub/home")
    try:
        save_screenshot(page, "offline-01-hub-home")
        page.goto(f"{hub.url}/hub/token")
        page.goto(f"{hub.url}/hub/no-such-page")
        save_screenshot(page, "offline-02-hub-404")
        page.goto(f"{hub.url}/user/{USER}/lab")
        page.wait_for_selector("#jp-main-dock-panel", timeout=90_000)
        page.wait_for_timeout(3000)  # late requests: extensions, news, update checks
        save_screenshot(page, "offline-03-jupyterlab")
        # JupyterLab's offer to fetch Jupyter news from the web is switched off, not merely unanswered.
        assert page.locator("text=official Jupyter news").count() == 0
        page.goto(f"{hub.url}/user/{USER}/voila/render/home/jovyan/offline/latex.ipynb")
        page.wait_for_selector("text=window ready", timeout=90_000)
        # The LaTeX is typeset, by the MathJax the sandbox's own server ships.
        page.wait_for_selector("#rendered_cells .MathJax_Display", timeout=60_000)
        assert page.locator("text=\\frac").count() == 0
        save_screenshot(page, "offline-04-voila-latex")
        for path in (f"/user/{USER}/voila/render/home/jovyan/missing.ipynb", f"/user/{USER}/no-such-page"):
            response = page.goto(f"{hub.url}{path}")
            assert response.status == 404, path
        save_screenshot(page, "offline-05-server-404")
    finally:
        page.context.close()
    assert guard.blocked == [], f"pages asked the web for: {guard.blocked}"
