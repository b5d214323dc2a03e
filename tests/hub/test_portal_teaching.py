"""The portal's Teaching page and API on a real hub: a session's instructors see its learners and
the one-time passwords of its temporary accounts; a learner, another instructor's colleague and
a researcher see none of them. The session is made through the catalog (test_training_sessions.py
tests `workbench session create`)."""

from datetime import timedelta

import pytest

from imaging_workbench.catalog import accounts, training_sessions
from imaging_workbench.clock import utcnow
from imaging_workbench.context import WorkbenchContext
from imaging_workbench.deployment import validate_settings, with_defaults

from .portal_calls import portal_caller, register

pytestmark = pytest.mark.hub

PEOPLE = ("ina", "ivan", "lea", "alice")


@pytest.fixture(scope="module")
def hub_settings(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("hub-teaching")
    overrides = {"state_dir": str(workdir / "state"), "demo": {"users": ["alice", "bob"]}}
    return workdir, validate_settings(with_defaults(overrides))


@pytest.fixture(scope="module")
def course(hub_settings, logins):
    """Session intro-ct: instructor ina; learners lea (own account) and two temporary accounts.
    ivan instructs another session."""
    workdir, settings = hub_settings
    ctx = WorkbenchContext(settings, actor="edu")
    register(ctx, workdir, {"teaching-ct": {"title": "Teaching CT"}})
    start = utcnow() + timedelta(hours=1)
    with ctx.session() as s:
        for name in ("ina", "ivan", "lea"):
            accounts.add_account(s, "edu", name)
        for name, instructor, learners in (("intro-ct", "ina", ["lea", "tom", "tia"]), ("other", "ivan", ["lea"])):
            training_sessions.create_session(s, "edu", training_sessions.SessionPlan(
                name=name, learners=learners, instructors=[instructor], starts_at=start,
                ends_at=start + timedelta(hours=2), dataset_id="teaching-ct", material=str(workdir),
                profile="standard"), temporary_accounts=True)
        passwords = {m.user: m.one_time_password for m in s.get(training_sessions.TrainingSession,
                                                               "intro-ct").members if m.temporary}
    return passwords


@pytest.fixture(scope="module")
def portal(hub, course):
    return portal_caller(hub, PEOPLE)


def test_instructors_see_their_learners_one_time_passwords(portal, course):
    [intro] = portal("ina", "GET", "api/teaching").json()
    assert intro["name"] == "intro-ct" and intro["instructors"] == ["ina"]
    roster = {m["user"]: m for m in intro["roster"]}
    assert set(roster) == {"lea", "tom", "tia"} and roster["lea"]["one_time_password"] is None
    assert {u: roster[u]["one_time_password"] for u in ("tom", "tia")} == course
    page = portal("ina", "GET", "teaching")
    assert page.status_code == 200 and all(p in page.text for p in course.values())
    assert 'href="/services/workbench-portal/teaching"' in page.text  # the menu links it for instructors


@pytest.mark.parametrize("who", ["ivan", "lea", "alice"])
def test_nobody_else_sees_them(portal, course, who):
    sessions = portal(who, "GET", "api/teaching").json()
    assert [t["name"] for t in sessions] == (["other"] if who == "ivan" else [])
    page = portal(who, "GET", "teaching")
    assert page.status_code == 200 and not any(p in page.text for p in course.values())
    if who != "ivan":
        assert "You instruct no training session" in page.text and "teaching\"" not in page.text
