"""Release requests of the airlock, as OpenSAFELY's Airlock runs them.

The author files files (copied into the airlock's store by airlock/filing.py before they get
here, with the automatic checks' findings) and submits them. Two different output checkers, never
the author, review each file: approve, changes or reject. Once every file has two reviews the
request is reviewed, or approved when all of them approve; a checker then releases an approved
request, or returns a reviewed one to its author, or rejects it. A returned request takes changed
files and is submitted again: a file whose content changed starts its reviews again, the others
keep theirs. Released, rejected and withdrawn are final.

Every step is audited. Repeating a step with the same answer returns what is recorded; a
different answer to a step already taken is refused. The caller commits.
"""

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..clock import utcnow
from ..errors import NotFound
from ..hub import roles
from . import audit
from .access_requests import BadField, Conflict, NotAllowed
from .access_requests import _text  # the same check of a required text field
from .grants import live_grants
from .models import (
    RELEASE_APPROVED, RELEASE_PENDING, RELEASED, REJECTED, RETURNED, REVIEWED, SUBMITTED, WITHDRAWN,
    ReleaseFile, ReleaseRequest, ReleaseReview,
)

DECISIONS = ("approve", "changes", "reject")
REVIEWS_NEEDED = 2
EDITABLE = (RELEASE_PENDING, RETURNED)    # the author may add or change files
UNDER_REVIEW = (SUBMITTED, REVIEWED)      # checkers review


@dataclass(frozen=True)
class NewFile:
    """A file already copied into the airlock's store and checked (airlock/filing.py)."""

    name: str
    sha256: str
    size: int
    kind: str
    count_columns: list = field(default_factory=list)
    findings: list = field(default_factory=list)



def _audit(session: Session, actor: str, action: str, request: ReleaseRequest, **details) -> None:
    # One row per request; a request from one dataset is on that dataset's trail for its stewards.
    dataset = request.datasets[0] if len(request.datasets) == 1 else None
    audit.record(session, actor, action, f"release/{request.id}", dataset=dataset, datasets=request.datasets,
                 **details)


def granted_datasets(session: Session, author: str, dataset_ids) -> dict:
    """The author's live grants of `dataset_ids` (id -> grant): what the files derive from.

    Raises:
        BadField: `dataset_ids` is empty or not a list, or names a dataset the author holds no
            live grant for (field "datasets").
    """
    if not (isinstance(dataset_ids, list) and dataset_ids and all(isinstance(d, str) for d in dataset_ids)):
        raise BadField("datasets", f"must be a non-empty list of dataset ids, not {dataset_ids!r}",
                       "name the datasets the files were made from")
    held = {g.dataset_id: g for g in live_grants(session, author)}
    missing = [d for d in dataset_ids if d not in held]
    if missing:
        raise BadField("datasets", f"{author} holds no live grant for {', '.join(missing)}",
                       "name only datasets you hold access to (see 'My access' in the portal)")
    return {d: held[d] for d in dict.fromkeys(dataset_ids)}


def create_release(session: Session, author: str, statement, controls, dataset_ids, files: list[NewFile]
                   ) -> ReleaseRequest:
    """A pending release request of `files` (see granted_datasets for `dataset_ids`).

    Raises:
        BadField: an empty statement or controls, no files, or datasets (see granted_datasets).
    """
    statement = _text("statement", statement, "say what the files are and how they were made")
    controls = _text("controls", controls, "say which disclosure controls you applied (e.g. counts below 10 suppressed)")
    granted_datasets(session, author, dataset_ids)
    if not files:
        raise BadField("files", "no files given", "put the files in ~/outbox and name them")
    now = utcnow()
    request = ReleaseRequest(author=roles.normalize(author), statement=statement, controls=controls,
                             datasets=list(dict.fromkeys(dataset_ids)), state=RELEASE_PENDING, created_at=now,
                             updated_at=now)
    session.add(request)
    session.flush()
    for new in files:
        session.add(_file_row(request, new, now))
    session.flush()
    _audit(session, author, "release.file", request, files=[{"name": f.name, "sha256": f.sha256} for f in files])
    return request


def _file_row(request: ReleaseRequest, new: NewFile, now) -> ReleaseFile:
    return ReleaseFile(request_id=request.id, name=new.name, sha256=new.sha256, size=new.size, kind=new.kind,
                       count_columns=list(new.count_columns), findings=list(new.findings), updated_at=now)


