"""Published dashboards: a researcher's notebook shown to a hub group (clinicians) through Voila.

A dashboard shows images of datasets its owner is granted; showing them to a group is a new
disclosure, so each dataset's steward decides on it (never the owner). A dashboard serves only
while every one of its datasets has a live approval; an approval is revoked like a grant, and
the dashboard stops serving. Its server (`dashboard-NAME`, the owner's named server) mounts the
approved datasets the owner still holds, and nothing else of theirs (hub/spawner.py).
"""

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..clock import utcnow
from ..errors import NotFound, WorkbenchError
from ..hub import roles
from . import audit
from .access_requests import BadField, Conflict, NotAllowed
from .grants import SANDBOX, approved_dataset_ids, require_grants
from .models import Dashboard, DashboardApproval

SERVER_PREFIX = "dashboard-"
FOLDER = "dashboards"  # <state_dir>/dashboards/NAME/ holds the pinned notebook, read by the spawner
NAME_RE = re.compile(r"[a-z0-9](?:[a-z0-9._-]{0,48}[a-z0-9])?")
NOTEBOOK_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._()-]{0,120}\.ipynb")
PENDING, LIVE, REFUSED, WITHDRAWN = "pending", "live", "refused", "withdrawn"


def server_name(name: str) -> str:
    return SERVER_PREFIX + name


def live_decisions(dashboard: Dashboard) -> dict[str, DashboardApproval]:
    """dataset id -> the steward's decision that stands (not revoked)."""
    return {a.dataset_id: a for a in dashboard.approvals if a.revoked_at is None}


def state(dashboard: Dashboard) -> str:
    if dashboard.withdrawn_at is not None:
        return WITHDRAWN
    decisions = live_decisions(dashboard)
    if any(not a.approved for a in decisions.values()):
        return REFUSED
    return LIVE if all(d in decisions for d in dashboard.datasets) else PENDING


def as_dict(dashboard: Dashboard) -> dict:
    decisions = live_decisions(dashboard)
    return {"name": dashboard.name, "owner": dashboard.owner, "notebook": dashboard.notebook,
            "sha256": dashboard.sha256, "image": dashboard.image, "datasets": list(dashboard.datasets),
            "group": dashboard.group, "published_at": dashboard.published_at, "state": state(dashboard),
            "server": server_name(dashboard.name),
            "decisions": {d: {"approved": a.approved, "steward": a.steward, "reason": a.reason,
                              "decided_at": a.decided_at} for d, a in decisions.items()}}


def check_publication(session: Session, owner: str, name: str, notebook: str, datasets: list[str], group: str) -> None:
    """Everything `publish` refuses, checked before the notebook is run or pinned.

    Raises:
        BadField: a malformed name, notebook name, dataset list or group.
        Conflict: a dashboard of that name exists.
        WorkbenchError: the owner holds no live sandbox grant for one of the datasets.
    """
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise BadField("name", f"{name!r} is not a dashboard name",
                       "use lower-case letters, digits, '.', '_' and '-', at most 50, e.g. liver-review")
    if not isinstance(notebook, str) or not NOTEBOOK_RE.fullmatch(notebook):
        raise BadField("notebook", f"{notebook!r} is not a notebook file name", "publish a file ending in .ipynb")
    if not isinstance(datasets, list) or not datasets or not all(isinstance(d, str) for d in datasets):
        raise BadField("datasets", "name the datasets the dashboard shows", "e.g. datasets=['lung-ct']")
    if not isinstance(group, str) or not group.strip():
        raise BadField("group", "name the hub group the dashboard is for", "e.g. group='workbench-clinicians'")
    if session.get(Dashboard, name) is not None:
        raise Conflict(f"a dashboard named '{name}' exists", "pick another name")
    require_grants(session, owner, datasets, modes=(SANDBOX,))


def publish(session: Session, actor: str, owner: str, name: str, notebook: str, sha256: str, image: str,
            datasets: list[str], group: str) -> Dashboard:
    """Record a dashboard, waiting for the stewards' decisions; audited as dashboard.publish.

    Raises:
        BadField, Conflict, WorkbenchError: see check_publication.
    """
    check_publication(session, owner, name, notebook, datasets, group)
    dashboard = Dashboard(name=name, owner=owner, notebook=notebook, sha256=sha256, image=image,
                          datasets=sorted(set(datasets)), group=group.strip(), published_at=utcnow())
    session.add(dashboard)
    session.flush()
    audit.record(session, actor, "dashboard.publish", name, owner=owner, notebook=notebook, sha256=sha256,
                 image=image, datasets=dashboard.datasets, group=dashboard.group)
    return dashboard


