"""Catalogue page load: the portal's catalogue page and api/datasets against the hub's own
/hub/home page, for one signed-in user, through the hub's proxy, measured in the same run.

    python benchmarks/portal_catalogue.py [--requests 300] [--warmup 20] [--out benchmarks/results]

Starts a real hub with the portal on free loopback ports (as the hub tests do), registers the six
demo datasets (their catalogue metadata over empty folders: the catalogue reads catalog rows, not
images), logs a user in through the hub's login page (cookie session, then the portal's OAuth),
then times --requests GETs of each page, interleaved so that neither gains from the machine's
drift. Prints p50 and p95 of each, the ratio to the baseline, and whether the catalogue's p95 is
under the 200 ms target; writes portal_catalogue.json and portal_catalogue.png to --out.
Needs no docker.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from imaging_workbench.catalog import datasets  # noqa: E402
from imaging_workbench.context import WorkbenchContext  # noqa: E402
from imaging_workbench.deployment import validate_settings, with_defaults  # noqa: E402
from imaging_workbench.dicom.demo import DEMO_DATASETS  # noqa: E402
from imaging_workbench.hub.commands import ensure_demo_users  # noqa: E402
from imaging_workbench.portal.base import SERVICE_NAME  # noqa: E402
from tests.hubtools import HubProcess, log_in  # noqa: E402
from tests.waiting import wait_for  # noqa: E402

TARGET_P95_MS = 200.0
USER = "alice"


def register_demo_datasets(ctx: WorkbenchContext, data: Path) -> None:
    """The six demo datasets' catalogue rows, each over an empty folder."""
    with ctx.session() as s:
        for spec in DEMO_DATASETS:
            (data / spec.id).mkdir(parents=True)
            datasets.add_dataset(s, ctx.actor, spec.id, data / spec.id, title=spec.title, state_dir=ctx.state_dir,
                                 cancer_type=spec.cancer_type, modality=spec.modality, body_part=spec.body_part,
                                 site=spec.site, licence="CC-BY-4.0 (synthetic)")


def http_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).ok
    except requests.RequestException:
        return False


def signed_in(hub: HubProcess, password: str):
    """A requests.Session signed in to the hub and, through its OAuth, to the portal."""
    http, response = log_in(hub.url, USER, password)
    if response.status_code != 302:
        raise SystemExit(f"logging {USER} in failed ({response.status_code}):\n{hub.log_tail()}")
    page = http.get(f"{hub.url}/services/{SERVICE_NAME}/", timeout=30)
    missing = [spec.id for spec in DEMO_DATASETS if f'data-dataset="{spec.id}"' not in page.text]
    if page.status_code != 200 or missing:
        raise SystemExit(f"the catalogue answered {page.status_code} without {missing}:\n{hub.log_tail()}")
    return http


def measure(http, urls: dict[str, str], count: int, warmup: int) -> dict[str, list[float]]:
    """Milliseconds of each of `count` GETs of each page, the pages taken in turn; each must answer 200."""
    times = {name: [] for name in urls}
    for i in range(warmup + count):
        for name, url in urls.items():
            start = time.perf_counter()
            response = http.get(url, timeout=30, allow_redirects=False)
            elapsed = (time.perf_counter() - start) * 1000
            if response.status_code != 200:
                raise SystemExit(f"{name} answered {response.status_code}: {response.text[:300]}")
            if i >= warmup:
                times[name].append(elapsed)
    return times


def plot(times: dict[str, list[float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.boxplot(list(times.values()), showfliers=False)
    ax.set_xticks(range(1, len(times) + 1), list(times))
    ax.axhline(TARGET_P95_MS, color="r", ls="--", lw=1, label=f"target p95 {TARGET_P95_MS:.0f} ms")
    ax.set_ylabel("ms per GET (through the proxy)")
    ax.set_title(f"{len(DEMO_DATASETS)} demo datasets, {len(next(iter(times.values())))} GETs each")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="timed GETs of each page")
    parser.add_argument("--warmup", type=int, default=20, help="untimed GETs of each page first")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="wb-bench-portal-") as tmp:
        workdir = Path(tmp)
        settings = validate_settings(with_defaults({"state_dir": str(workdir / "state"),
                                                    "demo": {"users": [USER, "bob"]}}))
        ctx = WorkbenchContext(settings, actor="benchmark")
        logins = ensure_demo_users(ctx)
        register_demo_datasets(ctx, workdir / "data")
        hub = HubProcess(workdir, settings)
        hub.start()
        try:
            portal = f"{hub.url}/services/{SERVICE_NAME}/"
            wait_for(lambda: http_ok(portal + "api/health"), 60, what=f"the hub to start {SERVICE_NAME}")
            http = signed_in(hub, logins[USER])
            urls = {"catalogue page": portal, "api/datasets": portal + "api/datasets",
                    "hub home (baseline)": f"{hub.url}/hub/home"}
            times = measure(http, urls, args.requests, args.warmup)
        finally:
            hub.stop()

    stats = {name: {"p50_ms": float(np.percentile(t, 50)), "p95_ms": float(np.percentile(t, 95))}
             for name, t in times.items()}
    base = stats["hub home (baseline)"]
    print(f"{len(DEMO_DATASETS)} demo datasets, {args.requests} GETs of each page (after {args.warmup} untimed), "
          "one signed-in user, through the hub's proxy")
    print(f"{'':22}{'p50 ms':>9}{'p95 ms':>9}   ratio to hub home (p50, p95)")
    for name, s in stats.items():
        print(f"{name:22}{s['p50_ms']:9.1f}{s['p95_ms']:9.1f}   {s['p50_ms'] / base['p50_ms']:.2f}x, "
              f"{s['p95_ms'] / base['p95_ms']:.2f}x")
    p95 = stats["catalogue page"]["p95_ms"]
    verdict = "meets" if p95 < TARGET_P95_MS else "MISSES"
    print(f"catalogue page p95 {p95:.1f} ms {verdict} the target of p95 < {TARGET_P95_MS:.0f} ms")

    args.out.mkdir(parents=True, exist_ok=True)
    result = {"datasets": len(DEMO_DATASETS), "requests": args.requests, "stats": stats, "ms": times,
              "target_p95_ms": TARGET_P95_MS, "meets_target": p95 < TARGET_P95_MS}
    (args.out / "portal_catalogue.json").write_text(json.dumps(result, indent=1))
    plot(times, args.out / "portal_catalogue.png")
    print(f"wrote {args.out / 'portal_catalogue.json'} and {args.out / 'portal_catalogue.png'}")
    return result


if __name__ == "__main__":
    main()
