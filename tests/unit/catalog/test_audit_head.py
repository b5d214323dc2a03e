"""An exported head catches what the chain alone cannot: the newest rows deleted. SQLite and PostgreSQL."""

import json

import pytest
from sqlalchemy import text

from imaging_workbench.catalog import audit, audit_head

pytestmark = pytest.mark.usefixtures("database_url")


@pytest.fixture
def trail(ctx):
    with ctx.session() as s:
        for i in range(5):
            audit.record(s, "steward", "grant", f"user{i}/lung", dataset="lung")
    return ctx


@pytest.fixture
def head(trail):
    with trail.session() as s:
        return audit_head.current_head(s)


def delete(ctx, *ids):
    with ctx.session() as s:
        s.execute(text(f"DELETE FROM audit_events WHERE id IN ({', '.join(map(str, ids))})"))


def problems(ctx, head):
    with ctx.session() as s:
        return audit.verify_chain(s), audit_head.check_head(s, head)


def test_the_head_names_the_newest_row_and_the_count(trail, head):
    with trail.session() as s:
        newest = audit.events(s)[-1]
    assert (head["count"], head["last_id"], head["last_mac"]) == (5, newest.id, newest.hash)


def test_deleting_the_newest_rows_is_caught_by_the_head(trail, head):
    delete(trail, 4, 5)
    chain, against_head = problems(trail, head)
    assert chain == []  # what is left is a chain that verifies
    when = f"the head exported at {head['exported_at']}"
    assert against_head == [f"row 5, the newest in {when}, is gone: rows were deleted",
                            f"the trail holds 3 rows, fewer than the 5 of {when}: rows were deleted"]


def test_replacing_the_newest_row_is_caught_by_the_head(trail, head):
    delete(trail, 5)
    with trail.session() as s:
        audit.record(s, "mallory", "grant", "mallory/lung")  # a row 5 again, in count, with another id or MAC
    chain, against_head = problems(trail, head)
    assert chain == [] and against_head and all("rewritten" in p or "is gone" in p for p in against_head)


def test_deleting_an_older_row_moves_the_heads_row(trail, head):
    delete(trail, 2)
    chain, against_head = problems(trail, head)
    assert chain and "row 5 is row number 4 of the trail, but number 5" in against_head[0]


def test_rows_written_after_the_head_are_no_problem(trail, head):
    with trail.session() as s:
        audit.record(s, "steward", "revoke", "user0/lung")
    assert problems(trail, head) == ([], [])


def test_the_cli_exports_a_head_and_verifies_against_it(trail, cli, tmp_path):
    head_file = tmp_path / "head.json"
    rc, out, _ = cli("audit", "--export-head", str(head_file))
    assert rc == 0 and "5 events" in out
    assert set(json.loads(head_file.read_text())) == {"count", "last_id", "last_mac", "exported_at"}
    rc, out, _ = cli("audit", "--verify", "--head", str(head_file))
    assert rc == 0 and "intact (5 events); it still holds the head exported at" in out

    delete(trail, 5)
    rc, out, _ = cli("audit", "--verify")
    assert rc == 0  # without the head, a shorter trail looks whole
    rc, out, _ = cli("audit", "--verify", "--head", str(head_file))
    lines = out.splitlines()
    assert rc == 2 and len(lines) == 2 and all(line.startswith("TAMPERED: ") for line in lines)
    assert "is gone: rows were deleted" in lines[0]


def test_no_head_is_exported_from_a_tampered_trail(trail, cli, tmp_path):
    with trail.session() as s:
        s.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE id = 2"))
    rc, out, _ = cli("audit", "--export-head", str(tmp_path / "head.json"))
    assert rc == 2 and "TAMPERED: row 2" in out and not (tmp_path / "head.json").exists()


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    ("{", "is not JSON"),
    ('{"count": 5}', "is not an audit head (it needs count, last_id, last_mac, exported_at)"),
])
def test_a_bad_head_file_says_what_is_wrong(trail, cli, tmp_path, content, message):
    head_file = tmp_path / "head.json"
    if content is not None:
        head_file.write_text(content)
    rc, _, err = cli("audit", "--verify", "--head", str(head_file))
    assert rc == 1 and f"head file {head_file} {message}" in err and "what to do:" in err
