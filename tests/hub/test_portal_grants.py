"""The portal's Grants page and API on a real hub: a steward lists the live grants on their datasets
and revokes one for a reason; everyone else is refused.

The deployment settings name `sam` steward of lung-ct and `stella` steward of liver-mr; `alice`
and `bob` are researchers. Grants are made in the catalog directly (the request flow that makes
them is test_portal.py's). No server runs here: that a revocation stops one is the docker tier's
test_portal_browser.py.
"""

import re
from datetime import timedelta

import pytest
import requests

from imaging_workbench.catalog import audit, grants
from imaging_workbench.catalog.models import Grant
from imaging_workbench.clock import utcnow
from imaging_workbench.context import WorkbenchContext
from imaging_workbench.deployment import validate_settings, with_defaults
from imaging_workbench.portal.base import SERVICE_NAME

from ..hubtools import log_in
from .portal_calls import portal_caller, register

pytestmark = pytest.mark.hub

DATASETS = {"lung-ct": "Lung CT screening", "liver-mr": "Liver MR follow-up"}
PEOPLE = ("alice", "bob", "sam", "stella")


@pytest.fixture(scope="module")
def hub_settings(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("hub-grants")
    overrides = {"state_dir": str(workdir / "state"), "demo": {"users": ["alice", "bob"]},
                 "roles": {"stewards": {"lung-ct": ["sam"], "liver-mr": ["stella"]}}}
    return workdir, validate_settings(with_defaults(overrides))


@pytest.fixture(scope="module")
def ctx(hub_settings):
    return WorkbenchContext(hub_settings[1], actor="steward")


@pytest.fixture(scope="module")
def registered(hub_settings, ctx, logins):
    """The datasets in the catalog (after the demo logins, which would grant them otherwise)."""
    register(ctx, hub_settings[0], {d: {"title": title, "site": "site-1"} for d, title in DATASETS.items()})


@pytest.fixture(scope="module")
def portal(hub, registered):
    """Calls the portal's API through the hub's proxy: portal(user, method, path, json=...)."""
    return portal_caller(hub, PEOPLE)


@pytest.fixture
def grant(ctx, portal):
    """grant(user, dataset_id) -> the id of a fresh live grant (any earlier live one revoked first)."""

    def make(user, dataset_id, days=30):
        with ctx.session() as s:
            if grants.live_grant(s, user, dataset_id) is not None:
                grants.revoke_access(s, "steward", user, dataset_id)
            return grants.grant_access(s, "steward", user, dataset_id, days, "grants tests").id

    return make


def revoke(portal, steward, grant_id, reason="the project ended"):
    return portal(steward, "POST", f"api/grants/{grant_id}/revoke", json={"reason": reason})


def is_live(ctx, grant_id) -> bool:
    with ctx.session() as s:
        return s.get(Grant, grant_id).is_live(utcnow())


def test_a_steward_lists_the_live_grants_of_their_datasets_only(portal, grant):
    lung, liver = grant("alice", "lung-ct"), grant("bob", "liver-mr")
    gone = grant("bob", "lung-ct")
    assert revoke(portal, "sam", gone).status_code == 200
    r = portal("sam", "GET", "api/grants")
    assert r.status_code == 200, r.text
    listed = {g["id"]: g for g in r.json()}
    assert lung in listed and liver not in listed and gone not in listed
    assert {g["dataset_id"] for g in r.json()} == {"lung-ct"}
    assert listed[lung]["user"] == "alice" and listed[lung]["title"] == "Lung CT screening"
    assert {g["dataset_id"] for g in portal("stella", "GET", "api/grants").json()} == {"liver-mr"}


def test_revoking_ends_the_grant_and_audits_the_steward_and_reason(ctx, portal, grant):
    grant_id = grant("alice", "lung-ct")
    r = revoke(portal, "sam", grant_id, "  consent withdrawn by the site  ")
    assert r.status_code == 200, r.text
    assert r.json()["revoked_by"] == "sam" and r.json()["revoked_at"]
    assert "lung-ct" not in {g["dataset_id"] for g in portal("alice", "GET", "api/access").json()["grants"]}
    with ctx.session() as s:
        ended = audit.events(s, action="access.ended", dataset="lung-ct")[-1]
        revoked = audit.events(s, action="revoke", dataset="lung-ct")[-1]
        assert (ended.actor, ended.subject) == ("sam", "alice/lung-ct")
        assert ended.details["reason"] == "consent withdrawn by the site" and ended.details["grant_id"] == grant_id
        assert (revoked.actor, revoked.details["grant_id"]) == ("sam", grant_id)
        assert audit.verify_chain(s) == []


def test_a_researcher_can_neither_list_nor_revoke_grants(ctx, portal, grant):
    grant_id = grant("alice", "lung-ct")
    assert portal("alice", "GET", "api/grants").status_code == 403
    r = revoke(portal, "alice", grant_id)
    assert r.status_code == 403 and "not a data steward" in r.json()["error"]
    assert revoke(portal, "bob", 999_999).status_code == 403  # nor learns which grants exist
    assert is_live(ctx, grant_id)


def test_a_steward_cannot_revoke_a_grant_of_a_dataset_they_do_not_steward(ctx, portal, grant):
    grant_id = grant("alice", "lung-ct")
    r = revoke(portal, "stella", grant_id)
    assert r.status_code == 403 and "not a steward of dataset 'lung-ct'" in r.json()["error"]
    assert is_live(ctx, grant_id)


def test_revoking_an_unknown_grant_is_not_found(portal):
    r = revoke(portal, "sam", 999_999)
    assert r.status_code == 404 and "no grant 999999" in r.json()["error"]


def test_revoking_twice_is_a_conflict_that_says_who_revoked(portal, grant):
    grant_id = grant("bob", "lung-ct")
    assert revoke(portal, "sam", grant_id).status_code == 200
    again = revoke(portal, "sam", grant_id)
    assert again.status_code == 409 and f"grant {grant_id} (bob/lung-ct) was already revoked by sam" in again.text


def test_revoking_an_expired_grant_is_a_conflict(ctx, portal, grant):
    grant_id = grant("bob", "liver-mr")
    with ctx.session() as s:  # as if its days had passed
        s.get(Grant, grant_id).expires_at = utcnow() - timedelta(minutes=1)
    r = revoke(portal, "stella", grant_id)
    assert r.status_code == 409 and f"grant {grant_id} (bob/liver-mr) expired on" in r.json()["error"]
    with ctx.session() as s:
        assert s.get(Grant, grant_id).revoked_at is None


@pytest.mark.parametrize("body", [{"reason": ""}, {"reason": "   "}, {"reason": 7}, {}])
def test_a_revocation_without_a_reason_is_refused_naming_the_field(ctx, portal, grant, body):
    grant_id = grant("alice", "liver-mr")
    r = portal("stella", "POST", f"api/grants/{grant_id}/revoke", json=body)
    assert r.status_code == 400 and set(r.json()["fields"]) == {"reason"}, r.text
    assert is_live(ctx, grant_id)


def signed_in(hub, logins, name: str) -> requests.Session:
    """A browser-like session of `name`, logged in on the hub's login page."""
    http, response = log_in(hub.url, name, logins[name])
    assert response.status_code == 302, hub.log_tail()
    return http


def form_token(page) -> str:
    return re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)


