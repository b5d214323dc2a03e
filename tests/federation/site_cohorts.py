"""Small synthetic CT cohorts, one per site, for federations of many sites (test_many_sites.py and
benchmarks/federation.py --sites).

Site k's dataset `ct-site-k` holds `patients + (k - 1) % 5` patients, all of one age: that of the
10-year band (k - 1) % 5, of the cohort generator's five. Among five sites, each age band is then
one site's patients and no two sites hold as many, so a site whose figures went missing, or were
counted twice, shows in the pooled table.
"""

from dataclasses import replace
from pathlib import Path

from imaging_workbench.dicom.synth import AGE_BANDS, cohort_jobs, run_jobs

SHAPE = (12, 40, 40)  # slices, rows, cols: the smallest phantom whose tumours stay visible


def dataset_id(site: str) -> str:
    return f"ct-{site}"


def site_age(index: int) -> int:
    """The one age of site-`index`'s patients (index from 1): the middle of band (index-1) mod 5."""
    lo, hi = AGE_BANDS[(index - 1) % len(AGE_BANDS)]
    return (lo + hi) // 2


def write_site_cohorts(out: Path, sites, patients: int = 10) -> dict[str, tuple[str, Path, int]]:
    """Write one CT cohort per site under `out`, all patients on one process pool.

    Returns {site: (dataset id, folder, number of patients)}."""
    out, plan, jobs = Path(out), {}, []
    for index, site in enumerate(sites, start=1):
        ds, n = dataset_id(site), patients + (index - 1) % len(AGE_BANDS)
        site_jobs = cohort_jobs(out / ds, ds, n, modality="CT", region="abdomen", tumour_organ="liver",
                                shape=SHAPE, seed=index)
        jobs += [dict(job, patient=replace(job["patient"], age=site_age(index))) for job in site_jobs]
        plan[site] = (ds, out / ds, n)
    run_jobs(jobs, desc=f"{len(plan)} site cohorts")
    for path in [out, *out.rglob("*")]:  # the sites read them as the workbench's account; a+rX as the demo data
        path.chmod(0o755 if path.is_dir() else 0o644)
    return plan
