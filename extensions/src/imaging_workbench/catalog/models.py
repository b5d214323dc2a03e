"""SQLAlchemy models of the catalog database."""

from datetime import datetime, timezone

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text, TypeDecorator, UniqueConstraint
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
    last_login_at: Mapped[datetime | None] = mapped_column(nullable=True)  # a training session's status asks


class IdpRole(Base):
    """A workbench role the identity provider's groups give an account (hub.roles.roles_from_groups),
    as of its latest login or refresh; the deployment settings' `roles:` section names the others."""

    __tablename__ = "idp_roles"
    # A NULL dataset never equals another, so this does not stop two rows of one non-steward role:
    # idp_roles.record_idp_roles keeps each once, recording one user's roles at a time.
    __table_args__ = (UniqueConstraint("account", "role", "dataset"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(String(128), ForeignKey("accounts.name"), index=True)
    role: Mapped[str] = mapped_column(String(32))  # a key of the `roles:` section: "operators", "stewards", ...
    dataset: Mapped[str | None] = mapped_column(String(128), nullable=True)  # stewards': a dataset id or "*"
    recorded_at: Mapped[datetime]  # when the identity provider first gave it


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
    # "sandbox": mounted read-only in the user's servers; "federated": only federated jobs use it.
    mode: Mapped[str] = mapped_column(String(16), default="sandbox", server_default="sandbox")
    # A steward's conditions ({text, federated_only, no_weights, min_count}); {} for none.
    conditions: Mapped[dict] = mapped_column(JSON, default=dict, server_default="{}")
    request_id: Mapped[int | None] = mapped_column(ForeignKey("access_requests.id"), nullable=True)

    dataset: Mapped[Dataset] = relationship(back_populates="grants")

    def is_live(self, now: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now

    def as_dict(self) -> dict:
        return {c: getattr(self, c) for c in (
            "id", "user", "dataset_id", "granted_by", "purpose", "granted_at", "expires_at",
            "revoked_at", "revoked_by", "mode", "conditions", "request_id")}


# An item's states: a steward decides a pending one; the requester answers an approved one.
PENDING, APPROVED, REFUSED, ACCEPTED, DECLINED = "pending", "approved", "refused", "accepted", "declined"


class AccessRequest(Base):
    """A researcher's request for one or more datasets, for a project and purpose, in one mode."""

    __tablename__ = "access_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    requester: Mapped[str] = mapped_column(ForeignKey("accounts.name"), index=True)
    project: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(String(16))
    requested_days: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    withdrawn_at: Mapped[datetime | None] = mapped_column(nullable=True)

    items: Mapped[list["AccessRequestItem"]] = relationship(
        back_populates="request", order_by="AccessRequestItem.id")

    @property
    def state(self) -> str:
        """The whole request's state: "pending" while a steward has yet to decide, "awaiting-requester"
        while an approval awaits the requester's answer, else "closed" (also once withdrawn)."""
        states = {item.state for item in self.items}
        if self.withdrawn_at is not None:
            return "closed"
        if PENDING in states:
            return "pending"
        return "awaiting-requester" if APPROVED in states else "closed"

    def as_dict(self) -> dict:
        return {**{c: getattr(self, c) for c in (
            "id", "requester", "project", "purpose", "mode", "requested_days", "created_at", "withdrawn_at",
            "state")}, "items": [item.as_dict() for item in self.items]}


class AccessRequestItem(Base):
    """One dataset of an access request, decided by that dataset's steward."""

    __tablename__ = "access_request_items"
    __table_args__ = (UniqueConstraint("request_id", "dataset_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("access_requests.id"), index=True)
    # No foreign keys to datasets or grants: a request stays on record after its dataset (and
    # with it the dataset's grants) is removed from the catalog.
    dataset_id: Mapped[str] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(16), default=PENDING)
    decided_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(nullable=True)
    days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    conditions: Mapped[dict] = mapped_column(JSON, default=dict)
    reason: Mapped[str] = mapped_column(Text, default="")
    responded_at: Mapped[datetime | None] = mapped_column(nullable=True)
    grant_id: Mapped[int | None] = mapped_column(Integer, nullable=True)

    request: Mapped[AccessRequest] = relationship(back_populates="items")

    def as_dict(self) -> dict:
        return {c: getattr(self, c) for c in (
            "id", "request_id", "dataset_id", "state", "decided_by", "decided_at", "days", "conditions",
            "reason", "responded_at", "grant_id")}


# A release request's states (OpenSAFELY Airlock's): the author files it (pending) and submits it;
# two output checkers review every file (reviewed once all have two reviews); all approved makes
# it approved, and a checker releases it; a checker may instead return it for changes, or reject it.
RELEASE_PENDING, SUBMITTED, REVIEWED, RELEASE_APPROVED, RELEASED = "pending", "submitted", "reviewed", "approved", "released"
RETURNED, REJECTED, WITHDRAWN = "returned", "rejected", "withdrawn"


class ReleaseRequest(Base):
    """Files a researcher asks to take out of their sandbox, with what they are and the disclosure
    controls applied; `datasets` are the datasets the files derive from (their rules apply)."""

    __tablename__ = "release_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    author: Mapped[str] = mapped_column(ForeignKey("accounts.name"), index=True)
    statement: Mapped[str] = mapped_column(Text)
    controls: Mapped[str] = mapped_column(Text)
    datasets: Mapped[list] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    released_at: Mapped[datetime | None] = mapped_column(nullable=True)
    closed_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")

    files: Mapped[list["ReleaseFile"]] = relationship(back_populates="request", order_by="ReleaseFile.id")

    def as_dict(self) -> dict:
        return {**{c: getattr(self, c) for c in (
            "id", "author", "statement", "controls", "datasets", "state", "created_at", "updated_at", "released_at",
            "closed_by", "reason")}, "files": [f.as_dict() for f in self.files]}


class ReleaseFile(Base):
    """One file of a release request: its name in the outbox, the content's hash (its copy in the
    airlock's store is named by it), the automatic checks' findings, and the checkers' reviews."""

    __tablename__ = "release_files"
    __table_args__ = (UniqueConstraint("request_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("release_requests.id"), index=True)
    name: Mapped[str] = mapped_column(String(1024))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    count_columns: Mapped[list] = mapped_column(JSON, default=list)
    findings: Mapped[list] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime]

    request: Mapped[ReleaseRequest] = relationship(back_populates="files")
    reviews: Mapped[list["ReleaseReview"]] = relationship(back_populates="file", order_by="ReleaseReview.id")

    def current_reviews(self) -> list["ReleaseReview"]:
        """The reviews of the content the file holds now (a changed file starts again)."""
        return [r for r in self.reviews if r.sha256 == self.sha256]

    def as_dict(self) -> dict:
        return {**{c: getattr(self, c) for c in (
            "id", "name", "sha256", "size", "kind", "count_columns", "findings", "updated_at")},
            "reviews": [r.as_dict() for r in self.current_reviews()]}


class ReleaseReview(Base):
    """An output checker's decision on one file's content (`sha256`): approve, changes or reject."""

    __tablename__ = "release_reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("release_files.id"), index=True)
    reviewer: Mapped[str] = mapped_column(String(128))
    decision: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str] = mapped_column(Text, default="")
    sha256: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]

    file: Mapped[ReleaseFile] = relationship(back_populates="reviews")

    def as_dict(self) -> dict:
        return {c: getattr(self, c) for c in ("id", "reviewer", "decision", "comment", "sha256", "at")}


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


class Dashboard(Base):
    """A notebook its owner published as a dashboard for a hub group (clinicians), pinned by hash
    with the image it ran in. It serves once every dataset it shows is approved by a steward."""

    __tablename__ = "dashboards"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)  # its server is dashboard-<name>
    owner: Mapped[str] = mapped_column(ForeignKey("accounts.name"), index=True)
    notebook: Mapped[str] = mapped_column(Text)  # the file name it is served under
    sha256: Mapped[str] = mapped_column(String(64))
    image: Mapped[str] = mapped_column(Text)  # the image it ran in, by id
    datasets: Mapped[list] = mapped_column(JSON)
    group: Mapped[str] = mapped_column(String(128))  # the hub group it is shared with
    published_at: Mapped[datetime]
    withdrawn_at: Mapped[datetime | None] = mapped_column(nullable=True)

    approvals: Mapped[list["DashboardApproval"]] = relationship(back_populates="dashboard",
                                                              order_by="DashboardApproval.id")


class DashboardApproval(Base):
    """A steward's decision on showing one dataset through one dashboard to its group; an
    approval is revocable like a grant."""

    __tablename__ = "dashboard_approvals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dashboard_name: Mapped[str] = mapped_column(ForeignKey("dashboards.name"), index=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"))
    steward: Mapped[str] = mapped_column(String(128))
    approved: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text, default="")
    decided_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(128), nullable=True)

    dashboard: Mapped[Dashboard] = relationship(back_populates="approvals")


