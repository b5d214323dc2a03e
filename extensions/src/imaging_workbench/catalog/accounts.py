"""Accounts: people the workbench knows, with scrypt password hashes for local logins."""

import hashlib
import hmac
import re
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..clock import utcnow
from ..errors import NotFound, WorkbenchError
from . import audit
from .models import Account

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_password(stored: str | None, password: str) -> bool:
    if not stored or not stored.startswith("scrypt$"):
        return False
    _, salt, digest = stored.split("$")
    candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), **_SCRYPT)
    return hmac.compare_digest(candidate.hex(), digest)


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def get_account(session: Session, name: str) -> Account:
    account = session.get(Account, name)
    if account is None:
        raise NotFound(f"unknown user '{name}'",
                       "list users with 'workbench users list' or add one with 'workbench users add NAME'")
    return account


def add_account(session: Session, actor: str, name: str, password: str | None = None,
                is_admin: bool = False) -> Account:
    """Create an account; `password` None means the user logs in through OIDC only."""
    if not NAME_RE.match(name):
        raise WorkbenchError(f"'{name}' is not a valid user name",
                             "use lower-case letters, digits, '.', '_' or '-', starting with a letter or digit")
    if session.get(Account, name) is not None:
        raise WorkbenchError(f"user '{name}' already exists", "pick another name or use the existing account")
    account = Account(name=name, is_admin=is_admin, created_at=utcnow(),
                      password_hash=hash_password(password) if password else None)
    session.add(account)
    audit.record(session, actor, "user.add", name, admin=is_admin, local_password=password is not None)
    return account


def ensure_account(session: Session, actor: str, name: str, password: str | None = None,
                   is_admin: bool = False) -> tuple[Account, bool]:
    """The account `name`, created if missing; returns (account, created)."""
    account = session.get(Account, name)
    if account is not None:
        return account, False
    return add_account(session, actor, name, password, is_admin), True


def record_login(session: Session, name: str) -> None:
    """Note that `name` logged in now (a training session's status tells who has not yet)."""
    account = session.get(Account, name)
    if account is not None:
        account.last_login_at = utcnow()


def set_password(session: Session, actor: str, name: str, password: str) -> None:
    get_account(session, name).password_hash = hash_password(password)
    audit.record(session, actor, "user.password", name)


def list_accounts(session: Session) -> list[Account]:
    return list(session.scalars(select(Account).order_by(Account.name)))
