"""The site privacy filter and the server's aggregation, as pure functions."""

import random

import pytest

from imaging_workbench.federation.algorithms.cohort_statistics import Server
from imaging_workbench.federation.hub.manager import public_result
from imaging_workbench.federation.protocol.privacy import apply_privacy, merge_bins, quantiles_from_histogram, rebin

RESULT = {
    "counts": {"sex": {"F": 14, "M": 4}},
    "histograms": {"tumour_hu": {"edges": [0, 1, 2, 3, 4], "counts": [5, 5, 5, 5], "subjects": 12},
                   "tumour_volume_ml": {"edges": [0, 1], "counts": [3], "subjects": 3}},
    "sums": {"tumour_hu": {"n": 20, "sum": 100.0, "sumsq": 600.0, "subjects": 12}},
    "secret_rows": [{"patient": "P1"}],
}


def test_counts_below_the_minimum_are_suppressed_and_listed():
    out = apply_privacy(RESULT, min_count=10, noise=0.0, max_bins=64)
    assert out["counts"]["sex"] == {"F": 14, "M": None}
    assert out["histograms"]["tumour_volume_ml"] is None and out["histograms"]["tumour_hu"]["counts"] == [5, 5, 5, 5]
    assert set(out["suppressed"]) == {"counts.sex.M", "histograms.tumour_volume_ml"}


def test_anything_not_an_aggregate_is_dropped():
    assert "secret_rows" not in apply_privacy(RESULT, 10, 0.0, 64)


def test_noise_stays_within_its_bound():
    for seed in range(20):
        out = apply_privacy(RESULT, 10, 0.05, 64, random.Random(seed))
        assert abs(out["counts"]["sex"]["F"] - 14) <= 1
        assert out["sums"]["tumour_hu"]["sum"] == pytest.approx(100, rel=0.05)


def test_histograms_are_merged_down_to_the_maximum_bins():
    edges, counts = merge_bins([0, 1, 2, 3, 4], [1, 2, 3, 4], 2)
    assert edges == [0, 2, 4] and counts == [3, 7]
    assert rebin([0, 1, 2, 3, 4], [1, 2, 3, 4], [0, 2, 4]) == [3.0, 7.0]


def test_quantiles_interpolate_inside_the_bin():
    q = quantiles_from_histogram([0, 10, 20], [50, 50], [0.25, 0.5, 0.75])
    assert q == {"0.25": 5.0, "0.5": 10.0, "0.75": 15.0}


def test_server_adds_sites_and_marks_what_a_site_withheld():
    params = {"quantiles": [0.5]}
    server = Server(params, min_count=10)
    a = apply_privacy(RESULT, 10, 0.0, 64)
    b = apply_privacy(dict(RESULT, counts={"sex": {"F": 11, "M": 12}}), 10, 0.0, 2)
    server.add("site-1", a)
    server.add("site-2", b)
    result = server.final(None)
    rows = {(r["variable"], r["value"]): r for r in result["counts"]}
    assert rows[("sex", "F")]["count"] == 25 and not rows[("sex", "F")]["suppressed"]
    assert rows[("sex", "M")]["count"] == 12 and rows[("sex", "M")]["withheld_by"] == ["site-1"]
    assert rows[("sex", "M")]["suppressed"]
    hist = result["histograms"]["tumour_hu"]
    assert hist["edges"] == [0, 2, 4] and hist["counts"] == [20.0, 20.0]  # site-2 allowed only 2 bins
    assert result["summary"]["tumour_hu"]["mean"] == pytest.approx(5.0)
    assert result["histograms"]["tumour_volume_ml"]["suppressed"]


def test_public_result_suppresses_small_aggregates():
    result = {"counts": [{"variable": "sex", "value": "O", "count": 3, "suppressed": False}],
              "histograms": {"tumour_hu": {"edges": [0, 1], "counts": [4], "subjects": 4}},
              "summary": {"hu": {"mean": 1.0, "sd": 0.1, "subjects": 4}}}
    out = public_result(result, 10)
    assert out["counts"][0]["count"] is None and out["counts"][0]["suppressed"]
    assert out["histograms"]["tumour_hu"]["counts"] is None and out["summary"]["hu"]["mean"] is None
