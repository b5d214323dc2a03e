"""Cohort statistics and evaluation end to end without FLARE: bounded site figures, their
release, and the server's pooling of what the sites released."""

import numpy as np
import pytest

from imaging_workbench.federation.algorithms import cohort_statistics as cs
from imaging_workbench.federation.algorithms.federated_evaluation import Server as EvaluationServer
from imaging_workbench.federation.protocol.disclosure import release
from imaging_workbench.federation.site.data import Patient, TumourCase

PARAMS = {"hu_range": [0, 100], "hu_bins": 4, "quantiles": [0.25, 0.5, 0.75], "age_band": 10,
          "volume_edges_ml": [0, 5, 10, 500]}


class FakeSite:
    """`n` patients; patient i has one tumour of 6 + i % 3 voxels of 1 mL at HU 10 + 25 * (i % 4),
    plus a second series that must not count again."""

    def __init__(self, prefix: str, n: int):
        self.ids = [f"{prefix}-{i}" for i in range(n)]

    def patients(self, dataset_ids):
        return [Patient(pid, "d", "F" if i % 2 else "M", 40 + i % 30, {"CT", "SEG", "PT"}, {"CHEST", ""})
                for i, pid in enumerate(self.ids)]

    def tumour_cases(self, dataset_ids):
        for repeat in (0, 1):
            for i, pid in enumerate(self.ids):
                labels = np.zeros((4, 4, 4), np.int16)
                labels.flat[:6 + i % 3] = 1 + repeat
                hu = np.where(labels > 0, 10.0 + 25 * (i % 4) + 500 * repeat, -1000.0)
                yield TumourCase(pid, f"s{repeat}", hu, labels, 1.0)


def pooled_truth(sites) -> dict:
    hu, volume = np.zeros(4), np.zeros(3)
    for site in sites:
        for i, _ in enumerate(site.ids):
            hu[i % 4] += 1
            volume[1] += 1  # 6 to 8 mL
    return {"hu": hu, "volume": volume}


def test_site_run_bounds_each_patient():
    raw = cs.site_run(PARAMS, {}, FakeSite("a", 12), ["d"], {})
    assert raw["count_bounds"] == cs.COUNT_BOUNDS
    # PT and SEG fall under "other", "" under "other": two modalities kept, the bound
    assert raw["counts"]["modality"] == {"CT": 12, "MR": 0, "other": 12}
    assert raw["counts"]["body_part"] == {"HEAD": 0, "CHEST": 12, "ABDOMEN": 0, "other": 12}
    assert set(raw["counts"]["age_band"]) == {"<40", "40-49", "50-59", "60-69", "70-79", "80+", "unknown"}
    hu = raw["histograms"]["tumour_hu"]
    assert hu["per_patient"] == 1.0 and sum(hu["counts"]) == pytest.approx(12)  # one per patient, first series only
    assert raw["histograms"]["tumour_volume_ml"]["counts"] == [0.0, 12.0, 0.0]


def test_statistics_match_the_pooled_data_at_large_epsilon():
    sites = {"site-1": FakeSite("a", 48), "site-2": FakeSite("b", 60)}
    server = cs.Server(PARAMS, min_count=10)
    for name, site in sites.items():
        server.add(name, release(cs.site_run(PARAMS, {}, site, ["d"], {}), 1000.0, 10))
    result = server.final(None)
    truth = pooled_truth(sites.values())
    rows = {(r["variable"], r["value"]): r for r in result["counts"]}
    assert rows[("patients", "all")]["count"] == 108 and rows[("sex", "F")]["count"] == 54
    assert rows[("modality", "MR")]["count"] is None and rows[("modality", "MR")]["suppressed"]
    hu = result["histograms"]["tumour_hu"]
    assert hu["counts"] == pytest.approx(truth["hu"].tolist(), abs=0.1) and hu["total"] == pytest.approx(108, abs=0.5)
    assert result["histograms"]["tumour_volume_ml"]["counts"] == [None, pytest.approx(108, abs=0.1), None]
    assert result["quantiles"]["tumour_hu"]["0.5"] == pytest.approx(50, abs=1)
    assert result["summary"]["tumour_hu"]["mean"] == pytest.approx(50, abs=1)


def test_server_marks_cells_a_site_withheld_and_suppresses_small_pools():
    def site(f, m, cells, total):
        return {"counts": {"sex": {"F": f, "M": m}},
                "histograms": {"tumour_hu": {"edges": [0, 1, 2], "counts": cells, "total": total}}}

    server = cs.Server({"quantiles": [0.5]}, min_count=10)
    server.add("site-1", site(14, None, [12.0, None], 14.0))
    server.add("site-2", site(11, 12, [11.0, 4.0], None))
    result = server.final(None)
    rows = {(r["variable"], r["value"]): r for r in result["counts"]}
    assert rows[("sex", "F")] == {"variable": "sex", "value": "F", "count": 25, "sites": 2, "withheld_by": [],
                                  "suppressed": False}
    assert rows[("sex", "M")]["count"] == 12 and rows[("sex", "M")]["withheld_by"] == ["site-1"]
    assert not rows[("sex", "M")]["suppressed"]  # shown without site-1's part, which withheld_by names
    hist = result["histograms"]["tumour_hu"]
    assert hist["counts"] == [23.0, None] and hist["suppressed"] == [False, True]
    assert hist["total"] is None and hist["withheld_by"] == ["site-1", "site-2"]


def test_quantiles_and_moments_from_a_histogram():
    assert cs.quantiles_from_histogram([0, 10, 20], [50, 50], [0.25, 0.5, 0.75]) == {
        "0.25": 5.0, "0.5": 10.0, "0.75": 15.0}
    mean, sd = cs.mean_sd_from_histogram([0, 10, 20], [50, 50])
    assert mean == 10.0 and sd == 5.0


def test_age_bands_are_fixed_by_the_width():
    assert cs.age_bands(20) == ["<40", "40-59", "60-79", "80+", "unknown"]
    assert [cs.age_band(a, 10) for a in (None, 12, 40, 79.5, 80, 101)] == [
        "unknown", "<40", "40-49", "70-79", "80+", "80+"]


def test_evaluation_pools_released_means_by_n():
    server = EvaluationServer({}, min_count=10)
    server.add("site-1", {"means": {"dice": {"n": 30.0, "mean": 0.8, "sd": 0.1}}})
    server.add("site-2", {"means": {"dice": {"n": 10.0, "mean": 0.4, "sd": 0.1}}})
    server.add("site-3", {"means": {"dice": {"n": None, "mean": None, "sd": None}}})
    dice = server.final(None)["metrics"]["dice"]
    assert dice["mean"] == pytest.approx(0.7) and dice["cases"] == 40.0 and dice["withheld_by"] == ["site-3"]
    assert dice["sd"] == pytest.approx(0.2)  # second moment (30 * 0.65 + 10 * 0.17) / 40 = 0.53, less 0.7²
