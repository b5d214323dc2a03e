"""Five sites in a federation of their own (the `many_sites` fixture): a statistics job counts
every site's patients once, and a site that never connected is named by status and left out of
jobs. (A
site killed mid-job ending it `partial` and naming that site is test_faults.py's, at three sites.)
Jobs go through the service's JobManager in this process (the checks and FLARE are real; the hub
adds nothing here)."""

import time
from dataclasses import replace

import pytest

from .site_cohorts import dataset_id, site_age

pytestmark = pytest.mark.federation
EPSILON = 20.0  # the algorithm's largest: a pooled count carries five sites' noise, sd 1.7 patients
NOISE = 6  # 3.6 sd of five sites' noise: a site missing or counted twice moves a cell by 10 or more


def run(manager, datasets, timeout=150, while_running=None, **params):
    """Submit a cohort-statistics job as alice and follow it to its end, as the service's loop does;
    `while_running(job row)` is called at each step until it returns True."""
    job = manager.submit("alice", "cohort-statistics", datasets, {"epsilon": EPSILON, **params})
    deadline = time.monotonic() + timeout
    with manager.admin.session() as sess:
        while not manager.get("alice", job.id).is_final:
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job.id} still {manager.get('alice', job.id).status} after {timeout} s")
            manager.follow_once(sess)
            if while_running and while_running(manager.get("alice", job.id)):
                while_running = None
            time.sleep(0.5)
    return manager.get("alice", job.id)


@pytest.mark.parametrize("n", [0, -3, 101])
def test_up_refuses_a_number_of_sites_this_machine_cannot_run(tmp_path, n):
    from imaging_workbench.errors import WorkbenchError
    from imaging_workbench.federation.settings import FederationSettings, with_site_count

    with pytest.raises(WorkbenchError) as e:
        with_site_count(FederationSettings(workdir=tmp_path), n, named_in_file=False)
    assert e.value.message.startswith(f"--sites {n} is not a number of sites") and "1 to 100" in e.value.message
    assert not (tmp_path / "sites.json").exists()


def test_up_sites_is_remembered_unless_the_deployment_file_names_the_sites(tmp_path):
    from imaging_workbench.errors import WorkbenchError
    from imaging_workbench.federation.settings import FederationSettings, federation_settings, with_site_count

    settings = {"state_dir": str(tmp_path), "federation": {"workdir": str(tmp_path / "fed")}}
    grown = with_site_count(FederationSettings(workdir=tmp_path / "fed"), 30, named_in_file=False)
    assert grown.sites[-1] == "site-30" and federation_settings(settings).sites == grown.sites  # status, service
    with pytest.raises(WorkbenchError, match="differs from the sites the deployment file names"):
        with_site_count(FederationSettings(workdir=tmp_path / "fed"), 4, named_in_file=True)


def counts(result) -> dict:
    return {(row["variable"], row["value"]): row for row in result["counts"]}


@pytest.fixture(scope="module")
def manager(many_sites):
    from imaging_workbench.federation.hub.manager import JobManager

    federation, ctx, _ = many_sites
    manager = JobManager(ctx, federation)
    yield manager
    manager.flare.close()


def test_statistics_across_five_sites_count_each_site_once(many_sites, manager):
    from imaging_workbench.federation.algorithms.cohort_statistics import age_band

    federation, _, plan = many_sites
    job = run(manager, [dataset_id(site) for site in federation.sites])
    assert job.status == "finished", job.error
    result = manager.result("alice", job.id)
    assert {site: r["status"] for site, r in result["sites"].items()} == dict.fromkeys(federation.sites, "ok")
    cells = counts(result)
    assert cells[("patients", "all")]["sites"] == len(federation.sites)
    assert cells[("patients", "all")]["count"] == pytest.approx(sum(n for _, _, n in plan.values()), abs=NOISE)
    # Each site's patients are all of one age band and no two sites hold as many: each band is one site's count.
    for index, site in enumerate(federation.sites, start=1):
        band = age_band(site_age(index), job.params["age_band"])
        assert cells[("age_band", band)]["count"] == pytest.approx(plan[site][2], abs=NOISE), (site, band)


def test_a_site_that_never_connected_is_named_by_status_and_left_out_of_jobs(many_sites, capsys):
    from imaging_workbench.catalog import datasets, grants
    from imaging_workbench.federation import embedded
    from imaging_workbench.federation.commands import _print_status
    from imaging_workbench.federation.hub.manager import BadRequest, JobManager
    from imaging_workbench.federation.provision import ensure_embedded_kits
    from imaging_workbench.federation.settings import site_names

    federation, ctx, plan = many_sites
    grown = replace(federation, sites=site_names(len(federation.sites) + 1))
    ensure_embedded_kits(grown)  # site-6's kit is made; its process is never started
    with ctx.session() as s:
        datasets.add_dataset(s, "steward", dataset_id("site-6"), plan["site-1"][1], modality="CT", site="site-6")
        grants.grant_access(s, "steward", "alice", dataset_id("site-6"), 30, "many sites")

    rows = embedded.status(grown)
    assert embedded.not_connected(rows) == {"site-6": "not running"}  # and the five sites kept their kits
    assert _print_status(rows, as_json=False) == 3
    assert "not connected: site-6 (not running)" in capsys.readouterr().out

    grown_manager = JobManager(ctx, grown)
    try:
        grown_manager.flare.call(grown_manager.refresh_connected)  # as the service's follow loop does
        with pytest.raises(BadRequest) as refused:
            grown_manager.submit("alice", "cohort-statistics", [dataset_id("site-6")], {})
        assert "site-6 (ct-site-6)" in refused.value.message

        job = run(grown_manager, [dataset_id("site-1"), dataset_id("site-6")])
    finally:
        grown_manager.flare.close()
    assert job.status == "partial", job.error
    assert job.error == "site-6: not connected, its datasets left out: ct-site-6"
    assert job.site_datasets == {"site-1": ["ct-site-1"]}
    result = grown_manager.result("alice", job.id)
    assert result["sites"]["site-6"]["status"] == "left out" and result["sites"]["site-1"]["status"] == "ok"
    assert counts(result)[("patients", "all")]["count"] == pytest.approx(plan["site-1"][2], abs=NOISE)
