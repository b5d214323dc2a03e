"""DP-SGD of federated training: Opacus accepts the model, one accountant per job at a site keeps the
epsilon of all its rounds within the job's DP-SGD budget, and the min-count policy trains without DP."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")

from imaging_workbench.federation.algorithms import federated_training as ft  # noqa: E402

PARAMS = {**{k: v["default"] for k, v in ft.PARAMS.items()}, "local_steps": 4, "batch_size": 2, "rounds": 2}
DELTA = 1e-5


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from imaging_workbench.dicom.synth import generate_cohort
    from imaging_workbench.federation.site.data import SiteData, write_site_datasets

    root = tmp_path_factory.mktemp("dp-site")
    generate_cohort(root / "lung-ct", "lung-ct", 6, modality="CT", region="chest", tumour_organ="lung",
                    shape=(24, 48, 48), seed=1)
    (root / "local").mkdir()
    write_site_datasets(root / "local", {"lung-ct": str(root / "lung-ct")})
    data, state = SiteData(root / "local"), {}
    ft.site_state(PARAMS, data, ["lung-ct"], state)
    return data, state


def task(weights_policy: str, round_: int = 0) -> dict:
    torch.manual_seed(0)
    return {"weights": ft.to_bytes(ft.build_model().state_dict()), "train": True, "round": round_,
            "site_policy": {"weights": weights_policy, "min_count": 3, "delta": DELTA,
                            "dp_epsilon": PARAMS["epsilon"] * 0.9 / PARAMS["rounds"]}}


def test_the_model_passes_opacus_validation():
    from opacus.validators import ModuleValidator

    ModuleValidator.validate(ft.build_model(), strict=True)


def test_the_epsilon_split_gives_a_tenth_to_the_dice_releases():
    split = ft.epsilon_split({"epsilon": 8.0, "rounds": 3})
    assert split == pytest.approx({"release": 0.2, "dp_sgd": 2.4})
    assert ft.ALGORITHM.epsilon_for_release({"epsilon": 8.0, "rounds": 3}, 1) == pytest.approx(0.2)
    assert 4 * split["release"] + 3 * split["dp_sgd"] == pytest.approx(8.0)


def test_dp_sgd_accounts_the_whole_job_and_changes_the_weights(site):
    data, _ = site
    state = dict(site[1])  # a fresh job at this site: its own DP-SGD account
    job_epsilon = PARAMS["epsilon"] * 0.9
    results = []
    for round_ in range(PARAMS["rounds"]):
        t = task("dp-sgd", round_)
        results.append((t, ft.site_run(PARAMS, t, data, ["lung-ct"], state)))
        assert t["site_policy"]["dp_epsilon"] * PARAMS["rounds"] == pytest.approx(job_epsilon)
    increments = [r["dp_sgd"]["epsilon"] for _, r in results]
    assert all(e > 0 for e in increments)
    assert sum(increments) <= job_epsilon + 1e-6
    assert sum(increments) == pytest.approx(results[-1][1]["dp_sgd"]["job_epsilon"])
    assert sum(increments) > 0.9 * job_epsilon  # calibrated to the job's budget, not the round's
    # one accountant for the job: its history holds every round's steps, at one noise multiplier
    history = state["dp_sgd"]["engine"].accountant.history
    assert sum(steps for _, _, steps in history) == PARAMS["rounds"] * PARAMS["local_steps"]
    assert len({r["dp_sgd"]["noise_multiplier"] for _, r in results}) == 1
    for t, result in results:
        dp = result["dp_sgd"]
        assert dp["delta"] == DELTA and dp["accountant"] == "rdp" and dp["steps"] == PARAMS["local_steps"]
        assert dp["noise_multiplier"] > 0 and dp["max_grad_norm"] == PARAMS["max_grad_norm"]
        assert 0 < dp["sample_rate"] <= 1
        assert result["n_samples"] == 6
        before, after = ft.from_bytes(t["weights"]), ft.from_bytes(result["weights"])
        assert set(before) == set(after)
        assert any(not torch.equal(before[k], after[k]) for k in before)
    # a new job (round 0 again) starts a new account
    again = ft.site_run(PARAMS, task("dp-sgd", 0), data, ["lung-ct"], state)
    assert again["dp_sgd"]["epsilon"] == pytest.approx(increments[0], rel=1e-6)


def test_min_count_trains_without_dp(site):
    data, state = site
    result = ft.site_run(PARAMS, task("min-count"), data, ["lung-ct"], state)
    assert "dp_sgd" not in result and result["weights"] and result["n_samples"] == 6
    too_few = task("min-count")
    too_few["site_policy"]["min_count"] = 7
    assert "weights" not in ft.site_run(PARAMS, too_few, data, ["lung-ct"], state)


def test_a_site_that_allows_no_weights_is_refused(site):
    data, state = site
    with pytest.raises(ValueError):
        ft.site_run(PARAMS, task("none"), data, ["lung-ct"], state)


def test_dice_means_have_one_value_per_patient_in_range(site):
    data, state = site
    result = ft.site_run(PARAMS, {**task("dp-sgd"), "train": False}, data, ["lung-ct"], state)
    dice = result["means"]["dice"]
    assert dice["range"] == [0, 1]
    assert len(dice["values"]) == len({c["patient"] for c in state["cases"]}) == 6
    assert all(0 <= v <= 1 for v in dice["values"])
    assert "weights" not in result and "sums" not in result


def test_an_accountant_asked_for_more_than_allowed_is_caught(site):
    _, state = site
    patients, allowed = ft.by_patient(state["cases"]), 0.5  # per round: 1.0 for the job
    with pytest.raises(ft.PrivacyBudgetExceeded):  # the first round alone overspends the job
        ft.train_dp_sgd(ft.build_model(), patients, PARAMS, allowed, DELTA, seed=0, target_epsilon=8 * allowed)
    job = {}
    ft.train_dp_sgd(ft.build_model(), patients, PARAMS, allowed, DELTA, seed=0, target_epsilon=2.6 * allowed,
                    state=job, task_round=0)  # the first round fits, the second does not
    with pytest.raises(ft.PrivacyBudgetExceeded):
        ft.train_dp_sgd(ft.build_model(), patients, PARAMS, allowed, DELTA, seed=0, target_epsilon=2.6 * allowed,
                        state=job, task_round=1)


def test_the_server_pools_released_means_and_reports_the_largest_epsilon():
    server = ft.Server({**PARAMS, "rounds": 1}, min_count=3)
    w = ft.to_bytes(server.weights)
    server.add("a", {"means": {"dice": {"n": 10, "mean": 0.5, "sd": 0.1}}, "weights": w, "n_samples": 10,
                     "dp_sgd": {"epsilon": 1.5}})
    server.add("b", {"means": {"dice": {"n": 30, "mean": 0.7, "sd": None}}, "weights": w, "n_samples": 30,
                     "dp_sgd": {"epsilon": 2.0}})
    server.add("c", {"means": {"dice": {"n": None, "mean": None, "sd": None}}})
    metrics = server.end_round(0)
    assert metrics["dice"] == pytest.approx(0.65) and metrics["cases"] == 40
    assert metrics["dice_sd"] == pytest.approx(0.1) and metrics["sites_trained"] == 2
    assert metrics["epsilon"] == 2.0
