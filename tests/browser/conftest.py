"""Browser-tier fixtures: JupyterLab and Voila on loopback, headless Chromium that may not leave 127.0.0.1.

- `notebooks`: a temp folder for both servers: viewer.ipynb (the known phantom of tests/unit/widgets
  with a tissue-block segment), broken.ipynb (a series that cannot load), browser.ipynb (a
  CaseBrowser over `demo_data`, a small synthetic lung CT cohort), cohort_overview.ipynb (the
  shipped clinician dashboard over `demo_data`).
- `lab`, `voila`: servers (session scope) serving that folder.
- `browser`: Debian's chromium through playwright (never `playwright install`).
- `page`: a fresh page whose requests off 127.0.0.1 are blocked; the test fails if there were any.
"""

import json
from pathlib import Path

import pytest

from .servers import OfflineGuard, Server, launch_chromium, write_notebook

REPO = Path(__file__).parents[2]
# The known phantom: air -1000 HU, tissue block 40 HU, bone block 1000 HU; segment 1 = tissue block.
VIEWER_CELL = '''
import numpy as np
from imaging_workbench.dicom.volume import Volume
from imaging_workbench.widgets import CaseViewer

a = np.full((24, 32, 40), -1000, np.int16)
a[4:20, 8:24, 4:20] = 40
a[4:20, 8:24, 24:36] = 1000
mask = np.zeros(a.shape, np.uint8)
mask[4:20, 8:24, 4:20] = 1
vol = Volume(a, (2.5, 0.8, 0.8), (-16.0, -12.8, 100.0), np.eye(3), "CT", "1.2.3", "phantom", "P001")
viewer = CaseViewer(vol, segmentation=(mask, [{"number": 1, "label": "tumour", "color": "#ff0000"}]))
viewer.overlay_opacity = 0.5
viewer
'''


BROKEN_CELL = '''
from imaging_workbench.widgets import CaseViewer
CaseViewer("/nonexistent/series-folder")
'''

BROWSER_CELL = '''
from imaging_workbench.widgets import CaseBrowser
CaseBrowser(root={root!r}, index_path={index!r}, page_size=5)
'''


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory):
    """One small synthetic lung CT cohort (100 patients, each with a tumour SEG) as /data would hold it."""
    from imaging_workbench.dicom.demo import DEMO_DATASETS, ensure_demo_data

    root = tmp_path_factory.mktemp("data")
    ensure_demo_data(root, "small", datasets=[DEMO_DATASETS[0]])
    return root


@pytest.fixture(scope="session")
def notebooks(tmp_path_factory, demo_data):
    root = tmp_path_factory.mktemp("notebooks")
    write_notebook(root / "viewer.ipynb", VIEWER_CELL)
    write_notebook(root / "broken.ipynb", BROKEN_CELL)
    write_notebook(root / "view3d.ipynb", VIEW3D_CELL)
    write_notebook(root / "browser.ipynb", BROWSER_CELL.format(root=str(demo_data),
                                                               index=str(root.parent / "index.sqlite")))
    shipped_dashboard(root / "cohort_overview.ipynb", "clinician/cohort_overview.ipynb",
                      data_root=str(demo_data), index_path=str(root.parent / "cohort-index.sqlite"), demo_if_empty=False)
    return root


def shipped_dashboard(path, shipped: str, **parameters) -> None:
    """A notebook of notebooks/ with its parameters cell set to `parameters`, as papermill would."""
    nb = json.loads((REPO / "notebooks" / shipped).read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", []))
    cell["source"] = "".join(f"{name} = {value!r}\n" for name, value in parameters.items())
    path.write_text(json.dumps(nb))


@pytest.fixture(scope="session")
def lab(notebooks, tmp_path_factory):
    server = Server("lab", notebooks, tmp_path_factory.mktemp("lab"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def voila(notebooks, tmp_path_factory):
    server = Server("voila", notebooks, tmp_path_factory.mktemp("voila"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = launch_chromium(p)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    guard = OfflineGuard()
    page = context.new_page()
    guard.attach(page)
    yield page
    context.close()
    assert not guard.blocked, f"the page tried to reach addresses other than 127.0.0.1: {guard.blocked}"


VIEW3D_CELL = '''
import numpy as np
from imaging_workbench.dicom.volume import Volume
from imaging_workbench.widgets import view_3d

a = np.full((24, 32, 40), -1000, np.int16)
a[4:20, 8:24, 4:20] = 40
view_3d(Volume(a, (2.5, 0.8, 0.8), (0, 0, 0), np.eye(3), "CT", "1"), segmentation=a > 0)
'''
