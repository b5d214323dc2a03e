"""The researcher notebook runs under papermill against the live service."""

from pathlib import Path

import pytest

pytestmark = pytest.mark.federation

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "researcher" / "federated_statistics.ipynb"


def test_federated_statistics_notebook_runs_with_parameters(fed_service, fed_hub, tmp_path):
    import nbformat
    import papermill

    out = tmp_path / "out.ipynb"
    papermill.execute_notebook(str(NOTEBOOK), str(out), kernel_name="python3", cwd=str(tmp_path),
                               parameters={"url": fed_service.url, "token": fed_hub.tokens["bob"],
                                           "datasets": ["lung-ct"], "timeout": 180}, progress_bar=False)
    text = "\n".join(str(o) for cell in nbformat.read(out, 4).cells for o in cell.get("outputs", []))
    assert "status: finished" in text and "patients" in text
