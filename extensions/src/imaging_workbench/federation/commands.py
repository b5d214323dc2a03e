"""CLI: `workbench federation up|down|status|provision|jobs` and `workbench budget [USER]`."""

from pathlib import Path

from ..output import print_rows
from .settings import federation_settings


def _up(ctx, args):
    from ..private_state import ensure_private_state
    from ..private_state_commands import print_changes
    from .embedded import site_datasets_from_catalog, up
    from .settings import with_site_count

    settings = federation_settings(ctx.settings)
    if args.sites is not None:
        named = "sites" in (ctx.settings.get("federation") or {})
        settings = with_site_count(settings, args.sites, named)
    with ctx.session() as s:
        datasets = site_datasets_from_catalog(s, settings)
    rows = up(settings, datasets, timeout=args.timeout, require_all=False)
    for site in settings.sites:
        print(f"{site}: {len(datasets[site])} dataset(s) {', '.join(sorted(datasets[site]))}".rstrip())
    code = _print_status(rows, args.json)
    print(f"FLARE server on {settings.host}:{settings.fl_port} (admin {settings.admin_port}); "
          f"kits in {settings.prod_dir}")
    print_changes(ensure_private_state(ctx.settings))  # what an older release left open, now the workspace is made
    return code


def _down(ctx, args):
    from .embedded import down

    stopped = down(federation_settings(ctx.settings))
    print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


STATUS_COLUMNS = ["participant", "running", "connected", "pid", "rss_mb", "allow_list", "allow_list_matches",
                  "policy"]


def _print_status(rows, as_json) -> int:
    """Print the participants, the sites' memory and the sites not connected (jobs leave them out);
    returns the exit status: 3 if any participant is not connected or not as the workbench set it up."""
    from .embedded import not_connected, site_memory

    print_rows([{"participant": k, **v} for k, v in rows.items()], STATUS_COLUMNS, as_json)
    missing = not_connected(rows)
    if not as_json:
        memory = site_memory(rows)
        if memory["sites"]:
            print(f"memory per site (its process and job processes): median {memory['median_mb']} MB, "
                  f"max {memory['max_mb']} MB over {memory['sites']} running site(s)")
        for site, why in missing.items():
            print(f"not connected: {site} ({why}); jobs leave its datasets out until it connects")
    return 0 if all(r["connected"] and r["allow_list_matches"] and r["policy"] in ("", "ok")
                    for r in rows.values()) else 3


def _status(ctx, args):
    from .embedded import status

    return _print_status(status(federation_settings(ctx.settings)), args.json)


def _provision(ctx, args):
    from .provision import provision_project

    prod = provision_project(Path(args.project), Path(args.out), federation_settings(ctx.settings))
    print(f"startup kits in {prod}: copy each participant's folder to its host and run startup/start.sh")


def _jobs(ctx, args):
    from sqlalchemy import select

    from .hub.job_store import FederatedJob

    with ctx.session() as s:
        rows = [j.as_dict() for j in s.scalars(select(FederatedJob).order_by(FederatedJob.submitted_at.desc())
                                                .limit(args.limit))]
    print_rows(rows, ["id", "user", "algorithm", "status", "datasets", "submitted_at", "finished_at", "error"],
               args.json)


def _budget(ctx, args):
    from .hub.site_reports import budgets

    with ctx.session() as s:
        rows = [r.as_dict() for r in budgets(s, args.user)]
    if not rows and not args.json:
        who = args.user or "anyone"
        print(f"no site has reported a budget for {who} yet (sites report with each job's result)")
        return 0
    print_rows(rows, ["researcher", "dataset_id", "site", "spent", "remaining", "dataset_remaining",
                      "epsilon_per_job", "reported_at"], args.json)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("budget", help="researchers' privacy budgets (epsilon) per dataset and site, as the "
                                              "sites last reported them (each site's own ledger decides)")
    p.add_argument("user", nargs="?", help="one researcher (default: everyone)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_budget)

    fed = subparsers.add_parser("federation", help="the NVIDIA FLARE federation: start, stop, provision, jobs")
    sub = fed.add_subparsers(dest="federation_command", required=True, metavar="ACTION")
    p = sub.add_parser("up", help="provision (once) and start the embedded server and sites on this machine")
    p.add_argument("--sites", type=int, metavar="N", help="run sites site-1..site-N (remembered for status, down "
                   "and the federation service; new sites get kits, existing kits stay as they are)")
    p.add_argument("--timeout", type=float, help="seconds to wait for every site to connect (default 60 + 3 a site); "
                   "sites not connected by then are reported and left out of jobs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_up)
    p = sub.add_parser("down", help="stop the embedded server and sites")
    p.set_defaults(handler=_down)
    p = sub.add_parser("status", help="which participants run, are connected, hold the workbench's class "
                                           "allow-list and a usable policy file (exit 3 if any does not)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_status)
    p = sub.add_parser("provision", help="startup kits for real hosts from an NVFlare project file")
    p.add_argument("--project", required=True, metavar="FILE", help="NVFlare project.yml (see federation/README.md)")
    p.add_argument("--out", default="federation-kits", metavar="DIR", help="where the kits go")
    p.set_defaults(handler=_provision)
    p = sub.add_parser("jobs", help="federated jobs, newest first")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_jobs)
