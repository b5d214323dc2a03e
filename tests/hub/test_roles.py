"""Operators and stewards on a real hub: no way into a researcher's server or tokens, before or after
trying to raise their own rights; and what an operator must still be able to do.

The deployment settings name operator `oscar` and steward `sally` of dataset `lung-ct`; `alice` is a researcher.
Each gets a token the way a person does: log in on the login page, then ask the hub for a token
(it holds everything its owner may do). A local single-user server stands in for the docker
sandbox, so alice's server can really run: what is under test is who may reach it, not the sandbox.
The test hub also holds a group with full server access, `test-helpdesk`: our configuration has
none, and it is the prize an escalation would try to join.
"""

import os

import pytest
import requests

from imaging_workbench.deployment import validate_settings, with_defaults
from imaging_workbench.stack import STACK_ENV, stack_id

from ..hubtools import log_in
from ..waiting import wait_for

pytestmark = pytest.mark.hub

PEOPLE = ["oscar", "sally"]  # the operator and the steward
REFUSED = (403, 404)  # 404 where the hub hides whether the thing exists

TEST_CONFIG = '''
# A local single-user server stands in for the docker sandbox.
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {home!r}
c.Spawner.args = {args!r}
c.Spawner.environment = {{{stack_env!r}: {stack!r}}}  # the stack's mark, so stop_hub finds a leftover
# What an escalation would try to join: a group whose members may open anyone's server.
c.JupyterHub.load_groups.update({{"test-helpdesk": {{"users": []}}}})
c.JupyterHub.load_roles.append({{"name": "test-helpdesk", "groups": ["test-helpdesk"],
                                 "scopes": ["access:servers", "tokens", "admin:users"]}})
'''


@pytest.fixture(scope="module")
def hub_settings(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("hub-roles")
    overrides = {"state_dir": str(workdir / "state"),
                 "roles": {"operators": ["oscar"], "stewards": {"lung-ct": ["sally"]}}}
    return workdir, validate_settings(with_defaults(overrides))


@pytest.fixture(scope="module")
def hub_extra_config(hub_settings):
    workdir, settings = hub_settings
    return TEST_CONFIG.format(home=str(workdir / "home" / "{username}"), stack_env=STACK_ENV, stack=stack_id(settings),
                              args=["--allow-root"] if os.geteuid() == 0 else [])


@pytest.fixture(scope="module")
def tokens(hub, logins):
    """name -> an API token asked for after logging in, with the owner's full rights."""
    found = {}
    for name in ["alice", *PEOPLE]:
        http, response = log_in(hub.url, name, logins[name])
        assert response.status_code == 302, hub.log_tail()
        r = http.post(f"{hub.url}/hub/api/users/{name}/tokens", json={"note": "test_roles"},
                      headers={"X-XSRFToken": http.cookies["_xsrf"]}, timeout=30)
        assert r.status_code == 201, r.text
        found[name] = r.json()["token"]
    return found


def _get(hub, path, token):
    """GET through the proxy with a token, following the hub's redirects (/user/... to /hub/user/...)."""
    return requests.get(f"{hub.url}{path}", headers={"Authorization": f"token {token}"}, timeout=30)


def reaching(scopes: list[str], me: str) -> list[str]:
    """The scopes (as the hub expands them) that reach another user's server, tokens or identity."""
    own = (f"user={me}", f"server={me}/")
    reaching = {"access:servers", "shares", "tokens", "admin:users", "admin:auth_state", "groups", "admin:services",
                "proxy"}
    return [s for s in scopes if s.partition("!")[0] in reaching and s.partition("!")[2] not in own]


def assert_kept_out(hub, me: str, token: str):
    """Everything that would let `me` into alice's server or tokens is refused."""
    whoami = hub.api("GET", "/user", token).json()
    assert whoami["name"] == me and whoami["admin"] is False
    assert reaching(whoami["scopes"], me) == [], whoami["scopes"]
    refusals = {
        # through the proxy: the hub answers for a server that is not running, the server itself otherwise
        "GET /user/alice/api/status": _get(hub, "/user/alice/api/status", token).status_code,
        "GET alice's tokens": hub.api("GET", "/users/alice/tokens", token).status_code,
        "POST a token for alice": hub.api("POST", "/users/alice/tokens", token, json={"note": "x"}).status_code,
        "POST admin-access to alice's server": hub.api("POST", "/users/alice/admin-access", token).status_code,
    }
    assert all(code in REFUSED for code in refusals.values()), refusals


def test_operator_and_steward_have_their_roles_and_are_not_hub_admins(hub, tokens):
    users = {u["name"]: u for u in hub.api("GET", "/users").json()}
    assert users["oscar"]["admin"] is False and "workbench-operator" in users["oscar"]["roles"]
    assert users["sally"]["admin"] is False and "workbench-steward" in users["sally"]["roles"]
    assert "workbench-operators" in users["oscar"]["groups"] and "workbench-stewards" in users["sally"]["groups"]


def test_the_researcher_reaches_her_own_server(hub, tokens):
    """The control: alice's own token gets past the hub (424: her server is not running), not 404."""
    assert _get(hub, "/user/alice/api/status", tokens["alice"]).status_code == 424


@pytest.mark.parametrize("me", PEOPLE)
def test_operator_and_steward_cannot_reach_a_researchers_server_or_tokens(hub, tokens, me):
    assert_kept_out(hub, me, tokens[me])


# Each names only things of its own (`{me}`, a fresh `{victim}` account), so that an escalation
# that succeeds on a broken build fails its own test and leaves the others' hub as it was.
# The status is the hub's refusal: 403 for a missing scope, 400 for a token asking for more
# than its owner holds.
ESCALATIONS = {
    "join a group with server access": ("POST", "/groups/test-helpdesk/users", {"users": ["{me}"]}, 403),
    "join the operators' group": ("POST", "/groups/workbench-operators/users", {"users": ["{me}"]}, 403),
    "create a group of their own": ("POST", "/groups/{me}-group", {"users": ["{me}"]}, 403),
    "set their own admin flag": ("PATCH", "/users/{me}", {"admin": True}, 403),
    "create an admin account": ("POST", "/users/{me}-admin", {"admin": True}, 403),
    "rename a researcher to take over their name": ("PATCH", "/users/{victim}", {"name": "{victim}-old"}, 403),
    "mint a token for the researcher": ("POST", "/users/alice/tokens", {"scopes": ["access:servers!user=alice"]},
                                        403),
    "give their own token more than they hold": ("POST", "/users/{me}/tokens", {"scopes": ["access:servers"]}, 400),
    "register a service that asks for server access": (
        "POST", "/services/{me}-helper", {"url": "http://127.0.0.1:9", "oauth_no_confirm": True,
                                          "oauth_client_allowed_scopes": ["access:servers!user"]}, 403),
}


def _fill(value, **names):
    """`value` with {me} and {victim} filled in, in every string inside it."""
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, (list, tuple)):
        return type(value)(_fill(v, **names) for v in value)
    if isinstance(value, dict):
        return {k: _fill(v, **names) for k, v in value.items()}
    return value


