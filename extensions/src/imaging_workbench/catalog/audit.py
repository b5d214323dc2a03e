"""The append-only audit trail: each row's MAC (column `hash`) covers its content and the MAC of
the row before it (`prev_hash`), so an edited row fails its own MAC and a deleted one breaks the
next row's link. Verification follows that chain in id order but ignores the ids themselves:
PostgreSQL skips the id of a rolled-back row, and that is no tampering.

Column `scheme` says how a row's MAC was made:
- "hmac-sha256": HMAC-SHA256 under the deployment's audit key (audit_key.py), which lives outside the
  database; someone who can write the database but not read the key cannot rewrite the trail.
- "sha256": rows of the release before the key (schema revision 0002), hashed without a key. They
  are accepted only before every keyed row, and only when the keyed "audit.upgrade" row the
  upgrade appends right after them (seal_legacy) gives their number: its MAC covers the last of
  them, so they cannot be rewritten either, nor the whole trail passed off as unkeyed.

Deleting the newest rows leaves a shorter chain that verifies: a head exported with
audit_head.py and kept elsewhere catches that.
"""

import hashlib
import hmac
import json

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from ..clock import utcnow
from ..errors import WorkbenchError
from . import audit_key
from .models import AuditEvent

KEY_FILE = "audit_key_file"  # the session.info entry naming the key file (set where sessions are made)
GENESIS = "0" * 64
KEYED, UNKEYED = "hmac-sha256", "sha256"
UPGRADE = "audit.upgrade"


def digest(event: AuditEvent, key: bytes | None) -> str:
    """The MAC `event` must carry under its scheme (unkeyed rows ignore `key`)."""
    at = event.at.isoformat(timespec="microseconds")
    if event.scheme == UNKEYED:
        body = [event.prev_hash, at, event.actor, event.action, event.subject, event.details]
    else:
        body = [event.scheme, event.prev_hash, at, event.actor, event.action, event.subject, event.dataset,
                event.details]
    data = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()
    if event.scheme == UNKEYED:
        return hashlib.sha256(data).hexdigest()
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def _key(session: Session, create: bool) -> bytes | None:
    path = session.info.get(KEY_FILE)
    if path is None:
        raise WorkbenchError("this catalog session has no audit key file (session.info['audit_key_file'])",
                             "open sessions with WorkbenchContext.session() or hub.catalog_link.catalog_session()")
    key = audit_key.load_key(path)
    if key is not None:
        return key
    if session.scalar(select(AuditEvent.id).where(AuditEvent.scheme == KEYED).limit(1)) is not None:
        raise WorkbenchError(f"audit key file {path} is missing, but the audit trail holds rows made with a key",
                             "restore it from your backup or fix audit_key_file in the deployment settings file; "
                             "a new key could not verify the rows already written")
    return audit_key.ensure_key(path) if create else None


def _lock_chain(session: Session) -> None:
    # SQLite already holds the write lock (BEGIN IMMEDIATE); PostgreSQL needs one so two
    # writers cannot both append after the same row.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(7202611)"))


def record(session: Session, actor: str, action: str, subject: str, *, dataset: str | None = None,
           **details) -> AuditEvent:
    """Append one event in the caller's transaction (it lands or vanishes with the change it audits).

    `dataset` names the one dataset the event concerns, so its stewards can list its trail."""
    _lock_chain(session)
    key = _key(session, create=True)
    last = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).first()
    details = json.loads(json.dumps(details, default=str))  # what is stored is what is MACed
    event = AuditEvent(at=utcnow(), actor=actor, action=action, subject=subject, dataset=dataset, details=details,
                       scheme=KEYED, prev_hash=last.hash if last else GENESIS)
    event.hash = digest(event, key)
    session.add(event)
    session.flush()
    return event


def seal_legacy(session: Session) -> AuditEvent | None:
    """Append the keyed row that seals the unkeyed rows of the previous release (none: nothing).

    Runs once, as the schema upgrade adds keys (migrations.ensure_schema)."""
    n = session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.scheme == UNKEYED))
    if not n:
        return None
    if session.info.get(KEY_FILE) is None:
        raise WorkbenchError(f"the catalog's audit trail ({n} rows) must be sealed with the audit key as the "
                             "catalog is upgraded, and no key file was given",
                             "run a workbench command on this deployment first (e.g. 'workbench audit --verify'): "
                             "it upgrades the catalog with the deployment's audit key")
    return record(session, "workbench", UPGRADE, "audit_events", unkeyed_rows=n)


def _seals(event: AuditEvent, n_unkeyed: int) -> bool:
    details = event.details if isinstance(event.details, dict) else {}
    return event.action == UPGRADE and details.get("unkeyed_rows") == n_unkeyed


def verify_chain(session: Session) -> list[str]:
    """Return one line per problem; an empty list means the trail is intact."""
    rows = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    key = _key(session, create=False)  # after the rows: a keyed row among them means the key must exist
    problems, unkeyed = [], []
    prev_hash, prev_id, keyed_seen = GENESIS, None, False
    for event in rows:
        what = f"({event.action} {event.subject})"
        if event.prev_hash != prev_hash:
            before = f"row {prev_id}" if prev_id is not None else "the start of the trail"
            problems.append(f"row {event.id}: does not follow {before} (rows between were deleted, or it was edited)")
        if event.scheme == UNKEYED and keyed_seen:
            problems.append(f"row {event.id}: unkeyed after keyed rows (written by an old release, or forged) {what}")
        elif event.scheme == UNKEYED:
            unkeyed.append(event.id)
        elif event.scheme == KEYED and not keyed_seen:
            keyed_seen = True
            if unkeyed and not _seals(event, len(unkeyed)):
                problems.append(f"rows {unkeyed[0]}..{unkeyed[-1]} are unkeyed and row {event.id} does not seal "
                                "them: the trail was rewritten without the key")
        if event.scheme not in (KEYED, UNKEYED):
            problems.append(f"row {event.id}: unknown scheme {event.scheme!r} {what}")
        elif not hmac.compare_digest(event.hash.encode(), digest(event, key).encode()):
            problems.append(f"row {event.id}: content was changed after it was written, or not written "
                            f"with the audit key {what}")
        prev_hash, prev_id = event.hash, event.id
    if unkeyed and not keyed_seen:
        problems.append(f"rows {unkeyed[0]}..{unkeyed[-1]} are unkeyed and no keyed row seals them: "
                        "the trail was rewritten without the key")
    return problems


def events(session: Session, limit: int | None = None, action: str | None = None,
           dataset: str | None = None) -> list[AuditEvent]:
    """The newest `limit` events (optionally of one action, or about one dataset), oldest first."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc())
    if action:
        query = query.where(AuditEvent.action == action)
    if dataset:
        query = query.where(AuditEvent.dataset == dataset)
    if limit:
        query = query.limit(limit)
    return list(reversed(session.scalars(query).all()))
