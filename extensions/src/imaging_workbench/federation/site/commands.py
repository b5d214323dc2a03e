"""CLI for a site's admin: `workbench site policy check`, `workbench site budget show|charges|reset|raise|refund`,
`workbench site audit`. Each works on one FLARE site kit (`--kit`), whose `local/` holds the files."""

import json
import os
from pathlib import Path

from ...errors import WorkbenchError
from ...output import print_rows
from .ledger import LEDGER_FILE, Ledger
from .policy_file import PolicyFileError, load_site_policy

BUDGET_COLUMNS = ["researcher", "dataset", "spent", "remaining", "dataset_spent", "dataset_remaining",
                  "epsilon_per_job", "unreleased"]
CHARGE_COLUMNS = ["id", "job_id", "round", "researcher", "dataset_id", "epsilon", "delta", "status", "updated_at"]
AUDIT_COLUMNS = ["id", "at", "actor", "action", "researcher", "dataset_id", "epsilon", "charge_id", "detail"]


def _local(args) -> Path:
    local = Path(args.kit) / "local"
    if not local.is_dir():
        raise WorkbenchError(f"{args.kit} is not a FLARE site kit: it has no local/ folder",
                             "pass the site's kit folder, the one holding startup/ and local/")
    return local


def _ledger(args) -> Ledger:
    return Ledger(_local(args) / LEDGER_FILE)


def _policy_check(ctx, args):
    try:
        policy = load_site_policy(_local(args))
    except PolicyFileError as e:
        print(e)
        return 2
    print(f"{policy.path}: fine; runs {', '.join(policy.allowed_algorithms) or 'no algorithms'}; "
          f"{len(policy.datasets)} dataset(s) with their own settings")


def _budget_rows(args, accounts) -> list[dict]:
    policy = load_site_policy(_local(args))
    ledger = _ledger(args)
    rows = []
    for researcher in sorted({r for r, _ in accounts}):
        datasets = sorted(d for r, d in accounts if r == researcher)
        budget = ledger.budget(researcher, {d: policy.for_dataset(d) for d in datasets})
        rows += [{"researcher": researcher, "dataset": d, **b} for d, b in budget.items()]
    return rows


def _budget_show(ctx, args):
    accounts = _ledger(args).accounts()
    if args.researcher:
        # A researcher without charges still sees the datasets the policy file names.
        datasets = {d for r, d in accounts if r == args.researcher} | set(load_site_policy(_local(args)).datasets)
        accounts = [(args.researcher, d) for d in datasets]
    print_rows(_budget_rows(args, accounts), BUDGET_COLUMNS, args.json)


def _charges(ctx, args):
    rows = _ledger(args).rows(researcher=args.researcher, dataset_id=args.dataset, status=args.status,
                              limit=args.limit)
    print_rows(rows, CHARGE_COLUMNS, args.json)


def _reset(ctx, args):
    _ledger(args).reset(args.researcher, args.dataset, args.admin, args.reason)
    print(f"{args.researcher}'s budget on {args.dataset} reset by {args.admin}: spending counts from zero")
    print_rows(_budget_rows(args, [(args.researcher, args.dataset)]), BUDGET_COLUMNS)


def _raise(ctx, args):
    _ledger(args).raise_budget(args.researcher, args.dataset, args.epsilon, args.admin, args.reason)
    print(f"{args.researcher}'s budget on {args.dataset} raised by epsilon {args.epsilon:g} by {args.admin}")
    print_rows(_budget_rows(args, [(args.researcher, args.dataset)]), BUDGET_COLUMNS)


def _refund(ctx, args):
    _ledger(args).refund(args.charge, args.admin, args.reason)
    print(f"charge {args.charge} refunded by {args.admin}")


def _audit(ctx, args):
    rows = _ledger(args).audit_rows(researcher=args.researcher, dataset_id=args.dataset, limit=args.limit)
    if not args.json:
        rows = [{**r, "detail": json.dumps(r["detail"], sort_keys=True)} for r in rows]
    print_rows(rows, AUDIT_COLUMNS, args.json)


def _kit(p) -> None:
    p.add_argument("--kit", required=True, metavar="DIR", help="the site's FLARE kit (its local/ holds the files)")


def _admin(p) -> None:
    p.add_argument("--admin", default=os.environ.get("USER") or "site-admin",
                   help="who acts, for the site's audit trail (default: $USER)")
    p.add_argument("--reason", required=True, metavar="TEXT", help="why, for the site's audit trail")


def register(subparsers) -> None:
    site = subparsers.add_parser("site", help="a federation site's own policy file, privacy budgets and audit trail")
    sub = site.add_subparsers(dest="site_command", required=True, metavar="ACTION")

    policy = sub.add_parser("policy", help="the site's policy file (local/workbench_policy.yaml)")
    policy_sub = policy.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    p = policy_sub.add_parser("check", help="check the policy file (exit 2 naming the line of a problem)")
    _kit(p)
    p.set_defaults(handler=_policy_check)

    budget = sub.add_parser("budget", help="researchers' privacy budgets at this site")
    budget_sub = budget.add_subparsers(dest="budget_command", required=True, metavar="ACTION")
    p = budget_sub.add_parser("show", help="spent and remaining epsilon per researcher and dataset")
    _kit(p)
    p.add_argument("--researcher", metavar="NAME")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_budget_show)
    p = budget_sub.add_parser("charges", help="the charges, newest first (their ids are what refund takes)")
    _kit(p)
    p.add_argument("--researcher", metavar="NAME")
    p.add_argument("--dataset", metavar="ID")
    p.add_argument("--status", choices=["charged", "released", "unreleased", "refunded"])
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_charges)
    p = budget_sub.add_parser("reset", help="a researcher's spending on a dataset counts from zero again")
    _kit(p)
    p.add_argument("--researcher", required=True, metavar="NAME")
    p.add_argument("--dataset", required=True, metavar="ID")
    _admin(p)
    p.set_defaults(handler=_reset)
    p = budget_sub.add_parser("raise", help="give a researcher more epsilon on a dataset (until a reset)")
    _kit(p)
    p.add_argument("--researcher", required=True, metavar="NAME")
    p.add_argument("--dataset", required=True, metavar="ID")
    p.add_argument("--epsilon", required=True, type=float, metavar="X")
    _admin(p)
    p.set_defaults(handler=_raise)
    p = budget_sub.add_parser("refund", help="give back a charge whose release never left (charged or unreleased)")
    _kit(p)
    p.add_argument("--charge", required=True, type=int, metavar="ID")
    _admin(p)
    p.set_defaults(handler=_refund)

    p = sub.add_parser("audit", help="the site's own audit trail of charges, releases and the admin's changes")
    _kit(p)
    p.add_argument("--researcher", metavar="NAME")
    p.add_argument("--dataset", metavar="ID")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_audit)
