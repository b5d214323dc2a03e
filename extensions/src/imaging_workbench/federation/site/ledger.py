"""The site's own privacy-budget ledger, `local/workbench_site.sqlite` in the site's kit.

Each release a job makes from a dataset is charged here before anything leaves: one row per
(job, round, dataset) with its (epsilon, delta). A charge is `charged` until the release leaves
(`released`) or a fault stops it (`unreleased`); both count as spent, since the site cannot know
what a failed release let out, until the site admin refunds it (`refunded`). A researcher's
spending per dataset is capped by the dataset's policy (`epsilon_per_researcher`, which the admin
may reset or raise), and all researchers together by `epsilon_total`, which only the policy file
raises: resets and raises of one researcher never give the dataset's total back.

The ledger trusts the hub for nothing but the researcher's name. Several FLARE job processes run
at one site at once: every check-and-charge holds SQLite's write lock (BEGIN IMMEDIATE), so two
of them can never both spend the last of a budget. Every change writes a row of the site's own
append-only audit trail in the same transaction.
"""

import json
from pathlib import Path

from sqlalchemy import (DDL, Column, DateTime, Float, ForeignKey, Index, Integer, MetaData, String, Table, Text,
                        create_engine, event, func, insert, select, update)

from ...catalog.engine import ensure_private_file, sqlite_immediate
from ...clock import utcnow
from ...errors import NotFound, WorkbenchError
from ..protocol.policy import DatasetPolicy

LEDGER_FILE = "workbench_site.sqlite"
SITE = "site"  # the actor of charges and releases: the site's own job process
SPENT = ("charged", "released", "unreleased")
BUDGET_KEYS = ("spent", "remaining", "dataset_spent", "dataset_remaining", "epsilon_per_job", "unreleased")
# Relative slack on every limit: float sums of a job's rounds, and DP-SGD's accountant (which may
# end a hair over its target; training checks it with the same tolerance), must not refuse what fits.
TOLERANCE = 1e-6

metadata = MetaData()

charges = Table(
    "budget_charges", metadata,
    Column("id", Integer, primary_key=True),
    Column("job_id", String, nullable=False),
    Column("round", Integer, nullable=False),
    Column("researcher", String, nullable=False),
    Column("dataset_id", String, nullable=False),
    Column("epsilon", Float, nullable=False),
    Column("delta", Float, nullable=False),
    Column("status", String, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_budget_charges_account", "researcher", "dataset_id"),
    Index("ix_budget_charges_dataset", "dataset_id"),
    sqlite_autoincrement=True,  # ids only grow: a reset marks the last charge id it covers
)

adjustments = Table(
    "budget_adjustments", metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String, nullable=False),  # reset | raise
    Column("researcher", String, nullable=False),
    Column("dataset_id", String, nullable=False),
    Column("epsilon", Float),  # raise: the extra epsilon
    Column("after_charge", Integer, nullable=False),  # reset: charges up to this id no longer count
    Column("admin", String, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    sqlite_autoincrement=True,
)

site_audit = Table(
    "site_audit", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String, nullable=False),
    Column("action", String, nullable=False),
    Column("researcher", String),
    Column("dataset_id", String),
    Column("epsilon", Float),
    Column("charge_id", Integer, ForeignKey("budget_charges.id")),
    Column("detail", Text, nullable=False),
    sqlite_autoincrement=True,
)
for _verb in ("UPDATE", "DELETE"):
    event.listen(site_audit, "after_create", DDL(
        f"CREATE TRIGGER site_audit_no_{_verb.lower()} BEFORE {_verb} ON site_audit "
        "BEGIN SELECT RAISE(ABORT, 'the site audit trail is append-only'); END"))


class BudgetExceeded(WorkbenchError):
    """A release that would spend more than a researcher's or a dataset's budget at this site."""

    def __init__(self, message: str, hint: str, researcher: str, dataset: str, spent: float, remaining: float,
                 dataset_remaining: float):
        super().__init__(message, hint)
        self.researcher, self.dataset = researcher, dataset
        self.spent, self.remaining, self.dataset_remaining = spent, remaining, dataset_remaining


def _engine(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    ensure_private_file(path)  # private from its first byte: it names researchers and what they asked for
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 30})
    # The write lock from the first read: a check and the charge it allows are one step.
    sqlite_immediate(engine)
    return engine


def _g(x: float) -> str:
    return f"{x:.6g}"


def _over(total: float, limit: float) -> bool:
    return total > limit * (1 + TOLERANCE)


