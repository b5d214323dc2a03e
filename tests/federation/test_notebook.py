"""The federated notebooks run under papermill against the live service: the researcher's, and the
intro course's exercise (notebooks/courses/intro)."""

import re
from pathlib import Path

import pytest

from imaging_workbench.dicom.demo import SIZES

pytestmark = pytest.mark.federation

NOTEBOOKS = Path(__file__).parents[2] / "notebooks"
NOTEBOOK = NOTEBOOKS / "researcher" / "federated_statistics.ipynb"
COURSE_EXERCISE = NOTEBOOKS / "courses" / "intro" / "03_federated_statistics.ipynb"


def run_notebook(notebook: Path, tmp_path: Path, **parameters) -> str:
    """Execute `notebook` with papermill in `tmp_path`; the text of all its outputs."""
    import nbformat
    import papermill

    out = tmp_path / "out.ipynb"
    papermill.execute_notebook(str(notebook), str(out), kernel_name="python3", cwd=str(tmp_path),
                               parameters=parameters, progress_bar=False)
    return "\n".join(str(o) for cell in nbformat.read(out, 4).cells for o in cell.get("outputs", []))


def test_federated_statistics_notebook_runs_with_parameters(fed_service, fed_hub, tmp_path):
    text = run_notebook(NOTEBOOK, tmp_path, url=fed_service.url, token=fed_hub.tokens["bob"],
                        datasets=["lung-ct"], timeout=180)
    assert "status: finished" in text and "patients" in text


def copy_of_the_site_index(federation, site: str, to: Path) -> Path:
    """A consistent copy of a site's private index (the sandbox's index has the same tables and
    paths relative to the dataset's folder): the notebook then re-reads only changed files, where
    indexing the dataset anew took 23 s."""
    import sqlite3

    from imaging_workbench.federation.site.data import INDEX_FILE

    with sqlite3.connect(federation.kit(site) / "local" / INDEX_FILE) as source, sqlite3.connect(to) as copy:
        source.backup(copy)
    return to


def test_course_exercise_shows_noisy_counts_with_small_cells_suppressed(fed_service, fed_hub, federation, demo_data,
                                                                        tmp_path):
    # bob holds a grant for lung-ct only; the same dataset is "mounted" for the exact comparison.
    spec, folder = demo_data["lung-ct"]
    index = copy_of_the_site_index(federation, spec.site, tmp_path / "index.sqlite")
    text = run_notebook(COURSE_EXERCISE, tmp_path, url=fed_service.url, token=fed_hub.tokens["bob"],
                        datasets=["lung-ct"], timeout=180, data_root=str(folder.parent), index_path=str(index))
    assert "status: finished" in text
    # Five-year age bands hold about ten patients each and several categories none: some must go.
    suppressed = re.search(r"(\d+) of (\d+) cells suppressed", text)
    assert suppressed and 0 < int(suppressed[1]) < int(suppressed[2]), f"suppressed cells: {suppressed}\n{text[-3000:]}"
    exact = SIZES["small"][0]
    assert f"lung-ct: {exact} patients in your sandbox" in text
    assert re.search(rf"exact {exact}, released \d+: the noise added [+-]\d+", text), text[-3000:]
