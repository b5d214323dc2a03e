"""Every notebook under notebooks/ runs top to bottom with papermill, inside the real sandbox image
(read-only root, uid 1000, no network, a demo dataset mounted read-only at /data)."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from imaging_workbench.dicom.demo import DEMO_DATASETS, SIZES, ensure_demo_data

pytestmark = pytest.mark.docker

REPO = Path(__file__).parents[2]
NOTEBOOKS = sorted(p.relative_to(REPO / "notebooks").as_posix() for p in (REPO / "notebooks").rglob("*.ipynb")
                   if ".ipynb_checkpoints" not in p.parts)
IMAGE = "workbench-singleuser:latest"
# Notebooks that need more than a sandbox (a running federation, an approved tool) run in their own tier.
RUN_ELSEWHERE = {"researcher/federated_statistics.ipynb": "tests/federation/test_notebook.py",
                 "researcher/run_tool.ipynb": "tests/docker/test_batch.py",  # needs an approved tool at /tools
                 "courses/intro/03_federated_statistics.ipynb": "tests/federation/test_notebook.py"}
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
MOUNTED_AS = "lung-ct-mounted"


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    out = tmp_path_factory.mktemp("cohort")
    out.chmod(0o755)
    lung = [d for d in DEMO_DATASETS if d.id == "lung-ct"]
    ensure_demo_data(out, "small", datasets=lung)
    return out / "lung-ct"


def run_in_sandbox(notebook: str, data: Path, home: Path, timeout: int = 300) -> dict:
    home.chmod(0o777)
    # Labelled with the test run, so that the run's leak check finds one a timeout left running.
    label = f"org.workbench.test-run={os.environ.get('WORKBENCH_TEST_RUN', 'manual')}"
    command = ["docker", "run", "--rm", "--label", label, "--read-only", "--tmpfs", "/tmp", "--network", "none", "--user", "1000",
               "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
               "-v", f"{REPO / 'notebooks'}:/home/jovyan/notebooks:ro", "-v", f"{data}:/data/{MOUNTED_AS}:ro",
               "-v", f"{home}:/home/jovyan/work", "-w", "/home/jovyan/work", "-e", "HOME=/home/jovyan/work",
               IMAGE, "papermill", "--log-output", "--no-progress-bar", "-k", "python3",
               f"/home/jovyan/notebooks/{notebook}", "out.ipynb", "-p", "data_root", "/data",
               "-p", "demo_if_empty", "False"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{notebook} failed in the sandbox:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return json.loads((home / "out.ipynb").read_text())


def outputs(nb: dict) -> list[dict]:
    return [o for cell in nb["cells"] if cell["cell_type"] == "code" for o in cell.get("outputs", [])]


def test_every_notebook_is_run_by_a_test():
    for notebook in NOTEBOOKS:
        if notebook in RUN_ELSEWHERE:
            runner = (REPO / RUN_ELSEWHERE[notebook]).read_text()
            assert Path(notebook).name in runner, f"{RUN_ELSEWHERE[notebook]} must run {notebook}"
        else:
            assert notebook in EXPECTED, f"{notebook} is run by no test: add what it must show to EXPECTED"


SANDBOX_NOTEBOOKS = [n for n in NOTEBOOKS if n not in RUN_ELSEWHERE]
# What each notebook must show that only the mounted dataset has: the name it is mounted under
# (the demo fallback, off here anyway, would write "lung-ct").
EXPECTED = {"researcher/view_case.ipynb": f"{SIZES['small'][0]} series in {MOUNTED_AS}",
            "clinician/case_review.ipynb": f"Reviewing 1 dataset(s): {MOUNTED_AS}",
            "clinician/cohort_overview.ipynb": f"Cohort overview of 1 dataset(s): {MOUNTED_AS}",
            "courses/intro/01_dicom_and_windowing.ipynb": f"dataset {MOUNTED_AS}: {SIZES['small'][0]} patient folders",
            "courses/intro/02_cases_and_segmentations.ipynb": f"{SIZES['small'][0]} patients in {MOUNTED_AS}"}


@pytest.mark.parametrize("notebook", SANDBOX_NOTEBOOKS)
def test_notebook_runs_in_the_sandbox_on_mounted_data(notebook, cohort, tmp_path):
    nb = run_in_sandbox(notebook, cohort, tmp_path)
    outs = outputs(nb)
    assert not [o for o in outs if o["output_type"] == "error"]
    assert any(WIDGET_VIEW in o.get("data", {}) for o in outs), "the notebook showed no widget"
    text = json.dumps(outs)
    assert "Traceback" not in text
    assert EXPECTED[notebook] in text
