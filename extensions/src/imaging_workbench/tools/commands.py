"""CLI: `workbench tools list|add|add-shipped|publish-job|approve|retire|show` (the catalogue of AI tools)."""

import json

from ..output import print_rows
from . import catalog

COLUMNS = ["id", "version", "kind", "modality", "state", "added_by", "approved_by", "retired_at"]


def _add(ctx, args):
    print_rows([catalog.add(ctx, args.bundle)], COLUMNS, args.json)


def _add_shipped(ctx, args):
    from ..context import WorkbenchContext
    from .shipped import shipped_bundles

    rows = []
    for bundle in shipped_bundles():
        card = json.loads((bundle / "workbench_card.json").read_text())
        known = {t["version"]: t for t in catalog.list_tools(ctx) if t["id"] == card["id"]}
        tool = known.get(card["version"]) or catalog.add(ctx, bundle)
        if args.approve_as and tool["state"] == catalog.DRAFT:
            tool = catalog.approve(WorkbenchContext(ctx.settings, actor=args.approve_as), tool["id"], tool["version"])
        rows.append(tool)
    print_rows(rows, COLUMNS, args.json)


def _publish_job(ctx, args):
    from .publish_job import publish_job

    print_rows([publish_job(ctx, args.job, args.id, args.version)], COLUMNS, args.json)


def _approve(ctx, args):
    print_rows([catalog.approve(ctx, args.id, args.version)], COLUMNS, args.json)


def _retire(ctx, args):
    print_rows([catalog.retire(ctx, args.id, args.version, args.reason)], COLUMNS + ["retire_reason"], args.json)


def _list(ctx, args):
    print_rows(catalog.list_tools(ctx, args.state), COLUMNS, args.json)


def _show(ctx, args):
    tools = catalog.show(ctx, args.id, args.version)
    if args.json:
        return print_rows(tools, [], as_json=True)
    for tool in tools:
        print_rows([tool], COLUMNS + ["weights_sha256", "path"])
        print(json.dumps(tool["card"], indent=2))
        print_rows(tool["audit"], ["at", "actor", "action", "details"])
        print()


def register(subparsers) -> None:
    tools = subparsers.add_parser("tools", help="the catalogue of AI tools (MONAI bundles with model cards)"
                                  ).add_subparsers(dest="tools_command", required=True, metavar="ACTION")
    p = tools.add_parser("list", help="tool versions and their states")
    p.add_argument("--state", choices=catalog.STATES)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_list)
    p = tools.add_parser("add", help="check a bundle folder or .zip/.tar.gz archive and add it as a draft")
    p.add_argument("bundle", help="the bundle, holding workbench_card.json, configs/metadata.json and its weights")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_add)
    p = tools.add_parser("add-shipped", help="add the tools the workbench ships (made by its own federated training), "
                                             "once; drafts unless --approve-as")
    p.add_argument("--approve-as", metavar="REVIEWER", help="a tool reviewer who approves them (not the adder)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_add_shipped)
    p = tools.add_parser("publish-job", help="add the model of a finished federated-training job as a draft tool")
    p.add_argument("job", help="the federated job's id")
    p.add_argument("--id", default="tumour-seg", help="the tool's id (default: tumour-seg)")
    p.add_argument("--version", default="1.0.0", help="the tool's version (default: 1.0.0)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_publish_job)
    p = tools.add_parser("approve", help="approve a draft (a tool reviewer who did not add it)")
    p.add_argument("id")
    p.add_argument("version")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_approve)
    p = tools.add_parser("retire", help="retire a tool version: it no longer loads")
    p.add_argument("id")
    p.add_argument("version")
    p.add_argument("--reason", required=True, help="why: users of the tool read it")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_retire)
    p = tools.add_parser("show", help="a tool's versions: card, state and audit trail")
    p.add_argument("id")
    p.add_argument("version", nargs="?")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_show)
