"""The roles identity provider groups give users, on SQLite and PostgreSQL: each recording replaces
the user's stored roles, audits once what changed (nothing when nothing did), refuses a section
about anyone else, and merges with the deployment settings' names."""

import pytest
from sqlalchemy import select

from imaging_workbench.catalog import accounts, audit
from imaging_workbench.catalog import idp_roles as idp
from imaging_workbench.catalog.models import AuditEvent, IdpRole
from imaging_workbench.errors import NotFound
from imaging_workbench.hub import roles

pytestmark = pytest.mark.usefixtures("database_url")

GROUPS = {"operators": ["wb-ops"], "stewards": {"lung-ct": ["lung-team"], "liver-mr": ["liver-team"], "*": ["dsa"]},
          "output_checkers": ["checkers"], "clinicians": ["clinic"]}


@pytest.fixture
def catalog(ctx):
    """Accounts alice and bob, as their first logins made them."""
    with ctx.session() as s:
        for name in ("alice", "bob"):
            accounts.add_account(s, "hub", name)
    return ctx


def record(ctx, name, section):
    with ctx.session() as s:
        return idp.record_idp_roles(s, "hub", name, section)


def role_audits(ctx) -> list[tuple]:
    """(actor, subject, details) of every "roles.changed" row, oldest first."""
    with ctx.session() as s:
        return [(e.actor, e.subject, e.details) for e in audit.events(s, action="roles.changed")]


def stored_rows(ctx) -> list[tuple]:
    with ctx.session() as s:
        return sorted((r.account, r.role, r.dataset or "") for r in s.scalars(select(IdpRole)))


def section_of(ctx, name) -> dict:
    with ctx.session() as s:
        return idp.idp_section_of(s, name)


def test_the_role_keys_are_those_of_the_settings_roles_section():
    assert idp.ROLE_KEYS == tuple(r.settings_key for r in roles.ROLES if r.settings_key)


def test_a_first_recording_stores_the_roles_and_audits_them_once_readably(catalog):
    section = roles.roles_from_groups(GROUPS, "Alice", ["wb-ops", "checkers", "unrelated"])
    assert section == {"operators": ["alice"], "output_checkers": ["alice"]}

    change = record(catalog, "Alice", section)

    assert change == {"added": ["operator", "output checker"], "removed": []}
    assert stored_rows(catalog) == [("alice", "operators", ""), ("alice", "output_checkers", "")]
    assert section_of(catalog, "alice") == section
    assert role_audits(catalog) == [("hub", "alice", {"added": ["operator", "output checker"], "removed": [],
                                                      "source": "identity provider"})]


def test_recording_the_same_roles_again_changes_and_audits_nothing(catalog):
    section = {"operators": ["alice"], "stewards": {"lung-ct": ["alice"]}}
    record(catalog, "alice", section)
    with catalog.session() as s:
        recorded_at = {r.role: r.recorded_at for r in s.scalars(select(IdpRole))}
        n_events = len(audit.events(s))

    assert record(catalog, "alice", section) == {"added": [], "removed": []}

    with catalog.session() as s:
        assert {r.role: r.recorded_at for r in s.scalars(select(IdpRole))} == recorded_at
        assert len(audit.events(s)) == n_events
    assert len(role_audits(catalog)) == 1


def test_a_role_the_groups_no_longer_give_is_removed_and_audited_as_removed(catalog):
    record(catalog, "alice", {"operators": ["alice"], "clinicians": ["alice"]})

    change = record(catalog, "alice", {"clinicians": ["alice"]})

    assert change == {"added": [], "removed": ["operator"]}
    assert stored_rows(catalog) == [("alice", "clinicians", "")]
    assert role_audits(catalog)[-1] == ("hub", "alice", {"added": [], "removed": ["operator"],
                                                         "source": "identity provider"})

    # An empty list under a key (as the settings' section may have) gives nobody the role.
    assert record(catalog, "alice", {"clinicians": [], "stewards": {"lung-ct": []}}) == {
        "added": [], "removed": ["clinician"]}
    assert stored_rows(catalog) == []