class Ledger:
    """The privacy-budget ledger in the SQLite file at `path` (created on first use)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.engine = _engine(self.path)
        with self.engine.begin() as conn:
            metadata.create_all(conn)

    def _audit(self, conn, actor: str, action: str, researcher: str | None, dataset_id: str | None,
               epsilon: float | None = None, charge_id: int | None = None, **detail) -> None:
        conn.execute(insert(site_audit).values(at=utcnow(), actor=actor, action=action, researcher=researcher,
                                               dataset_id=dataset_id, epsilon=epsilon, charge_id=charge_id,
                                               detail=json.dumps(detail, sort_keys=True, default=str)))

    # -- what has been spent ------------------------------------------------------------------

    def _account(self, conn, researcher: str, dataset_id: str, policy: DatasetPolicy) -> dict:
        """One researcher's spending on one dataset since the last reset, and the dataset's total."""
        last_reset = conn.execute(
            select(adjustments.c.id, adjustments.c.after_charge)
            .where(adjustments.c.kind == "reset", adjustments.c.researcher == researcher,
                   adjustments.c.dataset_id == dataset_id)
            .order_by(adjustments.c.id.desc()).limit(1)).first()
        reset_id, after_charge = last_reset or (0, 0)
        raised = conn.scalar(select(func.coalesce(func.sum(adjustments.c.epsilon), 0.0)).where(
            adjustments.c.kind == "raise", adjustments.c.researcher == researcher,
            adjustments.c.dataset_id == dataset_id, adjustments.c.id > reset_id))
        mine = conn.execute(
            select(func.coalesce(func.sum(charges.c.epsilon), 0.0), func.coalesce(func.sum(charges.c.delta), 0.0))
            .where(charges.c.researcher == researcher, charges.c.dataset_id == dataset_id,
                   charges.c.status.in_(SPENT), charges.c.id > after_charge)).one()
        unreleased = conn.scalar(select(func.coalesce(func.sum(charges.c.epsilon), 0.0)).where(
            charges.c.researcher == researcher, charges.c.dataset_id == dataset_id,
            charges.c.status == "unreleased", charges.c.id > after_charge))
        dataset_spent = conn.scalar(select(func.coalesce(func.sum(charges.c.epsilon), 0.0)).where(
            charges.c.dataset_id == dataset_id, charges.c.status.in_(SPENT)))
        limit = policy.epsilon_per_researcher + raised
        return {"spent": mine[0], "delta_spent": mine[1], "limit": limit, "remaining": max(limit - mine[0], 0.0),
                "dataset_spent": dataset_spent,
                "dataset_remaining": max(policy.epsilon_total - dataset_spent, 0.0),
                "epsilon_per_job": policy.epsilon_per_job, "unreleased": unreleased}

    def _check(self, conn, researcher: str, dataset_ids, epsilon: float, delta: float, policies: dict,
               job_id: str | None = None) -> None:
        if not (epsilon >= 0 and delta >= 0):
            raise WorkbenchError(f"a charge needs epsilon and delta of at least 0, not {epsilon}, {delta}",
                                 "this is a bug in the algorithm's release step")
        for dataset_id in dataset_ids:
            policy = policies.get(dataset_id)
            if policy is None:
                raise WorkbenchError(f"no privacy policy for dataset {dataset_id!r} at this site",
                                     "pass every charged dataset's policy (SitePolicy.for_dataset)")
            a = self._account(conn, researcher, dataset_id, policy)

            def refuse(message, hint):
                raise BudgetExceeded(message, hint, researcher, dataset_id, a["spent"], a["remaining"],
                                     a["dataset_remaining"])

            # A job's rounds are charged one by one: together they stay within the per-job limit.
            job_epsilon, job_delta = conn.execute(
                select(func.coalesce(func.sum(charges.c.epsilon), 0.0), func.coalesce(func.sum(charges.c.delta), 0.0))
                .where(charges.c.job_id == job_id, charges.c.researcher == researcher,
                       charges.c.dataset_id == dataset_id, charges.c.status.in_(SPENT))).one()
            if _over(job_epsilon + epsilon, policy.epsilon_per_job) or _over(job_delta + delta, policy.delta_per_job):
                refuse(f"{f'job {job_id}' if job_id else 'a job'} of researcher {researcher} asks epsilon "
                       f"{_g(job_epsilon + epsilon)}, delta {_g(job_delta + delta)} on dataset {dataset_id}"
                       f"{' in all its rounds' if job_epsilon else ''}, over this site's limit of epsilon "
                       f"{_g(policy.epsilon_per_job)}, delta {_g(policy.delta_per_job)} per job",
                       "ask for less epsilon in the job's parameters")
            if _over(a["spent"] + epsilon, a["limit"]):
                refuse(f"researcher {researcher} has spent epsilon {_g(a['spent'])} of {_g(a['limit'])} on dataset "
                       f"{dataset_id} at this site: {_g(a['remaining'])} remains, this job asks {_g(epsilon)} "
                       f"(the dataset's total has {_g(a['dataset_remaining'])} of "
                       f"{_g(policy.epsilon_total)} left)",
                       "ask for less epsilon, or ask the site's admin to raise or reset your budget")
            if _over(a["delta_spent"] + delta, policy.delta_per_researcher):
                refuse(f"researcher {researcher} has spent delta {_g(a['delta_spent'])} of "
                       f"{_g(policy.delta_per_researcher)} on dataset {dataset_id} at this site; this job asks "
                       f"{_g(delta)}", "ask the site's admin to reset your budget")
            if _over(a["dataset_spent"] + epsilon, policy.epsilon_total):
                refuse(f"dataset {dataset_id} has spent epsilon {_g(a['dataset_spent'])} of its total "
                       f"{_g(policy.epsilon_total)} across all researchers at this site: "
                       f"{_g(a['dataset_remaining'])} remains, researcher {researcher}'s job asks {_g(epsilon)} "
                       f"(researcher {researcher} has spent {_g(a['spent'])}, {_g(a['remaining'])} remains)",
                       "the site's admin may raise epsilon_total in the site's policy file")

    def check(self, researcher: str, dataset_ids, epsilon: float, delta: float,
              policies: dict[str, DatasetPolicy]) -> None:
        """Raise BudgetExceeded if a release of (epsilon, delta) from each dataset would overspend; charges nothing."""
        with self.engine.begin() as conn:
            self._check(conn, researcher, list(dict.fromkeys(dataset_ids)), epsilon, delta, policies)

    def budget(self, researcher: str, policies: dict[str, DatasetPolicy]) -> dict[str, dict]:
        """{dataset in `policies`: {spent, remaining, dataset_spent, dataset_remaining, epsilon_per_job, unreleased}}."""
        with self.engine.begin() as conn:
            return {d: {k: v for k, v in self._account(conn, researcher, d, p).items() if k in BUDGET_KEYS}
                    for d, p in policies.items()}

    # -- charges ------------------------------------------------------------------------------

    def charge(self, job_id: str, round_: int, researcher: str, dataset_ids, epsilon: float, delta: float,
               policies: dict[str, DatasetPolicy]) -> list[int]:
        """Check and charge one release from each dataset, all or nothing; returns the charge ids.

        The job's earlier rounds count against the per-job limit, with this one."""
        dataset_ids = list(dict.fromkeys(dataset_ids))  # a dataset named twice is charged once, and checked once
        now = utcnow()
        with self.engine.begin() as conn:
            self._check(conn, researcher, dataset_ids, epsilon, delta, policies, job_id)
            ids = []
            for dataset_id in dataset_ids:
                charge_id = conn.execute(insert(charges).values(
                    job_id=job_id, round=round_, researcher=researcher, dataset_id=dataset_id, epsilon=epsilon,
                    delta=delta, status="charged", created_at=now, updated_at=now)).inserted_primary_key[0]
                self._audit(conn, SITE, "charge", researcher, dataset_id, epsilon, charge_id, job_id=job_id,
                            round=round_, delta=delta)
                ids.append(charge_id)
            return ids

    def _set_status(self, conn, charge_ids, status: str, actor: str, action: str, **detail) -> None:
        for row in conn.execute(select(charges).where(charges.c.id.in_(charge_ids))).mappings().all():
            conn.execute(update(charges).where(charges.c.id == row["id"]).values(status=status, updated_at=utcnow()))
            self._audit(conn, actor, action, row["researcher"], row["dataset_id"], row["epsilon"], row["id"],
                        job_id=row["job_id"], round=row["round"], was=row["status"], **detail)

    def _statuses(self, conn, charge_ids) -> dict[int, str]:
        found = dict(conn.execute(select(charges.c.id, charges.c.status).where(charges.c.id.in_(charge_ids))).all())
        missing = sorted(set(charge_ids) - set(found))
        if missing:
            raise NotFound(f"no charge {', '.join(map(str, missing))} in the site's ledger {self.path}",
                           "list the charges with `workbench site budget charges --kit <kit>`")
        return found

    def mark_released(self, charge_ids) -> None:
        """Record that these charges' release left the site; refuses, changing nothing, unless all are `charged`
        (a charge refunded meanwhile is named, not silently marked released)."""
        with self.engine.begin() as conn:
            wrong = {i: s for i, s in self._statuses(conn, charge_ids).items() if s != "charged"}
            if wrong:
                raise WorkbenchError(f"charges {', '.join(f'{i} ({s})' for i, s in sorted(wrong.items()))} are not "
                                     "charged, so their release must not leave", "withhold the release")
            self._set_status(conn, charge_ids, "released", SITE, "release")

    def mark_unreleased(self, charge_ids, reason: str) -> list[int]:
        """Record that a fault stopped these charges' release; returns those marked (only `charged` ones change).

        They stay spent until the site admin refunds them: what the fault let out is unknown."""
        with self.engine.begin() as conn:
            ids = [i for i, s in self._statuses(conn, charge_ids).items() if s == "charged"]
            self._set_status(conn, ids, "unreleased", SITE, "unrelease", reason=reason)
            return sorted(ids)

    def refund(self, charge_id: int, admin: str, reason: str) -> None:
        """Give a charge's budget back (site admin); only a `charged` or `unreleased` one, never one that left."""
        with self.engine.begin() as conn:
            status = self._statuses(conn, [charge_id])[charge_id]
            if status not in ("charged", "unreleased"):
                raise WorkbenchError(f"charge {charge_id} is {status}: only a charged or unreleased charge can be "
                                     "refunded" + (" (its release left the site)" if status == "released" else ""),
                                     "refund an unreleased charge, or reset or raise the researcher's budget")
            self._set_status(conn, [charge_id], "refunded", admin, "refund", reason=reason)

    # -- the site admin's adjustments ---------------------------------------------------------

    def _adjust(self, kind: str, researcher: str, dataset_id: str, epsilon: float | None, admin: str,
                reason: str) -> None:
        if not reason or not reason.strip():
            raise WorkbenchError(f"a budget {kind} needs a reason", "say why, for the site's audit trail")
        with self.engine.begin() as conn:
            last_charge = conn.scalar(select(func.coalesce(func.max(charges.c.id), 0)))
            conn.execute(insert(adjustments).values(kind=kind, researcher=researcher, dataset_id=dataset_id,
                                                    epsilon=epsilon, after_charge=last_charge, admin=admin,
                                                    reason=reason, created_at=utcnow()))
            self._audit(conn, admin, kind, researcher, dataset_id, epsilon, reason=reason,
                        after_charge=last_charge)

    def reset(self, researcher: str, dataset_id: str, admin: str, reason: str) -> None:
        """The researcher's spending on the dataset counts from zero again, and earlier raises lapse."""
        self._adjust("reset", researcher, dataset_id, None, admin, reason)

    def raise_budget(self, researcher: str, dataset_id: str, extra_epsilon: float, admin: str, reason: str) -> None:
        """Give the researcher `extra_epsilon` more on the dataset, until the next reset."""
        if not extra_epsilon > 0:
            raise WorkbenchError(f"a raise must be above 0, not {extra_epsilon}", "pass a positive --epsilon")
        self._adjust("raise", researcher, dataset_id, float(extra_epsilon), admin, reason)

    # -- reading, for the site admin's commands -----------------------------------------------

    def accounts(self) -> list[tuple[str, str]]:
        """Every (researcher, dataset id) with a charge or an adjustment."""
        with self.engine.begin() as conn:
            pairs = set(conn.execute(select(charges.c.researcher, charges.c.dataset_id).distinct()).all())
            pairs |= set(conn.execute(select(adjustments.c.researcher, adjustments.c.dataset_id).distinct()).all())
        return sorted(tuple(p) for p in pairs)

    def rows(self, researcher: str | None = None, dataset_id: str | None = None, status: str | None = None,
             limit: int | None = None) -> list[dict]:
        """Charges, newest first."""
        query = select(charges).order_by(charges.c.id.desc()).limit(limit)
        for column, value in ((charges.c.researcher, researcher), (charges.c.dataset_id, dataset_id),
                              (charges.c.status, status)):
            if value is not None:
                query = query.where(column == value)
        with self.engine.begin() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def audit_rows(self, researcher: str | None = None, dataset_id: str | None = None,
                   limit: int | None = None) -> list[dict]:
        """The site's audit trail, newest first, each `detail` decoded."""
        query = select(site_audit).order_by(site_audit.c.id.desc()).limit(limit)
        for column, value in ((site_audit.c.researcher, researcher), (site_audit.c.dataset_id, dataset_id)):
            if value is not None:
                query = query.where(column == value)
        with self.engine.begin() as conn:
            return [{**r, "detail": json.loads(r["detail"])} for r in conn.execute(query).mappings()]
