"""Who may do what (hub/roles.py): the roles' scopes, membership from the settings, the hub's
configuration they give, and who may review whose request. No hub: a Config and asserts."""

import pytest
from jupyterhub.scopes import scope_definitions
from traitlets.config import Config

from imaging_workbench.hub import roles
from imaging_workbench.hub.configurer import configure

SETTINGS = {"operators": ["oscar"], "stewards": {"lung-ct": ["sally", "Sam"], "*": ["stella"]},
            "output_checkers": ["otto", "olga"], "clinicians": ["clara"]}


@pytest.fixture
def hub_config(settings):
    c = Config()
    configure(c, {**settings, "roles": SETTINGS})
    return c


def _role(c, name):
    [role] = [r for r in c.JupyterHub.load_roles if r["name"] == name]
    return role


def test_nobody_is_made_a_hub_admin(hub_config):
    assert hub_config.Authenticator.admin_users == set()
    # pinned to nobody, so accounts an earlier version made admin lose it at the next start
    assert _role(hub_config, "admin") == {"name": "admin", "users": []}


def test_membership_is_synced_by_configuration_not_by_the_authenticator(hub_config):
    assert hub_config.Authenticator.manage_groups is False and hub_config.Authenticator.manage_roles is False
    assert _role(hub_config, "workbench-operator")["users"] == ["oscar"]
    assert _role(hub_config, "workbench-steward")["users"] == ["sally", "sam", "stella"]
    assert _role(hub_config, "workbench-output-checker")["users"] == ["otto", "olga"]
    assert hub_config.JupyterHub.load_groups == {
        "workbench-operators": {"users": ["oscar"]}, "workbench-stewards": {"users": ["sally", "sam", "stella"]},
        "workbench-output-checkers": {"users": ["otto", "olga"]}, "workbench-clinicians": {"users": ["clara"]}}
    # a group's members get no role through it: load_groups only ever adds members
    assert not any(r.get("groups") for r in hub_config.JupyterHub.load_roles)


def test_users_and_services_keep_their_roles(hub_config):
    assert _role(hub_config, "user") == {"name": "user", "scopes": ["self", "access:services"]}
    assert "users" not in _role(hub_config, "user")  # every account keeps it
    assert _role(hub_config, "workbench-access")["services"] == ["workbench-access"]
    assert "delete:servers" in _role(hub_config, "idle-culler")["scopes"]


def test_no_role_for_people_reaches_into_another_users_server_or_tokens(hub_config):
    people = [r for r in hub_config.JupyterHub.load_roles if "services" not in r]
    assert {r["name"] for r in people} == {"user", "admin", "workbench-operator", "workbench-steward",
                                           "workbench-output-checker"}
    for role in people:
        assert roles.reaching_scopes(role.get("scopes", [])) == [], role["name"]
    operator = _role(hub_config, "workbench-operator")["scopes"]
    assert "admin:servers" in operator and "list:users" in operator and "read:services" in operator
    assert not {"admin:users", "tokens", "access:servers", "admin:groups", "groups", "admin:services"} & set(operator)


def test_reaching_scopes_are_found_through_their_subscopes_and_filters():
    assert roles.reaching_scopes(["self", "access:servers!user", "tokens!user", "read:users", "admin:servers"]) == []
    assert roles.reaching_scopes(["shares", "admin:users", "admin:groups", "groups!group=workbench-operators",
                                  "access:servers!user=alice", "access:servers!group=clinic"]) == [
        "shares", "admin:users", "admin:groups", "groups!group=workbench-operators", "access:servers!user=alice",
        "access:servers!group=clinic"]


def test_every_declared_scope_exists_in_jupyterhub():
    for role in roles.ROLES:
        for scope in role.scopes:
            assert scope == "self" or scope.partition("!")[0] in scope_definitions, (role.name, scope)


def test_a_session_group_carries_the_session_id():
    assert roles.session_group("ct-course-2025") == "group-session-ct-course-2025"


@pytest.mark.parametrize("session_id", ["", "CT", "-x", "a/b", "x-", 7])
def test_a_session_id_that_cannot_name_a_hub_group_is_refused(session_id):
    with pytest.raises(ValueError, match="training session id"):
        roles.session_group(session_id)


def test_who_is_who_from_the_settings():
    assert roles.roles_of(SETTINGS, "Oscar") == ["researcher", "operator"]
    assert roles.roles_of(SETTINGS, "alice") == ["researcher"]
    assert roles.named_people(SETTINGS) == ["oscar", "sally", "sam", "stella", "otto", "olga", "clara"]
    assert roles.stewards_of(SETTINGS, "lung-ct") == {"sally", "sam", "stella"}
    assert roles.stewards_of(SETTINGS, "liver-mr") == {"stella"}  # "*" stewards every dataset
    assert roles.is_steward(SETTINGS, "Sally", "lung-ct") and not roles.is_steward(SETTINGS, "sally", "liver-mr")
    assert roles.members({"operators": []}, roles.STEWARD) == []  # a section without stewards


