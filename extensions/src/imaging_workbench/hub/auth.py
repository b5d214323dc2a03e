"""Local logins for the workbench's own accounts (demo users, admins), checked against the catalog.

Production sites log in through OpenID Connect instead (hub_config/jupyterhub_config.d/50-oidc.py.example);
there, `account_registration_hook` records each user who logs in so stewards can grant them datasets."""

from jupyterhub.auth import Authenticator
from traitlets import Unicode, default

from ..catalog.accounts import check_password, ensure_account
from ..catalog.models import Account
from .catalog_link import in_catalog


def _lookup(session, name):
    account = session.get(Account, name)
    return None if account is None else (account.password_hash, account.is_admin)


class WorkbenchAuthenticator(Authenticator):
    """Name and password against the catalog's accounts (scrypt hashes); no account, no login."""

    catalog_url = Unicode(help="SQLAlchemy URL of the workbench catalog.").tag(config=True)

    @default("allow_all")
    def _allow_all(self):  # only catalog accounts can authenticate at all
        return True

    async def authenticate(self, handler, data):
        name = self.normalize_username(data.get("username", ""))
        found = await in_catalog(self.catalog_url, _lookup, name)
        if found is None or not check_password(found[0], data.get("password", "")):
            self.log.warning("Failed login for %r", name)
            return None
        return {"name": name, "admin": found[1] or None}


def account_registration_hook(catalog_url: str):
    """A post_auth_hook for OIDC logins that gives each user a catalog account (without a password)."""

    async def register_account(authenticator, handler, auth_model):
        await in_catalog(catalog_url, lambda s: ensure_account(s, "hub", auth_model["name"]))
        return auth_model

    return register_account