def get_release(session: Session, request_id: int) -> ReleaseRequest:
    request = session.get(ReleaseRequest, request_id)
    if request is None:
        raise NotFound(f"no release request {request_id}", "see your releases on the portal's Releases page")
    return request


def own_release(session: Session, author: str, request_id: int) -> ReleaseRequest:
    request = get_release(session, request_id)
    if roles.normalize(author) != request.author:
        raise NotAllowed(f"release request {request_id} is not {author}'s", "only its author may change it")
    return request


def _state_in(request: ReleaseRequest, states, step: str) -> None:
    if request.state not in states:
        raise Conflict(f"release request {request.id} is {request.state}: it cannot be {step}",
                       f"this step needs it {' or '.join(states)}")


def update_files(session: Session, author: str, request_id: int, files: list[NewFile]) -> ReleaseRequest:
    """Add files to a pending or returned request, or replace those of the same name. A file
    whose content changed keeps its old reviews on record, but they no longer count."""
    request = own_release(session, author, request_id)
    _state_in(request, EDITABLE, "changed")
    now, by_name, changed = utcnow(), {f.name: f for f in request.files}, []
    for new in files:
        row = by_name.get(new.name)
        if row is None:
            session.add(_file_row(request, new, now))
        elif row.sha256 != new.sha256:
            row.sha256, row.size, row.kind, row.updated_at = new.sha256, new.size, new.kind, now
            row.count_columns, row.findings = list(new.count_columns), list(new.findings)
        else:
            continue
        changed.append({"name": new.name, "sha256": new.sha256})
    if changed:
        request.updated_at = now
        session.flush()
        session.refresh(request)
        _audit(session, author, "release.file", request, files=changed)
    return request


def submit(session: Session, author: str, request_id: int) -> ReleaseRequest:
    """Send a pending or returned request to the output checkers (again submitting: no-op)."""
    request = own_release(session, author, request_id)
    if request.state == SUBMITTED:
        return request
    _state_in(request, EDITABLE, "submitted")
    request.state, request.updated_at = SUBMITTED, utcnow()
    _settle(request)
    _audit(session, author, "release.submit", request, files=[{"name": f.name, "sha256": f.sha256}
                                                              for f in request.files])
    return request


def withdraw(session: Session, author: str, request_id: int) -> ReleaseRequest:
    request = own_release(session, author, request_id)
    if request.state == WITHDRAWN:
        return request
    _state_in(request, (RELEASE_PENDING, RETURNED, SUBMITTED, REVIEWED, RELEASE_APPROVED), "withdrawn")
    request.state, request.updated_at, request.closed_by = WITHDRAWN, utcnow(), roles.normalize(author)
    _audit(session, author, "release.withdraw", request)
    return request


def _checker(roles_settings: dict, checker: str, request: ReleaseRequest, earlier=()) -> None:
    why = roles.review_refusal(roles_settings, checker, request.author, "output", earlier_reviewers=earlier)
    if why:
        raise NotAllowed(why, "output checkers are named in the deployment settings (roles.output_checkers) or by "
                              "the identity provider's groups; each file needs two different ones, never its author")


def review(session: Session, roles_settings: dict, checker: str, request_id: int, file_id: int, decision: str,
           comment: str = "") -> ReleaseReview:
    """`checker`'s decision on one file's current content.

    Raises:
        NotAllowed: not an output checker, the author, or changing their own earlier answer
            (roles.review_refusal says which).
        BadField: an unknown decision; changes or reject without a comment.
        Conflict: the request is not under review, or the file has its two reviews.
    """
    request = get_release(session, request_id)
    file = next((f for f in request.files if f.id == file_id), None)
    if file is None:
        raise NotFound(f"release request {request_id} has no file {file_id}", "review the files its page lists")
    if decision not in DECISIONS:
        raise BadField("decision", f"must be one of {', '.join(DECISIONS)}, not {decision!r}")
    comment = (comment or "").strip()
    if decision != "approve" and not comment:
        raise BadField("comment", f"must say why, for decision {decision!r}", "tell the author what to change")
    current = file.current_reviews()
    mine = next((r for r in current if r.reviewer == roles.normalize(checker)), None)
    if mine is not None and mine.decision == decision:
        return mine  # the same answer again (a double click)
    _checker(roles_settings, checker, request, [r.reviewer for r in current])
    _state_in(request, UNDER_REVIEW, "reviewed")
    if len(current) >= REVIEWS_NEEDED:
        raise Conflict(f"file {file.name} already has its {REVIEWS_NEEDED} reviews", "review the other files")
    row = ReleaseReview(file_id=file.id, reviewer=roles.normalize(checker), decision=decision, comment=comment,
                        sha256=file.sha256, at=utcnow())
    session.add(row)
    session.flush()
    session.refresh(file)
    _settle(request)
    _audit(session, checker, "release.review", request, file=file.name, sha256=file.sha256, decision=decision,
           comment=comment)
    return row