def test_the_grants_page_revokes_only_with_the_forms_xsrf_token(hub, logins, ctx, portal, grant):
    grant_id = grant("alice", "lung-ct")
    http = signed_in(hub, logins, "sam")
    page = http.get(portal.base + "grants", timeout=30)
    assert page.status_code == 200 and f"{SERVICE_NAME}/grants" in page.url, (page.status_code, page.url)
    assert f'action="/services/{SERVICE_NAME}/grants/{grant_id}/revoke"' in page.text
    url = f"{portal.base}grants/{grant_id}/revoke"
    missing = http.post(url, data={"reason": "no token"}, allow_redirects=False, timeout=30)
    forged = http.post(url, data={"reason": "forged", "_xsrf": "forged"}, allow_redirects=False, timeout=30)
    assert missing.status_code == forged.status_code == 403
    assert is_live(ctx, grant_id)
    sent = http.post(url, data={"reason": "study closed", "_xsrf": form_token(page)}, timeout=30)
    assert sent.status_code == 200 and sent.url.endswith(f"/grants?revoked={grant_id}"), sent.url
    assert f"Grant {grant_id} is revoked" in sent.text and f'data-grant="{grant_id}"' not in sent.text
    with ctx.session() as s:
        assert audit.events(s, action="access.ended", dataset="lung-ct")[-1].details["reason"] == "study closed"


def test_the_grants_page_shows_an_empty_reason_at_the_field(hub, logins, ctx, portal, grant):
    grant_id = grant("bob", "liver-mr")
    http = signed_in(hub, logins, "stella")
    token = form_token(http.get(portal.base + "grants", timeout=30))
    shown = http.post(f"{portal.base}grants/{grant_id}/revoke", data={"reason": " ", "_xsrf": token}, timeout=30)
    assert shown.status_code == 400
    assert re.search(r'data-field="reason">reason: must not be empty', shown.text), shown.text
    assert is_live(ctx, grant_id)


def test_the_grants_page_is_for_stewards(hub, logins, portal):
    http = signed_in(hub, logins, "alice")
    page = http.get(portal.base + "grants", timeout=30)
    assert page.status_code == 403 and "not a data steward" in page.text
    assert f'href="/services/{SERVICE_NAME}/grants"' not in page.text  # nor linked in the menu
