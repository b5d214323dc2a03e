"""CLI: the sandbox network, the demo logins, and `down` (stop everything `make up` started)."""

import json
import os

from ..catalog import accounts, datasets, grants
from ..private_state import ensure_state_dir
from . import roles
from .network import docker_client, ensure_firewall, ensure_network, gateway, sandbox_open_ports

DEMO_GRANT_DAYS = 30


def _sandbox_network(ctx, args):
    box = ctx.settings["sandbox"]
    ensure_network(docker_client(), box["network"], box["subnet"])
    ensure_firewall(box["network"], box["subnet"], sandbox_open_ports(ctx.settings))
    print(f"sandbox network '{box['network']}' ready: {box['subnet']}, gateway {gateway(box['subnet'])}, "
          f"host ports open to sandboxes: {', '.join(map(str, sandbox_open_ports(ctx.settings)))}")


def ensure_demo_users(ctx) -> dict[str, str]:
    """Create the demo accounts once, grant the demo datasets; return name -> password.

    The accounts are the demo users and everyone the settings' `roles:` section names (operators,
    stewards, ...). Operators are marked `is_admin` in the catalog, for the workbench's own
    bookkeeping only: the hub gives them the operator role, never admin (hub/roles.py).
    Passwords are generated on first creation and kept in <state_dir>/demo-logins.json (mode 600),
    so a second `make up` prints the same logins."""
    logins_file = ctx.state_dir / "demo-logins.json"
    logins = json.loads(logins_file.read_text()) if logins_file.exists() else {}
    demo = ctx.settings["demo"]
    operators = roles.members(ctx.settings["roles"], roles.OPERATOR)
    with ctx.session() as s:
        for name in dict.fromkeys([*roles.named_people(ctx.settings["roles"]), *demo["users"]]):
            account = s.get(accounts.Account, name)
            if account is None or name not in logins:
                logins[name] = accounts.generate_password()
                if account is None:
                    accounts.add_account(s, ctx.actor, name, logins[name], is_admin=name in operators)
                else:
                    accounts.set_password(s, ctx.actor, name, logins[name])
        registered = [d.id for d in datasets.list_datasets(s)]
        for user, wanted in demo.get("grants", {}).items():
            for dataset_id in registered if wanted == "all" else [d for d in wanted if d in registered]:
                if grants.live_grant(s, user, dataset_id) is None:
                    grants.grant_access(s, ctx.actor, user, dataset_id, DEMO_GRANT_DAYS, "workbench demo")
    ensure_state_dir(ctx.settings)
    fd = os.open(logins_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(logins, f, indent=2)
    return logins


def _demo_users(ctx, args):
    logins = ensure_demo_users(ctx)
    with ctx.session() as s:
        held = {name: grants.approved_dataset_ids(s, name) for name in logins}
    print(f"demo logins (also in {ctx.state_dir / 'demo-logins.json'}):")
    for name, password in logins.items():
        who = ", ".join(roles.roles_of(ctx.settings["roles"], name))
        print(f"  {name:<8} {password:<18} {who:<20} datasets: {', '.join(held[name]) or 'none'}")


def _down(ctx, args):
    from ..stack import down, stop_hub

    stopped = stop_hub(ctx.settings) if args.hub_only else down(ctx.settings)
    for line in stopped:
        print(f"stopped {line}")
    print("nothing was running" if not stopped else f"stopped {len(stopped)} in all")
    print(f"kept: the catalog, the demo data, home volumes and the FLARE kits under {ctx.settings['state_dir']}")


def register(subparsers) -> None:
    p = subparsers.add_parser("sandbox-network", help="create the sandbox network and its firewall (root)")
    p.set_defaults(handler=_sandbox_network)
    p = subparsers.add_parser("demo-users", help="create the demo logins and grant them the demo datasets")
    p.set_defaults(handler=_demo_users)
    p = subparsers.add_parser("down", help="stop the hub with its proxy and services, the sandboxes and the "
                                           "FLARE sites; keeps all data")
    p.add_argument("--hub-only", action="store_true",
                   help="stop only the hub and what it started (proxy, services); sandboxes and sites stay")
    p.set_defaults(handler=_down)
