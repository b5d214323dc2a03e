"""Dataset policies: the stricter of two, a job's parameters against one, and the site's policy file
with every problem named by its line."""

import pytest

from imaging_workbench.errors import WorkbenchError
from imaging_workbench.federation.algorithms import ALGORITHMS
from imaging_workbench.federation.protocol.policy import DatasetPolicy, request_problems, stricter
from imaging_workbench.federation.site.policy_file import (POLICY_FILE, PolicyFileError, load_site_policy,
                                                          policy_text, write_policy_if_missing)


def defaults(algorithm_id: str, **changes) -> dict:
    params = {k: spec["default"] for k, spec in ALGORITHMS[algorithm_id].params.items() if "default" in spec}
    return {**params, **changes}


def statistics(**changes) -> dict:
    # Fixed values that fit the default policy: the algorithm's own defaults are being retuned elsewhere.
    fitting = {"hu_range": [-400, 400], "hu_bins": 40, "age_band": 10,
               "volume_edges_ml": [0, 1, 2, 5, 10, 20, 50, 100, 500], "epsilon": 2.0}
    return defaults("cohort-statistics", **{**fitting, **changes})


def test_stricter_takes_the_more_restrictive_of_each_field():
    a = DatasetPolicy()
    b = DatasetPolicy(min_count=5, epsilon_per_job=2.0, epsilon_per_researcher=80.0, epsilon_total=100.0,
                      delta_per_job=1e-6, delta_per_researcher=1e-3, weights="min-count", max_bins=32,
                      min_bin_width={"tumour_hu": 20.0, "tumour_volume_ml": 0.5, "age_band": 10},
                      ranges={"tumour_hu": [-500.0, 5000.0], "tumour_volume_ml": [1.0, 100.0]})
    s = stricter(a, b)
    assert (s.min_count, s.epsilon_per_job, s.epsilon_per_researcher, s.epsilon_total) == (10, 2.0, 50.0, 100.0)
    assert (s.delta_per_job, s.delta_per_researcher, s.weights, s.max_bins) == (1e-6, 1e-4, "dp-sgd", 32)
    assert s.min_bin_width == {"tumour_hu": 20.0, "tumour_volume_ml": 1.0, "age_band": 10}
    assert s.ranges == {"tumour_hu": [-500.0, 3071.0], "tumour_volume_ml": [1.0, 100.0]}
    assert stricter(b, a) == s


def test_stricter_with_a_grants_partial_conditions():
    s = stricter(DatasetPolicy(), {"min_count": 20, "weights": "none"})
    assert s == DatasetPolicy(min_count=20, weights="none")
    assert stricter(DatasetPolicy(weights="none"), {"weights": "min-count"}).weights == "none"
    with pytest.raises(WorkbenchError, match="weights must be one of none, dp-sgd, min-count"):
        stricter(DatasetPolicy(), {"weights": "all"})


def test_as_dict_round_trips():
    p = DatasetPolicy(min_count=3, ranges={"tumour_hu": [0.0, 100.0], "tumour_volume_ml": [0.0, 5.0]})
    assert DatasetPolicy.from_dict(p.as_dict()) == p
    assert DatasetPolicy.from_dict({"min_bin_width": {"age_band": 10}}).min_bin_width["tumour_hu"] == 10.0


def test_parameters_within_the_policy_pass():
    assert request_problems("cohort-statistics", statistics(), DatasetPolicy()) == {}
    assert request_problems("federated-training", defaults("federated-training", epsilon=4.0), DatasetPolicy()) == {}


def test_narrow_volume_bins_are_refused_naming_the_field_and_the_limit():
    problems = request_problems("cohort-statistics", statistics(volume_edges_ml=[0, 0.5, 1, 1.5, 2]),
                                DatasetPolicy())
    assert problems == {"volume_edges_ml": "bins of 0.5 mL are narrower than this site's minimum of 1 mL"}


def test_the_dice_ce_loss_is_refused_where_weights_leave_only_under_dp_sgd():
    params = defaults("federated-training", loss="dice-ce")
    assert set(request_problems("federated-training", params, DatasetPolicy())) == {"loss"}  # dp-sgd by default
    assert request_problems("federated-training", params, DatasetPolicy(weights="min-count")) == {}


def test_epsilon_over_the_per_job_limit_is_refused():
    problems = request_problems("cohort-statistics", statistics(epsilon=8.0), DatasetPolicy(epsilon_per_job=4.0))
    assert problems == {"epsilon": "epsilon 8 is over this site's limit of 4 per job"}


