"""CLI: the airlock's release requests, as the portal shows them (read-only: the steps are the
portal's, where the author and the checkers sign in)."""

from ..catalog import accounts, releases
from ..output import print_rows


def _releases_list(ctx, args):
    with ctx.session() as s:
        if args.user:
            accounts.get_account(s, args.user)
        rows = [r.as_dict() for r in (releases.releases_of(s, args.user) if args.user else releases.all_releases(s))]
    if not args.json:
        for row in rows:
            row["files"] = [f["name"] for f in row["files"]]
    print_rows(rows, ["id", "author", "state", "datasets", "files", "created_at", "updated_at"], args.json)


def _releases_show(ctx, args):
    with ctx.session() as s:
        release = releases.get_release(s, args.id).as_dict()
    if args.json:
        return print_rows([release], [], as_json=True)
    print_rows([release], ["id", "author", "state", "datasets", "created_at", "released_at", "closed_by", "reason"])
    print(f"statement: {release['statement']}\ncontrols: {release['controls']}\n")
    for f in release["files"]:
        f["findings"] = "; ".join(f"{x['severity']}: {x['message']}" for x in f["findings"]) or "none"
        f["reviews"] = ", ".join(f"{r['reviewer']}:{r['decision']}" for r in f["reviews"]) or "none"
    print_rows(release["files"], ["name", "kind", "size", "sha256", "findings", "reviews"])


def register(subparsers) -> None:
    rl = subparsers.add_parser("releases", help="the airlock's release requests, as the portal shows them"
                               ).add_subparsers(dest="releases_command", required=True, metavar="ACTION")
    p = rl.add_parser("list", help="release requests, newest first")
    p.add_argument("--user", help="only this author's")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_releases_list)
    p = rl.add_parser("show", help="one release request: its files, hashes, automatic findings and reviews")
    p.add_argument("id", type=int)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_releases_show)
