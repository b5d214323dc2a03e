"""FederatedJobPanel against a fake service client: the form follows the schema, errors name fields."""

import pytest

from imaging_workbench.federation.client import FederationError
from imaging_workbench.federation.algorithms import ALGORITHMS


class FakeJob:
    def __init__(self, params):
        self.id, self.state = "abc123", "running"
        self.row = {"params": params, "site_datasets": {"site-1": ["lung-ct"]}, "error": ""}

    def status(self):
        self.state = "finished"

    def sites(self):
        return {"site-1": {"state": "done", "round": 1}}

    def result(self):
        from imaging_workbench.federation.client import JobResult

        return JobResult({"algorithm": "cohort-statistics", "status": "finished", "counts": [{"variable": "patients", "value": "all", "count": 12,
                                                            "sites": 1, "suppressed": False}]})


class FakeFederation:
    def __init__(self):
        self.submitted = []

    def algorithms(self):
        return [a.as_dict() for a in ALGORITHMS.values()]

    def datasets(self):
        return [{"id": "lung-ct", "site": "site-1", "modality": "CT"}]

    def budget(self):
        import pandas as pd

        return pd.DataFrame([{"dataset_id": "lung-ct", "site": "site-1", "spent": 17.0, "remaining": 3.0,
                              "dataset_remaining": 150.0, "epsilon_per_job": 8.0}])

    def submit(self, algorithm, datasets, **params):
        if params.get("hu_bins") == 1:
            raise FederationError(400, "bad parameters", fields={"hu_bins": "must be at least 2, not 1"})
        self.submitted.append((algorithm, datasets, params))
        return FakeJob(params)


@pytest.fixture
def panel():
    from imaging_workbench.federation.panel import FederatedJobPanel

    return FederatedJobPanel(FakeFederation(), poll=0.01)


def test_form_is_generated_from_the_schema(panel):
    panel.algorithm.value = "federated-training"
    assert set(panel.fields) == set(ALGORITHMS["federated-training"].params)
    assert panel.params()["rounds"] == 3 and panel.params()["crop_size"] == 16


def test_submit_sends_datasets_and_parameters(panel):
    panel.algorithm.value = "cohort-statistics"
    panel.datasets.value = ("lung-ct",)
    panel.fields["hu_range"].value = "-200, 300"
    job = panel.submit()
    algorithm, datasets, params = panel.fed.submitted[0]
    assert job.id == "abc123" and datasets == ["lung-ct"] and params["hu_range"] == [-200, 300]
    assert panel.refresh() is True and "finished" in panel.message.value


def test_refused_parameters_are_shown_with_their_field(panel):
    panel.algorithm.value = "cohort-statistics"
    panel.fields["hu_bins"].value = 1 if panel.fields["hu_bins"].min <= 1 else panel.fields["hu_bins"].min
    panel.fed.submit = lambda *a, **k: (_ for _ in ()).throw(
        FederationError(400, "bad parameters", fields={"hu_bins": "must be at least 2, not 1"}))
    assert panel.submit() is None
    assert "hu_bins" in panel.message.value


def test_the_cost_of_a_job_is_shown_against_the_remaining_budget(panel):
    panel.algorithm.value = "cohort-statistics"
    panel.datasets.value = ("lung-ct",)
    panel.fields["epsilon"].value = 2.0
    assert "2 at each site" in panel.cost.value and "lung-ct at site-1: 3 left" in panel.cost.value
    assert "#b00" not in panel.cost.value
    panel.fields["epsilon"].value = 4.0  # more than the 3 left: shown in red before submitting
    assert "#b00" in panel.cost.value
