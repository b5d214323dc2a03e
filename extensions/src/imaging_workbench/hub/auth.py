"""Local logins for the workbench's own accounts (demo users, operators), checked against the catalog.

Production deployments log in through their OpenID Connect provider instead (hub/oidc.py,
`hub.authenticator: oidc`), which gives each user a catalog account at their first login."""

from jupyterhub.auth import Authenticator
from traitlets import Unicode, default

from ..catalog.accounts import check_password, record_login
from ..catalog.models import Account
from .catalog_link import in_catalog


def _check_login(session, name, password):
    """Whether `password` is `name`'s; a successful login is noted on the account."""
    account = session.get(Account, name)
    if account is None or not check_password(account.password_hash, password):
        return False
    record_login(session, name)
    return True


class WorkbenchAuthenticator(Authenticator):
    """Name and password against the catalog's accounts (scrypt hashes); no account, no login.

    A login never makes anyone a hub admin: the catalog's `is_admin` marks an operator for the
    workbench's own bookkeeping, and what an operator may do in the hub is their role
    (hub/roles.py). The login model leaves `admin` unset, so the hub's configuration decides."""

    catalog_url = Unicode(help="SQLAlchemy URL of the workbench catalog.").tag(config=True)
    audit_key_file = Unicode("", help="The audit trail's key file (default: beside a SQLite catalog).").tag(config=True)

    @default("allow_all")
    def _allow_all(self):  # only catalog accounts can authenticate at all
        return True

    async def authenticate(self, handler, data):
        name = self.normalize_username(data.get("username", ""))
        if not await in_catalog(self.catalog_url, _check_login, name, data.get("password", "")):
            self.log.warning("Failed login for %r", name)
            return None
        return {"name": name}

