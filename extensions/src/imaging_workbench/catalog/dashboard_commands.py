"""CLI: `workbench dashboard list|show`, published dashboards and their stewards' decisions.

Researchers publish from their sandbox (`workbench.dashboards.publish(...)`) and stewards decide on
the portal's Dashboards page (or its API); operators see them here."""

from ..output import print_rows
from . import dashboards

LIST_COLUMNS = ["name", "owner", "state", "group", "datasets", "published_at"]


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
    p = ds.add_parser("list", help="every dashboard, its state and group")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_list)
    p = ds.add_parser("show", help="one dashboard: its notebook's hash, image and the stewards' decisions")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_show)
