"""Cohort statistics through the service match the same figures computed on the pooled data."""

import numpy as np
import pytest

pytestmark = pytest.mark.federation


def pooled_figures(demo_data, dataset_ids, params, tmp_path):
    """Counts, HU quantiles and tumour volumes straight from the files, all sites pooled."""
    from sqlalchemy.orm import Session

    from imaging_workbench.catalog.engine import create_catalog_engine
    from imaging_workbench.dicom import index_folder, list_series, load_segmentation, load_series
    from imaging_workbench.federation.site.data import is_tumour

    engine = create_catalog_engine(f"sqlite:///{tmp_path / 'pooled.sqlite'}")
    patients, hu, volumes = {}, [], []
    with Session(engine) as session:
        for dataset_id in dataset_ids:
            index_folder(session, dataset_id, demo_data[dataset_id][1])
            for row in list_series(session, dataset_id=dataset_id, limit=None):
                patients.setdefault((dataset_id, row.patient_id), row)
                if row.modality != "CT" or not row.has_segmentation:
                    continue
                volume = load_series((session, row.series_uid))
                labels, segments = load_segmentation(row.seg_uids[0], volume, session=session)
                for seg in filter(is_tumour, segments):
                    mask = labels == seg["number"]
                    if mask.any():
                        hu.append(volume.array[mask])
                        volumes.append(mask.sum() * np.prod(volume.spacing) / 1000)
    hu = np.concatenate(hu).astype(float)
    lo, hi = params["hu_range"]
    inside = hu[(hu >= lo) & (hu <= hi)]
    modality = {}
    for row in patients.values():
        modality[row.modality] = modality.get(row.modality, 0) + 1
    return {"patients": len(patients), "modality": modality, "n_tumours": len(volumes),
            "hu_mean": hu.mean(), "hu_quantiles": {q: np.quantile(inside, q) for q in params["quantiles"]},
            "volume_mean": float(np.mean(volumes))}


def test_cohort_statistics_match_the_pooled_data(client_for, demo_data, tmp_path):
    fed = client_for("alice")
    datasets = ["lung-ct", "kidney-ct", "liver-ct", "lung-ct-site2", "liver-ct-site3", "brain-mr"]
    params = {"hu_range": [-400, 400], "hu_bins": 40, "quantiles": [0.25, 0.5, 0.75]}
    job = fed.submit("cohort-statistics", datasets=datasets, **params)
    job.wait(timeout=180, progress=False)
    result = job.result()
    assert result.status == "finished", result.raw.get("error")
    expected = pooled_figures(demo_data, datasets, params, tmp_path)
    noise = 0.02

    table = result.table.set_index(["variable", "value"])
    assert table.loc[("patients", "all"), "count"] == pytest.approx(expected["patients"], rel=noise, abs=2)
    for modality, count in expected["modality"].items():
        assert table.loc[("modality", modality), "count"] == pytest.approx(count, rel=noise, abs=2)
    # Below the minimum count: suppressed and marked, never a number.
    small = result.table[result.table.suppressed]
    assert small["count"].isna().all()

    summary = result.raw["summary"]
    assert summary["tumour_hu"]["subjects"] == expected["n_tumours"]
    assert summary["tumour_hu"]["mean"] == pytest.approx(expected["hu_mean"], rel=0.05, abs=3)
    assert summary["tumour_volume_ml"]["mean"] == pytest.approx(expected["volume_mean"], rel=0.05)
    bin_width = (params["hu_range"][1] - params["hu_range"][0]) / params["hu_bins"]
    for q, value in expected["hu_quantiles"].items():
        assert abs(result.raw["quantiles"]["tumour_hu"][str(q)] - value) <= bin_width
    assert result.plot() is not None


def test_statistics_job_is_audited_and_listed(client_for, fed_env):
    from imaging_workbench.catalog import audit

    fed = client_for("alice")
    job = fed.submit("cohort-statistics", datasets=["lung-ct"])
    job.wait(timeout=180, progress=False)
    assert job.state == "finished"
    job.result()
    assert job.id in [j.id for j in fed.jobs()]
    _, _, ctx = fed_env
    with ctx.session() as s:
        actions = [(e.action, e.actor) for e in audit.events(s) if e.subject == job.id]
    assert actions == [("federation.submit", "alice"), ("federation.finish", "workbench-federation"),
                       ("federation.result", "alice")]
