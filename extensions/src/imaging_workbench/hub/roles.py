"""Who may do what: the workbench's roles, their JupyterHub scopes, and where their members come from.

Every account is a researcher. The deployment settings' `roles:` section names the people with
more to do: operators, data stewards (per dataset, or "*" for every dataset), output checkers and
clinicians; under OpenID Connect login the provider's groups give the same roles through the
settings' `oidc.role_groups` (`roles_from_groups`); training sessions (from the catalog) name
their instructors, who get no hub role: each learner's session server is shared with them. A "roles section" has the shape of `roles:`, and `merged` unions them.
This module turns the settings' section into JupyterHub role definitions
(`c.JupyterHub.load_roles`) and hub groups (`c.JupyterHub.load_groups`), and answers the portal's
questions (`is_steward`, `may_review`) for whatever section it is given (the portal passes the
settings' merged with the provider's, catalog/idp_roles.py). Everything else reads the
declarations here instead of spelling a scope or a group name itself.

Membership comes from configuration and, under OIDC, from the workbench's own login code:
- roles are assigned to users by name in `load_roles`, which JupyterHub applies exactly at every
  start: a name taken out of the settings loses its role at the next start;
- the roles and groups the provider's groups give are granted and stripped by hub/role_sync.py at
  every login and refresh (hub/oidc.py), never stripping what the settings give;
- the hub groups (`workbench-operators`, ...) list the same people for the admin page and, later,
  as targets of dashboard shares. JupyterHub's `load_groups` only ever adds members, so no role is
  given through a group: a stale member gains nothing from it;
- `Authenticator.manage_groups` and `manage_roles` stay off: either would switch off the group
  API that training sessions use, and `manage_roles` refuses role assignments from `load_roles`.

Nobody is a JupyterHub admin: the admin role opens every user's server and mints tokens for
anyone, so it is pinned to an empty list of users, which also takes it from accounts an earlier
version made admin. There is no break-glass setting: whoever can write a file under
hub_config/jupyterhub_config.d/ already controls the hub, and for an emergency that file can set
`c.Authenticator.admin_users` for one start; a deployment setting would only add a standing way in.

What no role here gives anyone (`reaching_scopes` finds it): another user's server (`access:servers`
beyond the `!user` filter, `shares`), tokens for others (`tokens`), the admin flag, renaming a user
or reading their login state (`admin:users`), group membership (`groups`; joining a group takes
on its roles), services created at run time (`admin:services`: such a service can ask users for
their own servers' scopes through OAuth) and the proxy's routes (`proxy`).
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Role:
    """One kind of person: what they may do in the hub, and where the list of them comes from.

    `hub_role` is the JupyterHub role that carries `scopes` (None: the role needs no hub scopes of
    its own); `group` is the hub group that lists the members (None: no group); `settings_key` is
    the key of the deployment settings' `roles:` section that names them (None: not named there).
    """

    name: str
    hub_role: str | None
    group: str | None
    scopes: tuple[str, ...]
    settings_key: str | None
    members_from: str
    does: str


RESEARCHER = Role(
    "researcher", "user", None, ("self", "access:services"), None,
    "every account: JupyterHub gives each user its `user` role",
    "their own server and tokens; the workbench's services (portal, federation)")
OPERATOR = Role(
    "operator", "workbench-operator", "workbench-operators",
    ("admin-ui",                      # the admin page; each action on it needs its own scope below
     "list:users", "read:users",      # names, groups, last activity: never tokens or login state
     "delete:users",                  # remove a departed account from the hub (not its catalog entry)
     "admin:servers",                 # start, stop and delete servers; no access into them
     "list:services", "read:services",  # services' status; they are defined in configuration only
     "list:groups", "read:groups", "read:roles", "read:hub", "read:metrics"),
    "operators", "the settings' roles.operators",
    "users, servers' lifecycle and services; never inside a researcher's server")
STEWARD = Role(
    "steward", "workbench-steward", "workbench-stewards", ("list:users",), "stewards",
    "the settings' roles.stewards: dataset id (or \"*\" for all) -> names",
    "grants, reviews and audit of their datasets, in the portal; no server access")
OUTPUT_CHECKER = Role(
    "output_checker", "workbench-output-checker", "workbench-output-checkers", ("list:users",),
    "output_checkers", "the settings' roles.output_checkers",
    "airlock reviews, in the portal; no server access")
# No hub role or group: tools are reviewed with the `workbench tools` CLI, which reads the settings.
TOOL_REVIEWER = Role(
    "tool_reviewer", None, None, (), "tool_reviewers", "the settings' roles.tool_reviewers",
    "approve and retire AI tools in the catalogue (never one they added); no server access")
CLINICIAN = Role(
    "clinician", None, "workbench-clinicians", (), "clinicians", "the settings' roles.clinicians",
    "open the dashboards shared with their group (the shares give the access, not a role)")
INSTRUCTOR = Role(
    "instructor", None, None, (), None,
    "a training session's instructors, from the catalog (catalog/training_sessions.py)",
    "open their learners' session-NAME servers, each shared with them at pre-spawn (a JupyterHub share: "
    "access to that one server, which mounts only the teaching dataset); no other server")

ROLES = (RESEARCHER, OPERATOR, STEWARD, OUTPUT_CHECKER, TOOL_REVIEWER, CLINICIAN, INSTRUCTOR)
# The workbench-access service's own scope under OIDC login: ask the provider about a user again.
AUTH_REFRESH_SCOPE = "custom:workbench:auth-refresh"
CUSTOM_SCOPES = {AUTH_REFRESH_SCOPE: {
    "description": "Ask the identity provider about a user again, and apply what it says now."}}
ANY_DATASET = "*"
REVIEW_KINDS = ("access", "output")

# Scopes that reach past their holder into someone else's work or identity; see the docstring.
_REACHING = frozenset({"access:servers", "shares", "tokens", "admin:users", "admin:auth_state", "groups",
                       "admin:groups", "admin:services", "proxy"})
_OWN_FILTERS = ("user", "server")  # `!user` and `!server` mean the holder's own
_SESSION_ID = re.compile(r"[a-z0-9](?:[a-z0-9._~-]*[a-z0-9])?")


def normalize(name: str) -> str:
    """A name as the hub spells it: JupyterHub's default `normalize_username` lowercases."""
    return name.lower()


