"""CLI: `workbench dashboard publish|list|show`, published dashboards and their stewards' decisions.

Researchers publish from their sandbox (`workbench.dashboards.publish(...)`); operators publish a
notebook of the host for a user here, run first in that user's sandbox (dashboard_check.py).
Stewards decide on the portal's Dashboards page (or its API)."""

import sys
from pathlib import Path

from ..errors import WorkbenchError
from ..hub.roles import CLINICIAN
from ..output import print_rows
from . import accounts, dashboards

LIST_COLUMNS = ["name", "owner", "state", "group", "datasets", "published_at"]


def _publish(ctx, args):
    from .. import dashboard_check, dashboard_publishing

    path = Path(args.notebook)
    if not path.is_file():
        raise WorkbenchError(f"{args.notebook} is not a file", "give the path of an .ipynb file on this host")
    name = args.name or path.stem.lower().replace("_", "-")
    content = path.read_text()
    data, _ = dashboard_publishing.notebook_bytes(content)
    with ctx.session() as s:  # every refusal before the notebook runs
        accounts.get_account(s, args.owner)
        dashboards.check_publication(s, args.owner, name, path.name, args.dataset, args.group)
    print(f"running {path.name} in {args.owner}'s sandbox on {', '.join(args.dataset)} ...", file=sys.stderr)
    failed = dashboard_check.first_failing_cell(ctx, args.owner, args.dataset, path.name, data)
    if failed:
        raise WorkbenchError(f"{path.name}: {failed}", "fix the notebook: a dashboard runs it top to bottom")
    made = dashboard_publishing.publish(ctx, ctx.actor, args.owner, name, path.name, content, args.dataset,
                                        args.group)
    print_rows([{**made, "datasets": ", ".join(made["datasets"])}], LIST_COLUMNS + ["sha256"], args.json)
    if not args.json:
        print(f"waits for the stewards of {', '.join(made['datasets'])} to approve it on the portal's Dashboards page",
              file=sys.stderr)

def _list(ctx, args):
    with ctx.session() as s:
        rows = [dashboards.as_dict(d) for d in dashboards.list_dashboards(s)]
    if not args.json:
        for row in rows:
            row["datasets"] = ", ".join(row["datasets"])
    print_rows(rows, LIST_COLUMNS, args.json)


def _show(ctx, args):
    with ctx.session() as s:
        row = dashboards.as_dict(dashboards.get_dashboard(s, args.name))
    if args.json:
        return print_rows([row], [], as_json=True)
    print_rows([{**row, "datasets": ", ".join(row["datasets"])}],
               ["name", "owner", "state", "group", "datasets", "notebook", "sha256", "image", "published_at"])
    for dataset_id, d in sorted(row["decisions"].items()):
        print(f"{dataset_id}: {'approved' if d['approved'] else 'refused'} by {d['steward']} "
              f"on {d['decided_at']:%Y-%m-%d %H:%M}" + (f" ({d['reason']})" if d["reason"] else ""))


def register(subparsers) -> None:
    ds = subparsers.add_parser("dashboard", help="published dashboards").add_subparsers(
        dest="dashboard_command", required=True, metavar="ACTION")
    p = ds.add_parser("publish", help="publish a notebook of this host as a user's dashboard, once it ran in their sandbox")
    p.add_argument("notebook", help="the .ipynb file")
    p.add_argument("--owner", required=True, help="whose dashboard it is: their grants, their server")
    p.add_argument("--dataset", required=True, action="append", help="a dataset it shows (repeat for more)")
    p.add_argument("--name", help="the dashboard's name (default: from the file name)")
    p.add_argument("--group", default=CLINICIAN.group, help=f"the hub group it is for (default: {CLINICIAN.group})")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_publish)
    p = ds.add_parser("list", help="every dashboard, its state and group")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_list)
    p = ds.add_parser("show", help="one dashboard: its notebook's hash, image and the stewards' decisions")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_show)
