"""Grants: a steward's approval for one user to read one dataset, for a purpose, until a date."""

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..clock import utcnow
from ..errors import NotFound, WorkbenchError
from . import audit
from .accounts import get_account
from .datasets import check_folder, get_dataset
from .models import Grant

MAX_DAYS = 3650


def grant_access(session: Session, actor: str, user: str, dataset_id: str, days: int, purpose: str) -> Grant:
    get_account(session, user)
    dataset = get_dataset(session, dataset_id)
    if not isinstance(days, int) or not 0 < days <= MAX_DAYS:
        raise WorkbenchError(f"--days must be between 1 and {MAX_DAYS}, not {days}", "give the grant's length in days")
    if not purpose or not purpose.strip():
        raise WorkbenchError("a grant needs a purpose", "say why, e.g. --purpose 'nodule detection study'")
    check_folder(dataset.host_path)
    now = utcnow()
    if live_grant(session, user, dataset_id) is not None:
        raise WorkbenchError(f"user '{user}' already holds a live grant for '{dataset_id}'",
                             f"revoke it first to change it ('workbench revoke {user} {dataset_id}')")
    grant = Grant(user=user, dataset_id=dataset_id, granted_by=actor, purpose=purpose.strip(),
                  granted_at=now, expires_at=now + timedelta(days=days))
    session.add(grant)
    session.flush()
    audit.record(session, actor, "grant", f"{user}/{dataset_id}", dataset=dataset_id, grant_id=grant.id,
                 days=days, purpose=grant.purpose, expires_at=grant.expires_at)
    return grant


def live_grant(session: Session, user: str, dataset_id: str) -> Grant | None:
    now = utcnow()
    query = select(Grant).where(Grant.user == user, Grant.dataset_id == dataset_id,
                                Grant.revoked_at.is_(None), Grant.expires_at > now)
    return session.scalars(query).first()


def revoke_access(session: Session, actor: str, user: str, dataset_id: str) -> Grant:
    get_account(session, user)
    get_dataset(session, dataset_id)
    grant = live_grant(session, user, dataset_id)
    if grant is None:
        raise NotFound(f"user '{user}' holds no live grant for '{dataset_id}'",
                       f"see what they hold with 'workbench access {user}'")
    grant.revoked_at, grant.revoked_by = utcnow(), actor
    audit.record(session, actor, "revoke", f"{user}/{dataset_id}", dataset=dataset_id, grant_id=grant.id)
    return grant


def live_grants(session: Session, user: str | None = None) -> list[Grant]:
    """Grants neither revoked nor expired, for one user or everyone."""
    query = select(Grant).where(Grant.revoked_at.is_(None), Grant.expires_at > utcnow())
    if user is not None:
        query = query.where(Grant.user == user)
    return list(session.scalars(query.order_by(Grant.user, Grant.dataset_id)))


def approved_dataset_ids(session: Session, user: str) -> list[str]:
    return [g.dataset_id for g in live_grants(session, user)]


def require_grants(session: Session, user: str, dataset_ids) -> None:
    """Raise naming the first dataset `user` holds no live grant for."""
    held = set(approved_dataset_ids(session, user))
    for dataset_id in dataset_ids:
        if dataset_id not in held:
            raise WorkbenchError(f"user '{user}' holds no live grant for dataset '{dataset_id}'",
                                 "ask a data steward for access")
