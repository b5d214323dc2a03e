"""Login through the institution's OpenID Connect provider, with workbench roles from its groups.

OAuthenticator's GenericOAuthenticator does the authorization-code flow with PKCE; this class adds
what a workbench deployment needs around it:
- the endpoints come from the issuer's discovery document, fetched at the first login
  (hub/oidc_discovery.py), so a provider that is down gives a clear page, not a hub that fails;
- the client secret is read from its file at each use, so a rotated secret needs no restart;
- only members of the platform's groups (`login_groups`) log in, and the provider's groups give
  the workbench's other roles through `role_groups` (hub/roles.py `roles_from_groups`), at every
  login and every refresh: recorded in the catalog for the portal (catalog/idp_roles.py) and
  applied to the hub's roles and groups (hub/role_sync.py);
- every failure the user can meet (provider down, client credentials refused, no username claim,
  in no allowed group) is a page that says what happened and what to do, and creates nothing.

`refresh_with_provider` is also what the workbench-access service asks for, through the hub API
handler in hub/oidc_handlers.py, for every user with a running server at each of its intervals.
"""

import json
from urllib.parse import urlencode

from oauthenticator.generic import GenericOAuthenticator
from tornado.httpclient import HTTPClientError
from tornado.web import HTTPError
from traitlets import Dict, Float, Set, Unicode, default

from ..catalog import idp_roles
from ..catalog.accounts import NAME_RE, ensure_account, record_login
from . import roles
from .catalog_link import in_catalog
from .oidc_discovery import Discovery, ProviderUnavailable
from .role_sync import sync_hub_roles

ACTOR = "hub"
# Outcomes of asking the provider about a user again.
CURRENT, UNREACHABLE, REFUSED, NOT_ALLOWED = "current", "unreachable", "refused", "not-allowed"


class LoginError(HTTPError):
    """A login or refresh the provider or the workbench refused; `outcome` says which kind."""

    def __init__(self, status: int, outcome: str, message: str):
        super().__init__(status, "%s", message)
        self.outcome = outcome
        self.jupyterhub_message = message  # the hub's error page shows this text as it is


def _token_endpoint_unreachable(e: Exception) -> LoginError:
    return LoginError(503, UNREACHABLE, f"Sign-in is unavailable: the identity provider's token endpoint cannot be "
                                        f"reached ({e}). Try again in a few minutes.")


