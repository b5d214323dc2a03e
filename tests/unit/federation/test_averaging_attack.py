"""The averaging attack at one site's release step (policy file, ledger, OpenDP release) on a
generated CT cohort: the same query fifty times. The site refuses once the researcher's budget is
spent, never charges more than the budget, and the answers it let out do not give a
below-minimum count back. The same attack against a site without a budget does recover it, so
the attack is real."""

import pytest

from imaging_workbench.federation.algorithms import ALGORITHMS, get_algorithm
from imaging_workbench.federation.protocol.params import validate_params
from imaging_workbench.federation.protocol.policy import DatasetPolicy
from imaging_workbench.federation.site.data import SiteData, write_site_datasets
from imaging_workbench.federation.site.ledger import LEDGER_FILE, Ledger
from imaging_workbench.federation.site.policy_file import write_policy_if_missing
from imaging_workbench.federation.site.release import Refusal, run_task

QUERIES = 50
CELL = ("age_band", "40-49")  # 30 patients over five bands: 6 in this one, under the minimum of 10


class CohortReadOnce(SiteData):
    """The site's real reader, its tumour cases kept after the first query: the attack is on the
    release step (policy, ledger, OpenDP), and reading 30 CT series per query took 0.5 s."""

    def tumour_cases(self, dataset_ids, limit=None):
        key = (tuple(dataset_ids), limit)
        if key not in self.__dict__.setdefault("_cases", {}):
            self._cases[key] = list(super().tumour_cases(dataset_ids, limit))
        return iter(self._cases[key])


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    from imaging_workbench.dicom.synth import generate_cohort

    folder = tmp_path_factory.mktemp("cohort") / "lung-ct"
    generate_cohort(folder, "lung-ct", 30, modality="CT", region="chest", tumour_organ="lung", shape=(32, 64, 64),
                    seed=7)
    return folder


def attack(cohort, local, policy: DatasetPolicy, epsilon: float, queries: int = QUERIES) -> dict:
    """Ask the same query `queries` times as one researcher; what came out and what was charged."""
    local.mkdir()
    write_site_datasets(local, {"lung-ct": str(cohort)})
    write_policy_if_missing(local, policy, sorted(ALGORITHMS))
    data, algorithm = CohortReadOnce(local), get_algorithm("cohort-statistics")
    params = validate_params(algorithm, {"epsilon": epsilon})
    task = {"algorithm": algorithm.id, "params": params, "site_datasets": {"site-1": ["lung-ct"]}, "round": 0,
            "rounds": 1, "researcher": "mallory"}
    truth = algorithm.site_run(params, task, data, ["lung-ct"], {})["counts"][CELL[0]][CELL[1]]
    answers, refusals = [], []
    for i in range(queries):
        try:
            answers.append(run_task(dict(task, job=f"q{i}"), "site-1", local, data, {}).result)
        except Refusal as refusal:
            refusals.append(refusal)
    published = [a["counts"][CELL[0]][CELL[1]] for a in answers]
    published = [v for v in published if v is not None]
    return {"truth": truth, "answers": answers, "refusals": refusals,
            "estimate": sum(published) / len(published) if published else None,
            "charged": sum(r["epsilon"] for r in Ledger(local / LEDGER_FILE).rows(researcher="mallory"))}


def test_the_site_stops_answering_when_the_budget_is_spent_and_the_average_gives_nothing_back(cohort, tmp_path):
    policy = DatasetPolicy(epsilon_per_job=1.0, epsilon_per_researcher=5.0)
    out = attack(cohort, tmp_path / "site", policy, epsilon=1.0)
    assert out["truth"] < policy.min_count
    assert len(out["answers"]) == 5 and len(out["refusals"]) == QUERIES - 5
    assert out["charged"] <= policy.epsilon_per_researcher + 1e-9  # read back from the site's ledger
    assert all("mallory" in r.reason and "lung-ct" in r.reason and "remains" in r.reason for r in out["refusals"])
    # What left never holds a count under the minimum; averaging what was published cannot go below it.
    assert out["estimate"] is None or (out["estimate"] >= policy.min_count and abs(out["estimate"] - out["truth"]) >= 1)


def test_without_a_budget_or_minimum_count_the_same_attack_recovers_the_count(cohort, tmp_path):
    """The control: a site that let every query through at a large epsilon and published every
    cell would give the exact count back by averaging: 15 answers suffice (the mean's sd is 0.26
    at epsilon 20, so missing by 1 or more has a chance of about 1e-4)."""
    policy = DatasetPolicy(min_count=1, epsilon_per_job=20.0, epsilon_per_researcher=1e6, epsilon_total=1e6)
    out = attack(cohort, tmp_path / "site", policy, epsilon=20.0, queries=15)
    assert len(out["answers"]) == 15 and not out["refusals"]
    assert abs(out["estimate"] - out["truth"]) < 1
