"""Published dashboards on the portal (catalog/dashboards.py): a researcher publishes a notebook
from their sandbox, each dataset's steward decides, and a dashboard whose datasets are all
approved goes live: its owner's `dashboard-NAME` server is started and shared with each member
of its group (a JupyterHub share: access to, and start of, that one server; the access service
keeps the shares to the group's members, hub/dashboard_shares.py). Revoking an approval stops
the server and removes it, and its shares with it.

    pages                          REST API (JSON)
    GET  dashboards                GET  api/dashboards            mine, awaiting me, shared with my groups
    POST dashboards/<name>/decide  POST api/dashboards            {name, notebook, content, datasets, group}
                                   POST api/dashboards/<name>/decisions  {dataset, approve, reason}
                                   POST api/dashboards/<name>/revoke     {dataset, reason}

The portal pins the notebook it is sent (dashboard_publishing.py); later edits in the owner's
home change nothing that is served.
"""

from tornado import web

from .. import dashboard_publishing
from ..catalog import dashboards
from ..hub.dashboard_shares import share_with_members
from ..sessions.hub_api import SessionHub
from .api import ApiHandler, yes_or_no
from .pages import Page


def publish(portal, user: str, name, notebook, content, datasets, group) -> dict:
    return dashboard_publishing.publish(portal.ctx, user, user, name, notebook, content, datasets, group)


def overview(portal, user: str) -> dict:
    """What `user` sees on the Dashboards page: their own, those awaiting their decision, and the
    live ones of the groups they are in (from the hub)."""
    with portal.ctx.session() as s:
        held = portal.held_roles(s)
        everything = dashboards.list_dashboards(s)
        mine = [dashboards.as_dict(d) for d in everything if d.owner == user]
        awaiting = [dashboards.as_dict(d) for d in dashboards.awaiting(s, held, user)]
        live = [dashboards.as_dict(d) for d in everything if dashboards.state(d) == dashboards.LIVE]
    groups = set(((portal_hub(portal).user(user) or {}).get("groups")) or [])
    return {"mine": mine, "awaiting": awaiting, "shared": [d for d in live if d["group"] in groups]}


def portal_hub(portal) -> SessionHub:
    return SessionHub.from_settings(portal.ctx.settings)


def go_live(portal, name: str) -> None:
    """Start the owner's dashboard server and share it with each member of the dashboard's group
    (access to it, and starting it when it was stopped)."""
    with portal.ctx.session() as s:
        board = dashboards.as_dict(dashboards.get_dashboard(s, name))
    hub = portal_hub(portal)
    try:
        hub.start_server(board["owner"], board["server"])
    finally:  # shared even when this start fails: its members may start it themselves later
        share_with_members(hub, board["owner"], board["server"], board["group"])


def decide(portal, steward: str, name: str, dataset, approve, reason) -> dict:
    with portal.ctx.session() as s:
        board = dashboards.decide(s, portal.held_roles(s), steward, name, dataset, approve, reason)
        made = dashboards.as_dict(board)
    if made["state"] == dashboards.LIVE:
        go_live(portal, name)
    return made


def revoke(portal, steward: str, name: str, dataset, reason) -> dict:
    with portal.ctx.session() as s:
        made = dashboards.as_dict(dashboards.revoke(s, portal.held_roles(s), steward, name, dataset, reason))
    portal_hub(portal).stop_server(made["owner"], made["server"], remove=True)  # the share goes with it
    return made


class DashboardsPage(Page):
    @web.authenticated
    async def get(self):
        self.render_page("dashboards.html", **await self.run(overview, self.portal, self.user))


class DecidePage(Page):
    @web.authenticated
    async def post(self, name):
        await self.run(decide, self.portal, self.user, name, self.form("dataset"), self.form("approve") == "yes",
                       self.form("reason"))
        self.back_to("dashboards")


class DashboardsApi(ApiHandler):
    async def get(self):
        self.send(await self.run(overview, self.portal, self.user))

    async def post(self):
        b = self.body("name", "notebook", "content", "datasets", "group")
        self.send(await self.run(publish, self.portal, self.user, b["name"], b["notebook"], b["content"],
                                 b["datasets"], b["group"]), 201)


class DecisionsApi(ApiHandler):
    async def post(self, name):
        b = self.body("dataset", "approve")
        self.send(await self.run(decide, self.portal, self.user, name, b["dataset"], yes_or_no(b, "approve"),
                                 b.get("reason", "")))


class RevokeApi(ApiHandler):
    async def post(self, name):
        b = self.body("dataset", "reason")
        self.send(await self.run(revoke, self.portal, self.user, name, b["dataset"], b["reason"]))


DASHBOARD_ROUTES = [(r"dashboards", DashboardsPage), (r"dashboards/([^/]+)/decide", DecidePage),
                    (r"api/dashboards", DashboardsApi), (r"api/dashboards/([^/]+)/decisions", DecisionsApi),
                    (r"api/dashboards/([^/]+)/revoke", RevokeApi)]
