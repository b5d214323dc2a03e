"""Creating a training session, on SQLite and PostgreSQL, through the `workbench session` CLI:
a roster read row by row (a duplicate or malformed row is refused with its number), the window,
dataset and instructors checked by field, temporary accounts made only when asked, everything
audited, and nothing created when anything is wrong."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from imaging_workbench.catalog import accounts, audit, datasets
from imaging_workbench.catalog.models import Account, SessionMember, TrainingSession
from imaging_workbench.catalog.training_sessions import RosterError, read_roster
from imaging_workbench.cli import main
from imaging_workbench.clock import utcnow

pytestmark = pytest.mark.usefixtures("database_url")

START = utcnow() + timedelta(days=1)
END = START + timedelta(hours=3)


@pytest.fixture
def course(ctx, settings_file, tmp_path):
    """Instructors ina and ivan, learner lea with an account, the teaching dataset and material."""
    data, material = tmp_path / "teaching-ct", tmp_path / "intro"
    data.mkdir()
    material.mkdir()
    (material / "01-windowing.ipynb").write_text("{}")
    with ctx.session() as s:
        for name in ("ina", "ivan", "lea"):
            accounts.add_account(s, "steward", name)
        datasets.add_dataset(s, "steward", "teaching-ct", data, title="Teaching CT")
    return ctx, settings_file, material


def create(settings_file, material, roster_text, tmp_path, *extra, start=START, end=END, name="intro-ct"):
    roster = tmp_path / "learners.csv"
    roster.write_text(roster_text)
    return main(["--settings", str(settings_file), "--as", "edu", "session", "create", name,
                 "--roster", str(roster), "--instructors", "ina,ivan", "--start", start.isoformat(),
                 "--end", end.isoformat(), "--dataset", "teaching-ct", "--material", str(material),
                 "--profile", "standard", *extra])


def counts(ctx) -> tuple[int, int, int]:
    with ctx.session() as s:
        return tuple(s.scalar(select(func.count()).select_from(model))
                     for model in (TrainingSession, SessionMember, Account))


def test_a_session_with_temporary_accounts_is_recorded_and_audited(course, tmp_path, capsys):
    ctx, settings_file, material = course
    assert create(settings_file, material, "username,display_name\nlea,Lea\nLeo,Leo\n\nlia,Lia\n", tmp_path,
                  "--temporary-accounts") == 0
    out = capsys.readouterr().out
    assert "3 learners" in out and "2 temporary accounts" in out and "password" not in out.split("one-time")[0]
    with ctx.session() as s:
        training = s.get(TrainingSession, "intro-ct").as_dict()
        members = {m.user: m for m in s.scalars(select(SessionMember))}
        made = audit.events(s, action="session.create")[-1]
        temporaries = {m.user: m.one_time_password for m in members.values() if m.temporary}
        assert all(accounts.check_password(s.get(Account, u).password_hash, p) for u, p in temporaries.items())
    assert training["learners"] == ["lea", "leo", "lia"] and training["instructors"] == ["ina", "ivan"]
    assert set(temporaries) == {"leo", "lia"} and members["lea"].one_time_password is None
    assert (made.actor, made.subject, made.dataset) == ("edu", "intro-ct", "teaching-ct")
    assert made.details["temporary_accounts"] == ["leo", "lia"] and made.details["learners"] == ["lea", "leo", "lia"]
    for password in temporaries.values():  # never in what the CLI prints
        assert password not in out
    assert main(["--settings", str(settings_file), "session", "show", "intro-ct"]) == 0
    assert "learners (3): lea, leo, lia" in capsys.readouterr().out


@pytest.mark.parametrize("roster, message", [
    ("name\nlea\n", "the roster has no 'username' column"),
    ("username\nlea\nlea\n", "roster row 3: lea is listed twice (first at row 2)"),
    ("username,display_name\nlea,Lea\nleo\n", "roster row 3 has 1 fields, the header 2"),
    ("username\nlea\nno spaces please\n", "roster row 3: 'no spaces please' is not a user name"),
    ("username\n\n", "the roster lists no learners"),
])
def test_a_bad_roster_is_refused_with_its_row_and_nothing_is_created(course, tmp_path, capsys, roster, message):
    ctx, settings_file, material = course
    before = counts(ctx)
    assert create(settings_file, material, roster, tmp_path, "--temporary-accounts") == 1
    assert message in capsys.readouterr().err
    assert counts(ctx) == before
    with pytest.raises(RosterError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_roster(roster)


@pytest.mark.parametrize("change, message", [
    ({"end": START - timedelta(hours=1)}, "is not after --start"),
    ({"start": utcnow() - timedelta(days=2), "end": utcnow() - timedelta(days=1)}, "is already past"),
    ({"extra": ("--dataset", "no-such-set")}, "no-such-set"),
    ({"extra": ("--instructors", "ina,lea")}, "--instructors: lea also on the roster"),
    ({"extra": ("--instructors", "ina,nobody")}, "--instructors: no account for nobody"),
    ({"extra": ("--profile", "huge")}, "--profile 'huge' is not a profile"),
    ({"name": "Intro CT"}, "session name:"),
    ({"roster": "username\nlea\nstranger\n"}, "the roster names users without an account: stranger"),
])
def test_a_bad_field_is_named_and_nothing_is_created(course, tmp_path, capsys, change, message):
    ctx, settings_file, material = course
    before = counts(ctx)
    code = create(settings_file, material, change.get("roster", "username\nlea\n"), tmp_path,
                  *change.get("extra", ()), start=change.get("start", START), end=change.get("end", END),
                  name=change.get("name", "intro-ct"))
    assert code == 1 and message in capsys.readouterr().err
    assert counts(ctx) == before


def test_a_session_name_is_taken_once(course, tmp_path, capsys):
    ctx, settings_file, material = course
    assert create(settings_file, material, "username\nlea\n", tmp_path) == 0
    assert create(settings_file, material, "username\nlea\n", tmp_path) == 1
    assert "training session 'intro-ct' exists" in capsys.readouterr().err


def test_closing_a_session_ends_only_its_grants_and_its_temporary_accounts(course, tmp_path):
    from imaging_workbench.catalog import grants, training_sessions

    ctx, settings_file, material = course
    with ctx.session() as s:
        accounts.add_account(s, "steward", "lou")
        grants.grant_access(s, "steward", "lou", "teaching-ct", 30, "her own project")  # held before the session
    assert create(settings_file, material, "username\nlea\nlou\nleo\n", tmp_path, "--temporary-accounts") == 0
    with ctx.session() as s:
        training_sessions.record_prespawn(s, "edu", "intro-ct", {"lea": None, "lou": None, "leo": "out of memory"})
        assert {m.user: m.spawn_error for m in training_sessions.learners(s.get(TrainingSession, "intro-ct"))} == {
            "lea": None, "lou": None, "leo": "out of memory"}
        done = training_sessions.close_session(s, "edu", "intro-ct")
    assert done == {"grants_ended": ["lea", "leo"], "accounts_removed": ["leo"]}
    with ctx.session() as s:
        assert grants.approved_dataset_ids(s, "lou") == ["teaching-ct"]  # not the session's to end
        assert grants.approved_dataset_ids(s, "lea") == [] and grants.approved_dataset_ids(s, "leo") == []
        assert s.get(Account, "leo").password_hash is None  # its one-time password no longer logs in
        assert all(m.one_time_password is None for m in s.scalars(select(SessionMember)))
        assert s.get(TrainingSession, "intro-ct").ended_at is not None
        trail = [(e.action, e.subject) for e in audit.events(s)]
    assert ("access.ended", "lea/teaching-ct") in trail and ("user.remove", "leo") in trail
    assert ("session.prespawn", "intro-ct") in trail and trail[-1] == ("session.end", "intro-ct")
    with ctx.session() as s, pytest.raises(Exception, match="ended on"):
        training_sessions.close_session(s, "edu", "intro-ct")
