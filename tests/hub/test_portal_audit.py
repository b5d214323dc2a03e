"""The portal's audit trail on a real hub: who sees which rows, the filters, the CSV export and the
chain's verification, through the REST API with users' tokens and the pages through a browser-like
login.

The deployment settings name `sam` steward of lung-ct, `stella` of liver-mr and `wanda` of every
dataset ("*"); `admin` is an operator (the default settings); `alice` and `bob` are researchers.
The trail holds the hub's own rows (accounts, datasets), two access requests decided through the
portal, and two rows the test writes through the catalog: one dated in 2020 and one whose subject
a spreadsheet would run as a formula.
"""

import csv
import html
import io
import re
from datetime import datetime, timezone

import pytest
import requests
from sqlalchemy import func, select, update

from imaging_workbench.catalog import audit
from imaging_workbench.catalog.models import AuditEvent
from imaging_workbench.context import WorkbenchContext
from imaging_workbench.deployment import validate_settings, with_defaults
from imaging_workbench.portal.base import SERVICE_NAME

from ..hubtools import log_in
from .portal_calls import portal_caller, register

pytestmark = pytest.mark.hub

DATASETS = {"lung-ct": {"title": "Lung CT screening", "modality": "CT", "site": "site-1"},
            "liver-mr": {"title": "Liver MR follow-up", "modality": "MR", "site": "site-2"}}
PEOPLE = ("alice", "bob", "sam", "stella", "wanda", "admin")
FORMULA = '=HYPERLINK("x","click")'
OLD_DAY = "2020-03-15"


@pytest.fixture(scope="module")
def hub_settings(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("hub-audit")
    overrides = {"state_dir": str(workdir / "state"), "demo": {"users": ["alice", "bob"]},
                 "roles": {"stewards": {"lung-ct": ["sam"], "liver-mr": ["stella"], "*": ["wanda"]}}}
    return workdir, validate_settings(with_defaults(overrides))


@pytest.fixture(scope="module")
def ctx(hub_settings):
    return WorkbenchContext(hub_settings[1], actor="steward")


@pytest.fixture(scope="module")
def registered(hub_settings, ctx, logins):
    """The datasets in the catalog (after the demo logins, which would grant them otherwise)."""
    return list(register(ctx, hub_settings[0], DATASETS))


@pytest.fixture(scope="module")
def portal(hub, registered):
    """Calls the portal through the hub's proxy with a user's token: portal(user, method, path, ...)."""
    return portal_caller(hub, PEOPLE)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).ok
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
def trail(portal, ctx):
    """Access requests on both datasets, decided through the portal, and the test's own two rows."""
    ask = {"project": "audit", "purpose": "audit test", "mode": "sandbox", "days": 30}
    lung = portal("alice", "POST", "api/requests", json={**ask, "datasets": ["lung-ct"]}).json()["id"]
    liver = portal("bob", "POST", "api/requests", json={**ask, "datasets": ["liver-mr"]}).json()["id"]
    assert portal("sam", "POST", f"api/requests/{lung}/decisions",
                  json={"dataset_id": "lung-ct", "approve": True}).status_code == 200
    assert portal("stella", "POST", f"api/requests/{liver}/decisions",
                  json={"dataset_id": "liver-mr", "approve": False, "reason": "not yet"}).status_code == 200
    with ctx.session() as s:
        audit.record(s, "steward", "dataset.note", FORMULA, dataset="lung-ct", note="a formula")
    with pytest.MonkeyPatch.context() as clock, ctx.session() as s:
        clock.setattr(audit, "utcnow", lambda: datetime(2020, 3, 15, 12, tzinfo=timezone.utc))
        audit.record(s, "steward", "dataset.note", "an old note", dataset="lung-ct")
    return {"lung": lung, "liver": liver}


def rows(portal, user, query=""):
    r = portal(user, "GET", f"api/audit?limit=5000&{query}")
    assert r.status_code == 200, r.text
    return r.json()["rows"]


def in_catalog(ctx, *where) -> list[int]:
    """The ids of the rows the catalog holds that pass `where`, newest first."""
    with ctx.session() as s:
        return list(s.scalars(select(AuditEvent.id).where(*where).order_by(AuditEvent.id.desc())))


