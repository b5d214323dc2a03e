"""SQLAlchemy models of the catalog database."""

from datetime import datetime, timezone

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator):
    """Stores UTC without a zone (SQLite has none) and hands back aware datetimes."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value} given; use imaging_workbench.clock.utcnow()")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        return None if value is None else value.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict: JSON, list: JSON}


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    cancer_type: Mapped[str] = mapped_column(String(64), default="")
    modality: Mapped[str] = mapped_column(String(32), default="")
    body_part: Mapped[str] = mapped_column(String(64), default="")
    site: Mapped[str] = mapped_column(String(64), default="")
    n_subjects: Mapped[int] = mapped_column(Integer, default=0)
    n_series: Mapped[int] = mapped_column(Integer, default=0)
    host_path: Mapped[str] = mapped_column(Text)
    licence: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime]

    grants: Mapped[list["Grant"]] = relationship(back_populates="dataset")

    def as_dict(self) -> dict:
        return {c: getattr(self, c) for c in (
            "id", "title", "cancer_type", "modality", "body_part", "site",
            "n_subjects", "n_series", "host_path", "licence")}


class Account(Base):
    """A person known to the workbench: demo users, admins, and users seen through OIDC."""

    __tablename__ = "accounts"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    password_hash: Mapped[str | None] = mapped_column(Text, nullable=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]


class Grant(Base):
    __tablename__ = "grants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user: Mapped[str] = mapped_column(ForeignKey("accounts.name"), index=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"), index=True)
    granted_by: Mapped[str] = mapped_column(String(128))
    purpose: Mapped[str] = mapped_column(Text)
    granted_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(128), nullable=True)

    dataset: Mapped[Dataset] = relationship(back_populates="grants")

    def is_live(self, now: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now

    def as_dict(self) -> dict:
        return {c: getattr(self, c) for c in (
            "id", "user", "dataset_id", "granted_by", "purpose", "granted_at", "expires_at",
            "revoked_at", "revoked_by")}


class ServerMount(Base):
    """What a running sandbox mounts, so revocation knows which servers to stop."""

    __tablename__ = "server_mounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user: Mapped[str] = mapped_column(String(128), index=True)
    server_name: Mapped[str] = mapped_column(String(128), default="")
    container: Mapped[str] = mapped_column(String(128))
    datasets: Mapped[list] = mapped_column(JSON)
    started_at: Mapped[datetime]
    stopped_at: Mapped[datetime | None] = mapped_column(nullable=True)


class AuditEvent(Base):
    """One row of the append-only audit trail. `hash` is the row's MAC (see audit.py for how
    `scheme` says which), covering its content and `prev_hash`, the MAC of the row before it."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str] = mapped_column(String(256))
    details: Mapped[dict] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    scheme: Mapped[str] = mapped_column(String(16), server_default="sha256")
    dataset: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)

    def as_dict(self) -> dict:
        return {c: getattr(self, c) for c in (
            "id", "at", "actor", "action", "subject", "dataset", "details", "scheme", "hash")}
