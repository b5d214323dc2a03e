"""The steward's Grants page and its API: the live grants on the datasets they steward, and
revoking one for a reason. The hub's workbench-access service then stops the servers that mount
the dataset, within two of its intervals (sandbox.revocation_interval).

    pages                                   REST API (JSON)
    GET  grants                             GET  api/grants
    POST grants/<id>/revoke  (reason)       POST api/grants/<id>/revoke  {reason}

Non-stewards are refused (403), as is a steward revoking a grant of a dataset they do not steward;
an unknown grant 404, one already revoked or expired 409, an empty reason 400 naming `reason`.
"""

from tornado import web

from ..catalog import grant_revocation
from .api import ApiHandler
from .base import Refused
from .pages import Page


def stewarded_grants(portal, steward: str) -> list[dict]:
    """The live grants on `steward`'s datasets, each with its dataset's title."""
    with portal.ctx.session() as s:
        return [{**g.as_dict(), "title": g.dataset.title}
                for g in grant_revocation.stewarded_grants(s, portal.held_roles(s), steward)]


def revoke(portal, steward: str, grant_id: int, reason) -> dict:
    with portal.ctx.session() as s:
        return grant_revocation.revoke_grant(s, portal.held_roles(s), steward, grant_id, reason).as_dict()


class GrantsPage(Page):
    async def show(self, errors: dict | None = None, status: int = 200):
        """The page; `errors`: grant id -> {field: message} for its revoke form."""
        grants = await self.run(stewarded_grants, self.portal, self.user)
        revoked = self.get_argument("revoked", "")
        self.render_page("steward_grants.html", status, grants=grants, errors=errors or {},
                         revoked=revoked if revoked.isdigit() else None,
                         stop_within=2 * self.portal.ctx.settings["sandbox"]["revocation_interval"])

    @web.authenticated
    async def get(self):
        await self.show()


class RevokePage(GrantsPage):
    SUPPORTED_METHODS = ("POST",)  # a form's target; GET shows nothing here (405)

    @web.authenticated
    async def post(self, grant_id):
        try:
            await self.run(revoke, self.portal, self.user, int(grant_id), self.form("reason"))
        except Refused as e:
            if e.status_code != 400:
                raise
            await self.show({int(grant_id): e.fields}, 400)
            return
        self.back_to(f"grants?revoked={grant_id}")


class GrantsApi(ApiHandler):
    async def get(self):
        self.send(await self.run(stewarded_grants, self.portal, self.user))


class RevokeApi(ApiHandler):
    async def post(self, grant_id):
        reason = self.body("reason")["reason"]
        self.send(await self.run(revoke, self.portal, self.user, int(grant_id), reason))


GRANT_ROUTES = [
    (r"grants", GrantsPage), (r"grants/([0-9]+)/revoke", RevokePage),
    (r"api/grants", GrantsApi), (r"api/grants/([0-9]+)/revoke", RevokeApi),
]
