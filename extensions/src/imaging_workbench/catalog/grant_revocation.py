"""A steward's side of live grants: those on the datasets they steward, and revoking one, by its
id, for a reason.

Revoking is grants.revoke_access (audited "revoke"), followed by an "access.ended" row that holds
the reason, both filed under the dataset so its stewards find them in its trail. The hub's
workbench-access service then stops every server that mounts the dataset (hub/access_service.py).
The functions work in the caller's transaction (the caller commits).
"""

from sqlalchemy.orm import Session

from ..clock import utcnow
from ..errors import NotFound
from ..hub import roles
from . import audit
from .access_requests import BadField, Conflict, NotAllowed
from .grants import live_grants, revoke_access
from .models import Grant


def _require_steward(roles_settings: dict, user: str) -> None:
    if roles.normalize(user) not in roles.members(roles_settings, roles.STEWARD):
        raise NotAllowed(f"{user} is not a data steward",
                         "grants are managed by the stewards the deployment settings name (roles.stewards) "
                         "or the identity provider's groups give (oidc.role_groups)")


def stewarded_grants(session: Session, roles_settings: dict, steward: str) -> list[Grant]:
    """The live grants on the datasets `steward` stewards, by user then dataset.

    Raises:
        NotAllowed: `steward` stewards no dataset.
    """
    _require_steward(roles_settings, steward)
    return [g for g in live_grants(session) if roles.is_steward(roles_settings, steward, g.dataset_id)]


def revoke_grant(session: Session, roles_settings: dict, steward: str, grant_id: int, reason) -> Grant:
    """`steward` revokes the live grant `grant_id` for `reason`.

    Raises:
        NotAllowed: `steward` stewards no dataset, or not this grant's.
        NotFound: no grant `grant_id`.
        Conflict: the grant was already revoked, or has expired.
        BadField: naming `reason`, when it is empty.
    """
    _require_steward(roles_settings, steward)
    # The row lock (PostgreSQL; SQLite's transaction already holds the write lock) makes a second
    # steward revoking at the same moment wait, then see the first one's revocation.
    grant = session.get(Grant, grant_id, with_for_update=True) if type(grant_id) is int else None
    if grant is None:
        raise NotFound(f"no grant {grant_id!r}", "see the live grants of your datasets on the portal's Grants page")
    subject = f"{grant.user}/{grant.dataset_id}"
    if not roles.is_steward(roles_settings, steward, grant.dataset_id):
        raise NotAllowed(f"{steward} is not a steward of dataset '{grant.dataset_id}'",
                         f"grant {grant.id} is for the stewards of '{grant.dataset_id}' to revoke")
    if grant.revoked_at is not None:
        raise Conflict(f"grant {grant.id} ({subject}) was already revoked by {grant.revoked_by} "
                       f"on {grant.revoked_at:%Y-%m-%d %H:%M} UTC", "nothing to revoke: that access has ended")
    if grant.expires_at <= utcnow():
        raise Conflict(f"grant {grant.id} ({subject}) expired on {grant.expires_at:%Y-%m-%d %H:%M} UTC",
                       "nothing to revoke: that access has ended")
    if not isinstance(reason, str) or not reason.strip():
        raise BadField("reason", f"must not be empty, not {reason!r}",
                       "say why the access ends: the reason goes into the dataset's audit trail")
    revoke_access(session, steward, grant.user, grant.dataset_id)  # the one live grant: this one
    audit.record(session, steward, "access.ended", subject, dataset=grant.dataset_id, grant_id=grant.id,
                 datasets=[grant.dataset_id], reason=reason.strip())
    return grant
