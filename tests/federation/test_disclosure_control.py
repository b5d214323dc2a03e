"""Disclosure control at the sites, against real FLARE processes: bins from each site's policy,
a minimum count on every published cell, and each site's own epsilon ledger, which the hub cannot
change and a determined researcher cannot overspend (concurrency, differencing; faults and
restarts are in test_faults)."""

import subprocess
import sys
import threading

import pytest

from imaging_workbench.federation.client import FederationError

from .site_admin import charges, dataset_limits, ledger, site_policy

pytestmark = pytest.mark.federation


def run(fed, datasets, timeout=180, **params):
    job = fed.submit("cohort-statistics", datasets=datasets, **params)
    return job.wait(timeout=timeout, progress=False)


def published_cells(result: dict) -> list:
    cells = [row["count"] for row in result["counts"]]
    for hist in result["histograms"].values():
        cells += list(hist["counts"] or [])
    return cells


def test_narrow_bins_are_refused_by_the_site_then_by_the_hub_naming_the_field(client_for, fed_env, federation):
    from imaging_workbench.federation.hub.site_reports import SitePolicyReport

    _, _, ctx = fed_env
    with ctx.session() as s:  # as if no job had reached kidney-ct yet: only the site can refuse
        s.query(SitePolicyReport).filter_by(dataset_id="kidney-ct").delete()
    fed = client_for("fay")
    narrow = [round(0.5 * i, 1) for i in range(21)]  # 0.5 mL bins: single tumours would show

    job = run(fed, ["kidney-ct"], volume_edges_ml=narrow)
    assert job.state == "failed"
    assert "site-1" in job.row["error"] and "volume_edges_ml" in job.row["error"], job.row["error"]
    assert charges(federation, "site-1", "fay", "kidney-ct") == []  # refused before any data was read

    with pytest.raises(FederationError) as refused:  # the site reported its policy with the refusal
        fed.submit("cohort-statistics", datasets=["kidney-ct"], volume_edges_ml=narrow)
    assert refused.value.status == 400 and "volume_edges_ml" in refused.value.fields
    assert "1 mL" in refused.value.fields["volume_edges_ml"]


def test_the_default_query_publishes_most_cells_and_none_below_the_minimum(client_for):
    job = run(client_for("alice"), ["lung-ct"])
    assert job.state == "finished", job.row["error"]
    result = job.result().raw
    cells = published_cells(result)
    published = [c for c in cells if c is not None]
    assert all(c >= result["min_count"] for c in published)
    assert len(published) >= len(cells) / 2, f"{len(published)} of {len(cells)} cells published"
    site = result["sites"]["site-1"]
    assert 0 < site["epsilon_charged"] <= job.row["params"]["epsilon"] + 1e-9


def test_a_query_is_charged_to_every_dataset_it_touches(client_for, federation, fed_hub):
    """Differencing {A} against {A, B} costs A twice and B once, at the site's own ledger."""
    fed = client_for("erin")
    jobs = [fed.submit("cohort-statistics", datasets=d, epsilon=1.0) for d in (["lung-ct"], ["lung-ct", "kidney-ct"])]
    assert [job.wait(timeout=180, progress=False).state for job in jobs] == ["finished", "finished"]
    lung, kidney = charges(federation, "site-1", "erin", "lung-ct"), charges(federation, "site-1", "erin", "kidney-ct")
    assert [r["status"] for r in lung + kidney] == ["released"] * 3
    assert sum(r["epsilon"] for r in lung) == pytest.approx(2.0) and sum(r["epsilon"] for r in kidney) == pytest.approx(1.0)

    mirror = fed.budget().set_index("dataset_id")  # the hub's copy of what site-1 reported
    assert mirror.loc["lung-ct", "spent"] == pytest.approx(2.0)
    assert mirror.loc["kidney-ct", "site"] == "site-1"
    out = subprocess.run([sys.executable, "-m", "imaging_workbench.cli", "--settings", str(fed_hub.settings_file),
                          "budget", "erin"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "lung-ct" in out.stdout and "kidney-ct" in out.stdout, out.stderr


def test_jobs_submitted_at_once_never_overspend_and_the_refusal_names_the_budget(client_for, federation):
    fed = client_for("fay")
    with site_policy(federation, "site-2", dataset_limits("lung-ct-site2", epsilon_per_researcher=2.0)):
        jobs = [None] * 3  # each asks for half the budget: one too many
        threads = [threading.Thread(target=lambda i=i: jobs.__setitem__(
            i, fed.submit("cohort-statistics", datasets=["lung-ct-site2"], epsilon=1.0))) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for job in jobs:
            job.wait(timeout=240, progress=False)
    states = sorted(job.state for job in jobs)
    assert states == ["failed", "finished", "finished"], [j.row["error"] for j in jobs]
    spent = sum(r["epsilon"] for r in charges(federation, "site-2", "fay", "lung-ct-site2"))
    assert spent <= 2.0 + 1e-9
    error = next(j.row["error"] for j in jobs if j.state == "failed")
    assert all(words in error for words in ("site-2", "fay", "lung-ct-site2", "spent epsilon 2 of 2", "0 remains")), error


def test_a_job_over_budget_at_one_site_brings_back_the_others_and_names_it(client_for, federation):
    fed = client_for("erin")
    with site_policy(federation, "site-3", dataset_limits("liver-ct-site3", epsilon_per_researcher=0.5)):
        job = run(fed, ["lung-ct", "liver-ct-site3"], epsilon=1.0)
    assert job.state == "partial", job.row["error"]
    assert "site-3" in job.row["error"] and "0.5 remains" in job.row["error"] and "site-1" not in job.row["error"]
    sites = job.result().raw["sites"]
    assert sites["site-1"]["status"] == "ok" and sites["site-3"]["refused"]["budget"]
    assert not [r for r in ledger(federation, "site-3").rows(researcher="erin") if r["job_id"] == job.id]


def test_a_broken_policy_file_refuses_every_job_naming_its_file_and_line(client_for, federation):
    from imaging_workbench.federation import embedded
    from imaging_workbench.federation.site.policy_file import POLICY_FILE

    path = federation.kit("site-2") / "local" / POLICY_FILE
    original = path.read_text()
    lines = original.splitlines()
    line = next(i for i, text in enumerate(lines) if text.strip().startswith("min_count:"))
    lines[line] = lines[line].split(":")[0] + ": ten"
    path.write_text("\n".join(lines) + "\n")
    try:
        status = embedded.status(federation)["site-2"]["policy"]
        job = run(client_for("alice"), ["lung-ct", "liver-ct"])
    finally:
        path.write_text(original)
    assert f"line {line + 1}" in status and POLICY_FILE in status
    assert job.state == "partial" and "site-2" in job.row["error"], job.row["error"]
    assert f"{POLICY_FILE}, line {line + 1}" in job.row["error"]
    assert embedded.status(federation)["site-2"]["policy"] == "ok"
