"""Release requests on SQLite and PostgreSQL: two different output checkers per file, never the
author; a changed file starts its reviews again; final states stay final; every step audited."""

import json

import pytest
from sqlalchemy import select

from imaging_workbench.catalog import accounts, datasets, grants
from imaging_workbench.catalog import releases as rel
from imaging_workbench.catalog.access_requests import BadField, Conflict, NotAllowed
from imaging_workbench.catalog.models import AuditEvent

pytestmark = pytest.mark.usefixtures("database_url")

ROLES = {"output_checkers": ["olga", "oscar", "alice"], "stewards": {}}
TABLE = rel.NewFile("age.csv", "a" * 64, 120, "table", ["n"],
                      [{"severity": "fail", "check": "small cell", "message": "row 1, column n: 3 < 10"}])
NOTE = rel.NewFile("notes.txt", "b" * 64, 40, "text")


@pytest.fixture
def catalog(ctx, dataset_dir):
    """alice and bob (researchers; alice is also an output checker), olga and oscar (checkers);
    alice holds lung."""
    with ctx.session() as s:
        for name in ("alice", "bob", "olga", "oscar"):
            accounts.add_account(s, "admin", name)
        datasets.add_dataset(s, "admin", "lung", dataset_dir("lung"), state_dir=ctx.state_dir)
        grants.grant_access(s, "admin", "alice", "lung", 30, "study")
    return ctx


def filed(ctx, files=(TABLE, NOTE), submit=True) -> int:
    with ctx.session() as s:
        request = rel.create_release(s, "alice", "age bands", "cells < 10 suppressed", ["lung"], list(files))
        if submit:
            rel.submit(s, "alice", request.id)
        return request.id


def step(ctx, fn, *args):
    with ctx.session() as s:
        return fn(s, *args)


def review(ctx, checker, request_id, name, decision="approve", comment=""):
    with ctx.session() as s:
        file = next(f for f in rel.get_release(s, request_id).files if f.name == name)
        return rel.review(s, ROLES, checker, request_id, file.id, decision, comment)


def state(ctx, request_id) -> str:
    return step(ctx, rel.get_release, request_id).state


def test_two_approvals_per_file_approve_then_a_checker_releases(catalog):
    request_id = filed(catalog)
    assert state(catalog, request_id) == "submitted"
    for checker in ("olga", "oscar"):
        review(catalog, checker, request_id, "age.csv")
    assert state(catalog, request_id) == "submitted"  # notes.txt has no reviews yet
    review(catalog, "olga", request_id, "notes.txt")
    review(catalog, "oscar", request_id, "notes.txt")
    assert state(catalog, request_id) == "approved"
    released = step(catalog, rel.mark_released, ROLES, "olga", request_id, {"age.csv": "a" * 64})
    assert (released.state, released.closed_by) == ("released", "olga")
    with pytest.raises(Conflict, match="released"):
        step(catalog, rel.withdraw, "alice", request_id)
    actions = [e.action for e in step(catalog, lambda s: s.scalars(select(AuditEvent).order_by(AuditEvent.id)).all())]
    assert actions[-7:] == ["release.file", "release.submit", *["release.review"] * 4, "release.release"]


def test_the_author_never_reviews_their_own_request_even_as_a_checker(catalog):
    request_id = filed(catalog)
    with pytest.raises(NotAllowed, match="own request"):
        review(catalog, "alice", request_id, "age.csv")
    with pytest.raises(NotAllowed, match="own request"):
        step(catalog, rel.close, ROLES, "alice", request_id, "rejected", "no")


def test_a_second_review_needs_a_second_checker_and_non_checkers_are_refused(catalog):
    request_id = filed(catalog)
    review(catalog, "olga", request_id, "age.csv")
    assert review(catalog, "olga", request_id, "age.csv").decision == "approve"  # a double click: the same row
    with pytest.raises(NotAllowed, match="already reviewed"):
        review(catalog, "olga", request_id, "age.csv", "reject", "too small")
    with pytest.raises(NotAllowed, match="not an output checker"):
        review(catalog, "bob", request_id, "age.csv")