def test_stewards_of_two_datasets_and_of_every_dataset(catalog):
    section = roles.roles_from_groups(GROUPS, "bob", ["lung-team", "liver-team", "dsa"])

    assert record(catalog, "bob", section) == {
        "added": ["steward of every dataset", "steward of liver-mr", "steward of lung-ct"], "removed": []}
    assert section_of(catalog, "bob") == {"stewards": {"*": ["bob"], "liver-mr": ["bob"], "lung-ct": ["bob"]}}

    change = record(catalog, "bob", {"stewards": {"lung-ct": ["bob"], "brain-mr": ["bob"]}})

    assert change == {"added": ["steward of brain-mr"],
                      "removed": ["steward of every dataset", "steward of liver-mr"]}
    assert stored_rows(catalog) == [("bob", "stewards", "brain-mr"), ("bob", "stewards", "lung-ct")]
    with catalog.session() as s:
        effective = idp.effective_roles(s, {})
    assert roles.stewards_of(effective, "lung-ct") == {"bob"}
    assert roles.stewards_of(effective, "liver-mr") == set()


def test_forgetting_removes_every_role_and_audits_it(catalog):
    record(catalog, "alice", {"operators": ["alice"], "stewards": {"*": ["alice"]}})
    with catalog.session() as s:
        change = idp.forget_idp_roles(s, "admin", "alice")
    assert change == {"added": [], "removed": ["operator", "steward of every dataset"]}
    assert stored_rows(catalog) == []
    assert role_audits(catalog)[-1][:2] == ("admin", "alice")


def test_the_effective_roles_are_the_settings_names_and_the_stored_ones_together(catalog):
    settings_roles = {"operators": ["carol", "alice"], "stewards": {"lung-ct": ["dave"]}, "output_checkers": [],
                      "clinicians": []}
    record(catalog, "alice", {})  # the groups give alice nothing: the settings still make her an operator
    record(catalog, "bob", {"operators": ["bob"], "stewards": {"lung-ct": ["bob"]}, "clinicians": ["bob"]})

    with catalog.session() as s:
        assert idp.idp_section(s) == {"operators": ["bob"], "stewards": {"lung-ct": ["bob"]}, "clinicians": ["bob"]}
        effective = idp.effective_roles(s, settings_roles)

    assert effective == {"operators": ["carol", "alice", "bob"], "stewards": {"lung-ct": ["dave", "bob"]},
                         "output_checkers": [], "tool_reviewers": [], "clinicians": ["bob"]}
    assert roles.roles_of(effective, "alice") == ["researcher", "operator"]
    assert roles.roles_of(effective, "bob") == ["researcher", "operator", "steward", "clinician"]


@pytest.mark.parametrize("section, message", [
    ({"operators": ["alice", "bob"]}, r"roles of alice name bob under 'operators': a user's section may name only"),
    ({"stewards": {"lung-ct": ["Bob"]}}, r"roles of alice name bob under 'stewards'"),
    ({"admins": ["alice"]}, r"unknown role key 'admins' .* expected one of operators, stewards, output_checkers, "
                            r"tool_reviewers, clinicians"),
    ({"stewards": {"": ["alice"]}}, r"steward of '': expected a dataset id or '\*'"),
])
def test_a_section_about_anyone_else_or_with_an_unknown_key_is_refused_and_writes_nothing(catalog, section,
                                                                                           message):
    record(catalog, "alice", {"clinicians": ["alice"]})
    with catalog.session() as s:
        n_events = len(audit.events(s))

    with pytest.raises(ValueError, match=message):
        record(catalog, "alice", {"operators": ["alice"], **section})

    assert stored_rows(catalog) == [("alice", "clinicians", "")]
    with catalog.session() as s:
        assert len(audit.events(s)) == n_events


def test_recording_for_a_user_without_an_account_is_refused(catalog):
    with pytest.raises(NotFound, match="unknown user 'carol'"):
        record(catalog, "Carol", {"operators": ["carol"]})
    assert stored_rows(catalog) == []
    assert role_audits(catalog) == []


def test_the_audit_trail_verifies_after_recordings(catalog):
    record(catalog, "alice", {"operators": ["alice"]})
    record(catalog, "alice", {"stewards": {"*": ["alice"]}})
    record(catalog, "bob", {"clinicians": ["bob"]})
    with catalog.session() as s:
        assert [e.action for e in s.scalars(select(AuditEvent).order_by(AuditEvent.id))][-3:] == ["roles.changed"] * 3
        assert audit.verify_chain(s) == []