def _settle(request: ReleaseRequest) -> None:
    """Submitted -> reviewed once every file has two reviews; -> approved when they all approve."""
    if request.state not in UNDER_REVIEW:
        return
    reviews = [f.current_reviews() for f in request.files]
    if all(len(r) >= REVIEWS_NEEDED for r in reviews):
        everyone_approves = all(r.decision == "approve" for file_reviews in reviews for r in file_reviews)
        request.state = RELEASE_APPROVED if everyone_approves else REVIEWED
    else:
        request.state = SUBMITTED
    request.updated_at = utcnow()


def close(session: Session, roles_settings: dict, checker: str, request_id: int, outcome: str, reason: str = ""
          ) -> ReleaseRequest:
    """A checker returns a reviewed request to its author, or rejects it (final), with a reason.

    Raises:
        BadField: no reason, or an outcome other than returned / rejected.
    """
    if outcome not in (RETURNED, REJECTED):
        raise BadField("outcome", f"must be {RETURNED} or {REJECTED}, not {outcome!r}")
    request = get_release(session, request_id)
    if request.state == outcome:
        return request
    _checker(roles_settings, checker, request)
    reason = _text("reason", reason, "tell the author why")
    _state_in(request, (REVIEWED, SUBMITTED) if outcome == REJECTED else (REVIEWED,),
              "returned" if outcome == RETURNED else "rejected")
    request.state, request.reason, request.updated_at = outcome, reason, utcnow()
    request.closed_by = roles.normalize(checker) if outcome == REJECTED else None
    _audit(session, checker, f"release.{'return' if outcome == RETURNED else 'reject'}", request, reason=reason)
    return request


def check_may_release(roles_settings: dict, checker: str, request: ReleaseRequest) -> None:
    """Refuse unless `checker` may release `request` now (an output checker, not its author; approved).

    Raises:
        NotAllowed, Conflict: which of them says why.
    """
    _checker(roles_settings, checker, request)
    _state_in(request, (RELEASE_APPROVED,), "released")


def mark_released(session: Session, roles_settings: dict, checker: str, request_id: int, manifest: dict
                  ) -> ReleaseRequest:
    """Record an approved request as released; `manifest` (name -> sha256) is what the release area
    holds, copied there by the caller (airlock/store.py) in the same step."""
    request = get_release(session, request_id)
    check_may_release(roles_settings, checker, request)
    request.state, request.released_at, request.closed_by = RELEASED, utcnow(), roles.normalize(checker)
    request.updated_at = request.released_at
    _audit(session, checker, "release.release", request, manifest=manifest)
    return request


def record_download(session: Session, user: str, request: ReleaseRequest, file: ReleaseFile) -> None:
    _audit(session, user, "release.download", request, file=file.name, sha256=file.sha256)


def may_see(roles_settings: dict, user: str, request: ReleaseRequest) -> bool:
    """Its author and the output checkers see a release request; nobody else."""
    return roles.normalize(user) == request.author or roles.normalize(user) in roles.members(
        roles_settings, roles.OUTPUT_CHECKER)


def releases_of(session: Session, author: str) -> list[ReleaseRequest]:
    """`author`'s release requests, newest first."""
    return list(session.scalars(select(ReleaseRequest).where(ReleaseRequest.author == roles.normalize(author))
                                .order_by(ReleaseRequest.id.desc())))


def all_releases(session: Session) -> list[ReleaseRequest]:
    """Everyone's release requests, newest first (the operators' CLI)."""
    return list(session.scalars(select(ReleaseRequest).order_by(ReleaseRequest.id.desc())))


def to_check(session: Session, checker: str) -> list[ReleaseRequest]:
    """Requests under review or approved, not the checker's own, oldest first."""
    return list(session.scalars(select(ReleaseRequest).where(
        ReleaseRequest.state.in_((*UNDER_REVIEW, RELEASE_APPROVED)),
        ReleaseRequest.author != roles.normalize(checker)).order_by(ReleaseRequest.id)))