def test_a_changed_file_starts_its_reviews_again_and_an_unchanged_one_keeps_them(catalog):
    request_id = filed(catalog)
    review(catalog, "olga", request_id, "age.csv", "changes", "suppress the cell of 3")
    review(catalog, "oscar", request_id, "age.csv", "changes", "same")
    review(catalog, "olga", request_id, "notes.txt")
    review(catalog, "oscar", request_id, "notes.txt")
    assert state(catalog, request_id) == "reviewed"
    with pytest.raises(BadField, match="reason"):
        step(catalog, rel.close, ROLES, "olga", request_id, "returned", " ")
    step(catalog, rel.close, ROLES, "olga", request_id, "returned", "see the comments")
    corrected = rel.NewFile("age.csv", "c" * 64, 118, "table", ["n"], [])
    step(catalog, rel.update_files, "alice", request_id, [corrected, NOTE])
    step(catalog, rel.submit, "alice", request_id)
    request = step(catalog, lambda s: rel.get_release(s, request_id).as_dict())
    reviews = {f["name"]: [r["reviewer"] for r in f["reviews"]] for f in request["files"]}
    assert reviews == {"age.csv": [], "notes.txt": ["olga", "oscar"]}
    assert request["state"] == "submitted"
    review(catalog, "olga", request_id, "age.csv")
    review(catalog, "oscar", request_id, "age.csv")
    assert state(catalog, request_id) == "approved"


def test_final_states_cannot_change_and_files_change_only_while_editable(catalog):
    request_id = filed(catalog)
    with pytest.raises(Conflict, match="submitted"):
        step(catalog, rel.update_files, "alice", request_id, [NOTE])
    with pytest.raises(Conflict, match="reviewed"):  # returning needs both reviews of every file
        step(catalog, rel.close, ROLES, "olga", request_id, "returned", "why")
    step(catalog, rel.close, ROLES, "olga", request_id, "rejected", "identifies a patient")
    assert step(catalog, rel.close, ROLES, "oscar", request_id, "rejected", "again").closed_by == "olga"
    for attempt in (lambda s: rel.submit(s, "alice", request_id), lambda s: rel.withdraw(s, "alice", request_id),
                    lambda s: rel.update_files(s, "alice", request_id, [NOTE])):
        with pytest.raises(Conflict, match="rejected"):
            step(catalog, attempt)
    with pytest.raises(Conflict, match="rejected"):
        review(catalog, "oscar", request_id, "age.csv")


def test_bad_fields_are_refused_naming_them(catalog):
    with pytest.raises(BadField, match="statement"):
        step(catalog, rel.create_release, "alice", " ", "x", ["lung"], [NOTE])
    with pytest.raises(BadField, match="controls"):
        step(catalog, rel.create_release, "alice", "x", "", ["lung"], [NOTE])
    with pytest.raises(BadField, match="no live grant for lung"):
        step(catalog, rel.create_release, "bob", "x", "y", ["lung"], [NOTE])
    with pytest.raises(BadField, match="files"):
        step(catalog, rel.create_release, "alice", "x", "y", ["lung"], [])
    request_id = filed(catalog)
    with pytest.raises(BadField, match="decision"):
        review(catalog, "olga", request_id, "age.csv", "maybe")
    with pytest.raises(BadField, match="comment"):
        review(catalog, "olga", request_id, "age.csv", "reject")


def test_only_the_author_changes_submits_or_withdraws_and_only_they_and_checkers_see_it(catalog):
    request_id = filed(catalog, submit=False)
    for fn in (rel.submit, rel.withdraw):
        with pytest.raises(NotAllowed, match="not bob's"):
            step(catalog, fn, "bob", request_id)
    request = step(catalog, rel.get_release, request_id)  # may_see reads only its author
    assert [rel.may_see(ROLES, u, request) for u in ("alice", "olga", "bob")] == [True, True, False]
    assert step(catalog, rel.withdraw, "alice", request_id).state == "withdrawn"


def test_the_cli_shows_what_the_portal_shows(catalog, cli):
    request_id = filed(catalog)
    review(catalog, "olga", request_id, "age.csv", "changes", "merge the small band")
    rc, out, err = cli("releases", "list", "--json")
    assert rc == 0, err
    listed = {r["id"]: r for r in json.loads(out)}
    assert listed[request_id]["state"] == "submitted" and listed[request_id]["author"] == "alice"
    rc, out, err = cli("releases", "show", str(request_id))
    assert rc == 0, err
    assert "olga:changes" in out and "fail" in out and "cells < 10 suppressed" in out
    assert cli("releases", "show", "999")[0] != 0