def test_a_steward_reviews_access_to_their_datasets_but_never_their_own_request():
    assert roles.may_review(SETTINGS, "sally", "alice", "access", "lung-ct")
    assert roles.may_review(SETTINGS, "stella", "alice", "access", "liver-mr")
    assert roles.review_refusal(SETTINGS, "sally", "alice", "access", "liver-mr") == \
        "sally is not a steward of dataset 'liver-mr'"
    assert roles.review_refusal(SETTINGS, "sally", "Sally", "access", "lung-ct") == \
        "sally cannot review their own request"
    assert not roles.may_review(SETTINGS, "oscar", "alice", "access", "lung-ct")  # operators are not stewards


def test_airlock_reviews_need_an_output_checker_other_than_the_requester_and_the_first_checker():
    assert roles.may_review(SETTINGS, "otto", "alice", "output")
    assert not roles.may_review(SETTINGS, "otto", "otto", "output")
    assert roles.review_refusal(SETTINGS, "otto", "alice", "output", earlier_reviewers=["Otto"]) == \
        "otto has already reviewed this request: the next review needs someone else"
    assert roles.may_review(SETTINGS, "olga", "alice", "output", earlier_reviewers=["otto"])
    assert roles.review_refusal(SETTINGS, "sally", "alice", "output") == "sally is not an output checker"


@pytest.mark.parametrize("kind, dataset_id, message", [("grant", "lung-ct", "review kind 'grant'"),
                                                       ("access", None, "needs the dataset id")])
def test_a_review_question_that_makes_no_sense_is_an_error(kind, dataset_id, message):
    with pytest.raises(ValueError, match=message):
        roles.may_review(SETTINGS, "sally", "alice", kind, dataset_id)


ROLE_GROUPS = {"operators": ["wb-ops"], "stewards": {"lung-ct": ["lung-stewards"], "*": ["data-office"]},
               "output_checkers": ["checkers"], "clinicians": []}


def test_the_providers_groups_give_roles_through_the_mapping():
    assert roles.roles_from_groups(ROLE_GROUPS, "Petra", ["checkers", "lung-stewards", "choir"]) == {
        "stewards": {"lung-ct": ["petra"]}, "output_checkers": ["petra"]}
    assert roles.roles_from_groups(ROLE_GROUPS, "ann", ["data-office", "wb-ops"]) == {
        "operators": ["ann"], "stewards": {"*": ["ann"]}}
    assert roles.roles_from_groups(ROLE_GROUPS, "bob", ["choir"]) == {}
    held = roles.merged(SETTINGS, roles.roles_from_groups(ROLE_GROUPS, "petra", ["lung-stewards"]))
    assert roles.stewards_of(held, "lung-ct") == {"sally", "sam", "stella", "petra"}
    assert roles.is_steward(held, "petra", "lung-ct") and not roles.is_steward(held, "petra", "colon-ct")
    assert roles.hub_roles_of(held, "petra") == (["workbench-steward"], ["workbench-stewards"])
    assert roles.roles_of(held, "oscar") == ["researcher", "operator"]  # the settings' names stay


def test_oidc_login_is_configured_from_the_settings(settings, tmp_path):
    secret = tmp_path / "secret"
    c = Config()
    configure(c, {**settings, "hub": {**settings["hub"], "authenticator": "oidc"},
                  "oidc": {**settings["oidc"], "issuer": "https://login.example.org/realms/eu", "client_id": "wb",
                           "client_secret_file": str(secret), "login_groups": ["eu-imaging"],
                           "role_groups": ROLE_GROUPS}})
    assert c.JupyterHub.authenticator_class == "workbench-oidc"
    a = c.WorkbenchOIDCAuthenticator
    assert (a.issuer, a.client_secret_file, a.login_groups) == ("https://login.example.org/realms/eu", str(secret),
                                                                {"eu-imaging"})
    assert a.role_groups == ROLE_GROUPS and a.username_claim == "preferred_username"
    keys = c.CryptKeeper["keys"]  # (Config objects are dicts: .keys is their method)
    assert len(keys) == 1 and len(keys[0]) == 32  # auth_state is encrypted, with a key of the state dir
    access = _role(c, "workbench-access")
    assert roles.AUTH_REFRESH_SCOPE in access["scopes"] and roles.AUTH_REFRESH_SCOPE in c.JupyterHub.custom_scopes
    [service] = [s for s in c.JupyterHub.services if s["name"] == "workbench-access"]
    assert "--refresh-logins" in service["command"]
    # Still nobody is an admin, and the roles still come from configuration plus the login.
    assert c.Authenticator.admin_users == set() and c.Authenticator.manage_roles is False
