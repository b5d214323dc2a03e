"""The catalog side of batch runs: check a request, record it, list, show, settle and cancel
runs, each step audited (batch.submit, batch.finish, batch.cancel) with the notebook's hash
and the image. The caller commits; nothing here touches docker."""

import json
import posixpath

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..catalog import audit
from ..catalog.access_requests import BadField, Conflict, NotAllowed
from ..catalog.models import BatchRun
from ..clock import utcnow
from ..errors import NotFound
from ..hub import roles
from .protocol import RESERVED, is_parameter_name

RUNNING, FINISHED, FAILED, REFUSED, CANCELLED = "running", "finished", "failed", "refused", "cancelled"
STATES = (RUNNING, FINISHED, FAILED, REFUSED, CANCELLED)
MAX_VALUE = 10_000  # characters of one parameter's JSON


def check_notebook(name) -> str:
    """`name`, a notebook's path relative to the home, normalised.

    Raises:
        BadField: not a relative path inside the home ending in .ipynb (field "notebook").
    """
    hint = "name the notebook relative to your home, e.g. analysis/measure.ipynb"
    if not isinstance(name, str) or not name.strip() or "\0" in name or "\\" in name:
        raise BadField("notebook", f"{name!r} is not a notebook's path", hint)
    words = name.strip().split("/")
    if name.startswith("/") or any(w in ("", ".", "..") for w in words):
        raise BadField("notebook", f"{name!r} is not a path inside your home (no '..', no leading '/')", hint)
    if not name.endswith(".ipynb"):
        raise BadField("notebook", f"{name!r} is not a notebook (.ipynb)", hint)
    return posixpath.join(*words)


def check_parameters(parameters) -> dict:
    """The papermill parameters, checked: names that are Python identifiers (not ones the workbench
    sets: case_path, dataset_path), values that are JSON.

    Raises:
        BadField: field "parameters", naming the parameter.
    """
    if parameters is None:
        return {}
    if not isinstance(parameters, dict):
        raise BadField("parameters", f"must be an object of name -> value, not {parameters!r}")
    for name, value in parameters.items():
        if not is_parameter_name(name):
            raise BadField("parameters", f"{name!r} is not a parameter name (a Python identifier)",
                           "name a variable of the notebook's cell tagged 'parameters'")
        if name in RESERVED:
            raise BadField("parameters", f"{name} is set by the workbench (the dataset's or the case's folder)",
                           f"leave out {name}; the notebook gets it")
        try:
            text = json.dumps(value)
        except (TypeError, ValueError):
            raise BadField("parameters", f"{name}: {value!r} is not a JSON value") from None
        if len(text) > MAX_VALUE:
            raise BadField("parameters", f"{name}: the value is over {MAX_VALUE} characters",
                           "pass a file name instead and read the file in the notebook")
    return dict(parameters)


def create_run(session: Session, actor: str, user: str, notebook: str, dataset_id: str, parameters: dict,
               per_case: bool, profile: str, image: str, container_name) -> BatchRun:
    """Record a run that is about to start (its request already checked) and audit batch.submit.
    `container_name(run id)` names its container."""
    run = BatchRun(user=roles.normalize(user), notebook=notebook, dataset_id=dataset_id, parameters=parameters,
                   per_case=bool(per_case), profile=profile, image=image, container="", state=RUNNING,
                   submitted_by=actor, submitted_at=utcnow())
    session.add(run)
    session.flush()
    run.container = container = container_name(run.id)
    audit.record(session, actor, "batch.submit", f"batch/{run.id}", dataset=dataset_id, user=run.user,
                 notebook=notebook, parameters=parameters, per_case=run.per_case, profile=profile, image=image,
                 container=container)
    return run


def get_run(session: Session, run_id: int) -> BatchRun:
    run = session.get(BatchRun, run_id)
    if run is None:
        raise NotFound(f"no batch run {run_id}", "see 'workbench batch list'")
    return run


def own_run(session: Session, user: str, run_id: int) -> BatchRun:
    run = get_run(session, run_id)
    if roles.normalize(user) != run.user:
        raise NotAllowed(f"batch run {run_id} is not {user}'s", "only the user it runs for may see or cancel it")
    return run


def runs_of(session: Session, user: str | None = None, state: str | None = None) -> list[BatchRun]:
    """Runs, newest first; only `user`'s and only in `state` when given."""
    query = select(BatchRun).order_by(BatchRun.id.desc())
    if user:
        query = query.where(BatchRun.user == roles.normalize(user))
    if state:
        if state not in STATES:
            raise BadField("state", f"{state!r} is not a state", f"one of {', '.join(STATES)}")
        query = query.where(BatchRun.state == state)
    return list(session.scalars(query))


def settle(session: Session, run: BatchRun, state: str, *, notebook_sha256: str | None = None,
           summary: dict | None = None, error: str | None = None) -> BatchRun:
    """A running run's end (finished, failed or refused), audited as batch.finish. A run that
    already ended is left as it is (two followers may see the same end)."""
    if state not in (FINISHED, FAILED, REFUSED):
        raise ValueError(f"a run ends finished, failed or refused, not {state!r}")
    if run.state != RUNNING:
        return run
    run.state, run.finished_at = state, utcnow()
    run.notebook_sha256, run.summary, run.error = notebook_sha256, summary, error
    counts = {k: summary[k] for k in ("cases", "ok", "failed")} if summary else {}
    audit.record(session, "workbench-batch", "batch.finish", f"batch/{run.id}", dataset=run.dataset_id,
                 user=run.user, state=state, notebook=run.notebook, notebook_sha256=notebook_sha256,
                 image=run.image, error=error, **counts)
    return run


def cancel(session: Session, actor: str, run: BatchRun, notebook_sha256: str | None = None) -> BatchRun:
    """Mark a running run cancelled (the caller stops its container), audited as batch.cancel with
    the hash of the notebook it was running (None: it had not started a case yet).

    Raises:
        Conflict: the run has already ended.
    """
    if run.state == CANCELLED:
        return run
    if run.state != RUNNING:
        raise Conflict(f"batch run {run.id} is {run.state}: it cannot be cancelled", "only a running run can be")
    run.state, run.finished_at, run.error = CANCELLED, utcnow(), f"cancelled by {actor}"
    run.notebook_sha256 = notebook_sha256
    audit.record(session, actor, "batch.cancel", f"batch/{run.id}", dataset=run.dataset_id, user=run.user,
                 notebook=run.notebook, notebook_sha256=notebook_sha256, image=run.image, container=run.container)
    return run
