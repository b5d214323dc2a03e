"""The catalog table of federated jobs: who asked for what, on which data, and how it ended."""

from datetime import datetime

from sqlalchemy import JSON, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ...catalog.models import Base
from ..protocol.states import FINAL_STATES

class FederatedJob(Base):
    """One job submitted through the workbench-federation service (every one reaches a final state)."""

    __tablename__ = "federated_jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user: Mapped[str] = mapped_column(String(128), index=True)
    algorithm: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(16))
    params: Mapped[dict] = mapped_column(JSON)
    datasets: Mapped[list] = mapped_column(JSON)
    site_datasets: Mapped[dict] = mapped_column(JSON)
    flare_job_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # submitted, running, or a FINAL_STATES
    progress: Mapped[dict] = mapped_column(JSON, default=dict)
    result: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    result_dir: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str] = mapped_column(Text, default="")
    submitted_at: Mapped[datetime]
    deadline: Mapped[datetime]
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATES

    def as_dict(self) -> dict:
        return {c: getattr(self, c) for c in (
            "id", "user", "algorithm", "version", "params", "datasets", "site_datasets", "status", "progress",
            "error", "submitted_at", "deadline", "finished_at")}
