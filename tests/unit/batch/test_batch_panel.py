"""BatchRunPanel against an in-memory stand-in for the portal: a refusal names its field, a run is
followed to its summary table (the failed case with its error), cancel stops following."""

from imaging_workbench.batch.client import BatchError
from imaging_workbench.widgets.batch_panel import BatchRunPanel

RESULTS = [{"case": "P1", "status": "ok", "seconds": 1.5, "output": "~/batch/7/P1.ipynb", "error": None},
           {"case": "P2", "status": "failed", "seconds": 0.8, "output": "~/batch/7/P2.ipynb",
            "error": "InvalidDicomError: not a DICOM <file>"}]


class PortalStandIn:
    """Answers like the portal's batch API: the run is running, then finished on the next look."""

    def __init__(self):
        self.submitted, self.looks = [], 0

    def run(self, notebook, dataset, parameters, per_case):
        if dataset != "lung-ct":
            raise BatchError(400, f"bea holds no live sandbox grant for '{dataset}'", "request access",
                             {"dataset": "no grant"})
        self.submitted.append((notebook, dataset, parameters, per_case))
        return {"id": 7, "state": "running", "progress": {"cases": 2, "done": 0, "failed": 0}}

    def show(self, run_id):
        self.looks += 1
        if self.looks == 1:
            return {"id": run_id, "state": "running", "progress": {"cases": 2, "done": 1, "failed": 1}}
        return {"id": run_id, "state": "finished", "error": None,
                "summary": {"cases": 2, "ok": 1, "failed": 1, "results": RESULTS}}

    def cancel(self, run_id):
        return {"id": run_id, "state": "cancelled", "error": "cancelled by bea"}


def panel(portal, datasets=("lung-ct", "colon-ct")):
    p = BatchRunPanel(datasets=list(datasets), client=portal, poll=0.01)
    p._follow = lambda: None  # the test looks itself, step by step
    return p


def test_a_refusal_names_the_field_and_starts_nothing():
    portal = PortalStandIn()
    p = panel(portal)
    p.notebook.value, p.dataset.value = "work/m.ipynb", "colon-ct"
    assert p.submit() is None
    assert "dataset" in p.message.value and "no live sandbox grant" in p.message.value and not portal.submitted
    p.dataset.value, p.parameters.value = "lung-ct", "{not json"
    assert p.submit() is None and "parameters: not JSON" in p.message.value


def test_a_run_is_followed_to_its_summary_table():
    portal = PortalStandIn()
    p = panel(portal)
    p.notebook.value, p.dataset.value, p.parameters.value = "work/m.ipynb", "lung-ct", '{"label": "x"}'
    p.submit()
    assert portal.submitted == [("work/m.ipynb", "lung-ct", {"label": "x"}, True)]
    assert (p.progress.max, p.progress.value, p.progress.bar_style) == (2, 1, "danger")  # one case done, failed
    assert not p.cancel_button.disabled
    assert p.refresh() is True
    assert "1 of 2 ok, 1 failed" in p.table.value
    assert "InvalidDicomError: not a DICOM &lt;file&gt;" in p.table.value and "~/batch/7/P1.ipynb" in p.table.value
    assert p.cancel_button.disabled


def test_cancel_shows_the_run_cancelled():
    portal = PortalStandIn()
    p = panel(portal)
    p.notebook.value = "work/m.ipynb"
    p.submit()
    p.cancel()
    assert "cancelled" in p.message.value and p.cancel_button.disabled
