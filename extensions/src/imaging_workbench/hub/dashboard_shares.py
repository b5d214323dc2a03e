"""Who may open each serving dashboard: exactly the members of its group (minus its owner), kept
so by the access service at every pass (hub/access_service.py).

The shares go to users, not to the group: JupyterHub 6.1 gives a user's tokens, and so their
OAuth logins into a server, only the scopes of shares made to the user. So someone who joins
the group gets a share at the next pass, and someone who leaves it loses theirs.
"""

import logging

from ..catalog import dashboards
from ..errors import WorkbenchError
from ..sessions.hub_api import SessionHub
from .catalog_link import catalog_session

log = logging.getLogger("workbench.access")
SHARED_SCOPES = ["access:servers", "servers"]  # open it, and start it when it was stopped


def serving(catalog_url: str, key_file: str | None = None) -> list[tuple[str, str, str]]:
    """(owner, server name, group) of every dashboard that serves now."""
    with catalog_session(catalog_url, key_file) as s:
        return [(d.owner, dashboards.server_name(d.name), d.group) for d in dashboards.list_dashboards(s)
                if dashboards.state(d) == dashboards.LIVE]


def share_with_members(hub: SessionHub, owner: str, server: str, group: str) -> int:
    """Bring the server's user shares to the group's members; returns the shares added or removed.
    A dashboard whose server the hub has never known is left until it has one."""
    shared = hub.shares(owner, server)
    if shared is None:
        return 0
    members = set(hub.group_members(group)) - {owner}
    for user in sorted(members - set(shared)):
        hub.share(owner, server, user, SHARED_SCOPES)
        log.info("Shared dashboard %s/%s with %s (member of %s)", owner, server, user, group)
    for user in sorted(set(shared) - members):
        hub.unshare(owner, server, user)
        log.info("Took dashboard %s/%s from %s (no longer in %s)", owner, server, user, group)
    return len(members ^ set(shared))


def sync_once(catalog_url: str, hub: SessionHub, key_file: str | None = None) -> int:
    changed = 0
    for owner, server, group in serving(catalog_url, key_file):
        try:
            changed += share_with_members(hub, owner, server, group)
        except WorkbenchError as e:  # one dashboard's trouble does not stop the others'
            log.error("Dashboard %s/%s: %s", owner, server, e.message)
    return changed
