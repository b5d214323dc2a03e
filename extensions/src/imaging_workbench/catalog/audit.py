"""The append-only audit trail: each row's hash covers its content and the hash before it,
so editing or deleting any row breaks the chain at that row."""

import hashlib
import json

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from ..clock import utcnow
from .models import AuditEvent

GENESIS = "0" * 64


def _digest(prev_hash: str, at, actor: str, action: str, subject: str, details: dict) -> str:
    body = json.dumps(
        [prev_hash, at.isoformat(timespec="microseconds"), actor, action, subject, details],
        sort_keys=True, separators=(",", ":"), default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def _lock_chain(session: Session) -> None:
    # SQLite already holds the write lock (BEGIN IMMEDIATE); PostgreSQL needs one so two
    # writers cannot both append after the same row.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(7202611)"))


def record(session: Session, actor: str, action: str, subject: str, **details) -> AuditEvent:
    """Append one event in the caller's transaction (it lands or vanishes with the change it audits)."""
    _lock_chain(session)
    last = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).first()
    prev = last.hash if last else GENESIS
    at = utcnow()
    details = json.loads(json.dumps(details, default=str))  # what is stored is what is hashed
    event = AuditEvent(at=at, actor=actor, action=action, subject=subject, details=details,
                       prev_hash=prev, hash=_digest(prev, at, actor, action, subject, details))
    session.add(event)
    session.flush()
    return event


def verify_chain(session: Session) -> list[str]:
    """Return one line per broken link; an empty list means the trail is intact."""
    problems = []
    prev_hash, prev_id = GENESIS, 0
    for event in session.scalars(select(AuditEvent).order_by(AuditEvent.id)):
        if event.id != prev_id + 1:
            problems.append(f"rows {prev_id + 1}..{event.id - 1} are missing (deleted)")
        if event.prev_hash != prev_hash:
            problems.append(f"row {event.id}: does not follow the row before it")
        expected = _digest(event.prev_hash, event.at, event.actor, event.action, event.subject, event.details)
        if event.hash != expected:
            problems.append(f"row {event.id}: content was changed after it was written ({event.action} {event.subject})")
        prev_hash, prev_id = event.hash, event.id
    return problems


def events(session: Session, limit: int | None = None, action: str | None = None) -> list[AuditEvent]:
    """The newest `limit` events (optionally of one action), oldest first."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc())
    if action:
        query = query.where(AuditEvent.action == action)
    if limit:
        query = query.limit(limit)
    return list(reversed(session.scalars(query).all()))
