"""Nothing leaves for the web from the pages a user opens through the real hub and their real
sandbox: the hub's pages, JupyterLab, the sandbox's Voila rendering a notebook that holds LaTeX
(so MathJax is wanted: it is typeset by the MathJax the sandbox's server ships), and 404 pages of the hub, the server and Voila. Every request a page makes
to an address other than 127.0.0.1 is refused and counted at the browser (OfflineGuard); the
count must be zero. Screenshots show what each page looks like without the web."""

import json

import pytest

from imaging_workbench.catalog import accounts

from ..browser.servers import OfflineGuard, signed_in_page
from ..screenshots import save_screenshot
from .conftest import run_in, start_server, stop_server

pytestmark = [pytest.mark.docker, pytest.mark.browser]

USER, PASSWORD = "dora", "dora-password-123"
LATEX = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# Windowing\n",
                                                                      "$$ y = \\frac{x - c}{w} + \\frac{1}{2} $$"]},
                   {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                    "source": ["print('window ready')"]}],
         "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
         "nbformat": 4, "nbformat_minor": 5}


@pytest.fixture(scope="module")
def doras_server(sandbox_hub, docker):
    with sandbox_hub.ctx.session() as s:
        accounts.add_account(s, "steward", USER, PASSWORD)
    start_server(sandbox_hub, USER)
    code, out = run_in(docker, USER, f"cat > /home/jovyan/latex.ipynb <<'EOF'\n{json.dumps(LATEX)}\nEOF")
    assert code == 0, out
    yield sandbox_hub
    stop_server(sandbox_hub, USER)


def test_no_page_asks_the_web_for_anything(doras_server, chromium):
    hub, guard = doras_server, OfflineGuard()
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
        page.goto(f"{hub.url}/user/{USER}/voila/render/home/jovyan/latex.ipynb")
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
