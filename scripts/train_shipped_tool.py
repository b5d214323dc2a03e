"""Train the shipped lung-nodule tool with the platform's own federated training, and publish it.

A recorded run on this machine, through the real parts: the demo's two lung CT cohorts (lung-ct
at site-1, lung-ct-site2 at site-2, size "demo", 100 patients each), which each site's admin marks
"min-count" in its policy file (plain training, no DP: synthetic patients); an embedded FLARE
federation (server and sites as processes); the federation's JobManager, which submits the job as
the service does and follows it to its end; `publish-job`, which makes the bundle and its card.
The bundle is copied to extensions/src/imaging_workbench/tools/shipped/<id>/ with `training.log`
(this run's own lines) and `result.json` (the job's result: per-round Dice, sites, params).

Then the tool runs, as a user runs it, on held-out lung CT series generated apart from the
training cases (another seed) and the mean Dice against their SEGs is logged: what
tests/unit/tools/test_shipped_tool.py checks in CI.

    /var/lib/workbench/venv/bin/python scripts/train_shipped_tool.py [--workdir DIR] [--rounds 4]
        [--local-steps 250]
"""

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOOL_ID, VERSION = "lung-nodule-seg", "1.0.0"
SHIPPED = REPO / "extensions" / "src" / "imaging_workbench" / "tools" / "shipped" / TOOL_ID
TRAINER = "platform"  # the account the platform trains its own tools as
DATASETS = {"lung-ct": "site-1", "lung-ct-site2": "site-2"}
RECIPE = {"network": "medium", "hu_window": [-1000, 400], "background_share": 0.7, "loss": "dice-ce",
          "lr_schedule": "cosine", "crop_size": 32, "batch_size": 8, "learning_rate": 0.003, "seed": 0}

log = logging.getLogger("train_shipped_tool")


def deployment(workdir: Path) -> dict:
    from imaging_workbench.deployment import validate_settings, with_defaults

    # Long task and job timeouts: a site's round trains for minutes on a busy 2-core machine.
    return validate_settings(with_defaults({
        "state_dir": str(workdir / "state"), "hub": {"service_port": free_port()},
        "federation": {"fl_port": free_port(), "admin_port": free_port(), "sites": sorted(set(DATASETS.values())),
                       "task_timeout": 3600, "job_timeout": 4 * 3600, "min_count": 10}}))


def register_cohorts(ctx, workdir: Path) -> None:
    """The demo's lung cohorts, written once, in the catalog at their sites; the trainer holds
    federated grants on them."""
    from imaging_workbench.catalog import accounts, datasets, grants
    from imaging_workbench.dicom.commands import index_dataset
    from imaging_workbench.dicom.demo import DEMO_DATASETS, ensure_demo_data

    specs = [d for d in DEMO_DATASETS if d.id in DATASETS]
    written = ensure_demo_data(workdir / "data", "demo", datasets=specs)
    with ctx.session() as s:
        accounts.ensure_account(s, ctx.actor, TRAINER, None)
        for spec, folder, _ in written:
            if datasets.datasets_by_id(s, [spec.id]):
                continue
            datasets.add_dataset(s, ctx.actor, spec.id, folder, title=spec.title, modality=spec.modality,
                                 site=spec.site)
            grants.grant_access(s, ctx.actor, TRAINER, spec.id, 30, "the platform's shipped lung-nodule tool",
                                mode="federated")
    for spec, _, _ in written:  # as `workbench datasets add` does: publish-job reads their spacing there
        index_dataset(ctx, spec.id, progress=False)


def mark_min_count(fed) -> None:
    """What each site's admin writes into its policy file: these synthetic cohorts' weights may
    leave after plain training on at least the minimum count of patients (no DP-SGD)."""
    import yaml

    from imaging_workbench.federation.site.policy_file import POLICY_FILE

    for dataset, site in DATASETS.items():
        path = fed.kit(site) / "local" / POLICY_FILE
        policy = yaml.safe_load(path.read_text())
        policy.setdefault("datasets", {}).setdefault(dataset, {})["weights"] = "min-count"
        path.write_text(yaml.safe_dump(policy))


