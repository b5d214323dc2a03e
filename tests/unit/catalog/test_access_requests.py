"""Access requests from request to grant, on SQLite and PostgreSQL: each dataset's steward decides,
the requester accepts or declines, and only an acceptance makes grants (in the request's mode)."""

from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from imaging_workbench.catalog import access_requests as ar
from imaging_workbench.catalog import accounts, datasets, grants
from imaging_workbench.catalog.engine import create_catalog_engine
from imaging_workbench.catalog.migrations import alembic_config
from imaging_workbench.catalog.models import AuditEvent, Grant
from imaging_workbench.clock import utcnow
from imaging_workbench.errors import NotFound
from imaging_workbench.federation.hub.manager import BadRequest, JobManager, grant_conditions
from imaging_workbench.federation.settings import federation_settings, site_names, with_site_count
from imaging_workbench.hub.mount_plan import granted_datasets, lost_datasets

from ..recording_flare import RecordingFlare

pytestmark = pytest.mark.usefixtures("database_url")

ROLES = {"stewards": {"lung": ["sam"], "liver": ["lee"]}}
MAX_DAYS = 365


@pytest.fixture
def catalog(ctx, dataset_dir):
    """alice (researcher), sam (steward of lung), lee (steward of liver); datasets lung and liver."""
    with ctx.session() as s:
        for name in ("alice", "sam", "lee"):
            accounts.add_account(s, "admin", name)
        for name in ("lung", "liver"):
            datasets.add_dataset(s, "admin", name, dataset_dir(name), state_dir=ctx.state_dir, site="site-1")
    return ctx


def submit(ctx, datasets=("lung",), mode="sandbox", days=30, requester="alice") -> int:
    with ctx.session() as s:
        return ar.submit_request(s, requester, list(datasets), "Nodules", "train a detector", mode, days,
                                 MAX_DAYS).id


def decide(ctx, steward, request_id, dataset_id, approve=True, **terms):
    with ctx.session() as s:
        return ar.decide(s, ROLES, steward, request_id, dataset_id, approve, **terms)


def respond(ctx, request_id, accept=True, requester="alice"):
    with ctx.session() as s:
        return ar.respond(s, requester, request_id, accept)


def request_dict(ctx, request_id) -> dict:
    with ctx.session() as s:
        return ar.get_request(s, request_id).as_dict()


