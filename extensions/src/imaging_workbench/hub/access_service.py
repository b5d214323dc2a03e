"""workbench-access: a hub service that stops running sandboxes whose mounted datasets are no
longer granted (revoked or expired), within two of its polling intervals, and audits why.

Every start of a server is its own mount record, so any number of revocations or expiries for the
same user (whose container names repeat) are each enforced; a stop the hub did not carry out is
asked for again.

Under OpenID Connect login (`--refresh-logins`) it first asks the hub to check every user with a
running server with the identity provider again (hub/oidc.py applies the roles the provider's
groups give now). A user the provider has taken out of the platform's groups loses their access
through the revocation function and their servers stop; one it no longer vouches for at all
(tokens refused) has their servers stopped until they sign in again. A provider that does not
answer changes nothing.

At every pass it also keeps each serving dashboard shared with exactly its group's members
(hub/dashboard_shares.py).

Run by the hub as a managed service; it talks to the hub REST API with its own token."""

import argparse
import logging
import os
import signal
import sys
import time
from urllib.parse import quote

import requests
from sqlalchemy import select

from ..catalog import audit
from ..catalog.models import ServerMount
from ..clock import utcnow
from ..sessions.hub_api import SessionHub
from . import dashboard_shares
from .catalog_link import catalog_session
from .mount_plan import lost_datasets
from .revocation import end_access

log = logging.getLogger("workbench-access")
# A stop asked for is asked again if the server still runs this many seconds later.
RETRY_STOP_AFTER = 30


def stale_mounts(session) -> list[tuple[ServerMount, dict[str, str]]]:
    """Open mounts holding datasets the user no longer holds now, with each such dataset and why."""
    stale = []
    for mount in session.scalars(select(ServerMount).where(ServerMount.stopped_at.is_(None))):
        lost = lost_datasets(session, mount.user, mount.datasets)
        if lost:
            stale.append((mount, lost))
    return stale


def users_with_servers(session) -> dict[str, list[str]]:
    """User -> the names of their running servers, from the open mount records (every server the
    spawner starts has one, and it closes when the server stops)."""
    running: dict[str, list[str]] = {}
    for mount in session.scalars(select(ServerMount).where(ServerMount.stopped_at.is_(None))):
        running.setdefault(mount.user, []).append(mount.server_name)
    return running


class HubAPI:
    def __init__(self, url: str, token: str):
        self.url = url.rstrip("/")
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"token {token}"

    def running_servers(self, user: str) -> set[str] | None:
        r = self.http.get(f"{self.url}/users/{quote(user)}", timeout=30)
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return set(r.json().get("servers", {}))

    def refresh_login(self, user: str) -> dict:
        """The hub's answer after asking the identity provider about `user` again (hub/oidc_handlers.py)."""
        r = self.http.post(f"{self.url}/workbench/auth-refresh/{quote(user)}", timeout=60)
        r.raise_for_status()
        return r.json()

    def stop_server(self, user: str, server_name: str) -> None:
        path = f"/users/{quote(user)}/servers/{quote(server_name)}" if server_name else f"/users/{quote(user)}/server"
        r = self.http.delete(self.url + path, timeout=60)
        if r.status_code not in (202, 204, 400):  # 400: already stopping or stopped
            r.raise_for_status()


def enforce_once(catalog_url: str, hub: HubAPI, stopping: dict[int, float], key_file: str | None = None) -> int:
    """One pass: stop every server that mounts a dataset no longer granted. Returns servers stopped.

    `stopping` maps the mount records whose stop was asked for to when; entries of mounts that
    have closed are dropped, so the map never outgrows the servers running now. No catalog
    transaction stays open across a call to the hub: the hub records the stop in the catalog
    while it answers, and SQLite has one writer.
    """
    with catalog_session(catalog_url, key_file) as session:
        stale = [(mount.id, mount.user, mount.server_name, mount.container, list(mount.datasets), lost)
                 for mount, lost in stale_mounts(session)]
    for mount_id in set(stopping) - {row[0] for row in stale}:
        del stopping[mount_id]
    stopped = 0
    for mount_id, user, server_name, container, mounted, lost in stale:
        running = hub.running_servers(user)
        if running is None or server_name not in running:
            # The server is gone without its stop being recorded (hub crash, manual removal).
            with catalog_session(catalog_url, key_file) as session:
                session.get(ServerMount, mount_id).stopped_at = utcnow()
                audit.record(session, "workbench-access", "server.gone", f"{user}/{server_name}",
                             container=container, datasets=mounted)
            continue
        if mount_id in stopping and time.monotonic() - stopping[mount_id] < RETRY_STOP_AFTER:
            continue
        log.warning("Stopping %s/%s: access %s for %s", user, server_name, " and ".join(sorted(set(lost.values()))),
                    ", ".join(lost))
        with catalog_session(catalog_url, key_file) as session:
            audit.record(session, "workbench-access", "server.revoked", f"{user}/{server_name}", container=container,
                         datasets_no_longer_granted=sorted(lost), reasons=lost, retry=mount_id in stopping)
        hub.stop_server(user, server_name)
        stopping[mount_id] = time.monotonic()
        stopped += 1
    return stopped


def refresh_logins_once(catalog_url: str, hub: HubAPI, key_file: str | None = None) -> int:
    """One pass over the users with running servers: the hub asks the identity provider about each
    again; those it no longer vouches for have their servers stopped. Returns servers stopped."""
    with catalog_session(catalog_url, key_file) as session:
        running = users_with_servers(session)
    stopped = 0
    for user, servers in running.items():
        answer = hub.refresh_login(user)
        if answer["outcome"] not in ("not-allowed", "refused"):
            continue
        reason = f"identity provider: {answer['reason']}"
        log.warning("Stopping %s's servers: %s", user, reason)
        with catalog_session(catalog_url, key_file) as session:
            if answer["outcome"] == "not-allowed":
                end_access(session, "workbench-access", user, reason)
            for name in servers:
                audit.record(session, "workbench-access", "server.stopped", f"{user}/{name}", reason=reason)
        for name in servers:
            hub.stop_server(user, name)
            stopped += 1
    return stopped


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--catalog-url", required=True)
    parser.add_argument("--interval", type=float, default=15.0)
    parser.add_argument("--audit-key-file", help="the audit trail's key file (default: beside a SQLite catalog)")
    parser.add_argument("--refresh-logins", action="store_true",
                        help="ask the identity provider about users with running servers at every pass")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[workbench-access %(asctime)s] %(message)s")
    # The hub stops services with SIGINT, then SIGTERM after 10 s: exit at once on either, also
    # when SIGINT was passed down ignored.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: sys.exit(0))
    hub = HubAPI(os.environ["JUPYTERHUB_API_URL"], os.environ["JUPYTERHUB_API_TOKEN"])
    sharing = SessionHub(os.environ["JUPYTERHUB_API_URL"], os.environ["JUPYTERHUB_API_TOKEN"])
    stopping: dict[int, float] = {}
    log.info("Enforcing grants every %s s", args.interval)
    while True:
        try:
            if args.refresh_logins:
                refresh_logins_once(args.catalog_url, hub, args.audit_key_file)
            enforce_once(args.catalog_url, hub, stopping, args.audit_key_file)
            dashboard_shares.sync_once(args.catalog_url, sharing, args.audit_key_file)
        except (requests.RequestException, OSError) as e:
            log.error("Pass failed, retrying next interval: %s", e)
        time.sleep(args.interval)


if __name__ == "__main__":
    main()
