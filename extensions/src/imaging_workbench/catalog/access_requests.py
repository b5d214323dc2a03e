"""Access requests: a researcher asks for datasets; each dataset's steward approves it (with an
expiry no longer than asked, and conditions) or refuses it (with a reason); the researcher then
accepts or declines the terms, and only an acceptance creates grants (grants.grant_access).

Every step is audited, once per dataset so each steward finds it in their dataset's trail.
Repeating a step with the same answer (a double click) returns what is recorded and audits
nothing; a different answer to a step already taken is refused: decisions are final. The
functions work in the caller's transaction (the caller commits).
"""

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..clock import utcnow
from ..errors import NotFound, WorkbenchError
from ..hub import roles
from . import audit, grants
from .accounts import get_account
from .datasets import datasets_by_id
from .models import ACCEPTED, APPROVED, DECLINED, PENDING, REFUSED, AccessRequest, AccessRequestItem, Grant

NO_CONDITIONS = {"text": "", "federated_only": False, "no_weights": False, "min_count": None}
PROJECT_LENGTH = 200  # the column's size


class NotAllowed(WorkbenchError):
    """This person may not take this step: not the dataset's steward, their own request, or not
    their request (the portal answers 403)."""


class Conflict(WorkbenchError):
    """The request's state does not allow this step: withdrawn, decided otherwise, or not yet
    decided (the portal answers 409)."""


class BadField(WorkbenchError):
    """One field of a request or decision is wrong; `field` names it (the portal answers 400)."""

    def __init__(self, field: str, problem: str, hint: str | None = None):
        super().__init__(f"{field}: {problem}", hint)
        self.field = field


