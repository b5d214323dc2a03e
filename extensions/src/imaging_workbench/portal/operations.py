"""What the portal does for the person signed in, each step one catalog transaction.

The pages and the REST API both call these, so a page and its API answer alike. Every check of
who may do what is the catalog's (catalog/access_requests.py, hub/roles.py); this module only
adds who may *see* a request: its requester and the stewards of its datasets.
"""

from sqlalchemy import select

from ..catalog import access_requests, training_sessions
from ..catalog.idp_roles import effective_roles
from ..catalog.datasets import datasets_by_id, list_datasets
from ..catalog.grants import SANDBOX, live_grants
from ..catalog.models import ServerMount
from ..hub import roles
from .airlock_desk import AirlockDesk
from .audit_view import AuditTrail
from .catalogue import facets, matches, public_view


class Portal:
    """The portal's operations over the catalog of a WorkbenchContext (`ctx`)."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.airlock = AirlockDesk(ctx)
        self.audit = AuditTrail(self)  # one per portal: requests share its last verification

    def held_roles(self, session=None) -> dict:
        """Who holds which role now: the settings' `roles:` and what the identity provider's groups
        gave at each user's last login or refresh (catalog/idp_roles.py). Read in `session` when
        one is open (a second transaction would wait for it: SQLite has one writer)."""
        if session is not None:
            return effective_roles(session, self.ctx.settings["roles"])
        with self.ctx.session() as s:
            return effective_roles(s, self.ctx.settings["roles"])

    @property
    def max_days(self) -> int:
        return self.ctx.settings["access"]["max_days"]

    def has_role(self, user: str, role: roles.Role, held: dict | None = None) -> bool:
        return roles.normalize(user) in roles.members(held or self.held_roles(), role)

    def is_steward(self, user: str) -> bool:
        return self.has_role(user, roles.STEWARD)

    def is_operator(self, user: str) -> bool:
        return self.has_role(user, roles.OPERATOR)

    def is_checker(self, user: str) -> bool:
        return self.has_role(user, roles.OUTPUT_CHECKER)

    def roles_for_nav(self, user: str | None) -> dict:
        """Which role-only pages the menu links for `user` (None: nobody signed in)."""
        if not user:
            return {"is_steward": False, "is_operator": False, "is_checker": False, "is_instructor": False}
        with self.ctx.session() as s:
            held, instructs = self.held_roles(s), bool(training_sessions.instructed_by(s, user))
        return {"is_steward": self.has_role(user, roles.STEWARD, held),
                "is_operator": self.has_role(user, roles.OPERATOR, held),
                "is_checker": self.has_role(user, roles.OUTPUT_CHECKER, held), "is_instructor": instructs}

    def catalogue(self, q: str = "", **filters: str) -> dict:
        """{"datasets": the public views passing the search, "facets": the filters' values over all}."""
        with self.ctx.session() as s:
            held = self.held_roles(s)
            rows = [public_view(d, held) for d in list_datasets(s)]
        return {"datasets": [row for row in rows if matches(row, q, **filters)], "facets": facets(rows)}

    def submit(self, user: str, datasets, project, purpose, mode, days) -> dict:
        with self.ctx.session() as s:
            made = access_requests.submit_request(s, user, datasets, project, purpose, mode, days, self.max_days)
            return made.as_dict()

    def my_requests(self, user: str) -> list[dict]:
        with self.ctx.session() as s:
            return [r.as_dict() for r in access_requests.requests_of(s, user)]

    def request(self, user: str, request_id: int) -> dict:
        """One request as its requester or a steward of one of its datasets sees it; each item says
        whether `user` may decide it (`may_decide`) and the dataset's title.

        Raises:
            NotAllowed: `user` is neither.
        """
        with self.ctx.session() as s:
            request = access_requests.get_request(s, request_id)
            ids, held = [item.dataset_id for item in request.items], self.held_roles(s)
            stewarded = {d for d in ids if roles.is_steward(held, user, d)}
            if roles.normalize(user) != roles.normalize(request.requester) and not stewarded:
                raise access_requests.NotAllowed(
                    f"access request {request_id} is neither {user}'s nor for a dataset they steward",
                    "see your own requests on the 'My access' page")
            titles = {d.id: d.title for d in datasets_by_id(s, ids).values()}
            view = request.as_dict()
            for item in view["items"]:
                item["title"] = titles.get(item["dataset_id"], item["dataset_id"])
                item["may_decide"] = (item["state"] == "pending" and view["state"] == "pending"
                                      and roles.may_review(held, user, request.requester, "access",
                                                           item["dataset_id"]))
            return view

    def review(self, user: str) -> list[dict]:
        """The undecided items `user` may decide, each with its request (without the other items).

        Raises:
            NotAllowed: `user` stewards no dataset.
        """
        if not self.is_steward(user):
            raise access_requests.NotAllowed(
                f"{user} is not a data steward",
                "reviews are for the stewards the deployment settings name (roles.stewards) or the identity "
                "provider's groups give (oidc.role_groups)")
        with self.ctx.session() as s:
            items = access_requests.pending_for(s, self.held_roles(s), user)
            titles = {d.id: d.title for d in datasets_by_id(s, {i.dataset_id for i in items}).values()}
            return [{**item.as_dict(), "title": titles.get(item.dataset_id, item.dataset_id),
                     "request": {k: v for k, v in item.request.as_dict().items() if k != "items"}}
                    for item in items]

    def decide(self, user: str, request_id: int, dataset_id, approve: bool, days=None, conditions=None,
               reason="") -> dict:
        with self.ctx.session() as s:
            item = access_requests.decide(s, self.held_roles(s), user, request_id, dataset_id, approve, days,
                                          conditions, reason)
            return item.as_dict()

    def respond(self, user: str, request_id: int, accept: bool) -> dict:
        with self.ctx.session() as s:
            made = access_requests.respond(s, user, request_id, accept)
            request = access_requests.get_request(s, request_id)
            return {"request": request.as_dict(), "grants": [g.as_dict() for g in made]}

    def withdraw(self, user: str, request_id: int) -> dict:
        with self.ctx.session() as s:
            return access_requests.withdraw(s, user, request_id).as_dict()

    def access(self, user: str) -> dict:
        """`user`'s live grants (dataset, title, mode, expiry, conditions) and `restart_for`: the
        sandbox grants their running server does not mount yet (a restart mounts them)."""
        with self.ctx.session() as s:
            live = live_grants(s, user)
            rows = [{**g.as_dict(), "title": g.dataset.title} for g in live]
            return {"grants": rows, "restart_for": _not_yet_mounted(s, user, live)}


def _not_yet_mounted(session, user: str, live) -> list[str]:
    """Sandbox grants missing from `user`'s running default server; none when no server runs
    (the next start mounts everything granted)."""
    running = session.scalars(select(ServerMount).where(
        ServerMount.user == user, ServerMount.server_name == "", ServerMount.stopped_at.is_(None))).all()
    if not running:
        return []
    mounted = {d for mount in running for d in mount.datasets}
    return sorted({g.dataset_id for g in live if g.mode == SANDBOX} - mounted)
