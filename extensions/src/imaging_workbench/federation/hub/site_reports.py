"""What the sites last reported, kept in the catalog: each dataset's disclosure policy (the hub
checks a request against it before FLARE sees the job) and each researcher's budget (a mirror
for display; the sites' own ledgers decide)."""

from datetime import datetime

from sqlalchemy import JSON, Float, String, select
from sqlalchemy.orm import Mapped, mapped_column

from ...catalog.models import Base
from ...clock import utcnow


class SitePolicyReport(Base):
    """The policy a site applied to a dataset in its latest release or refusal."""

    __tablename__ = "federation_site_policies"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    policy: Mapped[dict] = mapped_column(JSON)
    reported_at: Mapped[datetime]


class BudgetMirror(Base):
    """A researcher's privacy budget for a dataset at a site, as the site last reported it."""

    __tablename__ = "federation_budgets"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    researcher: Mapped[str] = mapped_column(String(128), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    spent: Mapped[float] = mapped_column(Float)
    remaining: Mapped[float] = mapped_column(Float)
    dataset_remaining: Mapped[float] = mapped_column(Float)
    epsilon_per_job: Mapped[float] = mapped_column(Float)
    reported_at: Mapped[datetime]

    def as_dict(self) -> dict:
        return {c: getattr(self, c) for c in ("site", "dataset_id", "researcher", "spent", "remaining",
                                              "dataset_remaining", "epsilon_per_job", "reported_at")}


def record_reports(session, sites: dict) -> None:
    """Store the `policy` and `budget` each site put in a job's result (`result["sites"]`)."""
    now = utcnow()
    for site, report in sites.items():
        # Only the site's own policy per dataset: what it applied also held this researcher's
        # grant conditions, which must not bind the next researcher's request.
        own = (report.get("policy") or {}).get("own") or {}
        for dataset_id in report.get("datasets") or []:
            if own.get(dataset_id):
                session.merge(SitePolicyReport(site=site, dataset_id=dataset_id, policy=own[dataset_id],
                                               reported_at=now))
        budget = report.get("budget") or {}
        for dataset_id, b in (budget.get("datasets") or {}).items():
            session.merge(BudgetMirror(site=site, researcher=budget["researcher"], dataset_id=dataset_id,
                                       spent=b["spent"], remaining=b["remaining"],
                                       dataset_remaining=b["dataset_remaining"], epsilon_per_job=b["epsilon_per_job"],
                                       reported_at=now))


def reported_policies(session, site: str, dataset_ids) -> dict[str, dict]:
    rows = session.scalars(select(SitePolicyReport).where(SitePolicyReport.site == site,
                                                          SitePolicyReport.dataset_id.in_(list(dataset_ids))))
    return {r.dataset_id: r.policy for r in rows}


def budgets(session, researcher: str | None = None) -> list[BudgetMirror]:
    query = select(BudgetMirror).order_by(BudgetMirror.researcher, BudgetMirror.dataset_id, BudgetMirror.site)
    if researcher:
        query = query.where(BudgetMirror.researcher == researcher)
    return list(session.scalars(query))
