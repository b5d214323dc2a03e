"""Training sessions: a room of learners, their instructors, a teaching dataset, material and a time window.

`create_session` checks everything first (the roster row by row, the dataset, the window, the
instructors) and then records the session in one transaction: nothing is created when anything
is wrong. Each learner is granted the teaching dataset until the session ends (unless they hold
it already). With local login it can make a temporary account for each roster name that has none;
their one-time passwords are kept in the catalog for the instructors to hand out (the portal
shows them to the session's instructors), never written to a host file.
"""

import csv
import io
import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..clock import utcnow
from ..errors import NotFound, WorkbenchError
from ..hub.roles import normalize, session_group
from . import audit
from .accounts import NAME_RE, add_account, generate_password
from .datasets import get_dataset
from .grants import grant_access, live_grant, revoke_access
from .models import Account, Grant, SessionMember, TrainingSession

LEARNER, INSTRUCTOR = "learner", "instructor"
SERVER_PREFIX = "session-"  # a learner's server for session NAME is named session-NAME
MATERIAL_ROOT = "/opt/workbench/sessions"  # where a session server sees its material, read-only
ROSTER_COLUMN = "username"


class RosterError(WorkbenchError):
    """A roster that cannot be used; the message names the row."""


@dataclass(frozen=True)
class SessionPlan:
    name: str
    learners: list[str]
    instructors: list[str]
    starts_at: datetime
    ends_at: datetime
    dataset_id: str
    material: str
    profile: str


def read_roster(text: str) -> list[str]:
    """The learners' names of a roster CSV with a `username` column (other columns are kept out).

    Raises:
        RosterError: no `username` column, or a row with a missing, malformed or repeated name;
            the message names the row (the header is row 1).
    """
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or ROSTER_COLUMN not in [c.strip().lower() for c in rows[0]]:
        raise RosterError(f"the roster has no '{ROSTER_COLUMN}' column in its first row",
                          f"start the file with a header such as '{ROSTER_COLUMN},display_name'")
    column = [c.strip().lower() for c in rows[0]].index(ROSTER_COLUMN)
    names, first_seen = [], {}
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue  # blank lines
        if len(row) != len(rows[0]):
            raise RosterError(f"roster row {number} has {len(row)} fields, the header {len(rows[0])}",
                              "give every row the header's columns (quote a field that holds a comma)")
        name = normalize(row[column].strip())
        if not NAME_RE.match(name):
            raise RosterError(f"roster row {number}: {row[column]!r} is not a user name",
                              "use lower-case letters, digits, '.', '_' and '-', at most 64")
        if name in first_seen:
            raise RosterError(f"roster row {number}: {name} is listed twice (first at row {first_seen[name]})",
                              "list each learner once")
        first_seen[name] = number
        names.append(name)
    if not names:
        raise RosterError("the roster lists no learners", f"add one row per learner under the '{ROSTER_COLUMN}' header")
    return names


def check_plan(session: Session, plan: SessionPlan, temporary_accounts: bool) -> list[str]:
    """The roster names that need a temporary account; raises when the plan cannot be made.

    Raises:
        WorkbenchError: a bad name, a session that exists, an end not after the start or already
            past, an instructor who is also a learner or has no account, a learner without an
            account (unless `temporary_accounts`); each names the field.
        NotFound: the dataset.
    """
    try:
        session_group(plan.name)  # the session's hub group carries its name
    except ValueError as e:
        raise WorkbenchError(f"session name: {e}", "pick a name such as intro-ct-2026") from None
    if session.get(TrainingSession, plan.name) is not None:
        raise WorkbenchError(f"training session '{plan.name}' exists", "pick another name, or end that one first")
    if plan.ends_at <= plan.starts_at:
        raise WorkbenchError(f"--end {plan.ends_at:%Y-%m-%d %H:%M} is not after --start {plan.starts_at:%Y-%m-%d %H:%M}",
                             "give an end after the start")
    if plan.ends_at <= utcnow():
        raise WorkbenchError(f"--end {plan.ends_at:%Y-%m-%d %H:%M} is already past", "give an end in the future")
    get_dataset(session, plan.dataset_id)
    if not plan.instructors:
        raise WorkbenchError("--instructors names nobody", "name at least one instructor")
    both = sorted(set(plan.instructors) & set(plan.learners))
    if both:
        raise WorkbenchError(f"--instructors: {', '.join(both)} also on the roster", "an instructor is not a learner")
    known = set(session.scalars(select(Account.name).where(Account.name.in_(plan.instructors + plan.learners))))
    missing_instructors = [n for n in plan.instructors if n not in known]
    if missing_instructors:
        raise NotFound(f"--instructors: no account for {', '.join(missing_instructors)}",
                       "instructors sign in with their own accounts: add them first ('workbench users add')")
    missing = [n for n in plan.learners if n not in known]
    if missing and not temporary_accounts:
        raise NotFound(f"the roster names users without an account: {', '.join(missing)}",
                       "add them, or pass --temporary-accounts to make one-time accounts for them")
    return missing


