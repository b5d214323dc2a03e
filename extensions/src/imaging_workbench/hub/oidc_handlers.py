"""The hub pages and API of OpenID Connect login (hub/oidc.py): login, callback, logout, refresh.

- login: fetches the provider's endpoints first, so a provider that is down gives a clear page;
- callback: after the hub has made the user, gives them the hub roles the provider's groups name;
- logout: ends the hub session, then offers the provider's end-session link (the provider's
  session is the provider's: signing out there is the user's choice);
- `POST /hub/api/workbench/auth-refresh/<user>`: asks the provider about a user again now, for
  the workbench-access service (scope roles.AUTH_REFRESH_SCOPE), which stops the servers of users the
  provider no longer vouches for.
"""

import json
from urllib.parse import urljoin

from jupyterhub.apihandlers.base import APIHandler
from oauthenticator.oauth2 import OAuthCallbackHandler, OAuthLoginHandler, OAuthLogoutHandler
from tornado.web import HTTPError

from .oidc import CURRENT
from .roles import AUTH_REFRESH_SCOPE

LOGOUT_TEMPLATE = "workbench-oidc-logout.html"


class LoginHandler(OAuthLoginHandler):
    async def get(self):
        await self.authenticator.load_endpoints()
        super().get()


class CallbackHandler(OAuthCallbackHandler):
    async def auth_to_user(self, authenticated, user=None):
        user = await super().auth_to_user(authenticated, user)
        self.authenticator.apply_hub_roles(user, authenticated.get("idp_roles", {}))
        return user


class LogoutHandler(OAuthLogoutHandler):
    async def default_handle_logout(self):
        user = self.current_user
        state = await user.get_auth_state() if user else None
        self._id_token = (state or {}).get("id_token")
        await super().default_handle_logout()

    async def render_logout_page(self):
        after = urljoin(f"{self.request.protocol}://{self.request.host}", self.hub.base_url + "login")
        html = await self.render_template(
            LOGOUT_TEMPLATE, provider=self.authenticator.login_service, login_url=self.hub.base_url + "login",
            end_session_url=self.authenticator.end_session_url(getattr(self, "_id_token", None), after))
        self.finish(html)


class AuthRefreshAPIHandler(APIHandler):
    async def post(self, user_name):
        if AUTH_REFRESH_SCOPE not in self.expanded_scopes:
            raise HTTPError(403, f"refreshing a user's login needs the scope {AUTH_REFRESH_SCOPE}")
        user = self.find_user(user_name)
        if user is None:
            raise HTTPError(404, f"no user {user_name!r}")
        outcome, model, why = await self.authenticator.refresh_with_provider(user)
        if outcome == CURRENT:
            await self.auth_to_user(model, user)  # keeps the new tokens, encrypted
        self.write(json.dumps({"name": user.name, "outcome": outcome, "reason": why}))


HANDLERS = [
    (r"/oauth_login", LoginHandler),
    (r"/oauth_callback", CallbackHandler),
    (r"/logout", LogoutHandler),
    (r"/api/workbench/auth-refresh/([^/]+)", AuthRefreshAPIHandler),
]
