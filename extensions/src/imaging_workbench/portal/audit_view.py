"""The audit trail as the portal shows it: who sees which rows, the filters, CSV rows, and whether
the chain verifies.

Operators see every row; a steward sees the rows about the datasets they steward (a "*" steward:
every row about a dataset); nobody else sees any. The filters and the scope are SQL conditions,
so a trail of 100,000 rows is filtered by the database, never loaded into Python. Verifying the
chain reads every row (about 1 s per 10,000 rows), so a result is reused for `VERIFIED_FOR`
seconds while no row has been added.
"""

import json
import re
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import func, select, true

from ..catalog import audit
from ..catalog.access_requests import BadField, NotAllowed
from ..catalog.models import AuditEvent
from ..hub import roles

FILTERS = ("dataset", "action", "actor", "since", "until", "q", "limit")
DEFAULT_LIMIT, MAX_LIMIT = 200, 5000
VERIFIED_FOR = 60.0  # seconds; a page reload or another filter should not re-read the whole trail
CSV_COLUMNS = ("id", "at", "actor", "action", "dataset", "subject", "details")
# A spreadsheet runs a cell starting with one of these as a formula (OWASP: CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class AuditQuery:
    """The filters of one look at the trail; empty text means no filter on that column."""

    dataset: str = ""
    action: str = ""
    actor: str = ""
    since: date | None = None
    until: date | None = None
    q: str = ""
    limit: int = DEFAULT_LIMIT

    @classmethod
    def parse(cls, args: dict[str, str]) -> "AuditQuery":
        """The filters from query arguments (FILTERS; missing ones are empty).

        Raises:
            BadField: a date that is not YYYY-MM-DD, `until` before `since`, or a limit that is
                not a whole number from 1 to MAX_LIMIT.
        """
        text = {key: (args.get(key) or "").strip() for key in FILTERS}
        since, until = _day(text["since"], "since"), _day(text["until"], "until")
        if since and until and until < since:
            raise BadField("until", f"{until} is before since ({since})", "give an end on or after the start")
        return cls(text["dataset"], text["action"], text["actor"], since, until, text["q"], _limit(text["limit"]))

    def conditions(self) -> list:
        """The SQL conditions of these filters (all must hold)."""
        where = []
        if self.dataset:
            where.append(AuditEvent.dataset == self.dataset)
        if self.action:
            where.append(AuditEvent.action == self.action)
        if self.actor:
            where.append(func.lower(AuditEvent.actor) == self.actor.lower())
        if self.since:
            where.append(AuditEvent.at >= _utc(self.since))
        if self.until:
            where.append(AuditEvent.at < _utc(self.until + timedelta(days=1)))  # the whole last day
        if self.q:
            where.append(AuditEvent.subject.icontains(self.q, autoescape=True))
        return where