class TrainingSession(Base):
    """A training session: a time window, its teaching dataset, material and profile."""

    __tablename__ = "training_sessions"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"))
    material: Mapped[str] = mapped_column(Text)  # folder on the host, delivered into ~/sessions/<name>
    profile: Mapped[str] = mapped_column(String(64))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]
    ended_at: Mapped[datetime | None] = mapped_column(nullable=True)

    members: Mapped[list["SessionMember"]] = relationship(back_populates="session", order_by="SessionMember.id")

    def as_dict(self) -> dict:
        out = {c: getattr(self, c) for c in ("name", "dataset_id", "material", "profile", "starts_at", "ends_at",
                                             "created_by", "created_at", "ended_at")}
        out["learners"] = [m.user for m in self.members if m.role == "learner"]
        out["instructors"] = [m.user for m in self.members if m.role == "instructor"]
        out["temporary_accounts"] = [m.user for m in self.members if m.temporary]
        return out


class SessionMember(Base):
    """A learner or instructor of a training session. A temporary account's one-time password is
    kept for the instructors to hand out until the session ends (never in a host file)."""

    __tablename__ = "session_members"
    __table_args__ = (UniqueConstraint("session_name", "user"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_name: Mapped[str] = mapped_column(ForeignKey("training_sessions.name"), index=True)
    user: Mapped[str] = mapped_column(ForeignKey("accounts.name"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    temporary: Mapped[bool] = mapped_column(Boolean, default=False)
    one_time_password: Mapped[str | None] = mapped_column(String(128), nullable=True)
    spawn_error: Mapped[str | None] = mapped_column(Text, nullable=True)  # of the latest pre-spawn, if it failed
    grant_id: Mapped[int | None] = mapped_column(ForeignKey("grants.id"), nullable=True)  # the session gave it

    session: Mapped[TrainingSession] = relationship(back_populates="members")


class BatchRun(Base):
    """A parameterised notebook run by papermill in a sandbox of its own (imaging_workbench/batch):
    what was asked, the container it runs in, and what came of it (`summary`, one entry per case)."""

    __tablename__ = "batch_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user: Mapped[str] = mapped_column(ForeignKey("accounts.name"), index=True)
    notebook: Mapped[str] = mapped_column(Text)  # relative to the user's home
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"))
    parameters: Mapped[dict] = mapped_column(JSON)
    per_case: Mapped[bool] = mapped_column(Boolean, default=False)
    profile: Mapped[str] = mapped_column(String(64))
    image: Mapped[str] = mapped_column(String(256))  # the image's id, not only its tag
    container: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16), index=True)
    notebook_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)  # of the notebook that ran
    summary: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    submitted_by: Mapped[str] = mapped_column(String(128))
    submitted_at: Mapped[datetime]
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)

    def as_dict(self) -> dict:
        return {c: getattr(self, c) for c in (
            "id", "user", "notebook", "dataset_id", "parameters", "per_case", "profile", "image", "container",
            "state", "notebook_sha256", "summary", "error", "submitted_by", "submitted_at", "finished_at")}


class Tool(Base):
    """One version of an AI tool (a MONAI bundle with its model card; imaging_workbench/tools):
    draft when added, approved by a tool reviewer who did not add it, retired with a reason.
    Its files are at `<state_dir>/tools/<id>/<version>/`, read-only."""

    __tablename__ = "tools"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    modality: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True)
    card: Mapped[dict] = mapped_column(JSON)
    weights_sha256: Mapped[str] = mapped_column(String(64))
    added_by: Mapped[str] = mapped_column(String(128))
    added_at: Mapped[datetime]
    approved_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    approved_at: Mapped[datetime | None] = mapped_column(nullable=True)
    retired_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    retired_at: Mapped[datetime | None] = mapped_column(nullable=True)
    retire_reason: Mapped[str | None] = mapped_column(Text, nullable=True)

    def as_dict(self) -> dict:
        return {c: getattr(self, c) for c in (
            "id", "version", "kind", "modality", "state", "weights_sha256", "added_by", "added_at", "approved_by",
            "approved_at", "retired_by", "retired_at", "retire_reason", "card")}