class WorkbenchOIDCAuthenticator(GenericOAuthenticator):
    """OpenID Connect login with the workbench's roles from the provider's groups."""

    issuer = Unicode(help="The provider's issuer URL; its discovery document gives the endpoints.").tag(config=True)
    discovery_ttl = Float(3600, help="Seconds the discovery document is kept before it is fetched again.").tag(
        config=True)
    client_secret_file = Unicode("", help="File holding the client secret, read at each use (none: client_secret)."
                                 ).tag(config=True)
    groups_claim = Unicode("groups", help="The userinfo claim that lists the user's groups.").tag(config=True)
    login_groups = Set(Unicode(), help="The platform's groups: only their members log in (each is a researcher)."
                       ).tag(config=True)
    role_groups = Dict(help="Provider groups per workbench role, shaped like the settings' `roles:` section."
                       ).tag(config=True)
    settings_roles = Dict(help="The deployment settings' `roles:` section: people named there keep their roles."
                          ).tag(config=True)
    catalog_url = Unicode(help="SQLAlchemy URL of the workbench catalog.").tag(config=True)
    audit_key_file = Unicode("", help="The audit trail's key file.").tag(config=True)

    @default("login_service")
    def _login_service(self):
        return "your institution"

    @default("username_claim")
    def _username_claim(self):
        return "preferred_username"

    @default("scope")
    def _scope(self):
        return ["openid", "profile", "email"]

    @default("enable_auth_state")
    def _enable_auth_state(self):  # the refresh token must be kept, encrypted
        return True

    @default("allow_all")
    def _allow_all(self):  # who may log in is decided by login_groups, in check_allowed
        return False

    def get_handlers(self, app):
        from . import oidc_handlers

        return oidc_handlers.HANDLERS

    # -- the provider's endpoints and the client secret ---------------------------------------

    @property
    def discovery(self) -> Discovery:
        if getattr(self, "_discovery", None) is None:
            self._discovery = Discovery(self.issuer, self.discovery_ttl, validate_cert=self.validate_server_cert)
        return self._discovery

    async def load_endpoints(self) -> None:
        """Point the OAuth flow at the endpoints of the provider's discovery document.

        Raises:
            LoginError (503): the provider cannot be reached or its document is unusable.
        """
        try:
            endpoints = await self.discovery.endpoints()
        except ProviderUnavailable as e:
            self.log.error("OIDC discovery failed: %s", e)
            raise LoginError(503, UNREACHABLE, f"Sign-in is unavailable: {e}. Nothing about your account has "
                                               "changed; try again in a few minutes, and tell the workbench's "
                                               "operators if it lasts.") from e
        self.authorize_url, self.token_url, self.userdata_url = (
            endpoints.authorize_url, endpoints.token_url, endpoints.userinfo_url)

    def current_client_secret(self) -> str:
        if not self.client_secret_file:
            return self.client_secret
        try:
            with open(self.client_secret_file) as f:
                return f.read().strip()
        except OSError as e:
            raise LoginError(503, REFUSED, f"Sign-in is unavailable: the workbench cannot read its client secret "
                                           f"({e}). Operators: check oidc.client_secret_file.") from e

    def build_access_tokens_request_params(self, handler, data=None):
        self.client_secret = self.current_client_secret()
        return super().build_access_tokens_request_params(handler, data)

    def build_refresh_token_request_params(self, refresh_token):
        self.client_secret = self.current_client_secret()
        return super().build_refresh_token_request_params(refresh_token)

    async def get_token_info(self, handler, params):
        """The token endpoint's answer; its refusals become pages that say what to do."""
        try:
            return await super().get_token_info(handler, params)
        except HTTPClientError as e:
            raise self._token_error(e) from e
        except OSError as e:
            raise _token_endpoint_unreachable(e) from e

    def _token_error(self, e: HTTPClientError) -> LoginError:
        if e.response is None:  # no answer at all
            return _token_endpoint_unreachable(e)
        try:
            body = json.loads(e.response.body)
        except ValueError:
            body = {}
        error = body.get("error", f"HTTP {e.code}")
        if error == "invalid_client" or e.code == 401:
            return LoginError(503, REFUSED, "Sign-in is unavailable: the identity provider refused this "
                                            "workbench's client credentials (invalid_client). Operators: check "
                                            "oidc.client_id and the secret in oidc.client_secret_file. Nothing "
                                            "about your account has changed.")
        detail = body.get("error_description") or error
        return LoginError(400, REFUSED, f"The identity provider refused to complete the sign-in ({error}: "
                                        f"{detail}). Sign in again from the start.")

    # -- who the user is, and what they may do --------------------------------------------------

    def user_info_to_username(self, user_info):
        name = user_info.get(self.username_claim) if isinstance(self.username_claim, str) else None
        if not name or not isinstance(name, str):
            sent = ", ".join(sorted(user_info)) or "none"
            raise LoginError(403, REFUSED, f"Your account at the identity provider has no '{self.username_claim}' "
                                           f"claim (it sent: {sent}), and the workbench names each user by it. Ask "
                                           "the provider's administrators to release it to the workbench.")
        if not NAME_RE.match(self.normalize_username(name)):
            raise LoginError(403, REFUSED, f"The identity provider names you {name!r} ('{self.username_claim}'), "
                                           "which cannot name a workbench account (lower-case letters, digits, "
                                           "'.', '_' and '-', at most 64). Ask the provider's administrators, or "
                                           "the workbench's operators to use another claim (oidc.username_claim).")
        return name

    def groups_of(self, user_info: dict) -> set[str]:
        groups = user_info.get(self.groups_claim) or []
        if isinstance(groups, str):
            groups = [groups]
        return {str(g) for g in groups}

    async def update_auth_model(self, auth_model):
        user_info = auth_model["auth_state"][self.user_auth_state_key]
        groups = self.groups_of(user_info)
        auth_model["idp_groups"] = sorted(groups)
        auth_model["idp_roles"] = roles.roles_from_groups(self.role_groups, auth_model["name"], groups)
        return auth_model

    def refusal(self, auth_model: dict) -> str | None:
        """Why `auth_model`'s user may not use the workbench, or None when they may."""
        if set(auth_model.get("idp_groups", ())) & self.login_groups:
            return None
        return (f"{auth_model['name']} is in none of the groups that may use this workbench "
                f"({', '.join(sorted(self.login_groups))}). Ask your institution's administrators to add you, "
                "then sign in again.")

    async def check_allowed(self, username, auth_model):
        why = self.refusal(auth_model)
        if why:
            self.log.warning("OIDC login refused: %s", why)
            raise LoginError(403, NOT_ALLOWED, why)
        return True

    async def authenticate(self, handler, data=None, **kwargs):
        await self.load_endpoints()
        return await super().authenticate(handler, data, **kwargs)

    async def get_authenticated_user(self, handler, data):
        """The login's auth model, once the user is allowed; their catalog account and the roles the
        provider's groups give them are recorded only then."""
        auth_model = await super().get_authenticated_user(handler, data)
        if auth_model:
            await self._record(auth_model["name"], auth_model["idp_roles"], login=True)
        return auth_model

    async def _record(self, name: str, section: dict, login: bool = False) -> None:
        def record(session):
            ensure_account(session, ACTOR, name)
            if login:
                record_login(session, name)
            changed = idp_roles.record_idp_roles(session, ACTOR, name, section)
            if changed["added"] or changed["removed"]:
                self.log.info("Roles of %s from the identity provider: +%s -%s", name, changed["added"],
                              changed["removed"])

        await in_catalog(self.catalog_url, record, key_file=self.audit_key_file or None)

    async def _forget(self, name: str) -> None:
        def forget(session):
            if idp_roles.idp_section_of(session, name):
                idp_roles.forget_idp_roles(session, ACTOR, name)

        await in_catalog(self.catalog_url, forget, key_file=self.audit_key_file or None)

    def apply_hub_roles(self, user, section: dict) -> None:
        """Give the hub user the workbench roles of the settings plus `section` (the provider's)."""
        changed = sync_hub_roles(user.db, user.orm_user, roles.merged(self.settings_roles, section))
        if changed["granted"] or changed["stripped"]:
            self.log.info("Hub roles of %s: granted %s, stripped %s", user.name, changed["granted"],
                          changed["stripped"])

    # -- refresh ----------------------------------------------------------------------------------

    async def _fresh_auth_model(self, auth_state: dict) -> dict:
        """The user's auth model from the provider now: with the access token held, else a new one."""
        await self.load_endpoints()
        try:
            return await self._token_to_auth_model(auth_state["token_response"])
        except HTTPClientError as e:
            if e.response is None or not 400 <= e.code < 500 or not auth_state.get("refresh_token"):
                raise
        token_info = await self.get_token_info(None, self.build_refresh_token_request_params(
            auth_state["refresh_token"]))
        token_info.setdefault("refresh_token", auth_state["refresh_token"])  # not every provider rotates it
        return await self._token_to_auth_model(token_info)

    async def refresh_with_provider(self, user) -> tuple[str, dict | None, str]:
        """Ask the provider about `user` again, and apply the answer.

        Returns (outcome, auth model, reason): CURRENT with the new auth model (roles recorded and
        applied; the caller saves its auth_state), UNREACHABLE (nothing changed: the provider did
        not answer), REFUSED (the provider no longer vouches for the user: tokens refused, name
        changed) or NOT_ALLOWED (no longer in the platform's groups). On the last two the roles
        from the provider are taken away, in the catalog and in the hub.
        """
        auth_state = await user.get_auth_state()
        if not auth_state or not auth_state.get("token_response"):
            outcome, model, why = REFUSED, None, "no sign-in through the identity provider is on record"
        else:
            try:
                model = await self._fresh_auth_model(auth_state)
            except LoginError as e:
                outcome, model, why = e.outcome, None, e.jupyterhub_message
            except (HTTPClientError, OSError) as e:
                if isinstance(e, HTTPClientError) and e.response is not None:
                    outcome, why = REFUSED, f"the identity provider refused the user's tokens (HTTP {e.code})"
                else:
                    outcome, why = UNREACHABLE, f"the identity provider cannot be reached ({e})"
                model = None
            else:
                if model["name"] != user.name:
                    outcome, why = REFUSED, f"the identity provider now names this account {model['name']!r}"
                else:
                    why = self.refusal(model)
                    outcome = NOT_ALLOWED if why else CURRENT
        if outcome == UNREACHABLE:
            self.log.warning("Keeping %s's roles: %s", user.name, why)
        elif outcome == CURRENT:
            await self._record(user.name, model["idp_roles"])
            self.apply_hub_roles(user, model["idp_roles"])
        else:
            self.log.warning("%s loses the roles from the identity provider: %s", user.name, why)
            await self._forget(user.name)
            self.apply_hub_roles(user, {})
        return outcome, model, why

    async def refresh_user(self, user, handler=None, **kwargs):
        """The hub's own refresh (on the user's requests): True keeps the session while the provider
        is unreachable; False (sign in again) once it no longer vouches for the user."""
        outcome, model, _ = await self.refresh_with_provider(user)
        if outcome == UNREACHABLE:
            return True
        return model if outcome == CURRENT else False

    def end_session_url(self, id_token: str | None, after_logout: str) -> str | None:
        """The provider's end-session URL that brings the browser back to `after_logout`, if it has one."""
        endpoints = self.discovery.cached
        if endpoints is None or not endpoints.end_session_url:
            return None
        query = {"client_id": self.client_id, "post_logout_redirect_uri": after_logout}
        if id_token:
            query["id_token_hint"] = id_token
        return f"{endpoints.end_session_url}?{urlencode(query)}"