@pytest.mark.parametrize("attempt", list(ESCALATIONS))
@pytest.mark.parametrize("me", PEOPLE)
def test_escalation_is_refused_and_changes_nothing(hub, tokens, me, attempt):
    victim = f"victim-{me}-{list(ESCALATIONS).index(attempt)}"
    assert hub.api("POST", f"/users/{victim}").status_code == 201
    method, path, body, refusal = _fill(ESCALATIONS[attempt], me=me, victim=victim)
    groups = hub.api("GET", f"/users/{me}").json()["groups"]
    response = hub.api(method, path, tokens[me], json=body)
    assert response.status_code == refusal, (attempt, response.status_code, response.text)
    assert hub.api("GET", f"/users/{me}").json()["groups"] == groups
    assert hub.api("GET", f"/users/{me}-admin").status_code == 404 and hub.api("GET", f"/users/{victim}").ok
    assert f"{me}-helper" not in hub.api("GET", "/services").json()
    assert_kept_out(hub, me, tokens[me])  # and everything is still refused afterwards


def test_steward_cannot_start_or_stop_a_researchers_server(hub, tokens):
    assert hub.api("POST", "/users/alice/server", tokens["sally"]).status_code in REFUSED
    assert hub.api("DELETE", "/users/alice/server", tokens["sally"]).status_code in REFUSED


def test_operator_lists_users_and_reads_services(hub, tokens):
    names = {u["name"] for u in hub.api("GET", "/users", tokens["oscar"]).json()}
    assert {"alice", "oscar", "sally"} <= names
    services = hub.api("GET", "/services", tokens["oscar"]).json()
    assert {"workbench-access", "idle-culler"} <= set(services)


def _running(hub, name) -> bool:
    server = hub.api("GET", f"/users/{name}").json()["servers"].get("")
    return bool(server and server["ready"])


def test_operator_starts_and_stops_a_researchers_server_but_cannot_open_it(hub, tokens, logins):
    started = hub.api("POST", "/users/alice/server", tokens["oscar"])
    assert started.status_code in (201, 202), started.text
    try:
        wait_for(lambda: _running(hub, "alice"), 60, what="alice's server to be ready")
        assert _get(hub, "/user/alice/api/status", tokens["alice"]).status_code == 200  # it answers its owner
        for me in PEOPLE:
            assert _get(hub, "/user/alice/api/status", tokens[me]).status_code == 403, me
            assert_kept_out(hub, me, tokens[me])
        # in a browser, logged in: the hub refuses to hand the operator a login to alice's server
        http, _ = log_in(hub.url, "oscar", logins["oscar"])
        page = http.get(f"{hub.url}/user/alice/lab", timeout=30)
        assert page.status_code == 403 and "/hub/api/oauth2/authorize" in page.url, (page.url, page.status_code)
    finally:
        stopped = hub.api("DELETE", "/users/alice/server", tokens["oscar"])
    assert stopped.status_code in (202, 204), stopped.text
    wait_for(lambda: not hub.api("GET", "/users/alice").json()["servers"], 60, what="alice's server to stop")
