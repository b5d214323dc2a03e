"""Give a hub user exactly the workbench's hub roles and groups that a roles section names them in.

Runs inside the hub process at every OIDC login and refresh, on the hub's own database session.
Only the workbench's roles and groups (hub/roles.py) are touched: the `user` role every account
holds, the pinned `admin` role, services' roles and training sessions' roles stay as they are.
The section passed in is the union of the deployment settings and the identity provider's groups,
so nobody the settings name loses a role here; `load_roles` still applies the settings at start,
which leaves only their names: the provider's come back at each user's first request after a
restart (the hub refreshes every login it has not refreshed yet) or at workbench-access's next
pass for users with running servers. The portal reads the catalog's record, which a restart keeps.
"""

from jupyterhub import orm
from jupyterhub import roles as hub_roles

from . import roles


def sync_hub_roles(db, orm_user, section: dict) -> dict[str, list[str]]:
    """Grant and strip the workbench hub roles and groups of `orm_user` to match `section`.

    Returns {"granted": [...], "stripped": [...]}: role and group names, for the hub's log.
    """
    wanted_roles, wanted_groups = roles.hub_roles_of(section, orm_user.name)
    granted, stripped = [], []
    held_roles = {r.name for r in orm_user.roles}
    for role in roles.ROLES:
        if not (role.hub_role and role.settings_key) or orm.Role.find(db, role.hub_role) is None:
            continue
        if role.hub_role in wanted_roles and role.hub_role not in held_roles:
            hub_roles.grant_role(db, orm_user, rolename=role.hub_role, commit=False)
            granted.append(role.hub_role)
        elif role.hub_role not in wanted_roles and role.hub_role in held_roles:
            hub_roles.strip_role(db, orm_user, rolename=role.hub_role, commit=False)
            stripped.append(role.hub_role)
    held_groups = {g.name for g in orm_user.groups}
    for role in roles.ROLES:
        if not (role.group and role.settings_key):
            continue
        group = orm.Group.find(db, role.group)
        if group is None:
            group = orm.Group(name=role.group)
            db.add(group)
        if role.group in wanted_groups and role.group not in held_groups:
            orm_user.groups.append(group)
            granted.append(role.group)
        elif role.group not in wanted_groups and role.group in held_groups:
            orm_user.groups.remove(group)
            stripped.append(role.group)
    db.commit()
    return {"granted": granted, "stripped": stripped}