def members(settings: dict, role: Role) -> list[str]:
    """The people `settings` (the deployment settings' `roles:` section) give `role`, in order.

    Stewards are the union over all datasets. Roles not named in the settings (researcher,
    instructor) give an empty list: their members come from elsewhere."""
    if role.settings_key is None:
        return []
    named = settings.get(role.settings_key) or ()
    if role is STEWARD:
        named = [name for names in dict(named).values() for name in names]
    return list(dict.fromkeys(normalize(name) for name in named))


def stewards_of(settings: dict, dataset_id: str) -> set[str]:
    """Who stewards `dataset_id`: its own stewards and those of every dataset ("*")."""
    stewards = settings.get("stewards") or {}
    return {normalize(n) for key in (dataset_id, ANY_DATASET) for n in stewards.get(key, [])}


def is_steward(settings: dict, name: str, dataset_id: str) -> bool:
    """Whether `name` may grant, review and audit `dataset_id` (the portal asks before each)."""
    return normalize(name) in stewards_of(settings, dataset_id)


def roles_of(settings: dict, name: str) -> list[str]:
    """The workbench roles of `name` from the settings, researcher first (every account is one)."""
    name = normalize(name)
    return [RESEARCHER.name] + [role.name for role in ROLES if name in members(settings, role)]


def named_people(settings: dict) -> list[str]:
    """Everyone the settings name in any role, each once."""
    return list(dict.fromkeys(name for role in ROLES for name in members(settings, role)))


def merged(*sections: dict) -> dict:
    """One `roles:` section holding every name of `sections` (e.g. the deployment settings' and
    those the identity provider's groups gave), each name once, in order."""
    out = {"operators": [], "stewards": {}, "output_checkers": [], "tool_reviewers": [], "clinicians": []}
    for section in sections:
        for key, names in (section or {}).items():
            if key == STEWARD.settings_key:
                for dataset_id, stewards in dict(names or {}).items():
                    out[key][dataset_id] = list(dict.fromkeys([*out[key].get(dataset_id, []), *stewards]))
            else:
                out[key] = list(dict.fromkeys([*out.get(key, []), *(names or ())]))
    return out


def roles_from_groups(role_groups: dict, name: str, groups: Iterable[str]) -> dict:
    """The `roles:` section that the identity provider's `groups` give `name`.

    Args:
        role_groups: the deployment settings' `oidc.role_groups`, shaped like the `roles:` section
            with IdP group names where the names of people would be: {"operators": [groups],
            "stewards": {dataset id or "*": [groups]}, "output_checkers": [...], "tool_reviewers": [...],
            "clinicians": [...]}.
    """
    groups, name = set(groups), normalize(name)
    section = {}
    for key, mapped in (role_groups or {}).items():
        if key == STEWARD.settings_key:
            held = {dataset_id: [name] for dataset_id, gs in dict(mapped or {}).items() if groups & set(gs)}
            if held:
                section[key] = held
        elif groups & set(mapped or ()):
            section[key] = [name]
    return section