def _text(field: str, value, hint: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadField(field, f"must not be empty, not {value!r}", hint)
    return value.strip()


def _days(value, most: int, beyond: str, hint: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise BadField("days", f"must be a whole number of at least 1, not {value!r}",
                       "give the access's length in days")
    if value > most:
        raise BadField("days", f"{value} is beyond {beyond}", hint)
    return value


def _check_datasets(session: Session, dataset_ids) -> None:
    if not (isinstance(dataset_ids, (list, tuple)) and dataset_ids and all(isinstance(d, str) for d in dataset_ids)):
        raise BadField("datasets", f"must be a non-empty list of dataset ids, not {dataset_ids!r}",
                       "choose at least one dataset")
    repeated = sorted({d for d in dataset_ids if dataset_ids.count(d) > 1})
    if repeated:
        raise BadField("datasets", f"{', '.join(repeated)} given more than once", "name each dataset once")
    known = datasets_by_id(session, dataset_ids)
    unknown = [d for d in dataset_ids if d not in known]
    if unknown:
        raise BadField("datasets", f"unknown dataset(s): {', '.join(unknown)}",
                       "list datasets with 'workbench datasets list'")


def submit_request(session: Session, requester: str, dataset_ids, project: str, purpose: str, mode: str,
                   days: int, max_days: int) -> AccessRequest:
    """Record `requester`'s request for `dataset_ids`, one pending item per dataset.

    Args:
        mode: one of grants.MODES.
        days: how long the access should last; at most `max_days` (the settings' access.max_days).

    Raises:
        BadField: naming `datasets`, `project`, `purpose`, `mode` or `days`.
        NotFound: an unknown requester.
    """
    get_account(session, requester)
    _check_datasets(session, dataset_ids)
    project = _text("project", project, "name the project the access is for")
    if len(project) > PROJECT_LENGTH:
        raise BadField("project", f"is {len(project)} characters long, more than {PROJECT_LENGTH}",
                       "shorten it; say more in the purpose")
    purpose = _text("purpose", purpose, "say what the data will be used for")
    if mode not in grants.MODES:
        raise BadField("mode", f"must be one of {', '.join(grants.MODES)}, not {mode!r}",
                       "sandbox: mounted in your servers; federated: only federated jobs use it")
    days = _days(days, max_days, f"this deployment's maximum of {max_days}", f"ask for {max_days} days or fewer")
    items = [AccessRequestItem(dataset_id=d, state=PENDING, conditions={}, reason="") for d in dataset_ids]
    request = AccessRequest(requester=requester, project=project, purpose=purpose, mode=mode, requested_days=days,
                            created_at=utcnow(), items=items)
    session.add(request)
    session.flush()
    for dataset_id in dataset_ids:
        audit.record(session, requester, "access.request", _subject(request), dataset=dataset_id,
                     request_id=request.id, project=project, purpose=purpose, mode=mode, days=days)
    return request


def requests_of(session: Session, requester: str | None = None) -> list[AccessRequest]:
    """`requester`'s requests (everyone's when None), newest first."""
    query = select(AccessRequest).order_by(AccessRequest.id.desc())
    if requester is not None:
        query = query.where(AccessRequest.requester == requester)
    return list(session.scalars(query))


def get_request(session: Session, request_id) -> AccessRequest:
    request = session.get(AccessRequest, request_id) if isinstance(request_id, int) else None
    if request is None:
        raise NotFound(f"no access request {request_id!r}", "list them with 'workbench requests list'")
    return request


def pending_for(session: Session, roles_settings: dict, steward: str) -> list[AccessRequestItem]:
    """The undecided items `steward` may decide: on datasets they steward, in others' requests
    that are not withdrawn; oldest first."""
    query = (select(AccessRequestItem).join(AccessRequest)
             .where(AccessRequestItem.state == PENDING, AccessRequest.withdrawn_at.is_(None))
             .order_by(AccessRequestItem.id))
    return [item for item in session.scalars(query)
            if roles.may_review(roles_settings, steward, item.request.requester, "access", item.dataset_id)]


def check_conditions(conditions, mode: str) -> dict:
    """`conditions` as stored: every key of NO_CONDITIONS, `federated_only` set for a federated request.

    Raises:
        BadField: naming `conditions` or the one key that is wrong (`conditions.min_count`).
    """
    if conditions is None:
        conditions = {}
    if not isinstance(conditions, dict):
        raise BadField("conditions", f"must be a mapping, not {conditions!r}", f"use keys {', '.join(NO_CONDITIONS)}")
    unknown = sorted(set(conditions) - set(NO_CONDITIONS))
    if unknown:
        raise BadField("conditions", f"unknown condition(s) {', '.join(unknown)}",
                       f"use {', '.join(NO_CONDITIONS)}; write anything else in the text")
    out = {**NO_CONDITIONS, **conditions}
    if not isinstance(out["text"], str):
        raise BadField("conditions.text", f"must be text, not {out['text']!r}")
    out["text"] = out["text"].strip()
    for key in ("federated_only", "no_weights"):
        if not isinstance(out[key], bool):
            raise BadField(f"conditions.{key}", f"must be true or false, not {out[key]!r}")
    count = out["min_count"]
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
        raise BadField("conditions.min_count", f"must be a whole number of at least 1, or none, not {count!r}",
                       "the smallest count a federated result may show from this dataset")
    out["federated_only"] = out["federated_only"] or mode == grants.FEDERATED
    return out


def describe_conditions(conditions: dict) -> str:
    """Stored conditions in words: "federated only, no weights, min count 20: cite the consortium"."""
    terms = [words for key, words in (("federated_only", "federated only"), ("no_weights", "no weights"))
             if conditions.get(key)]
    if conditions.get("min_count"):
        terms.append(f"min count {conditions['min_count']}")
    text = conditions.get("text") or ""
    return ", ".join(terms) + (": " if terms and text else "") + text


def decide(session: Session, roles_settings: dict, steward: str, request_id: int, dataset_id: str, approve: bool,
           days: int | None = None, conditions: dict | None = None, reason: str = "") -> AccessRequestItem:
    """`steward` approves (for `days`, default as asked, with `conditions`) or refuses (for
    `reason`) one dataset of a request; audited as "access.approve" or "access.refuse".

    Raises:
        NotAllowed: `steward` does not steward `dataset_id`, or made the request.
        Conflict: the request was withdrawn, or this dataset was already decided otherwise.
        BadField: naming `days` (longer than asked), `conditions...` or `reason`.
        NotFound: no such request, or the request is not for `dataset_id`.
    """
    request = get_request(session, request_id)
    item = next((i for i in request.items if i.dataset_id == dataset_id), None)
    if item is None:
        raise NotFound(f"access request {request.id} is not for dataset '{dataset_id}'",
                       f"it asks for {', '.join(i.dataset_id for i in request.items)}")
    refusal = roles.review_refusal(roles_settings, steward, request.requester, "access", dataset_id)
    if refusal:
        raise NotAllowed(refusal, f"the request is for the stewards of '{dataset_id}' to decide")
    if request.withdrawn_at is not None:
        raise Conflict(f"access request {request.id} was withdrawn by {request.requester}", "nothing to decide")
    if approve:
        asked = request.requested_days
        terms = (APPROVED, _days(asked if days is None else days, asked, f"the {asked} days asked for",
                                 "an approval may shorten the access, never lengthen it"),
                 check_conditions(conditions, request.mode), "")
    else:
        terms = (REFUSED, None, {}, _text("reason", reason, "tell the requester why, so they can ask again"))
    if item.state != PENDING:
        decided = APPROVED if item.state in (APPROVED, ACCEPTED, DECLINED) else item.state
        if (decided, item.days, item.conditions, item.reason) == terms:
            return item
        raise Conflict(f"dataset '{dataset_id}' of access request {request.id} was already {decided} by "
                       f"{item.decided_by}; decisions are final", "the requester can make a new request")
    item.state, item.days, item.conditions, item.reason = terms
    item.decided_by, item.decided_at = steward, utcnow()
    details = {"days": item.days, "conditions": item.conditions} if approve else {"reason": item.reason}
    audit.record(session, steward, "access.approve" if approve else "access.refuse", _subject(request),
                 dataset=dataset_id, request_id=request.id, **details)
    return item


def respond(session: Session, requester: str, request_id: int, accept: bool) -> list[Grant]:
    """The requester accepts (one grant per approved dataset) or declines the approved terms.

    An accepted dataset's grant has the request's mode ("federated" when its conditions say
    federated_only), the approved days from now, the conditions and the request's id. Audited
    as "access.accept" or "access.decline" per dataset; returns the grants (none on declining).

    Raises:
        NotAllowed: `requester` did not make the request.
        Conflict: withdrawn, not yet decided, nothing approved, or already answered otherwise.
        WorkbenchError: a grant cannot be made (grants.grant_access says why); nothing changes.
    """
    request = _own_request(session, requester, request_id, "accepts or declines its terms")
    if request.withdrawn_at is not None:
        raise Conflict(f"access request {request.id} was withdrawn", "make a new request")
    waiting = [i.dataset_id for i in request.items if i.state == PENDING]
    if waiting:
        raise Conflict(f"access request {request.id} still awaits a steward's decision on {', '.join(waiting)}",
                       "answer once every dataset is decided")
    approved = [i for i in request.items if i.state in (APPROVED, ACCEPTED, DECLINED)]
    if not approved:
        raise Conflict(f"every dataset of access request {request.id} was refused", "see each refusal's reason")
    answer = ACCEPTED if accept else DECLINED
    if all(i.state != APPROVED for i in approved):  # already answered, all at once
        if approved[0].state != answer:
            raise Conflict(f"access request {request.id} was already {approved[0].state}", "make a new request")
        return [session.get(Grant, i.grant_id) for i in approved if i.grant_id is not None]
    made, now = [], utcnow()
    for item in approved:
        if accept:
            mode = grants.FEDERATED if item.conditions.get("federated_only") else request.mode
            grant = grants.grant_access(session, item.decided_by, request.requester, item.dataset_id, item.days,
                                        f"{request.project}: {request.purpose}", mode=mode,
                                        conditions=item.conditions, request_id=request.id)
            item.grant_id = grant.id
            made.append(grant)
        item.state, item.responded_at = answer, now
        audit.record(session, requester, f"access.{'accept' if accept else 'decline'}", _subject(request),
                     dataset=item.dataset_id, request_id=request.id, grant_id=item.grant_id)
    return made


def withdraw(session: Session, requester: str, request_id: int) -> AccessRequest:
    """The requester withdraws a request still pending; audited as "access.withdraw" per dataset.

    Raises:
        NotAllowed: `requester` did not make the request.
        Conflict: every dataset is decided already (decline the terms instead).
    """
    request = _own_request(session, requester, request_id, "may withdraw it")
    if request.withdrawn_at is not None:
        return request
    if request.state != "pending":
        raise Conflict(f"access request {request.id} is no longer pending (it is {request.state})",
                       "decline its terms instead" if request.state == "awaiting-requester" else "nothing to withdraw")
    request.withdrawn_at = utcnow()
    for item in request.items:
        audit.record(session, requester, "access.withdraw", _subject(request), dataset=item.dataset_id,
                     request_id=request.id)
    return request


def _own_request(session: Session, requester: str, request_id: int, step: str) -> AccessRequest:
    request = get_request(session, request_id)
    if roles.normalize(requester) != roles.normalize(request.requester):
        raise NotAllowed(f"access request {request.id} is {request.requester}'s, not {requester}'s",
                         f"only the requester {step}")
    return request


def _subject(request: AccessRequest) -> str:
    return f"{request.requester}/request-{request.id}"
