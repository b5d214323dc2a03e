"""CLI: datasets, users, grants, access requests, access and the audit trail."""

from ..output import print_rows
from . import access_requests, accounts, audit, audit_head, datasets, grants, idp_roles

DATASET_COLUMNS = ["id", "title", "cancer_type", "modality", "body_part", "site", "n_subjects", "n_series"]


def _datasets_list(ctx, args):
    with ctx.session() as s:
        rows = [d.as_dict() for d in datasets.list_datasets(s)]
    print_rows(rows, DATASET_COLUMNS + (["host_path"] if args.paths else []), args.json)


def _datasets_add(ctx, args):
    fields = {k: getattr(args, k) for k in datasets.FIELDS if k != "title"}
    with ctx.session() as s:
        d = datasets.add_dataset(s, ctx.actor, args.id, args.path, title=args.title, state_dir=ctx.state_dir,
                                 **fields)
    print(f"dataset '{d.id}' added ({d.host_path})")
    from ..dicom.commands import index_if_dicom  # DICOM folders get their index (progress bar) right away
    index_if_dicom(ctx, d.id, d.host_path)


def _datasets_index(ctx, args):
    from ..dicom.commands import _datasets_index as index
    return index(ctx, args)


def _datasets_remove(ctx, args):
    with ctx.session() as s:
        datasets.remove_dataset(s, ctx.actor, args.id)
    print(f"dataset '{args.id}' removed from the catalog (its files are untouched)")


def _users_list(ctx, args):
    from ..hub import roles

    with ctx.session() as s:
        held = idp_roles.effective_roles(s, ctx.settings["roles"])  # the settings' and the provider's
        rows = [{"name": a.name, "roles": ", ".join(roles.roles_of(held, a.name)), "admin": a.is_admin,
                 "local_login": a.password_hash is not None, "created_at": a.created_at}
                for a in accounts.list_accounts(s)]
    print_rows(rows, ["name", "roles", "admin", "local_login", "created_at"], args.json)


def _users_add(ctx, args):
    password = accounts.generate_password() if args.password else None
    with ctx.session() as s:
        accounts.add_account(s, ctx.actor, args.name, password, is_admin=args.admin)
    print(f"user '{args.name}' added" + (f"; password: {password}" if password else " (OIDC login only)"))


def _grant(ctx, args):
    with ctx.session() as s:
        g = grants.grant_access(s, ctx.actor, args.user, args.dataset, args.days, args.purpose, mode=args.mode)
    how = "read access to" if g.mode == grants.SANDBOX else "federated-only access to"
    print(f"granted {g.user} {how} {g.dataset_id} until {g.expires_at:%Y-%m-%d %H:%M} UTC")


def _revoke(ctx, args):
    with ctx.session() as s:
        grants.revoke_access(s, ctx.actor, args.user, args.dataset)
    print(f"revoked {args.user}'s access to {args.dataset}; their running servers that mount it are stopped "
          f"within {ctx.settings['sandbox']['revocation_interval'] * 2} s")


def _access(ctx, args):
    with ctx.session() as s:
        if args.user:
            accounts.get_account(s, args.user)
        rows = [g.as_dict() for g in grants.live_grants(s, args.user)]
    print_rows(rows, ["user", "dataset_id", "mode", "purpose", "granted_by", "granted_at", "expires_at"], args.json)


def _requests_list(ctx, args):
    with ctx.session() as s:
        if args.user:
            accounts.get_account(s, args.user)
        rows = [r.as_dict() for r in access_requests.requests_of(s, args.user)]
    if not args.json:  # the table's one cell for the items: lung-ct:approved,liver-mr:pending
        for row in rows:
            row["datasets"] = [f"{i['dataset_id']}:{i['state']}" for i in row["items"]]
    print_rows(rows, ["id", "requester", "project", "mode", "requested_days", "state", "datasets", "created_at"],
               args.json)


def _requests_show(ctx, args):
    with ctx.session() as s:
        request = access_requests.get_request(s, args.id).as_dict()
    if args.json:
        return print_rows([request], [], as_json=True)
    print_rows([request], ["id", "requester", "project", "mode", "requested_days", "state", "created_at",
                           "withdrawn_at"])
    print(f"purpose: {request['purpose']}\n")
    for item in request["items"]:
        item["conditions"] = access_requests.describe_conditions(item["conditions"])
    print_rows(request["items"], ["dataset_id", "state", "decided_by", "decided_at", "days", "conditions", "reason",
                                  "responded_at", "grant_id"])


