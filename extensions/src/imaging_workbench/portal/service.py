"""The `workbench-portal` hub service: the catalogue, access requests, their review and "my access",
as pages in the hub's look and as the same REST API.

Routes (under the service prefix, /services/workbench-portal/ by default):

    pages                              REST API (JSON; errors {"error", "hint", "fields"})
    GET  /                 catalogue   GET  api/datasets?q=&modality=&site=&body_part=
    GET  /request          request     POST api/requests  {datasets, project, purpose, mode, days}
    POST /request                      GET  api/requests  (the caller's own)
    GET  /requests/<id>    one request GET  api/requests/<id>  (its requester or a steward of one of its datasets)
    POST /requests/<id>/decide         POST api/requests/<id>/decisions  {dataset_id, approve, days, conditions, reason}
    POST /requests/<id>/respond        POST api/requests/<id>/response   {accept}
    POST /requests/<id>/withdraw       POST api/requests/<id>/withdraw
    GET  /review           steward     GET  api/review  (403 for non-stewards)
    GET  /access           my access   GET  api/access  (live grants, and whether a restart would mount new ones)
    GET  /grants           steward     GET  api/grants  (live grants of the steward's datasets)
    POST /grants/<id>/revoke           POST api/grants/<id>/revoke  {reason}
    GET  /audit, /audit.csv            GET  api/audit?dataset=&action=&actor=&since=&until=&q=&limit=
                                            (operators: every row; stewards: their datasets' rows)
    the airlock's pages and API: release_pages.py
    batch runs (POST/GET api/batch, GET/DELETE api/batch/<id>): batch_api.py
    GET  /teaching         instructors GET  api/teaching  (their sessions, learners' one-time passwords)
                                       GET  api/health  (no auth)

People sign in through the hub (OAuth; `oauth_no_confirm`), programs send their JupyterHub token
(`Authorization: token ...`) with the scope access:services!service=workbench-portal. Like
JupyterHub's own pages, a POST authenticated by the browser's cookie needs the XSRF token of the
form (`_xsrf`) or the X-XSRFToken header; a token-authenticated request needs none.
"""

import asyncio
import logging
import os
import secrets
import sys
from urllib.parse import urlsplit

from jupyterhub.services.auth import HubOAuthCallbackHandler
from tornado import web

from ..hub.serving import managed_service, serve_until_stopped
from .api import API_ROUTES
from .audit_pages import AUDIT_ROUTES
from .base import SERVICE_NAME, HealthHandler
from .batch_api import BATCH_ROUTES
from .dashboard_pages import DASHBOARD_ROUTES
from .grant_pages import GRANT_ROUTES
from .operations import Portal
from .pages import PAGE_ROUTES
from .release_pages import RELEASE_ROUTES
from .session_pages import SESSION_ROUTES
from .templating import page_environment

log = logging.getLogger("workbench.portal")


class OAuthCallback(HubOAuthCallbackHandler):
    """Finishes the hub's OAuth sign-in with the service's HubOAuth, which holds the sign-in's state."""

    def initialize(self, hub_auth):
        self.hub_auth = hub_auth


def create_application(portal: Portal, hub_auth, prefix: str = f"/services/{SERVICE_NAME}/",
                       cookie_secret: bytes | None = None) -> web.Application:
    """The tornado application; tests can call it without a socket."""
    prefix = "/" + prefix.strip("/") + "/" if prefix.strip("/") else "/"
    args = {"portal": portal, "hub_auth": hub_auth, "templates": page_environment()}
    routes = [(prefix + path, handler, args) for path, handler in [
        *API_ROUTES, *PAGE_ROUTES, *GRANT_ROUTES, *RELEASE_ROUTES, *AUDIT_ROUTES, *SESSION_ROUTES,
        *DASHBOARD_ROUTES, *BATCH_ROUTES]]
    routes += [(prefix + "api/health", HealthHandler, args),
               (prefix + "oauth_callback", OAuthCallback, {"hub_auth": hub_auth})]
    # Tornado's own XSRF check runs before a handler knows how the request was authenticated;
    # HubOAuth checks cookie-authenticated requests itself and lets token-authenticated ones through,
    # as JupyterHub's single-user servers do (they switch tornado's check off the same way).
    return web.Application(routes, cookie_secret=cookie_secret or secrets.token_bytes(32), xsrf_cookies=False)


def hub_services(settings: dict, host: str, settings_file: str | None = None) -> list[dict]:
    """The JupyterHub service definition of `workbench-portal`, a managed service the hub starts.

    Args:
        settings: the loaded deployment settings (hub.portal_port: where it listens; the hub hands
            the URL to the service as $JUPYTERHUB_SERVICE_URL).
        host: the address the service listens on and the proxy reaches it at.
        settings_file: the deployment settings file the service reads (default: $WORKBENCH_SETTINGS).
    """
    url = f"http://{host}:{settings['hub']['portal_port']}"
    return [managed_service(SERVICE_NAME, url, "imaging_workbench.portal.service", settings_file, display=True)]


def main() -> int:
    """Run the service: settings from $WORKBENCH_SETTINGS, address and hub credentials from the
    environment JupyterHub gives a managed service ($JUPYTERHUB_SERVICE_URL and the rest)."""
    from jupyterhub.services.auth import HubOAuth

    from ..context import WorkbenchContext
    from ..deployment import load_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    ctx = WorkbenchContext(load_settings(), actor=SERVICE_NAME)
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", f"/services/{SERVICE_NAME}/")
    url = urlsplit(os.environ.get("JUPYTERHUB_SERVICE_URL")
                   or f"http://127.0.0.1:{ctx.settings['hub']['portal_port']}")
    app = create_application(Portal(ctx), HubOAuth(cache_max_age=60), prefix)
    asyncio.run(serve_until_stopped(app, url.hostname, url.port, prefix, log))
    return 0


if __name__ == "__main__":
    sys.exit(main())