def train(ctx, fed, params: dict) -> str:
    """Submit the job as the trainer and follow it to its end; its id."""
    from imaging_workbench.federation.hub.manager import JobManager

    manager = JobManager(ctx, fed)
    job = manager.submit(TRAINER, "federated-training", list(DATASETS), params)
    log.info("job %s submitted: %s", job.id, json.dumps(params, sort_keys=True))
    last = None
    while True:
        if manager.unfinished():
            manager.flare.call(manager.follow_once)
        job = manager.get(TRAINER, job.id)
        now = (job.status, json.dumps(job.progress, sort_keys=True))
        if now != last:
            log.info("job %s: %s %s", job.id, job.status, now[1])
            last = now
        if job.status not in ("submitted", "running"):
            break
        time.sleep(10)
    if job.status != "finished":
        raise SystemExit(f"job {job.id} ended {job.status}: {job.error}")
    for row in job.result.get("rounds", []):
        log.info("round %s: federated Dice %.3f (sd %s, %s patients), sites trained %s", row["round"], row["dice"],
                 row.get("dice_sd"), row.get("cases"), row.get("sites_trained"))
    return job.id


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=Path("/tmp/workbench-shipped-tool"), type=Path)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--local-steps", type=int, default=250)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    args.workdir.mkdir(parents=True, exist_ok=True)
    log_path = args.workdir / "training.log"
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    # The shipped log holds this run's own lines; FLARE's client chatter goes to the console only.
    record = logging.FileHandler(log_path, mode="w")
    record.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(record)

    from imaging_workbench.context import WorkbenchContext
    from imaging_workbench.federation import embedded
    from imaging_workbench.federation.settings import federation_settings
    from imaging_workbench.tools import catalog, shipped
    from imaging_workbench.tools.notebook import Tools
    from imaging_workbench.tools.publish_job import publish_job

    settings = deployment(args.workdir)
    ctx = WorkbenchContext(settings, actor="platform-admin")
    fed = federation_settings(settings)
    started = time.perf_counter()
    register_cohorts(ctx, args.workdir)
    with ctx.session() as s:
        site_datasets = embedded.site_datasets_from_catalog(s, fed)
    embedded.up(fed, site_datasets)
    try:
        mark_min_count(fed)
        job_id = train(ctx, fed, {**RECIPE, "rounds": args.rounds, "local_steps": args.local_steps})
    finally:
        embedded.down(fed)
    log.info("trained in %.0f s", time.perf_counter() - started)
    tool = publish_job(ctx, job_id, TOOL_ID, VERSION, body_part="CHEST")
    folder = catalog.tool_folder(settings, TOOL_ID, VERSION)
    reviewers = {**settings, "roles": {**settings["roles"], "tool_reviewers": ["platform-reviewer"]}}
    catalog.approve(WorkbenchContext(reviewers, actor="platform-reviewer"), TOOL_ID, VERSION)
    cohort = shipped.held_out_cohort(args.workdir / "held-out")
    scores = shipped.held_out_dice(Tools(catalog.tools_dir(settings) / "catalog.json"), TOOL_ID, cohort)
    log.info("held-out Dice of %s %s on %d whole series: mean %.3f, min %.3f (weights sha256 %s)", TOOL_ID, VERSION,
             len(scores), sum(scores) / len(scores), min(scores), tool["card"]["weights"]["sha256"])
    if SHIPPED.exists():
        shutil.rmtree(SHIPPED)
    shutil.copytree(folder, SHIPPED)
    with ctx.session() as s:
        from imaging_workbench.federation.hub.job_store import FederatedJob

        (SHIPPED / "result.json").write_text(json.dumps(s.get(FederatedJob, job_id).result, indent=1))
    shutil.copyfile(log_path, SHIPPED / "training.log")
    print(f"shipped: {SHIPPED}")


if __name__ == "__main__":
    main()