def _day(text: str, field: str) -> date | None:
    if not text:
        return None
    try:
        if _DATE.fullmatch(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise BadField(field, f"must be a date YYYY-MM-DD, not {text!r}", "for example 2024-05-31 (UTC)")


def _limit(text: str) -> int:
    if not text:
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise BadField("limit", f"must be a whole number from 1 to {MAX_LIMIT}, not {text!r}",
                       "narrow the filters to see older rows")
    return int(text)


def _utc(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=timezone.utc)


def compact(details) -> str:
    """An event's details as one line of JSON."""
    return json.dumps(details, sort_keys=True, separators=(",", ":"), default=str)


def csv_cell(value) -> str:
    """`value` as a CSV cell that a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


@dataclass(frozen=True)
class Verification:
    newest: int | None  # the newest row's id when verified: the result holds while it stays the newest
    at: float  # time.monotonic() of the verification
    rows: int
    problems: tuple[str, ...]

    def shown_to(self, operator: bool) -> dict:
        """Operators see the problem lines; stewards only the status and count, because the lines
        name rows about other datasets."""
        shown = {"intact": not self.problems, "rows": self.rows, "problems": len(self.problems)}
        return {**shown, "lines": list(self.problems)} if operator else shown


class AuditTrail:
    """The audit operations of a Portal (`portal`), each one catalog transaction."""

    def __init__(self, portal):
        self.portal = portal
        self._verified: Verification | None = None

    def scope(self, user: str, dataset: str = ""):
        """The SQL condition of the rows `user` may see, having checked they may ask for `dataset`.

        Raises:
            NotAllowed: `user` is neither operator nor steward, or asks for a dataset they do not steward.
        """
        settings = self.portal.held_roles()
        if self.portal.has_role(user, roles.OPERATOR, settings):
            return true()
        if not self.portal.has_role(user, roles.STEWARD, settings):
            raise NotAllowed(f"{user} is neither an operator nor a data steward",
                             "the audit trail is for operators and the stewards of each dataset (roles in the "
                             "deployment settings)")
        if dataset and not roles.is_steward(settings, user, dataset):
            raise NotAllowed(f"{user} does not steward dataset '{dataset}'",
                             "filter for one of your own datasets, or ask an operator")
        if roles.is_steward(settings, user, roles.ANY_DATASET):
            return AuditEvent.dataset.is_not(None)
        mine = [d for d in settings.get("stewards") or {} if roles.is_steward(settings, user, d)]
        return AuditEvent.dataset.in_(mine)

    def search(self, user: str, args: dict[str, str], choices: bool = False) -> dict:
        """The rows `user` may see that pass the filters in `args`, newest first.

        Returns {"rows", "total" (rows passing the filters), "limit", "verification"}, and with
        `choices` the datasets and actions in `user`'s part of the trail (for the filter form).

        Raises:
            NotAllowed: see `scope` (checked before the filters).
            BadField: a wrong filter, named (see AuditQuery.parse).
        """
        scope, where, limit = self._filtered(user, args)
        operator = self.portal.is_operator(user)
        with self.portal.ctx.session() as s:
            events = s.scalars(select(AuditEvent).where(*where).order_by(AuditEvent.id.desc()).limit(limit))
            found = {"rows": [event.as_dict() for event in events], "limit": limit,
                     "total": s.scalar(select(func.count()).select_from(AuditEvent).where(*where)),
                     "verification": self._verify(s).shown_to(operator)}
            if choices:
                found.update(self._choices(s, scope))
        return found

    def choices(self, user: str) -> dict:
        """{"datasets", "actions"}: the values of `user`'s part of the trail, for the filter form."""
        scope = self.scope(user)
        with self.portal.ctx.session() as s:
            return self._choices(s, scope)

    def csv_rows(self, user: str, args: dict[str, str]) -> list[list[str]]:
        """The header and the rows `search` finds, as CSV cells (see `csv_cell`)."""
        _, where, limit = self._filtered(user, args)
        with self.portal.ctx.session() as s:
            events = s.scalars(select(AuditEvent).where(*where).order_by(AuditEvent.id.desc()).limit(limit))
            cells = [[e.id, e.at.isoformat(), e.actor, e.action, e.dataset, e.subject, compact(e.details)]
                     for e in events]
        return [list(CSV_COLUMNS), *([csv_cell(value) for value in row] for row in cells)]

    def _filtered(self, user: str, args: dict[str, str]) -> tuple:
        """(`user`'s scope, the conditions of scope and filters, the limit); the scope is checked first."""
        scope = self.scope(user, (args.get("dataset") or "").strip())
        query = AuditQuery.parse(args)
        return scope, [scope, *query.conditions()], query.limit

    @staticmethod
    def _choices(session, scope) -> dict:
        def values(column):
            return sorted(v for v in session.scalars(select(column).distinct().where(scope)) if v)

        return {"datasets": values(AuditEvent.dataset), "actions": values(AuditEvent.action)}

    def _verify(self, session) -> Verification:
        newest = session.scalar(select(func.max(AuditEvent.id)))
        known = self._verified
        if known and known.newest == newest and time.monotonic() - known.at < VERIFIED_FOR:
            return known
        rows = session.scalar(select(func.count()).select_from(AuditEvent))
        self._verified = Verification(newest, time.monotonic(), rows, tuple(audit.verify_chain(session)))
        return self._verified

