"""The disclosure step: OpenDP measurements calibrated to each release's share of epsilon,
suppression below the minimum count, and the weights modes."""

import math

import numpy as np
import pytest

from imaging_workbench.federation.protocol.disclosure import release, release_weights, suppress_below, vector_laplace

RAW = {
    "counts": {"patients": {"all": 40}, "sex": {"F": 25, "M": 14, "other": 1}},
    "count_bounds": {"patients": 1, "sex": 1},
    "histograms": {"tumour_hu": {"edges": [0, 50, 100, 150], "counts": [30.0, 9.5, 0.5], "per_patient": 1.0}},
    "means": {"dice": {"values": [0.8] * 20 + [0.6] * 20, "range": [0, 1]}},
    "shares": {"counts": 2.0},
    "secret_rows": [{"patient": "P1"}],
    "meta": {"site": "site-1"},
}


def test_each_release_fits_its_share_and_all_fit_epsilon():
    out = release(RAW, 2.0, 10)
    releases = {r["name"]: r for r in out["privacy"]["releases"]}
    # weights: counts 2, the histogram 1, the mean 1 (a third each to n, sum, sum of squares)
    assert releases["counts"]["epsilon"] <= 1.0 and releases["counts"]["sensitivity"] == 2
    assert releases["histograms.tumour_hu"]["epsilon"] <= 0.5
    assert all(releases[f"means.dice.{p}"]["epsilon"] <= 0.5 / 3 for p in ("n", "sum", "sumsq"))
    assert out["privacy"]["epsilon"] == pytest.approx(sum(r["epsilon"] for r in releases.values()))
    assert out["privacy"]["epsilon"] <= 2.0 and out["privacy"]["delta"] == 0.0
    # OpenDP's own map at the recorded sensitivity and scale agrees with the account
    assert vector_laplace(int, releases["counts"]["scale"]).map(2) <= 1.0
    assert vector_laplace(float, releases["histograms.tumour_hu"]["scale"]).map(1.0) <= 0.5
    assert "secret_rows" not in out and out["meta"] == {"site": "site-1"}


def test_a_count_without_a_per_patient_bound_is_refused():
    with pytest.raises(ValueError, match="bound"):
        release(dict(RAW, count_bounds={"patients": 1}), 2.0, 10)


def empirical_epsilon(scale: float, draws: int = 50000, mass: int = 1000) -> float:
    """Privacy loss seen in the outputs of one count cell on neighbouring cohorts D (30 patients)
    and D' (one removed): the largest log ratio of the frequencies of a tail set {x >= t} or
    {x <= t} that holds at least `mass` draws under both."""
    noise = vector_laplace(int, scale)
    d, d_prime = np.asarray(noise([30] * draws)), np.asarray(noise([29] * draws))  # one call, independent draws
    loss = 0.0
    for t in range(0, 60):
        for a, b in (((d >= t).sum(), (d_prime >= t).sum()), ((d_prime <= t).sum(), (d <= t).sum())):
            if a >= mass and b >= mass:
                loss = max(loss, math.log(a / b))
    return loss


TOLERANCE = 0.15  # sets of >= 1000 of 50000 draws: a log ratio has sd <= 0.045, the max of a few stays below


def test_empirical_privacy_loss_is_within_epsilon_and_flags_halved_noise():
    epsilon = 1.0
    raw = {"counts": {"patients": {"all": 30}}, "count_bounds": {"patients": 1}}
    scale = release(raw, epsilon, 0)["privacy"]["releases"][0]["scale"]
    assert empirical_epsilon(scale) <= epsilon * (1 + TOLERANCE)
    # a mechanism that halved its sensitivity (so its noise) leaks twice epsilon, and the estimator sees it
    assert empirical_epsilon(scale / 2) > epsilon * (1 + TOLERANCE)


def test_no_published_cell_is_below_the_minimum_and_a_one_patient_bin_is_not_published():
    # At epsilon 2 the noise scale is 0.5 here: a one-patient cell reaches 10 with chance ~e^-18.
    for _ in range(200):
        out = release({k: RAW[k] for k in ("counts", "count_bounds")}, 2.0, 10)
        assert out["counts"]["sex"]["other"] is None and "counts.sex.other" in out["suppressed"]
        hist = release({"histograms": RAW["histograms"]}, 2.0, 10)["histograms"]["tumour_hu"]
        assert hist["counts"][2] is None and hist["counts"][0] is not None
        for value in [c for v in out["counts"].values() for c in v.values()] + hist["counts"] + [hist["total"]]:
            assert value is None or value >= 10


def test_means_match_at_large_epsilon_and_are_suppressed_for_few_patients():
    out = release({"means": RAW["means"]}, 1000.0, 10)["means"]["dice"]
    assert out["n"] == pytest.approx(40, abs=1) and out["mean"] == pytest.approx(0.7, abs=0.01)
    assert out["sd"] == pytest.approx(0.1, abs=0.02)
    few = release({"means": {"dice": {"values": [0.9] * 3, "range": [0, 1]}}}, 1000.0, 10)
    assert few["means"]["dice"] == {"n": None, "mean": None, "sd": None} and few["suppressed"] == ["means.dice"]


def test_values_outside_the_range_are_clamped():
    out = release({"means": {"hd": {"values": [500.0] * 30, "range": [0, 64]}}}, 1000.0, 10)["means"]["hd"]
    assert out["mean"] == pytest.approx(64, abs=0.5)


def test_weights_modes():
    trained = {"weights": b"w", "n_samples": 12, "dp_sgd": {"epsilon": 3.0, "delta": 1e-5}}
    assert release_weights(trained, "none", 10) == ({}, ["weights"])
    assert release_weights(trained, "min-count", 20) == ({}, ["weights"])
    assert release_weights(dict(trained, dp_sgd=None), "dp-sgd", 10) == ({}, ["weights"])
    assert release_weights(trained, "dp-sgd", 10)[0] == trained
    assert release_weights({"weights": b"w", "n_samples": 12}, "min-count", 10) == (
        {"weights": b"w", "n_samples": 12}, [])
    with pytest.raises(ValueError):
        release_weights(trained, "all", 10)
    out = release(trained, 1.0, 10, "dp-sgd")
    assert out["weights"] == b"w" and out["privacy"]["epsilon"] == 3.0 and out["privacy"]["delta"] == 1e-5
    dropped = release(trained, 1.0, 10, "none")
    assert "weights" not in dropped and "dp_sgd" not in dropped and dropped["privacy"]["epsilon"] == 0.0


def test_suppress_below():
    assert suppress_below(None, 10) is None and suppress_below(9.9, 10) is None and suppress_below(10, 10) == 10