def test_every_histogram_limit_is_checked():
    params = statistics(hu_range=[-2000, 400], hu_bins=100, age_band=2, volume_edges_ml=[0, 10, 6000])
    problems = request_problems("cohort-statistics", params, DatasetPolicy())
    assert problems["hu_bins"] == "100 bins are more than this site's maximum of 64"
    assert problems["hu_range"] == "-2000 to 400 HU reaches outside this site's range of -1024 to 3071 HU"
    assert problems["volume_edges_ml"] == "0 to 6000 mL reaches outside this site's range of 0 to 5000 mL"
    assert problems["age_band"] == "age bands of 2 years are narrower than this site's minimum of 5 years"
    narrow = request_problems("cohort-statistics", statistics(hu_range=[0, 100], hu_bins=20), DatasetPolicy())
    assert narrow == {"hu_bins": "bins of 5 HU are narrower than this site's minimum of 10 HU"}


def test_no_weights_leave_a_site_that_says_none():
    problems = request_problems("federated-training", defaults("federated-training", epsilon=4.0),
                                DatasetPolicy(weights="none"))
    assert problems == {"algorithm": "this site lets no model weights leave"}


def test_the_written_policy_file_reads_back_as_its_defaults(tmp_path):
    policy = DatasetPolicy(min_count=12, weights="min-count")
    path = write_policy_if_missing(tmp_path, policy, ["federated-training", "cohort-statistics"])
    site = load_site_policy(tmp_path)
    assert site.path == path and site.defaults == policy and site.datasets == {}
    assert site.allowed_algorithms == ["cohort-statistics", "federated-training"]
    path.write_text(path.read_text().replace("datasets: {}", "datasets:\n  lung-ct: {weights: none}"))
    assert write_policy_if_missing(tmp_path, DatasetPolicy(), []) == path  # never overwritten
    site = load_site_policy(tmp_path)
    assert site.for_dataset("lung-ct") == DatasetPolicy(min_count=12, weights="none")
    assert site.for_dataset("other") == policy


ALLOWED = "allowed_algorithms: [cohort-statistics]\n"


@pytest.mark.parametrize("text, line, problem", [
    (ALLOWED + "defaults:\n  min_count: 10\n  epsilon_per_job: -1\n", 4,
     "defaults.epsilon_per_job must be a number above 0, not -1"),
    (ALLOWED + "defaults:\n  min_count: 10\n  colour: red\n", 4, "defaults.colour is not a policy setting"),
    (ALLOWED + "defaults:\n  min_count: 10\n  max_bins: many\n", 4, "max_bins must be a whole number"),
    (ALLOWED + "datasets:\n  lung-ct:\n    weights: all\n", 4, "datasets.lung-ct.weights must be one of none, "),
    (ALLOWED + "datasets:\n  lung-ct:\n    ranges:\n      tumour_hu: [5, 1]\n", 5,
     "datasets.lung-ct.ranges.tumour_hu must be [lowest, highest]"),
    ("allowed_algorithms:\n  - cohort-statistics\n  - federated-training\n  - deep-dream\n", 4,
     "unknown algorithm 'deep-dream'"),
    (ALLOWED + "defaults: {min_count: 1}\ncolour: red\n", 3, "unknown key 'colour'"),
    (ALLOWED + "defaults:\n  min_count: 10\n  weights: [none\n", 5, "not valid YAML"),
    (ALLOWED + "defaults:\n  min_count: 10\n  min_count: 20\n", 4, "key 'min_count' appears twice"),
])
def test_policy_file_problems_name_their_line(tmp_path, text, line, problem):
    (tmp_path / POLICY_FILE).write_text(text)
    with pytest.raises(PolicyFileError) as e:
        load_site_policy(tmp_path)
    assert e.value.line == line and problem in e.value.message
    assert e.value.message.startswith(f"{tmp_path / POLICY_FILE}, line {line}: ")


def test_a_missing_policy_file_is_named(tmp_path):
    with pytest.raises(PolicyFileError, match="policy file is missing") as e:
        load_site_policy(tmp_path)
    assert e.value.path == tmp_path / POLICY_FILE and e.value.line is None


def test_policy_text_is_commented():
    text = policy_text(DatasetPolicy(), ["cohort-statistics"])
    assert text.startswith("#") and "# all researchers together on a dataset" in text


def test_the_hub_keeps_each_sites_own_policy_never_a_researchers_grant_conditions(tmp_path, ctx):
    from imaging_workbench.federation.hub.site_reports import record_reports, reported_policies
    from imaging_workbench.federation.site.release import reported

    write_policy_if_missing(tmp_path, DatasetPolicy(min_count=12, weights="dp-sgd"), ["federated-training"])
    site = load_site_policy(tmp_path)
    conditions = {"min_count": 20, "weights": "none"}  # one researcher's grant: no weights, count 20
    applied = reported(stricter(site.for_dataset("lung-ct"), conditions), site, ["lung-ct"])
    assert (applied["min_count"], applied["weights"]) == (20, "none")  # what this researcher's job got
    with ctx.session() as s:
        record_reports(s, {"site-1": {"datasets": ["lung-ct"], "policy": applied}})
    with ctx.session() as s:
        kept = reported_policies(s, "site-1", ["lung-ct"])["lung-ct"]
    assert (kept["min_count"], kept["weights"]) == (12, "dp-sgd")  # what the next researcher is checked against