def test_an_operator_sees_every_row_newest_first(portal, trail, ctx):
    seen = rows(portal, "admin")
    assert [row["id"] for row in seen] == in_catalog(ctx)
    assert {row["dataset"] for row in seen} == {None, "lung-ct", "liver-mr"}  # user.add rows concern no dataset


@pytest.mark.parametrize("steward, visible", [("sam", {"lung-ct"}), ("stella", {"liver-mr"}),
                                              ("wanda", {"lung-ct", "liver-mr"})])
def test_a_steward_sees_only_the_rows_of_the_datasets_they_steward(portal, trail, ctx, steward, visible):
    seen = rows(portal, steward)
    assert [row["id"] for row in seen] == in_catalog(ctx, AuditEvent.dataset.in_(visible))
    assert {row["dataset"] for row in seen} == visible
    assert {"access.request", "dataset.add"} <= {row["action"] for row in seen}


def test_a_researcher_is_refused_the_audit_in_every_form(hub, logins, portal, trail):
    r = portal("alice", "GET", "api/audit")
    assert r.status_code == 403 and "neither an operator nor a data steward" in r.json()["error"]
    assert portal("alice", "GET", "audit.csv").status_code == 403
    _, page = browser(hub, logins, "alice", "audit")
    assert page.status_code == 403 and 'id="jupyterhub-logo"' in page.text and "access.request" not in page.text


def test_a_steward_asking_for_anothers_dataset_is_refused_naming_it(hub, logins, portal, trail):
    r = portal("sam", "GET", "api/audit?dataset=liver-mr")
    assert r.status_code == 403 and "'liver-mr'" in r.json()["error"], r.text
    assert portal("sam", "GET", "audit.csv?dataset=liver-mr").status_code == 403
    _, page = browser(hub, logins, "sam", "audit?dataset=liver-mr")
    assert page.status_code == 403 and "liver-mr" in page.text and "not yet" not in page.text
    assert {row["dataset"] for row in rows(portal, "sam", "dataset=lung-ct")} == {"lung-ct"}


@pytest.mark.parametrize("query, wanted", [
    ("action=access.refuse", lambda row: row["action"] == "access.refuse"),
    ("actor=STELLA", lambda row: row["actor"] == "stella"),
    ("q=REQUEST-", lambda row: "request-" in row["subject"]),
    (f"since={OLD_DAY}&until={OLD_DAY}", lambda row: row["at"].startswith(OLD_DAY)),
    (f"until={OLD_DAY}", lambda row: row["at"] < "2020-03-16"),
    ("since=2020-03-16", lambda row: row["at"] >= "2020-03-16"),
    ("dataset=liver-mr&actor=bob", lambda row: row["dataset"] == "liver-mr" and row["actor"] == "bob"),
])
def test_each_filter_narrows_to_the_rows_that_pass_it(portal, trail, query, wanted):
    everything = rows(portal, "admin")
    found = rows(portal, "admin", query)
    assert found == [row for row in everything if wanted(row)]
    assert 0 < len(found) < len(everything)


def test_the_limit_keeps_the_newest_rows(portal, trail):
    r = portal("admin", "GET", "api/audit?limit=3").json()
    assert [row["id"] for row in r["rows"]] == [row["id"] for row in rows(portal, "admin")][:3]
    assert r["total"] > 3 and r["limit"] == 3


@pytest.mark.parametrize("query, field", [("since=2020-13-01", "since"), ("until=15/03/2020", "until"),
                                          ("since=2020-03-16&until=2020-03-15", "until"),
                                          ("limit=5001", "limit"), ("limit=ten", "limit")])
def test_a_wrong_filter_is_refused_naming_it(hub, logins, portal, trail, query, field):
    r = portal("admin", "GET", f"api/audit?{query}")
    assert r.status_code == 400 and set(r.json()["fields"]) == {field}, r.text
    _, page = browser(hub, logins, "sam", f"audit?{query}")
    assert page.status_code == 400 and f'data-field="{field}">{field}: ' in page.text


