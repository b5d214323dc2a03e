"""Heads of the audit trail: how long it was and how it ended, kept by an operator away from the
database. Deleting the newest rows leaves a chain that still verifies; checking a head catches it.

A head file is JSON: {"count": rows in the trail, "last_id": the newest row's id (null when
empty), "last_mac": its MAC, "exported_at": when, ISO 8601 UTC}.
"""

import json
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..clock import utcnow
from ..errors import WorkbenchError
from .audit import GENESIS
from .models import AuditEvent

FIELDS = ("count", "last_id", "last_mac", "exported_at")


def _chain(session: Session) -> list[tuple[int, str]]:
    query = select(AuditEvent.id, AuditEvent.hash).order_by(AuditEvent.id)
    return [(row_id, mac) for row_id, mac in session.execute(query)]


def current_head(session: Session) -> dict:
    chain = _chain(session)
    last_id, last_mac = chain[-1] if chain else (None, GENESIS)
    return {"count": len(chain), "last_id": last_id, "last_mac": last_mac,
            "exported_at": utcnow().isoformat(timespec="seconds")}


def write_head(head: dict, path: Path) -> None:
    Path(path).write_text(json.dumps(head, indent=2) + "\n")


def read_head(path: Path) -> dict:
    """The head in `path`; WorkbenchError naming the file when it is missing or not a head."""
    try:
        head = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise WorkbenchError(f"head file {path} does not exist",
                             "give a file written by 'workbench audit --export-head'") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise WorkbenchError(f"head file {path} is not JSON: {e}",
                             "give a file written by 'workbench audit --export-head'") from None
    if not isinstance(head, dict) or set(FIELDS) - set(head) or not isinstance(head["count"], int):
        raise WorkbenchError(f"head file {path} is not an audit head (it needs {', '.join(FIELDS)})",
                             "give a file written by 'workbench audit --export-head'")
    return head


def check_head(session: Session, head: dict) -> list[str]:
    """One line per way the trail no longer holds `head`: its row, with its MAC, at its position,
    and at least as many rows; an empty list when it does."""
    chain = _chain(session)
    when = f"the head exported at {head['exported_at']}"
    problems = []
    if head["count"] > 0:
        positions = {row_id: (n, mac) for n, (row_id, mac) in enumerate(chain, 1)}
        if head["last_id"] not in positions:
            problems.append(f"row {head['last_id']}, the newest in {when}, is gone: rows were deleted")
        else:
            position, mac = positions[head["last_id"]]
            if mac != head["last_mac"]:
                problems.append(f"row {head['last_id']}: its MAC is not the one in {when}: the trail was rewritten")
            if position != head["count"]:
                problems.append(f"row {head['last_id']} is row number {position} of the trail, but number "
                                f"{head['count']} in {when}: rows before it were deleted or inserted")
    if len(chain) < head["count"]:
        problems.append(f"the trail holds {len(chain)} rows, fewer than the {head['count']} of {when}: "
                        "rows were deleted")
    return problems
