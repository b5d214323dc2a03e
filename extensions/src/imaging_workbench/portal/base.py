"""The portal's handler base: who is asking (the hub's OAuth or a token), XSRF, and errors.

Errors from the catalog become statuses here, once for pages and API alike: a wrong field 400
(naming it), not allowed 403, unknown 404, a step the request's state refuses 409, anything
else the catalog refuses 503.
"""

import asyncio
import json
from datetime import datetime
from functools import partial

from jupyterhub.services.auth import HubOAuthenticated
from markupsafe import Markup
from tornado import web

from ..catalog.access_requests import BadField, Conflict, NotAllowed
from ..errors import NotFound, WorkbenchError
from .templating import hub_namespace

SERVICE_NAME = "workbench-portal"
ACCESS_SCOPE = f"access:services!service={SERVICE_NAME}"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
STATUSES = ((BadField, 400), (NotAllowed, 403), (NotFound, 404), (Conflict, 409), (WorkbenchError, 503))


class Refused(web.HTTPError):
    """A refusal to answer with the catalog's words: message, hint and the fields at fault."""

    def __init__(self, status: int, message: str, hint: str | None = None, fields: dict | None = None):
        super().__init__(status, message)
        self.message, self.hint, self.fields = message, hint, fields or {}


def refusal(error: WorkbenchError) -> Refused:
    status = next(code for kind, code in STATUSES if isinstance(error, kind))
    fields = {error.field: error.message} if isinstance(error, BadField) else {}
    return Refused(status, error.message, error.hint, fields)


def to_json(value) -> str:
    return json.dumps(value, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v))


class PortalHandler(HubOAuthenticated, web.RequestHandler):
    """A request from a hub user: `self.user` is their name once `prepare` let them in.

    A token (header) authenticates API callers; the browser's OAuth cookie authenticates people,
    and HubOAuth ignores that cookie on a POST without the page's XSRF token, so such a POST is
    refused here with the XSRF check's own reason.
    """

    def initialize(self, portal, hub_auth, templates):
        self.portal, self.hub_auth, self.templates = portal, hub_auth, templates

    @property
    def hub_scopes(self):
        return {ACCESS_SCOPE}

    @property
    def user(self) -> str:
        return self.current_user["name"]

    def prepare(self):
        if self.current_user is None and self.request.method not in SAFE_METHODS:
            if self.get_cookie(self.hub_auth.cookie_name):
                self.check_xsrf_cookie()  # signed in, so the XSRF token was refused: say how (403)
            raise web.HTTPError(403, f"sign in to the hub, or send a token with scope {ACCESS_SCOPE}")

    async def run(self, fn, *args, **kwargs):
        """Run a blocking catalog call on a worker thread; the catalog's refusals become HTTP errors."""
        try:
            return await asyncio.get_running_loop().run_in_executor(None, partial(fn, *args, **kwargs))
        except WorkbenchError as e:
            raise refusal(e) from None

    def send(self, data, status: int = 200):
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(to_json(data))

    def render_page(self, name: str, status: int = 200, **values):
        """Render templates/`name` in the hub's page, with this request's user and XSRF token."""
        self.set_status(status)
        template = self.templates.get_template(name)
        self.finish(template.render(
            **hub_namespace(self.hub_auth.hub_prefix, self.current_user), portal_url=self.hub_auth.base_url,
            xsrf_form_html=lambda: Markup(self.xsrf_form_html()), xsrf_token=self.xsrf_token.decode(),
            **self.portal.roles_for_nav(self.user if self.current_user else None), **values))


class HealthHandler(PortalHandler):
    def prepare(self):
        pass  # no sign-in: the hub and operators ask whether the service is up

    def get(self):
        self.send({"ok": True, "service": SERVICE_NAME})
