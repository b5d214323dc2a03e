"""The audit trail's keyed chain detects edited, deleted and forged rows, and no false alarm for
an id gap, on SQLite and PostgreSQL."""

import json
import secrets

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from imaging_workbench.catalog import audit
from imaging_workbench.catalog.models import AuditEvent
from imaging_workbench.errors import WorkbenchError

pytestmark = pytest.mark.usefixtures("database_url")


@pytest.fixture
def trail(ctx):
    with ctx.session() as s:
        for i in range(5):
            audit.record(s, "steward", "grant", f"user{i}/lung", purpose=f"study {i}")
    return ctx


def rewrite(session, key: bytes | None, scheme: str = audit.KEYED, change=lambda row: None) -> None:
    """What someone who can write the database does to cover an edit: recompute every row's
    MAC and link, in order, with `key` (theirs, not the deployment's)."""
    prev = audit.GENESIS
    for row in session.scalars(select(AuditEvent).order_by(AuditEvent.id)):
        change(row)
        row.scheme, row.prev_hash = scheme, prev
        row.hash = audit.digest(row, key)
        prev = row.hash
    session.flush()


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
    assert problems == ["row 3: content was changed after it was written, or not written with the audit key "
                        "(grant mallory/lung)"]
    rc, out, _ = cli("audit", "--verify")
    assert rc == 2 and "TAMPERED: row 3" in out


def test_deleted_row_is_detected(trail):
    with trail.session() as s:
        s.execute(text("DELETE FROM audit_events WHERE id = 2"))
    with trail.session() as s:
        assert audit.verify_chain(s) == ["row 3: does not follow row 1 (rows between were deleted, or it was edited)"]


def test_relinking_around_a_deleted_row_is_detected(trail):
    """Pointing the next row at the one before the gap breaks that row's MAC instead."""
    with trail.session() as s:
        s.execute(text("DELETE FROM audit_events WHERE id = 2"))
        s.execute(text("UPDATE audit_events SET prev_hash = (SELECT hash FROM audit_events WHERE id = 1) WHERE id = 3"))
    with trail.session() as s:
        assert audit.verify_chain(s) == ["row 3: content was changed after it was written, or not written with the "
                                         "audit key (grant user2/lung)"]


def test_a_full_rewrite_without_the_key_is_detected(trail):
    with trail.session() as s:
        rewrite(s, secrets.token_bytes(32), change=lambda row: setattr(row, "actor", "mallory"))
    with trail.session() as s:
        problems = audit.verify_chain(s)
    assert len(problems) == 5 and all("not written with the audit key (grant user" in p for p in problems)


def test_a_rewrite_as_unkeyed_rows_is_detected(trail):
    """Unkeyed rows are the previous release's; a trail made only of them was never sealed."""
    with trail.session() as s:
        rewrite(s, None, scheme=audit.UNKEYED)
    with trail.session() as s:
        assert audit.verify_chain(s) == ["rows 1..5 are unkeyed and no keyed row seals them: the trail was "
                                         "rewritten without the key"]


def test_unkeyed_rows_before_a_wrong_seal_are_detected(trail):
    with trail.session() as s:
        rewrite(s, None, scheme=audit.UNKEYED)
        audit.record(s, "workbench", audit.UPGRADE, "audit_events", unkeyed_rows=4)  # not 5
    with trail.session() as s:
        assert audit.verify_chain(s) == ["rows 1..5 are unkeyed and row 6 does not seal them: the trail was "
                                         "rewritten without the key"]


def test_an_unkeyed_row_after_keyed_ones_is_detected(trail):
    with trail.session() as s:
        last = s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
        forged = AuditEvent(at=last.at, actor="mallory", action="grant", subject="mallory/lung", details={},
                            scheme=audit.UNKEYED, prev_hash=last.hash)
        forged.hash = audit.digest(forged, None)
        s.add(forged)
    with trail.session() as s:
        assert audit.verify_chain(s) == ["row 6: unkeyed after keyed rows (written by an old release, or forged) "
                                         "(grant mallory/lung)"]


def test_a_rolled_back_transaction_leaves_an_id_gap_that_is_no_alarm(ctx, database_url):
    with ctx.session() as s:
        audit.record(s, "steward", "grant", "alice/lung")
    with pytest.raises(RuntimeError):
        with ctx.session() as s:
            audit.record(s, "steward", "grant", "bob/lung")
            raise RuntimeError("the change it audits failed")
    with ctx.session() as s:
        audit.record(s, "steward", "grant", "carol/lung")
        audit.record(s, "steward", "revoke", "alice/lung")
    with ctx.session() as s:
        ids = [e.id for e in audit.events(s)]
        assert audit.verify_chain(s) == []
    if database_url.startswith("postgresql"):  # its sequence does not hand out a rolled-back id again
        assert ids == [1, 3, 4]


def test_failed_transaction_leaves_no_audit_row(ctx):
    with pytest.raises(RuntimeError):
        with ctx.session() as s:
            audit.record(s, "steward", "grant", "alice/lung")
            raise RuntimeError("boom")
    with ctx.session() as s:
        assert audit.events(s) == []


def test_a_session_without_the_key_file_cannot_record(ctx):
    with Session(ctx.engine) as s, pytest.raises(WorkbenchError, match="has no audit key file"):
        audit.record(s, "steward", "grant", "alice/lung")


def test_stewards_list_one_datasets_trail(cli, dataset_dir):
    assert cli("users", "add", "alice")[0] == 0
    for name in ("lung", "liver"):
        assert cli("datasets", "add", name, "--path", str(dataset_dir(name)))[0] == 0
        assert cli("grant", "alice", name, "--days", "7", "--purpose", "study")[0] == 0
    assert cli("revoke", "alice", "lung")[0] == 0
    rc, out, _ = cli("audit", "--dataset", "lung", "--json")
    assert rc == 0
    assert [(e["action"], e["subject"]) for e in json.loads(out)] == [
        ("dataset.add", "lung"), ("grant", "alice/lung"), ("revoke", "alice/lung")]