def test_the_csv_holds_the_filtered_rows_and_no_formula(portal, trail):
    query = "dataset=lung-ct&q=e"
    r = portal("sam", "GET", f"audit.csv?{query}")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv"), r.text
    assert r.headers["Content-Disposition"].startswith('attachment; filename="audit-')
    header, *table = list(csv.reader(io.StringIO(r.text)))
    assert header == ["id", "at", "actor", "action", "dataset", "subject", "details"]
    expected = rows(portal, "sam", query)
    assert [int(line[0]) for line in table] == [row["id"] for row in expected] and table
    assert [line[2:5] for line in table] == [[row["actor"], row["action"], row["dataset"]] for row in expected]
    [formula] = [line for line in table if "formula" in line[6]]
    assert formula[5] == "'" + FORMULA and formula[6] == '{"note":"a formula"}'
    assert not any(cell.startswith(("=", "+", "-", "@")) for line in table for cell in line)


def test_the_page_shows_the_filtered_rows_and_links_their_csv(hub, logins, portal, trail):
    http, page = browser(hub, logins, "admin", "audit?action=access.request&q=request")
    assert page.status_code == 200 and "/hub/static/css/style.min.css" in page.text  # the hub's look
    shown = [int(i) for i in re.findall(r'data-event="(\d+)"', page.text)]
    assert shown == [row["id"] for row in rows(portal, "admin", "action=access.request&q=request")] and shown
    link = re.search(r'href="([^"]+)"\s+id="download-csv"', page.text).group(1).replace("&amp;", "&")
    assert link.endswith("audit.csv?action=access.request&q=request")
    download = http.get(hub.url + link, timeout=30)
    assert [int(line[0]) for line in list(csv.reader(io.StringIO(download.text)))[1:]] == shown
    assert '"request_id":' in html.unescape(page.text) and 'data-verification="intact"' in page.text


def test_an_edited_row_turns_the_badge_broken_for_operators_with_the_lines_and_for_stewards_without(
        hub, logins, portal, trail, ctx):
    [row_id] = in_catalog(ctx, AuditEvent.action == "access.refuse")  # a row about stella's dataset
    with ctx.session() as s:
        total = s.scalar(select(func.count()).select_from(AuditEvent))
    assert portal("admin", "GET", "api/audit").json()["verification"] == {
        "intact": True, "rows": total, "problems": 0, "lines": []}
    _, page = browser(hub, logins, "sam", "audit")
    assert f"Verified: {total} rows intact" in page.text

    edit(ctx, row_id, "alice/request-0")
    try:
        ask_again(portal)  # a new row: the portal verifies again instead of reusing its last result
        verification = portal("admin", "GET", "api/audit").json()["verification"]
        assert verification["intact"] is False and verification["problems"] == 1
        assert verification["lines"][0].startswith(f"row {row_id}: content was changed")
        _, page = browser(hub, logins, "admin", "audit")
        assert 'data-verification="broken"' in page.text and f"row {row_id}: content was changed" in page.text
        _, page = browser(hub, logins, "sam", "audit")
        assert "BROKEN: 1 problem" in page.text and f"row {row_id}" not in page.text
        assert "lines" not in portal("sam", "GET", "api/audit").json()["verification"]
    finally:
        edit(ctx, row_id, f"bob/request-{trail['liver']}")
    ask_again(portal)
    assert portal("admin", "GET", "api/audit").json()["verification"]["intact"] is True


def edit(ctx, row_id: int, subject: str) -> None:
    """Change a row's subject in the database, as someone with write access to it could."""
    with ctx.session() as s:
        s.execute(update(AuditEvent).where(AuditEvent.id == row_id).values(subject=subject))


def ask_again(portal) -> None:
    body = {"datasets": ["lung-ct"], "project": "audit", "purpose": "one more row", "mode": "sandbox", "days": 1}
    assert portal("bob", "POST", "api/requests", json=body).status_code == 201


def browser(hub, logins, name: str, path: str):
    """A logged-in requests.Session that has opened the portal's `path` (through the hub's OAuth)."""
    http, response = log_in(hub.url, name, logins[name])
    assert response.status_code == 302, hub.log_tail()
    return http, http.get(f"{hub.url}/services/{SERVICE_NAME}/{path}", timeout=30)