def _audit(ctx, args):
    if args.verify or args.head or args.export_head:
        return _audit_verify(ctx, args)
    with ctx.session() as s:
        rows = [e.as_dict() for e in audit.events(s, args.limit, args.action, args.dataset)]
    print_rows(rows, ["id", "at", "actor", "action", "subject", "dataset", "details"], args.json)


def _audit_verify(ctx, args):
    """--verify [--head FILE] or --export-head FILE: exit 2 with one line per problem."""
    head = audit_head.read_head(args.head) if args.head else None
    with ctx.session() as s:
        problems = audit.verify_chain(s) + (audit_head.check_head(s, head) if head else [])
        current = audit_head.current_head(s)
    for line in problems:
        print(f"TAMPERED: {line}")
    if problems:
        return 2  # and no head is exported from a trail that does not verify
    if args.export_head:
        audit_head.write_head(current, args.export_head)
        print(f"audit head written to {args.export_head} ({current['count']} events, newest row "
              f"{current['last_id']}): keep it off this host; check it later with --verify --head")
    else:
        print(f"audit chain intact ({current['count']} events)"
              + (f"; it still holds the head exported at {head['exported_at']}" if head else ""))
    return 0


def register(subparsers) -> None:
    ds = subparsers.add_parser("datasets", help="list, add or remove datasets").add_subparsers(
        dest="datasets_command", required=True, metavar="ACTION")
    p = ds.add_parser("list", help="list registered datasets")
    p.add_argument("--json", action="store_true")
    p.add_argument("--paths", action="store_true", help="show host paths")
    p.set_defaults(handler=_datasets_list)
    p = ds.add_parser("add", help="register a dataset folder")
    p.add_argument("id")
    p.add_argument("--path", required=True, help="folder on the host holding the dataset")
    p.add_argument("--title")
    for field in ("cancer_type", "modality", "body_part", "site", "licence"):
        p.add_argument(f"--{field.replace('_', '-')}", dest=field, default="")
    p.add_argument("--n-subjects", dest="n_subjects", type=int)
    p.add_argument("--n-series", dest="n_series", type=int)
    p.set_defaults(handler=_datasets_add)
    p = ds.add_parser("index", help="(re)build a dataset's DICOM index; incremental, shows progress")
    p.add_argument("id")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_datasets_index)
    p = ds.add_parser("remove", help="remove a dataset from the catalog")
    p.add_argument("id")
    p.set_defaults(handler=_datasets_remove)

    us = subparsers.add_parser("users", help="list or add users").add_subparsers(
        dest="users_command", required=True, metavar="ACTION")
    p = us.add_parser("list", help="list users")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_users_list)
    p = us.add_parser("add", help="add a user (OIDC login unless --password)")
    p.add_argument("name")
    p.add_argument("--password", action="store_true", help="generate a local password and print it")
    p.add_argument("--admin", action="store_true")
    p.set_defaults(handler=_users_add)

    p = subparsers.add_parser("grant", help="approve USER to read DATASET")
    p.add_argument("user")
    p.add_argument("dataset")
    p.add_argument("--days", type=int, required=True)
    p.add_argument("--purpose", required=True)
    p.add_argument("--mode", choices=grants.MODES, default=grants.SANDBOX,
                   help="sandbox: mounted read-only in the user's servers; federated: only federated jobs use it")
    p.set_defaults(handler=_grant)
    p = subparsers.add_parser("revoke", help="withdraw USER's access to DATASET")
    p.add_argument("user")
    p.add_argument("dataset")
    p.set_defaults(handler=_revoke)
    p = subparsers.add_parser("access", help="live grants, for one user or everyone")
    p.add_argument("user", nargs="?")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_access)
    rq = subparsers.add_parser("requests", help="access requests, as the portal shows them").add_subparsers(
        dest="requests_command", required=True, metavar="ACTION")
    p = rq.add_parser("list", help="access requests, newest first, with each dataset's state")
    p.add_argument("--user", help="only this requester's")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_requests_list)
    p = rq.add_parser("show", help="one access request: its terms and each dataset's decision")
    p.add_argument("id", type=int)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_requests_show)
    p = subparsers.add_parser("audit", help="show or verify the audit trail")
    p.add_argument("--verify", action="store_true", help="check every row's MAC and link; exit 2 if tampered")
    p.add_argument("--head", metavar="FILE", help="with --verify: also check the trail still holds this head")
    p.add_argument("--export-head", metavar="FILE",
                   help="verify, then write the trail's head (rows, newest row's id and MAC) to FILE, "
                        "to keep off this host")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--action")
    p.add_argument("--dataset", metavar="ID", help="only events about this dataset")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_audit)
