"""CLI: `workbench batch run|list|show|cancel` (an operator running a user's notebook as that user,
with that user's grants, limits and network rules)."""

import json
import sys

from ..catalog import accounts
from ..output import print_rows
from . import control, runs

COLUMNS = ["id", "user", "notebook", "dataset_id", "per_case", "state", "submitted_at", "finished_at"]


def parse_value(text: str):
    """A parameter's value as papermill's -p reads it: JSON when it parses (1, 0.5, true, [1, 2]), else text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def print_summary(run: dict, file=sys.stdout) -> None:
    summary = run.get("summary") or {}
    if summary.get("results"):
        print(f"batch run {run['id']}: {summary['ok']} of {summary['cases']} ok, {summary['failed']} failed; "
              f"outputs in ~/batch/{run['id']}/", file=file)
        print_rows(summary["results"], ["case", "status", "seconds", "output", "error"], file=file)
    else:
        print(f"batch run {run['id']}: {run['state']}" + (f": {run['error']}" if run.get("error") else ""), file=file)


def _run(ctx, args):
    with ctx.session() as s:
        accounts.get_account(s, args.user)
    parameters = {name: parse_value(value) for name, value in args.parameter or []}
    run = control.submit(ctx, args.user, args.notebook, args.dataset, parameters, args.per_case, args.profile)
    print(f"batch run {run['id']} started ({run['container']})", file=sys.stderr)
    if args.detach:
        return print_rows([run], COLUMNS, args.json)
    run = control.follow(ctx, run["id"], sys.stderr)
    if args.json:
        print_rows([run], [], as_json=True)
    else:
        print_summary(run)
    return 0 if run["state"] == runs.FINISHED and not (run["summary"] or {}).get("failed") else 1


def _list(ctx, args):
    with ctx.session() as s:
        ids = [r.id for r in runs.runs_of(s, args.user, args.state)]
    print_rows([control.refresh(ctx, i) for i in ids], COLUMNS, args.json)


def _show(ctx, args):
    run = control.refresh(ctx, args.id)
    if args.json:
        return print_rows([run], [], as_json=True)
    print_rows([run], COLUMNS + ["profile", "notebook_sha256", "image"])
    print()
    print_summary(run)


def _cancel(ctx, args):
    run = control.cancel(ctx, args.id)
    print_rows([run], COLUMNS, args.json)


def register(subparsers) -> None:
    batch = subparsers.add_parser("batch", help="parameterised notebooks run by papermill in a user's sandbox"
                                  ).add_subparsers(dest="batch_command", required=True, metavar="ACTION")
    p = batch.add_parser("run", help="run NOTEBOOK (relative to the user's home) on a dataset, as that user")
    p.add_argument("notebook")
    p.add_argument("--user", required=True, help="whose sandbox grants, home and limits the run gets")
    p.add_argument("--dataset", required=True, help="the dataset it reads (a live sandbox grant of the user)")
    p.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="a papermill parameter (the value is read as JSON when it parses, else as text)")
    p.add_argument("--per-case", action="store_true",
                   help="one output notebook per case (patient folder), case_path set for each")
    p.add_argument("--profile", help="resource profile (default: the deployment's default)")
    p.add_argument("--detach", action="store_true", help="start it and return; follow with 'batch show'")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_run)
    p = batch.add_parser("list", help="batch runs, newest first")
    p.add_argument("--user")
    p.add_argument("--state", choices=runs.STATES)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_list)
    p = batch.add_parser("show", help="one batch run: its cases, their errors, the notebook's hash and the image")
    p.add_argument("id", type=int)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_show)
    p = batch.add_parser("cancel", help="stop a running batch run")
    p.add_argument("id", type=int)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_cancel)
