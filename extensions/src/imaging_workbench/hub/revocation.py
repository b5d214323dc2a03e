"""Ending a user's access: the one function every part calls (a steward's revoke, later a dashboard
unpublished, a batch run cancelled, a user removed at the identity provider), with a reason.

It revokes the grants in the caller's transaction and records why; the workbench-access service
then stops every server that mounts them within two of its intervals (servers starting at that
moment re-check their mounts once their container runs), auditing each stop with the reason.
"""

from sqlalchemy.orm import Session

from ..catalog import audit
from ..catalog.grants import live_grants, revoke_access


def end_access(session: Session, actor: str, user: str, reason: str, datasets: list[str] | None = None) -> list[str]:
    """Revoke `user`'s live grants (all of them, or those on `datasets`) for `reason`; returns the
    dataset ids whose grant ended.

    Raises:
        ValueError: an empty reason (every ending of access is explained in the audit trail).
        NotFound: a dataset in `datasets` the user holds no live grant for.
    """
    if not reason or not reason.strip():
        raise ValueError("a reason is required to end access (it goes into the audit trail)")
    targets = datasets if datasets is not None else [g.dataset_id for g in live_grants(session, user)]
    for dataset_id in targets:
        revoke_access(session, actor, user, dataset_id)
    audit.record(session, actor, "access.ended", user, datasets=sorted(targets), reason=reason.strip())
    return sorted(targets)
