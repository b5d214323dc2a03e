"""The workbench-portal service on a real hub: the catalogue, access requests, reviews and my access,
through its REST API with users' tokens, and its pages through a browser-like login.

The deployment settings name `sam` steward of lung-ct and `stella` steward of liver-mr; `alice`
and `bob` are researchers. The hub starts the portal as the managed service our configuration
defines (on a free port: tests/hubtools.py). Folders registered as datasets hold no images: the catalogue
needs none.
"""

import re
from datetime import datetime, timedelta

import pytest
import requests

from imaging_workbench.clock import utcnow
from imaging_workbench.context import WorkbenchContext
from imaging_workbench.deployment import validate_settings, with_defaults
from imaging_workbench.portal.base import SERVICE_NAME

from ..hubtools import log_in
from .portal_calls import portal_caller, register

pytestmark = pytest.mark.hub

DATASETS = {
    "lung-ct": {"title": "Lung CT screening", "cancer_type": "lung", "modality": "CT", "body_part": "CHEST",
                "site": "site-1", "n_subjects": 12, "n_series": 24, "licence": "CC-BY-4.0"},
    "liver-mr": {"title": "Liver MR follow-up", "cancer_type": "liver", "modality": "MR", "body_part": "ABDOMEN",
                 "site": "site-2", "n_subjects": 8, "n_series": 16, "licence": "TCIA restricted"},
}
PEOPLE = ("alice", "bob", "sam", "stella")


@pytest.fixture(scope="module")
def hub_settings(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("hub-portal")
    overrides = {"state_dir": str(workdir / "state"), "demo": {"users": ["alice", "bob"]},
                 "roles": {"stewards": {"lung-ct": ["sam"], "liver-mr": ["stella"]}}}
    return workdir, validate_settings(with_defaults(overrides))


@pytest.fixture(scope="module")
def registered(hub_settings, logins):
    """The datasets in the catalog (after the demo logins, which would grant them otherwise)."""
    workdir, settings = hub_settings
    return register(WorkbenchContext(settings, actor="steward"), workdir, DATASETS)


@pytest.fixture(scope="module")
def portal(hub, registered):
    """Calls the portal's API through the hub's proxy: portal(user, method, path, json=...)."""
    return portal_caller(hub, PEOPLE)


def ask(portal, user="alice", **fields):
    body = {"datasets": ["lung-ct"], "project": "nodules", "purpose": "train a nodule detector", "mode": "sandbox",
            "days": 90, **fields}
    return portal(user, "POST", "api/requests", json=body)


def approve(portal, steward, request_id, dataset_id="lung-ct", **fields):
    body = {"dataset_id": dataset_id, "approve": True, **fields}
    return portal(steward, "POST", f"api/requests/{request_id}/decisions", json=body)


def test_the_catalogue_shows_public_metadata_and_never_the_folder(portal, registered):
    r = portal("bob", "GET", "api/datasets")
    assert r.status_code == 200, r.text
    rows = {row["id"]: row for row in r.json()}
    assert set(rows) == set(DATASETS)
    assert rows["lung-ct"] == {"id": "lung-ct", **DATASETS["lung-ct"], "stewards": ["sam"],
                               "modes": ["sandbox", "federated"]}
    assert all(path not in r.text for path in registered.values()) and "host_path" not in r.text


@pytest.mark.parametrize("query, found", [
    ("modality=MR", ["liver-mr"]), ("site=site-1", ["lung-ct"]), ("body_part=abdomen", ["liver-mr"]),
    ("q=lung", ["lung-ct"]), ("q=screening&modality=MR", []),
])
def test_the_catalogue_searches_and_filters(portal, query, found):
    assert [row["id"] for row in portal("alice", "GET", f"api/datasets?{query}").json()] == found


def test_request_approved_shorter_with_conditions_then_accepted_makes_the_grant(portal):
    made = ask(portal, days=90)
    assert made.status_code == 201, made.text
    request_id = made.json()["id"]
    assert any(i["request_id"] == request_id for i in portal("sam", "GET", "api/review").json())

    conditions = {"text": "no re-identification", "no_weights": True, "min_count": 20}
    decided = approve(portal, "sam", request_id, days=30, conditions=conditions)
    assert decided.status_code == 200, decided.text
    assert decided.json()["state"] == "approved" and decided.json()["days"] == 30
    assert portal("alice", "GET", f"api/requests/{request_id}").json()["state"] == "awaiting-requester"
    assert portal("alice", "GET", "api/access").json()["grants"] == []  # nothing before accepting

    accepted = portal("alice", "POST", f"api/requests/{request_id}/response", json={"accept": True})
    assert accepted.status_code == 200, accepted.text
    [grant] = portal("alice", "GET", "api/access").json()["grants"]
    assert grant["dataset_id"] == "lung-ct" and grant["mode"] == "sandbox" and grant["request_id"] == request_id
    assert grant["conditions"]["min_count"] == 20 and grant["conditions"]["no_weights"] is True
    expires = utcnow() + timedelta(days=30)
    assert abs((datetime.fromisoformat(grant["expires_at"]) - expires).total_seconds()) < 600
    assert [r["state"] for r in portal("alice", "GET", "api/requests").json() if r["id"] == request_id] == ["closed"]


def test_my_access_asks_for_a_restart_while_the_running_server_lacks_a_sandbox_grant(hub_settings, hub, logins,
                                                                                     portal):
    from imaging_workbench.catalog.models import ServerMount

    request_id = ask(portal, datasets=["liver-mr"], user="bob").json()["id"]
    assert approve(portal, "stella", request_id, "liver-mr").status_code == 200
    assert portal("bob", "POST", f"api/requests/{request_id}/response", json={"accept": True}).status_code == 200
    assert portal("bob", "GET", "api/access").json()["restart_for"] == []  # no server runs: the next start mounts it
    ctx = WorkbenchContext(hub_settings[1], actor="steward")
    with ctx.session() as s:  # what the spawner records when bob's server starts without it
        s.add(ServerMount(user="bob", server_name="", container="workbench-bob", datasets=[], started_at=utcnow()))
    assert portal("bob", "GET", "api/access").json()["restart_for"] == ["liver-mr"]
    _, page = browser(hub, logins, "bob", "access")
    assert "Restart my server" in page.text and 'href="/hub/home"' in page.text


def test_a_double_approval_is_idempotent(portal):
    request_id = ask(portal, user="bob").json()["id"]
    first = approve(portal, "sam", request_id, days=10)
    second = approve(portal, "sam", request_id, days=10)
    assert first.status_code == second.status_code == 200, second.text
    assert first.json() == second.json()


@pytest.mark.parametrize("fields, field", [
    ({"datasets": ["no-such-dataset"]}, "datasets"),
    ({"purpose": "  "}, "purpose"),
    ({"days": 366}, "days"),  # the default access.max_days is 365
])
def test_a_bad_request_is_refused_naming_the_field(portal, fields, field):
    r = ask(portal, **fields)
    assert r.status_code == 400, r.text
    assert set(r.json()["fields"]) == {field} and r.json()["error"].startswith(f"{field}:")


def test_nobody_approves_their_own_request(portal):
    own = ask(portal, user="sam").json()["id"]  # sam stewards lung-ct, but this request is his
    r = approve(portal, "sam", own)
    assert r.status_code == 403 and "own request" in r.json()["error"]
    assert approve(portal, "alice", ask(portal).json()["id"]).status_code == 403


def test_a_researcher_cannot_see_the_review_or_anothers_request(portal):
    assert portal("alice", "GET", "api/review").status_code == 403
    request_id = ask(portal).json()["id"]
    assert portal("bob", "GET", f"api/requests/{request_id}").status_code == 403
    assert portal("stella", "GET", f"api/requests/{request_id}").status_code == 403  # not her dataset
    assert portal("sam", "GET", f"api/requests/{request_id}").status_code == 200


def test_a_steward_decides_only_for_their_own_datasets(portal):
    request_id = ask(portal, datasets=["lung-ct", "liver-mr"]).json()["id"]
    assert approve(portal, "stella", request_id, "lung-ct").status_code == 403
    assert approve(portal, "stella", request_id, "liver-mr").status_code == 200  # decided per dataset
    states = {i["dataset_id"]: i["state"] for i in portal("alice", "GET", f"api/requests/{request_id}").json()["items"]}
    assert states == {"lung-ct": "pending", "liver-mr": "approved"}


def test_without_the_scope_a_token_is_refused(hub, portal):
    hub.api("POST", "/users/dave")
    token = hub.user_token("dave", ["read:users:name!user"])
    r = requests.get(portal.base + "api/datasets", headers={"Authorization": f"token {token}"}, timeout=30)
    assert r.status_code == 403


def browser(hub, logins, name: str, path: str):
    """A logged-in requests.Session that has opened the portal's `path` (through the hub's OAuth)."""
    http, response = log_in(hub.url, name, logins[name])
    assert response.status_code == 302, hub.log_tail()
    page = http.get(f"{hub.url}/services/{SERVICE_NAME}/{path}", timeout=30)
    return http, page


def form_token(page) -> str:
    return re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)


