"""The audit trail's hash chain detects edited and deleted rows, on SQLite and PostgreSQL."""

import pytest
from sqlalchemy import text

from imaging_workbench.catalog import audit

pytestmark = pytest.mark.usefixtures("database_url")


@pytest.fixture
def trail(ctx):
    with ctx.session() as s:
        for i in range(5):
            audit.record(s, "steward", "grant", f"user{i}/lung", purpose=f"study {i}")
    return ctx


def test_intact_chain_verifies(trail, cli):
    with trail.session() as s:
        assert audit.verify_chain(s) == []
    rc, out, _ = cli("audit", "--verify")
    assert rc == 0 and "intact (5 events)" in out


def test_edited_row_is_detected(trail, cli):
    with trail.session() as s:
        s.execute(text("UPDATE audit_events SET subject = 'mallory/lung' WHERE id = 3"))
    with trail.session() as s:
        problems = audit.verify_chain(s)
    assert problems == ["row 3: content was changed after it was written (grant mallory/lung)"]
    rc, out, _ = cli("audit", "--verify")
    assert rc == 2 and "TAMPERED: row 3" in out


def test_deleted_row_is_detected(trail):
    with trail.session() as s:
        s.execute(text("DELETE FROM audit_events WHERE id = 2"))
    with trail.session() as s:
        problems = audit.verify_chain(s)
    assert "rows 2..2 are missing (deleted)" in problems
    assert "row 3: does not follow the row before it" in problems


def test_rewritten_hash_does_not_hide_an_edit(trail):
    """Recomputing the edited row's own hash still breaks the link to the next row."""
    with trail.session() as s:
        row = s.get(audit.AuditEvent, 2)
        row.details = {"purpose": "forged"}
        row.hash = audit._digest(row.prev_hash, row.at, row.actor, row.action, row.subject, row.details)
    with trail.session() as s:
        assert audit.verify_chain(s) == ["row 3: does not follow the row before it"]


def test_failed_transaction_leaves_no_audit_row(ctx):
    with pytest.raises(RuntimeError):
        with ctx.session() as s:
            audit.record(s, "steward", "grant", "alice/lung")
            raise RuntimeError("boom")
    with ctx.session() as s:
        assert audit.events(s) == []
