"""Grants: a steward's approval for one user to read one dataset, for a purpose, until a date.

A grant's mode says how: SANDBOX mounts the dataset read-only in the user's servers (and lets
federated jobs use it); FEDERATED mounts nothing and only lets federated jobs run on it.
"""

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..clock import utcnow
from ..errors import NotFound, WorkbenchError
from . import audit
from .accounts import get_account
from .datasets import check_folder, get_dataset
from .models import Grant

MAX_DAYS = 3650
SANDBOX, FEDERATED = "sandbox", "federated"
MODES = (SANDBOX, FEDERATED)


def grant_access(session: Session, actor: str, user: str, dataset_id: str, days: int, purpose: str, *,
                 mode: str = SANDBOX, conditions: dict | None = None, request_id: int | None = None,
                 until: datetime | None = None) -> Grant:
    """Grant `user` access to `dataset_id` for `days` in `mode`, with a steward's `conditions`
    (from the access request `request_id`, if it came from one); audited as "grant". `until`, when
    given, ends it sooner than `days` (a training session's end)."""
    get_account(session, user)
    dataset = get_dataset(session, dataset_id)
    if not isinstance(days, int) or not 0 < days <= MAX_DAYS:
        raise WorkbenchError(f"--days must be between 1 and {MAX_DAYS}, not {days}", "give the grant's length in days")
    if not purpose or not purpose.strip():
        raise WorkbenchError("a grant needs a purpose", "say why, e.g. --purpose 'nodule detection study'")
    if mode not in MODES:
        raise WorkbenchError(f"--mode must be one of {', '.join(MODES)}, not {mode!r}",
                             "sandbox mounts the dataset in the user's servers; "
                             "federated only lets federated jobs use it")
    if mode == SANDBOX:  # only a sandbox mounts the folder; federation sites read their own copy
        check_folder(dataset.host_path)
    now = utcnow()
    if live_grant(session, user, dataset_id) is not None:
        raise WorkbenchError(f"user '{user}' already holds a live grant for '{dataset_id}'",
                             f"revoke it first to change it ('workbench revoke {user} {dataset_id}')")
    grant = Grant(user=user, dataset_id=dataset_id, granted_by=actor, purpose=purpose.strip(),
                  granted_at=now, expires_at=min(now + timedelta(days=days), until or now + timedelta(days=days)),
                  mode=mode, conditions=dict(conditions or {}),
                  request_id=request_id)
    session.add(grant)
    session.flush()
    audit.record(session, actor, "grant", f"{user}/{dataset_id}", dataset=dataset_id, grant_id=grant.id,
                 days=days, purpose=grant.purpose, expires_at=grant.expires_at, mode=mode,
                 conditions=grant.conditions, request_id=request_id)
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


def live_grants(session: Session, user: str | None = None, modes=MODES) -> list[Grant]:
    """Grants neither revoked nor expired, in one of `modes`, for one user or everyone."""
    query = select(Grant).where(Grant.revoked_at.is_(None), Grant.expires_at > utcnow(), Grant.mode.in_(modes))
    if user is not None:
        query = query.where(Grant.user == user)
    return list(session.scalars(query.order_by(Grant.user, Grant.dataset_id)))


def approved_dataset_ids(session: Session, user: str, modes=MODES) -> list[str]:
    """The datasets `user` holds a live grant for, in one of `modes` (any: what federated jobs may use)."""
    return [g.dataset_id for g in live_grants(session, user, modes)]


def require_grants(session: Session, user: str, dataset_ids, modes=MODES) -> None:
    """Raise naming the first dataset `user` holds no live grant for, in one of `modes`."""
    held = set(approved_dataset_ids(session, user, modes))
    for dataset_id in dataset_ids:
        if dataset_id not in held:
            raise WorkbenchError(f"user '{user}' holds no live grant for dataset '{dataset_id}'",
                                 "ask a data steward for access")
