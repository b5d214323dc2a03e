"""The workbench roles that users' identity provider groups give them, kept in the catalog.

At each login and refresh the hub turns a user's groups into a `roles:` section
(hub.roles.roles_from_groups) and records it here, replacing what that user had; the portal and
CLI then see the deployment settings' roles and these together (`effective_roles`). Every
change is audited as "roles.changed". The functions work in the caller's transaction (the caller
commits).
"""

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..clock import utcnow
from ..errors import NotFound
from ..hub import roles
from . import audit
from .models import Account, IdpRole

ROLE_KEYS = ("operators", "stewards", "output_checkers", "tool_reviewers", "clinicians")
STEWARDS = "stewards"  # the one key whose members are per dataset
_ONE_OF = {"operators": "operator", "stewards": "steward", "output_checkers": "output checker",
           "tool_reviewers": "tool reviewer", "clinicians": "clinician"}


def _held(name: str, section: dict) -> set[tuple[str, str | None]]:
    """The (role key, dataset or None) pairs that `section` gives `name`.

    Raises:
        ValueError: an unknown key, a bad dataset id, or a name other than `name`.
    """
    held = set()
    for key, value in section.items():
        if key not in ROLE_KEYS:
            raise ValueError(f"unknown role key {key!r} in the identity provider's roles of {name}: "
                             f"expected one of {', '.join(ROLE_KEYS)}")
        per_dataset = dict(value or {}) if key == STEWARDS else {None: value}
        for dataset, names in per_dataset.items():
            if key == STEWARDS and not (isinstance(dataset, str) and dataset):
                raise ValueError(f"the identity provider's roles of {name} make them a steward of "
                                 f"{dataset!r}: expected a dataset id or {roles.ANY_DATASET!r}")
            others = sorted({roles.normalize(n) for n in names or ()} - {name})
            if others:
                raise ValueError(f"the identity provider's roles of {name} name {', '.join(others)} under "
                                 f"{key!r}: a user's section may name only that user")
            if names:
                held.add((key, dataset))
    return held


def _ordered(held) -> list[tuple[str, str | None]]:
    return sorted(held, key=lambda pair: (ROLE_KEYS.index(pair[0]), pair[1] or ""))


def _described(role: str, dataset: str | None) -> str:
    """How the audit trail names a role: "operator", "steward of lung-ct", "steward of every dataset"."""
    if dataset is None:
        return _ONE_OF[role]
    return f"{_ONE_OF[role]} of {'every dataset' if dataset == roles.ANY_DATASET else dataset}"


def record_idp_roles(session: Session, actor: str, name: str, section: dict) -> dict:
    """Replace the roles stored for `name` with `section`, what the identity provider gives them now.

    Returns {"added": [...], "removed": [...]}, the roles as the audit trail names them; both are
    empty when nothing changed, and then nothing is audited.

    Raises:
        ValueError: `section` has an unknown key or an empty dataset id, or names someone other than `name`.
        NotFound: `name` has no account (the hub creates it at the first login).
    """
    name = roles.normalize(name)
    wanted = _held(name, section)
    # FOR UPDATE (PostgreSQL; SQLite's writers already queue): two logins of one user at once
    # would otherwise both add the same rows.
    if session.get(Account, name, with_for_update=True) is None:
        raise NotFound(f"unknown user '{name}'",
                       "the hub creates an account at the user's first login; record their roles after it")
    stored = {(row.role, row.dataset): row for row in session.scalars(select(IdpRole).where(IdpRole.account == name))}
    added, removed = _ordered(wanted - stored.keys()), _ordered(stored.keys() - wanted)
    now = utcnow()
    for role, dataset in added:
        session.add(IdpRole(account=name, role=role, dataset=dataset, recorded_at=now))
    for pair in removed:
        session.delete(stored[pair])
    change = {"added": [_described(*pair) for pair in added], "removed": [_described(*pair) for pair in removed]}
    if added or removed:
        audit.record(session, actor, "roles.changed", name, **change, source="identity provider")
    return change


def forget_idp_roles(session: Session, actor: str, name: str) -> dict:
    """Remove every role the identity provider gave `name`; returns and audits as `record_idp_roles`."""
    return record_idp_roles(session, actor, name, {})


def _section(rows) -> dict:
    """`rows` as one `roles:` section, with only the keys someone holds (as roles_from_groups makes them)."""
    section = {}
    for row in sorted(rows, key=lambda r: (ROLE_KEYS.index(r.role), r.dataset or "", r.account)):
        if row.role == STEWARDS:
            section.setdefault(STEWARDS, {}).setdefault(row.dataset, []).append(row.account)
        else:
            section.setdefault(row.role, []).append(row.account)
    return section


def idp_section(session: Session) -> dict:
    """Everyone's stored roles as one `roles:` section: names by key, stewards' by dataset id."""
    return _section(session.scalars(select(IdpRole)))


def idp_section_of(session: Session, name: str) -> dict:
    """The roles stored for `name`, as a `roles:` section naming only them."""
    return _section(session.scalars(select(IdpRole).where(IdpRole.account == roles.normalize(name))))


def effective_roles(session: Session, settings_roles: dict) -> dict:
    """The `roles:` section the portal and CLI go by: the settings' names and the stored ones together."""
    return roles.merged(settings_roles, idp_section(session))