def test_a_form_post_needs_the_pages_xsrf_token(hub, logins, portal):
    http, page = browser(hub, logins, "alice", "request")
    assert page.status_code == 200 and f"/services/{SERVICE_NAME}/request" in page.url, (page.status_code, page.url)
    assert "/hub/static/css/style.min.css" in page.text and 'id="jupyterhub-logo"' in page.text  # the hub's look
    form = {"datasets": "liver-mr", "project": "follow-up", "purpose": "response assessment", "mode": "federated",
            "days": "60"}
    url = f"{hub.url}/services/{SERVICE_NAME}/request"
    assert http.post(url, data=form, allow_redirects=False, timeout=30).status_code == 403
    forged = http.post(url, data={**form, "_xsrf": "forged"}, allow_redirects=False, timeout=30)
    assert forged.status_code == 403
    sent = http.post(url, data={**form, "_xsrf": form_token(page)}, allow_redirects=False, timeout=30)
    assert sent.status_code == 303 and re.search(r"/requests/\d+$", sent.headers["Location"]), sent.text


def test_a_form_with_an_empty_purpose_shows_the_message_at_the_field(hub, logins, portal):
    http, page = browser(hub, logins, "bob", "request")
    form = {"datasets": "lung-ct", "project": "p", "purpose": "", "mode": "sandbox", "days": "30",
            "_xsrf": form_token(page)}
    shown = http.post(f"{hub.url}/services/{SERVICE_NAME}/request", data=form, timeout=30)
    assert shown.status_code == 400
    assert re.search(r'data-field="purpose">purpose: must not be empty', shown.text), shown.text


def test_the_review_page_is_for_stewards(hub, logins, portal):
    ask(portal)
    _, page = browser(hub, logins, "alice", "review")
    assert page.status_code == 403
    _, page = browser(hub, logins, "sam", "review")
    assert page.status_code == 200 and 'data-decide="approve"' in page.text