def get_dashboard(session: Session, name: str) -> Dashboard:
    dashboard = session.get(Dashboard, name)
    if dashboard is None:
        raise NotFound(f"no dashboard '{name}'", "see the dashboards with 'workbench dashboard list'")
    return dashboard


def list_dashboards(session: Session) -> list[Dashboard]:
    return list(session.scalars(select(Dashboard).order_by(Dashboard.published_at)))


def awaiting(session: Session, roles_settings: dict, steward: str) -> list[Dashboard]:
    """Dashboards with a dataset `steward` stewards and has not decided on, not their own."""
    return [d for d in list_dashboards(session)
            if d.withdrawn_at is None and d.owner != steward
            and any(roles.is_steward(roles_settings, steward, ds) and ds not in live_decisions(d) for ds in d.datasets)]


def _stewarded(session, roles_settings, steward, name, dataset_id) -> Dashboard:
    dashboard = get_dashboard(session, name)
    if dataset_id not in dashboard.datasets:
        raise BadField("dataset", f"dashboard '{name}' does not show '{dataset_id}'",
                       f"it shows {', '.join(dashboard.datasets)}")
    if not roles.is_steward(roles_settings, steward, dataset_id):
        raise NotAllowed(f"{steward} is not a steward of dataset '{dataset_id}'",
                         f"the stewards of '{dataset_id}' decide on showing it")
    if steward == dashboard.owner:
        raise NotAllowed(f"{steward} published dashboard '{name}'", "another steward of the dataset decides on it")
    if dashboard.withdrawn_at is not None:
        raise Conflict(f"dashboard '{name}' was withdrawn", "nothing to decide")
    return dashboard


def decide(session: Session, roles_settings: dict, steward: str, name: str, dataset_id: str, approve: bool,
           reason: str = "") -> Dashboard:
    """A steward approves or refuses showing `dataset_id` through dashboard `name` to its group.

    Raises:
        NotFound, BadField, NotAllowed: no such dashboard or dataset on it; not a steward of it, or its owner.
        Conflict: a decision on it stands (revoke it first).
    """
    dashboard = _stewarded(session, roles_settings, steward, name, dataset_id)
    if dataset_id in live_decisions(dashboard):
        raise Conflict(f"'{dataset_id}' on dashboard '{name}' is decided", "revoke that decision first")
    if not approve and not (reason or "").strip():
        raise BadField("reason", "a refusal needs a reason", "say why, for the dashboard's owner")
    session.add(DashboardApproval(dashboard_name=name, dataset_id=dataset_id, steward=steward, approved=approve,
                                  reason=(reason or "").strip(), decided_at=utcnow()))
    session.flush()
    session.refresh(dashboard)
    audit.record(session, steward, "dashboard.approve" if approve else "dashboard.refuse", name,
                 dataset=dataset_id, group=dashboard.group, reason=(reason or "").strip(), state=state(dashboard))
    return dashboard


def revoke(session: Session, roles_settings: dict, steward: str, name: str, dataset_id: str, reason: str) -> Dashboard:
    """The standing decision on `dataset_id` ends: an approval ends the dashboard's serving."""
    dashboard = _stewarded(session, roles_settings, steward, name, dataset_id)
    decision = live_decisions(dashboard).get(dataset_id)
    if decision is None:
        raise Conflict(f"nothing decided on '{dataset_id}' for dashboard '{name}'", "nothing to revoke")
    if not (reason or "").strip():
        raise BadField("reason", "must not be empty", "say why the dashboard may no longer show it")
    decision.revoked_at, decision.revoked_by = utcnow(), steward
    audit.record(session, steward, "dashboard.revoke", name, dataset=dataset_id, reason=reason.strip())
    return dashboard


def dashboard_server(session: Session, user: str, server_name_: str) -> tuple[Dashboard, list[str]]:
    """The dashboard whose server `user` may start now, and the datasets it mounts (approved and
    still granted to its owner).

    Raises:
        WorkbenchError: no such dashboard of `user`, or it is not serving.
    """
    name = server_name_[len(SERVER_PREFIX):]
    dashboard = session.get(Dashboard, name)
    if dashboard is None or dashboard.owner != user:
        raise WorkbenchError(f"{user} has no dashboard '{name}'", "publish it first")
    current = state(dashboard)
    if current != LIVE:
        waiting = [d for d in dashboard.datasets if d not in live_decisions(dashboard)]
        why = {PENDING: f"it waits for the approval of the steward of {', '.join(waiting)}",
               REFUSED: "a steward refused it", WITHDRAWN: "it was withdrawn"}[current]
        raise WorkbenchError(f"dashboard '{name}' is not serving: {why}", "see it on the portal's Dashboards page")
    held = set(approved_dataset_ids(session, user, modes=(SANDBOX,)))
    return dashboard, [d for d in dashboard.datasets if d in held]

