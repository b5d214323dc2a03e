"""Datasets, accounts and grants through the CLI, on SQLite and PostgreSQL."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from imaging_workbench.catalog import grants
from imaging_workbench.catalog.models import AuditEvent, Grant
from imaging_workbench.clock import utcnow

pytestmark = pytest.mark.usefixtures("database_url")


def audit_count(ctx) -> int:
    with ctx.session() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent))


@pytest.fixture
def stocked(cli, dataset_dir):
    assert cli("users", "add", "alice", "--password")[0] == 0
    for name in ("lung-a", "liver-b"):
        rc, out, err = cli("datasets", "add", name, "--path", str(dataset_dir(name)), "--title", name.upper(),
                           "--modality", "CT", "--site", "site-1")
        assert rc == 0, err
    return cli


def test_grant_access_revoke_round_trip(stocked, ctx):
    rc, out, _ = stocked("grant", "alice", "lung-a", "--days", "7", "--purpose", "nodule study")
    assert rc == 0 and "until" in out
    rc, out, _ = stocked("access", "alice", "--json")
    assert rc == 0 and '"dataset_id": "lung-a"' in out and "liver-b" not in out
    with ctx.session() as s:
        assert grants.approved_dataset_ids(s, "alice") == ["lung-a"]
    assert stocked("revoke", "alice", "lung-a")[0] == 0
    with ctx.session() as s:
        assert grants.approved_dataset_ids(s, "alice") == []
        actions = [e.action for e in s.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert actions == ["user.add", "dataset.add", "dataset.add", "grant", "revoke"]


@pytest.mark.parametrize("args, message", [
    (("grant", "mallory", "lung-a", "--days", "7", "--purpose", "x"), "unknown user 'mallory'"),
    (("grant", "alice", "nope", "--days", "7", "--purpose", "x"), "unknown dataset 'nope'"),
    (("grant", "alice", "lung-a", "--days", "0", "--purpose", "x"), "--days must be between"),
    (("grant", "alice", "lung-a", "--days", "7", "--purpose", " "), "needs a purpose"),
    (("revoke", "alice", "liver-b"), "no live grant"),
    (("revoke", "mallory", "lung-a"), "unknown user 'mallory'"),
    (("access", "mallory"), "unknown user 'mallory'"),
    (("datasets", "remove", "nope"), "unknown dataset 'nope'"),
])
def test_bad_input_names_the_problem_and_changes_nothing(stocked, ctx, args, message):
    before = audit_count(ctx)
    rc, out, err = stocked(*args)
    assert rc == 1
    assert message in err and "what to do:" in err
    assert audit_count(ctx) == before


def test_missing_or_unreadable_folder_is_refused(stocked, ctx, tmp_path):
    before = audit_count(ctx)
    rc, _, err = stocked("datasets", "add", "ghost", "--path", str(tmp_path / "missing"))
    assert rc == 1 and "does not exist" in err
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    rc, _, err = stocked("datasets", "add", "secret", "--path", str(private))
    assert rc == 1 and "not readable by the sandbox user" in err and "chmod" in err
    assert audit_count(ctx) == before


def test_expired_grant_is_not_live(stocked, ctx):
    assert stocked("grant", "alice", "lung-a", "--days", "1", "--purpose", "x")[0] == 0
    with ctx.session() as s:
        s.scalars(select(Grant)).one().expires_at = utcnow() - timedelta(seconds=1)
    with ctx.session() as s:
        assert grants.approved_dataset_ids(s, "alice") == []
    rc, out, _ = stocked("access", "alice")
    assert "(none)" in out
    # an expired grant can be renewed by a new one
    assert stocked("grant", "alice", "lung-a", "--days", "1", "--purpose", "renewal")[0] == 0


def test_dataset_with_live_grants_cannot_be_removed(stocked):
    stocked("grant", "alice", "lung-a", "--days", "7", "--purpose", "x")
    rc, _, err = stocked("datasets", "remove", "lung-a")
    assert rc == 1 and "live grants for: alice" in err
    stocked("revoke", "alice", "lung-a")
    assert stocked("datasets", "remove", "lung-a")[0] == 0
    rc, out, _ = stocked("datasets", "list", "--json")
    assert '"lung-a"' not in out and '"liver-b"' in out


def test_duplicate_grant_and_dataset_refused(stocked):
    stocked("grant", "alice", "lung-a", "--days", "7", "--purpose", "x")
    assert "already holds a live grant" in stocked("grant", "alice", "lung-a", "--days", "7", "--purpose", "x")[2]
    rc, _, err = stocked("datasets", "add", "lung-a", "--path", "/tmp")
    assert rc == 1 and "already exists" in err