def trail(ctx, first_action="access.request") -> list[tuple]:
    """(action, actor, dataset) of every audit row from the first `first_action` on."""
    with ctx.session() as s:
        rows = [(e.action, e.actor, e.dataset) for e in s.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    return rows[[r[0] for r in rows].index(first_action):]


def test_an_approval_with_a_shorter_expiry_and_a_condition_becomes_a_grant_once_accepted(catalog):
    request_id = submit(catalog, days=90)
    assert request_dict(catalog, request_id)["state"] == "pending"
    decide(catalog, "sam", request_id, "lung", days=30, conditions={"min_count": 20, "text": "cite the trial"})
    shown = request_dict(catalog, request_id)
    assert shown["state"] == "awaiting-requester"
    assert shown["items"][0] | {"decided_at": None} == {
        "id": shown["items"][0]["id"], "request_id": request_id, "dataset_id": "lung", "state": "approved",
        "decided_by": "sam", "decided_at": None, "days": 30, "reason": "", "responded_at": None, "grant_id": None,
        "conditions": {"text": "cite the trial", "federated_only": False, "no_weights": False, "min_count": 20}}
    with catalog.session() as s:
        assert grants.live_grants(s, "alice") == []  # nothing before the requester accepts

    [grant] = respond(catalog, request_id)

    assert (grant.user, grant.dataset_id, grant.mode, grant.request_id) == ("alice", "lung", "sandbox", request_id)
    assert grant.conditions["min_count"] == 20 and grant.granted_by == "sam"
    assert grant.expires_at - grant.granted_at == timedelta(days=30)
    assert grant.purpose == "Nodules: train a detector"
    shown = request_dict(catalog, request_id)
    assert shown["state"] == "closed" and shown["items"][0]["grant_id"] == grant.id
    with catalog.session() as s:
        assert grant_conditions(s, "alice", ["lung"]) == {"lung": {"min_count": 20}}
    assert trail(catalog) == [("access.request", "alice", "lung"), ("access.approve", "sam", "lung"),
                              ("grant", "sam", "lung"), ("access.accept", "alice", "lung")]


def test_a_federated_grant_lets_federated_jobs_run_but_mounts_nothing(catalog):
    request_id = submit(catalog, mode="federated")
    item = decide(catalog, "sam", request_id, "lung", conditions={"no_weights": True})
    assert item.conditions["federated_only"] is True  # implied by the request's mode
    [grant] = respond(catalog, request_id)
    assert grant.mode == "federated"
    with catalog.session() as s:
        assert granted_datasets(s, "alice", state_dir=catalog.state_dir) == {}
        grants.require_grants(s, "alice", ["lung"])
        assert grants.approved_dataset_ids(s, "alice", modes=(grants.SANDBOX,)) == []
        assert grant_conditions(s, "alice", ["lung"]) == {"lung": {"weights": "none"}}
        assert lost_datasets(s, "alice", ["lung"]) == {"lung": "federated only"}


def test_a_federated_job_carries_the_grants_conditions_to_the_sites(catalog):
    request_id = submit(catalog, mode="federated")
    decide(catalog, "sam", request_id, "lung", conditions={"no_weights": True, "min_count": 25})
    respond(catalog, request_id)
    flare = RecordingFlare()
    job = JobManager(catalog, federation_settings(catalog.settings), admin=flare).submit(
        "alice", "cohort-statistics", ["lung"])
    assert job.status == "submitted" and job.flare_job_id == "flare-1"
    args = flare.jobs[0]["workflows"][0]["args"]
    assert args["conditions"] == {"lung": {"min_count": 25, "weights": "none"}}


def test_sites_added_by_federation_up_are_served_without_restarting_the_service(catalog):
    request_id = submit(catalog, mode="federated")
    decide(catalog, "sam", request_id, "lung")
    respond(catalog, request_id)
    with catalog.session() as s:
        datasets.get_dataset(s, "lung").site = "site-4"
    settings = federation_settings(catalog.settings)
    manager = JobManager(catalog, settings, admin=RecordingFlare(connected=site_names(4)))
    with pytest.raises(BadRequest, match="dataset 'lung' is not held by a federation site .its site is 'site-4'"):
        manager.submit("alice", "cohort-statistics", ["lung"])
    with_site_count(settings, 4, named_in_file=False)  # what `workbench federation up --sites 4` writes
    assert manager.submit("alice", "cohort-statistics", ["lung"]).site_datasets == {"site-4": ["lung"]}
    assert manager.sites == site_names(4)


def test_a_federated_only_condition_on_a_sandbox_request_makes_a_federated_grant(catalog):
    request_id = submit(catalog, datasets=("lung", "liver"))
    decide(catalog, "sam", request_id, "lung", conditions={"federated_only": True})
    decide(catalog, "lee", request_id, "liver")
    made = {g.dataset_id: g.mode for g in respond(catalog, request_id)}
    assert made == {"lung": "federated", "liver": "sandbox"}
    with catalog.session() as s:
        assert list(granted_datasets(s, "alice", state_dir=catalog.state_dir)) == ["liver"]


def test_each_dataset_is_decided_by_its_own_steward_and_a_refusal_makes_no_grant(catalog):
    request_id = submit(catalog, datasets=("lung", "liver"))
    with catalog.session() as s:
        assert [i.dataset_id for i in ar.pending_for(s, ROLES, "sam")] == ["lung"]
        assert [i.dataset_id for i in ar.pending_for(s, ROLES, "lee")] == ["liver"]
        assert ar.pending_for(s, ROLES, "alice") == []
    decide(catalog, "sam", request_id, "lung")
    with pytest.raises(ar.Conflict, match="still awaits a steward's decision on liver"):
        respond(catalog, request_id)
    decide(catalog, "lee", request_id, "liver", approve=False, reason="no ethics approval for liver")
    [grant] = respond(catalog, request_id)
    assert grant.dataset_id == "lung"
    items = {i["dataset_id"]: i for i in request_dict(catalog, request_id)["items"]}
    assert items["liver"]["state"] == "refused" and items["liver"]["reason"] == "no ethics approval for liver"
    assert items["lung"]["state"] == "accepted"


@pytest.mark.parametrize("steward, requester", [("lee", "alice"), ("sam", "sam")])
def test_only_the_datasets_steward_decides_and_never_on_their_own_request(catalog, steward, requester):
    request_id = submit(catalog, requester=requester)
    with pytest.raises(ar.NotAllowed, match="not a steward of dataset 'lung'|cannot review their own request"):
        decide(catalog, steward, request_id, "lung")
    assert request_dict(catalog, request_id)["items"][0]["state"] == "pending"


def test_only_the_requester_answers_or_withdraws(catalog):
    request_id = submit(catalog)
    with pytest.raises(ar.NotAllowed, match="alice's, not sam's"):
        with catalog.session() as s:
            ar.withdraw(s, "sam", request_id)
    decide(catalog, "sam", request_id, "lung")
    with pytest.raises(ar.NotAllowed, match="alice's, not lee's"):
        respond(catalog, request_id, requester="lee")


def test_deciding_twice_the_same_way_is_one_decision_and_a_changed_decision_is_refused(catalog):
    request_id = submit(catalog)
    first = decide(catalog, "sam", request_id, "lung", days=10)
    again = decide(catalog, "sam", request_id, "lung", days=10)
    assert again.decided_at == first.decided_at
    assert [a for a, _, _ in trail(catalog)].count("access.approve") == 1
    with pytest.raises(ar.Conflict, match="already approved by sam; decisions are final"):
        decide(catalog, "sam", request_id, "lung", approve=False, reason="changed my mind")
    with pytest.raises(ar.Conflict, match="already approved"):
        decide(catalog, "sam", request_id, "lung", days=5)


def test_declining_makes_no_grant_and_the_answer_is_final(catalog):
    request_id = submit(catalog)
    decide(catalog, "sam", request_id, "lung")
    assert respond(catalog, request_id, accept=False) == []
    assert respond(catalog, request_id, accept=False) == []  # the same answer again: nothing new
    with pytest.raises(ar.Conflict, match="already declined"):
        respond(catalog, request_id, accept=True)
    with catalog.session() as s:
        assert s.scalars(select(Grant)).all() == []
    assert request_dict(catalog, request_id)["state"] == "closed"
    assert [a for a, _, _ in trail(catalog)] == ["access.request", "access.approve", "access.decline"]


def test_accepting_twice_makes_one_grant(catalog):
    request_id = submit(catalog)
    decide(catalog, "sam", request_id, "lung")
    [first] = respond(catalog, request_id)
    [again] = respond(catalog, request_id)
    assert again.id == first.id
    with catalog.session() as s:
        assert len(s.scalars(select(Grant)).all()) == 1


def test_a_withdrawn_request_leaves_the_stewards_queue(catalog):
    request_id = submit(catalog)
    with catalog.session() as s:
        ar.withdraw(s, "alice", request_id)
        assert ar.pending_for(s, ROLES, "sam") == []
    assert request_dict(catalog, request_id)["state"] == "closed"
    with pytest.raises(ar.Conflict, match="was withdrawn"):
        decide(catalog, "sam", request_id, "lung")
    assert [a for a, _, _ in trail(catalog)] == ["access.request", "access.withdraw"]


def test_a_decided_request_cannot_be_withdrawn(catalog):
    request_id = submit(catalog)
    decide(catalog, "sam", request_id, "lung")
    with pytest.raises(ar.Conflict, match=r"no longer pending \(it is awaiting-requester\)") as caught:
        with catalog.session() as s:
            ar.withdraw(s, "alice", request_id)
    assert caught.value.hint == "decline its terms instead"


@pytest.mark.parametrize("change, field, message", [
    ({"dataset_ids": []}, "datasets", "must be a non-empty list"),
    ({"dataset_ids": ["lung", "nope"]}, "datasets", "unknown dataset(s): nope"),
    ({"dataset_ids": ["lung", "lung"]}, "datasets", "lung given more than once"),
    ({"project": " "}, "project", "must not be empty"),
    ({"purpose": ""}, "purpose", "must not be empty"),
    ({"mode": "download"}, "mode", "must be one of sandbox, federated, not 'download'"),
    ({"days": 0}, "days", "must be a whole number of at least 1"),
    ({"days": 400}, "days", "days: 400 is beyond this deployment's maximum of 365"),
])
def test_a_bad_request_names_its_field_and_records_nothing(catalog, change, field, message):
    args = {"dataset_ids": ["lung"], "project": "Nodules", "purpose": "study", "mode": "sandbox", "days": 30} | change
    with pytest.raises(ar.BadField) as caught:
        with catalog.session() as s:
            ar.submit_request(s, "alice", max_days=MAX_DAYS, **args)
    assert caught.value.field == field and message in caught.value.message and caught.value.hint
    with catalog.session() as s:
        assert ar.requests_of(s, "alice") == []


@pytest.mark.parametrize("terms, field, message", [
    ({"days": 31}, "days", "31 is beyond the 30 days asked for"),
    ({"conditions": {"min_count": 0}}, "conditions.min_count", "at least 1"),
    ({"conditions": {"min_count": True}}, "conditions.min_count", "at least 1"),
    ({"conditions": {"no_weights": "yes"}}, "conditions.no_weights", "must be true or false"),
    ({"conditions": {"colour": "red"}}, "conditions", "unknown condition(s) colour"),
    ({"approve": False, "reason": "  "}, "reason", "must not be empty"),
])
def test_a_bad_decision_names_its_field_and_changes_nothing(catalog, terms, field, message):
    request_id = submit(catalog, days=30)
    with pytest.raises(ar.BadField) as caught:
        decide(catalog, "sam", request_id, "lung", **terms)
    assert caught.value.field == field and message in caught.value.message
    assert request_dict(catalog, request_id)["items"][0]["state"] == "pending"


def test_unknown_requests_and_datasets_are_not_found(catalog):
    request_id = submit(catalog)
    with pytest.raises(NotFound, match="no access request 999"):
        decide(catalog, "sam", 999, "lung")
    with pytest.raises(NotFound, match="is not for dataset 'liver'"):
        decide(catalog, "lee", request_id, "liver")


def test_the_cli_shows_the_requests_state_and_grants_in_either_mode(catalog, cli):
    request_id = submit(catalog)
    decide(catalog, "sam", request_id, "lung", days=7, conditions={"no_weights": True, "text": "no export"})
    rc, out, err = cli("requests", "list", "--user", "alice")
    assert rc == 0, err
    assert "awaiting-requester" in out and "lung:approved" in out
    rc, out, _ = cli("requests", "show", str(request_id))
    assert rc == 0 and "no weights: no export" in out and "sam" in out
    rc, out, _ = cli("grant", "alice", "liver", "--days", "3", "--purpose", "x", "--mode", "federated")
    assert rc == 0 and "federated-only access to liver" in out
    rc, out, _ = cli("access", "alice")
    assert "federated" in out
    rc, _, err = cli("requests", "show", "999")
    assert rc == 1 and "no access request 999" in err


def test_grants_made_before_access_requests_stay_sandbox_grants(database_url):
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0003")
            now = utcnow().replace(tzinfo=None)
            conn.execute(text("INSERT INTO accounts (name, is_admin, created_at) VALUES ('alice', false, :t)"),
                         {"t": now})
            conn.execute(text("INSERT INTO datasets (id, title, cancer_type, modality, body_part, site, n_subjects, "
                              "n_series, host_path, licence, created_at) VALUES "
                              "('lung', 'Lung', '', '', '', '', 0, 0, '/data/lung', '', :t)"), {"t": now})
            conn.execute(text("INSERT INTO grants (\"user\", dataset_id, granted_by, purpose, granted_at, expires_at) "
                              "VALUES ('alice', 'lung', 'sam', 'study', :t, :e)"),
                         {"t": now, "e": now + timedelta(days=5)})
    finally:
        engine.dispose()
    engine = create_catalog_engine(database_url)
    try:
        with Session(engine) as s:
            grant = s.scalars(select(Grant)).one()
            assert (grant.mode, grant.conditions, grant.request_id) == ("sandbox", {}, None)
    finally:
        engine.dispose()