def hub_roles_of(settings: dict, name: str) -> tuple[list[str], list[str]]:
    """The JupyterHub roles (beyond `user`) and hub groups `settings` give `name`: (roles, groups)."""
    held = [role for role in ROLES if role.settings_key and normalize(name) in members(settings, role)]
    return [r.hub_role for r in held if r.hub_role], [r.group for r in held if r.group]


def hub_roles(settings: dict) -> list[dict]:
    """JupyterHub role definitions for `c.JupyterHub.load_roles`: the people's roles with their
    members by name (applied exactly at each start), the `user` role every account holds, and
    the `admin` role pinned to nobody."""
    definitions = [
        # No `users` key: JupyterHub keeps giving every user this role.
        {"name": RESEARCHER.hub_role, "scopes": list(RESEARCHER.scopes)},
        {"name": "admin", "users": []},
    ]
    for role in ROLES:
        if role.hub_role and role.settings_key:
            definitions.append({"name": role.hub_role, "description": role.does,
                                "scopes": list(role.scopes), "users": members(settings, role)})
    return definitions


def hub_groups(settings: dict) -> dict[str, dict]:
    """Hub groups for `c.JupyterHub.load_groups`: one per role named in the settings."""
    return {role.group: {"users": members(settings, role)} for role in ROLES if role.group and role.settings_key}


def _checked_session_id(session_id: str) -> str:
    if not isinstance(session_id, str) or not _SESSION_ID.fullmatch(session_id):
        raise ValueError(f"training session id {session_id!r} must be lowercase letters, digits and "
                         "'-', '.', '_' or '~', starting and ending with a letter or digit")
    return session_id


def session_group(session_id: str) -> str:
    """The hub group of a training session's participants."""
    return f"group-session-{_checked_session_id(session_id)}"


def reaching_scopes(scopes: Iterable[str]) -> list[str]:
    """The scopes in `scopes` that reach past their holder: into another user's server, tokens,
    identity or group memberships, or into services and the proxy (see the module docstring).

    A scope filtered to the holder (`!user`, `!server`) and the `self` metascope do not reach;
    any other filter (`!group=...`, `!user=alice`) does, when its scope is one of those."""
    from jupyterhub.scopes import scope_definitions

    def expanded(scope):
        found, todo = set(), [scope]
        while todo:
            s = todo.pop()
            if s not in found:
                found.add(s)
                todo += scope_definitions.get(s, {}).get("subscopes", [])
        return found

    reaching = []
    for scope in scopes:
        base, _, where = scope.partition("!")
        if base != "self" and where not in _OWN_FILTERS and expanded(base) & _REACHING:
            reaching.append(scope)
    return reaching


def review_refusal(settings: dict, reviewer: str, requester: str, kind: str, dataset_id: str | None = None,
                   earlier_reviewers: Iterable[str] = ()) -> str | None:
    """Why `reviewer` may not review `requester`'s request, or None when they may.

    Args:
        settings: the deployment settings' `roles:` section.
        kind: "access" (a dataset access request: the dataset's stewards review it) or "output"
            (an airlock release: output checkers review it).
        dataset_id: the dataset an access request is for.
        earlier_reviewers: who has already reviewed this request; a second review needs a
            second person.

    Raises:
        ValueError: an unknown kind, or an access review without a dataset id.
    """
    if kind not in REVIEW_KINDS:
        raise ValueError(f"review kind {kind!r} is not one of {', '.join(REVIEW_KINDS)}")
    if kind == "access" and not dataset_id:
        raise ValueError("an access review needs the dataset id the request is for")
    reviewer, requester = normalize(reviewer), normalize(requester)
    if reviewer == requester:
        return f"{reviewer} cannot review their own request"
    if reviewer in {normalize(n) for n in earlier_reviewers}:
        return f"{reviewer} has already reviewed this request: the next review needs someone else"
    if kind == "access" and reviewer not in stewards_of(settings, dataset_id):
        return f"{reviewer} is not a steward of dataset '{dataset_id}'"
    if kind == "output" and reviewer not in members(settings, OUTPUT_CHECKER):
        return f"{reviewer} is not an output checker"
    return None


def may_review(settings: dict, reviewer: str, requester: str, kind: str, dataset_id: str | None = None,
               earlier_reviewers: Iterable[str] = ()) -> bool:
    """Whether `reviewer` may review `requester`'s request; `review_refusal` says why not."""
    return review_refusal(settings, reviewer, requester, kind, dataset_id, earlier_reviewers) is None