def create_session(session: Session, actor: str, plan: SessionPlan,
                   temporary_accounts: bool = False) -> TrainingSession:
    """Record the session, its members and any temporary accounts (audited); see the module doc."""
    temporary = check_plan(session, plan, temporary_accounts)
    passwords = {name: generate_password() for name in temporary}
    for name, password in passwords.items():
        add_account(session, actor, name, password)
    training = TrainingSession(name=plan.name, dataset_id=plan.dataset_id, material=plan.material,
                               profile=plan.profile, starts_at=plan.starts_at, ends_at=plan.ends_at,
                               created_by=actor, created_at=utcnow())
    session.add(training)
    for name in plan.learners:
        grant = None
        if live_grant(session, name, plan.dataset_id) is None:  # a learner who holds it already keeps theirs
            days = max(1, math.ceil((plan.ends_at - utcnow()).total_seconds() / 86400))
            grant = grant_access(session, actor, name, plan.dataset_id, days, f"training session {plan.name}",
                                 until=plan.ends_at)
        session.add(SessionMember(session_name=plan.name, user=name, role=LEARNER, temporary=name in passwords,
                                  one_time_password=passwords.get(name), grant_id=grant and grant.id))
    for name in plan.instructors:
        session.add(SessionMember(session_name=plan.name, user=name, role=INSTRUCTOR))
    session.flush()
    audit.record(session, actor, "session.create", plan.name, dataset=plan.dataset_id,
                 learners=plan.learners, instructors=plan.instructors, temporary_accounts=sorted(passwords),
                 starts_at=plan.starts_at, ends_at=plan.ends_at, material=plan.material, profile=plan.profile)
    session.refresh(training)
    return training


def server_name(session_name: str) -> str:
    return SERVER_PREFIX + session_name


def learners(training: TrainingSession) -> list[SessionMember]:
    return [m for m in training.members if m.role == LEARNER]


def instructor_names(training: TrainingSession) -> list[str]:
    return [m.user for m in training.members if m.role == INSTRUCTOR]


def live_session(session: Session, name: str) -> TrainingSession:
    """The session `name`, which must not have ended."""
    training = get_session(session, name)
    if training.ended_at is not None:
        raise WorkbenchError(f"training session '{name}' ended on {training.ended_at:%Y-%m-%d %H:%M} UTC",
                             "create a new session for another run of the course")
    return training


def record_prespawn(session: Session, actor: str, name: str, errors: dict[str, str | None]) -> None:
    """Keep each learner's pre-spawn outcome (None: ready) for `session status`; audited."""
    training = live_session(session, name)
    for member in learners(training):
        if member.user in errors:
            member.spawn_error = errors[member.user]
    audit.record(session, actor, "session.prespawn", name, ready=sorted(u for u, e in errors.items() if e is None),
                 failed={u: e for u, e in sorted(errors.items()) if e is not None})


def close_session(session: Session, actor: str, name: str) -> dict:
    """The catalog's part of ending a session, after its servers are stopped and its work archived:
    the grants it gave end, its temporary accounts can no longer log in and their one-time
    passwords go, and the session is marked ended. Each step is audited."""
    training = live_session(session, name)
    ended, closed = [], []
    for member in learners(training):
        grant = session.get(Grant, member.grant_id) if member.grant_id else None
        if grant is not None and grant.revoked_at is None and grant.expires_at > utcnow():
            revoke_access(session, actor, member.user, grant.dataset_id)
            audit.record(session, actor, "access.ended", f"{member.user}/{grant.dataset_id}", dataset=grant.dataset_id,
                         grant_id=grant.id, datasets=[grant.dataset_id], reason=f"training session {name} ended")
            ended.append(member.user)
        member.one_time_password = None
        if member.temporary:
            account = session.get(Account, member.user)
            if account.password_hash is not None:
                account.password_hash = None
                audit.record(session, actor, "user.remove", member.user, reason=f"temporary account of training "
                             f"session {name}, which ended")
                closed.append(member.user)
    training.ended_at = utcnow()
    audit.record(session, actor, "session.end", name, grants_ended=ended, accounts_removed=closed)
    return {"grants_ended": ended, "accounts_removed": closed}


def get_session(session: Session, name: str) -> TrainingSession:
    training = session.get(TrainingSession, name)
    if training is None:
        raise NotFound(f"no training session '{name}'", "list them with 'workbench session list'")
    return training


def list_sessions(session: Session) -> list[TrainingSession]:
    return list(session.scalars(select(TrainingSession).order_by(TrainingSession.starts_at)))


def instructed_by(session: Session, user: str) -> list[TrainingSession]:
    """The sessions `user` instructs that have not ended, by start."""
    query = (select(TrainingSession).join(SessionMember)
             .where(SessionMember.user == normalize(user), SessionMember.role == INSTRUCTOR,
                    TrainingSession.ended_at.is_(None)).order_by(TrainingSession.starts_at))
    return list(session.scalars(query))


def session_server(session: Session, user: str, server_name: str) -> TrainingSession:
    """The session whose server `server_name` `user` may start now: named session-NAME, of a
    session that has not ended, whose learner `user` is.

    Raises:
        WorkbenchError: any other named server, or a session `user` may not start a server of now.
    """
    if not server_name.startswith(SERVER_PREFIX):
        raise WorkbenchError(f"named servers are for training sessions ({SERVER_PREFIX}<session>) and dashboards "
                             f"(dashboard-<name>), not "
                             f"{server_name!r}", "use your default server")
    name = server_name[len(SERVER_PREFIX):]
    training = session.get(TrainingSession, name)
    if training is None or training.ended_at is not None or training.ends_at <= utcnow():
        raise WorkbenchError(f"training session '{name}' is not running", "ask your instructor which session to join")
    if not any(m.user == normalize(user) and m.role == LEARNER for m in training.members):
        raise WorkbenchError(f"{user} is not a learner of training session '{name}'",
                             "ask your instructor to add you to the roster")
    return training
