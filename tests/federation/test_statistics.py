"""Cohort statistics through the service match the same figures computed on the pooled data,
within the noise a large epsilon implies."""

from contextlib import ExitStack

import numpy as np
import pytest

from .site_admin import site_policy

pytestmark = pytest.mark.federation
DATASETS = ["lung-ct", "kidney-ct", "liver-ct", "lung-ct-site2", "liver-ct-site3", "brain-mr"]


def pooled_figures(federation, demo_data, dataset_ids, params):
    """Counts, HU quantiles (each patient weighing one) and tumour volumes per patient straight from
    the files, all sites pooled. The files are found through each site's own index of them (the
    job above brought it up to date; indexing the 19,000 files again took 23 s)."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from imaging_workbench.dicom import list_series, load_segmentation, load_series
    from imaging_workbench.federation.site.data import INDEX_FILE, is_tumour

    patients, hu, weights, volumes = {}, [], [], []
    for dataset_id in dataset_ids:
        index = federation.kit(demo_data[dataset_id][0].site) / "local" / INDEX_FILE
        with Session(create_engine(f"sqlite:///{index}")) as session:  # the site's file holds index tables only
            for row in list_series(session, dataset_id=dataset_id, limit=None):
                patients.setdefault((dataset_id, row.patient_id), row)
                if row.modality != "CT" or not row.has_segmentation:
                    continue
                volume = load_series((session, row.series_uid))
                labels, segments = load_segmentation(row.seg_uids[0], volume, session=session)
                mask = np.isin(labels, [s["number"] for s in segments if is_tumour(s)])
                if mask.any():
                    values = np.clip(volume.array[mask].astype(float), *params["hu_range"])
                    hu.append(values)
                    weights.append(np.full(values.size, 1.0 / values.size))
                    volumes.append(mask.sum() * np.prod(volume.spacing) / 1000)
    hu, weights = np.concatenate(hu), np.concatenate(weights)
    order = np.argsort(hu)
    cumulative = np.cumsum(weights[order]) / weights.sum()
    modality = {}
    for row in patients.values():
        modality[row.modality] = modality.get(row.modality, 0) + 1
    return {"patients": len(patients), "modality": modality,
            "hu_quantiles": {q: hu[order][np.searchsorted(cumulative, q)] for q in params["quantiles"]},
            "volume_counts": np.histogram(np.clip(volumes, 0, params["volume_edges_ml"][-1]),
                                          bins=params["volume_edges_ml"])[0].tolist()}


EPSILON = 20.0  # the algorithm's largest: Laplace scales of 0.7 (counts) and 0.2 (histograms) per site


@pytest.fixture(scope="module")
def raised_limits(client_for, federation):
    """Each site's admin allows epsilon 20 for the comparison (for this module). The hub checks
    requests against the policies the sites last reported: one job within the old limits (fay's,
    whose budget the other tests do not count on) brings the new ones back; it is returned."""
    with ExitStack() as admins:
        for site in federation.sites:
            admins.enter_context(site_policy(federation, site, lambda p: p["defaults"].update(
                epsilon_per_job=EPSILON, epsilon_per_researcher=100.0)))
        refresh = client_for("fay").submit("cohort-statistics", datasets=DATASETS, epsilon=0.5)
        assert refresh.wait(timeout=180, progress=False).state == "finished", refresh.row["error"]
        yield refresh


def test_cohort_statistics_match_the_pooled_data(client_for, demo_data, federation, raised_limits):
    params = {"hu_range": [-400, 200], "hu_bins": 12, "quantiles": [0.25, 0.5, 0.75],
              "volume_edges_ml": [0, 5, 10, 20, 50, 500]}
    job = client_for("fay").submit("cohort-statistics", datasets=DATASETS, epsilon=EPSILON, **params)
    job.wait(timeout=180, progress=False)
    result = job.result()
    assert result.status == "finished", result.raw.get("error")
    expected = pooled_figures(federation, demo_data, DATASETS, params)

    table = result.table.set_index(["variable", "value"])
    # Three sites' noise added up: beyond these it is a chance below one in ten thousand.
    assert table.loc[("patients", "all"), "count"] == pytest.approx(expected["patients"], abs=10)
    for modality, count in expected["modality"].items():
        assert table.loc[("modality", modality), "count"] == pytest.approx(count, abs=10)
    assert result.table[result.table.suppressed]["count"].isna().all()  # marked, never a number

    volume = result.raw["histograms"]["tumour_volume_ml"]
    for got, want in zip(volume["counts"], expected["volume_counts"]):
        assert (got is None and want < 13) or got == pytest.approx(want, abs=3)
    bin_width = (params["hu_range"][1] - params["hu_range"][0]) / params["hu_bins"]
    for q, value in expected["hu_quantiles"].items():
        assert abs(result.raw["quantiles"]["tumour_hu"][str(q)] - value) <= bin_width
    assert result.plot() is not None


def test_statistics_job_is_audited_and_listed(client_for, fed_env, raised_limits):
    from imaging_workbench.catalog import audit

    fed, job = client_for("fay"), raised_limits
    job.result()
    assert job.id in [j.id for j in fed.jobs()]
    _, _, ctx = fed_env
    with ctx.session() as s:
        actions = [(e.action, e.actor) for e in audit.events(s) if e.subject == job.id]
    assert actions == [("federation.submit", "fay"), ("federation.finish", "workbench-federation"),
                       ("federation.result", "fay")]
