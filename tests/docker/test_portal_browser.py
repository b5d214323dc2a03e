"""Issue 13's acceptance in a real browser on real sandboxes: a researcher asks the portal for
`sandbox` access, the steward approves it with a shorter expiry and a condition, the researcher
accepts, restarts their server from the hub's home page and finds the dataset under /data; the
steward revokes the grant on the Grants page and the server stops.

Each person has their own context of headless Chromium (tests/browser/servers.py) and signs in on
the hub's login page; a request off 127.0.0.1 is refused and fails the test. Every page is kept
as a screenshot among the test artefacts (tests/screenshots.py).
"""

import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from imaging_workbench.catalog import accounts, audit, datasets
from imaging_workbench.clock import utcnow
from imaging_workbench.portal.base import SERVICE_NAME

from ..browser.servers import OfflineGuard, signed_in_page
from ..screenshots import save_screenshot
from ..waiting import wait_for
from .conftest import STEWARD, STEWARDED, run_in

pytestmark = [pytest.mark.docker, pytest.mark.browser]

RESEARCHER = "petra"  # holds nothing until the portal grants STEWARDED
PASSWORDS = {RESEARCHER: "petra-password-123", STEWARD: "sam-password-123"}
PORTAL = f"/services/{SERVICE_NAME}/"
CONDITION = "no re-identification; cite the colon CT consortium"
APPROVED_DAYS = 7  # of the 30 asked


@pytest.fixture(scope="module")
def portal_hub(sandbox_hub, tmp_path_factory):
    """The docker tier's hub, with the researcher, the steward and the steward's dataset."""
    folder = tmp_path_factory.mktemp("portal-browser") / STEWARDED
    folder.mkdir()
    (folder / "scan-001.dcm.txt").write_text(f"pixels of {STEWARDED}\n")
    for path in (folder, folder.parent):
        path.chmod(0o755)  # the sandbox's user reads it through the bind mount
    with sandbox_hub.ctx.session() as s:
        for name, password in PASSWORDS.items():
            accounts.add_account(s, "steward", name, password)
        datasets.add_dataset(s, "steward", STEWARDED, folder, title="Colon CT", modality="CT", site="site-1")
    return sandbox_hub


@pytest.fixture
def sign_in(portal_hub, chromium):
    """sign_in(name, path): a page in `name`'s own browser context, signed in on the hub's login
    page and sent on to the portal's `path`."""
    pages, guard = [], OfflineGuard()

    def open_as(name: str, path: str):
        pages.append(signed_in_page(chromium, guard, portal_hub.url, name, PASSWORDS[name], f"{PORTAL}{path}"))
        return pages[-1]

    yield open_as
    for page in pages:
        page.context.close()
    assert not guard.blocked, f"a page tried to reach addresses other than 127.0.0.1: {guard.blocked}"


def running(hub) -> dict | None:
    """The researcher's default server as the hub API reports it (None: not running)."""
    return hub.api("GET", f"/users/{RESEARCHER}").json()["servers"].get("")


def wait_until_ready(hub) -> None:
    def ready():
        server = running(hub)
        if server is None:
            raise AssertionError(f"{RESEARCHER}'s server failed to start:\n{hub.log_tail()}")
        return server["ready"]

    wait_for(ready, 180, what=f"{RESEARCHER}'s server to be ready")


def ask_for_sandbox_access(page) -> int:
    """From the catalogue to a sent request; returns the request's id."""
    save_screenshot(page, "portal-01-catalogue")
    page.check(f'#catalogue tr[data-dataset="{STEWARDED}"] input[name="datasets"]')
    page.click("text=Request access to the chosen datasets")
    page.wait_for_url(re.compile(r".*/request\?datasets=" + STEWARDED))
    assert page.is_checked(f"#ds-{STEWARDED}") and page.is_checked("#mode-sandbox")
    page.fill("#project", "polyp detection")
    page.fill("#purpose", "train and validate a polyp detector on colon CT")
    page.fill("#days", "30")
    save_screenshot(page, "portal-02-request-form")
    page.click("#request-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/requests/\d+$"))
    save_screenshot(page, "portal-03-request-sent")
    return int(page.url.rsplit("/", 1)[1])


def approve_shorter_with_a_condition(page, request_id: int) -> None:
    card = page.locator(f'section[data-item="{request_id}/{STEWARDED}"]')
    card.locator('form[data-decide="approve"] input[name="days"]').fill(str(APPROVED_DAYS))
    card.locator('textarea[name="conditions_text"]').fill(CONDITION)
    save_screenshot(page, "portal-04-review")
    with page.expect_navigation():
        card.locator('form[data-decide="approve"] button[type=submit]').click()
    assert page.locator(f'section[data-item="{request_id}/{STEWARDED}"]').count() == 0  # decided


def accept_the_terms(page, hub, request_id: int) -> None:
    page.goto(f"{hub.url}{PORTAL}requests/{request_id}")
    item = page.locator(f'#items tr[data-dataset="{STEWARDED}"]')
    assert "approved" in item.inner_text() and CONDITION in item.inner_text()
    save_screenshot(page, "portal-05-terms")
    page.click('button[value="accept"]')
    page.wait_for_url(f"**{PORTAL}access")


def restart_from_the_hub_home(page, hub) -> None:
    """Stop and start the server with the hub home page's buttons; the profile form's default."""
    page.click("#restart a")
    page.wait_for_url(f"{hub.url}/hub/home")
    save_screenshot(page, "portal-07-hub-home")
    page.click("#stop")
    wait_for(lambda: running(hub) is None, 120, what=f"{RESEARCHER}'s server to stop")
    page.wait_for_selector("#start:has-text('Start My Server')")  # the page has seen the stop too
    page.click("#start")
    page.wait_for_url(f"{hub.url}/hub/spawn/{RESEARCHER}")
    save_screenshot(page, "portal-08-spawn-form")
    page.click("#spawn_form button[type=submit]")
    page.wait_for_url(re.compile(rf".*/hub/spawn-pending/{RESEARCHER}"))
    save_screenshot(page, "portal-09-spawn-pending")
    page.goto(f"{hub.url}{PORTAL}access")  # not on into JupyterLab: the sandbox is checked from inside
    wait_until_ready(hub)


def revoke_on_the_grants_page(page, request_id: int) -> None:
    row = page.locator(f'#grants tr[data-user="{RESEARCHER}"][data-dataset="{STEWARDED}"]')
    assert CONDITION in row.inner_text()
    assert row.locator(f'a[href="{PORTAL}requests/{request_id}"]').count() == 1
    row.locator('input[name="reason"]').fill("the project's ethics approval lapsed")
    save_screenshot(page, "portal-10-grants")
    row.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/grants\?revoked=\d+$"))
    assert "is revoked" in page.inner_text("#revoked") and row.count() == 0
    save_screenshot(page, "portal-11-revoked")


def test_sandbox_access_from_request_to_revocation_in_the_browser(portal_hub, docker, sign_in):
    hub, began = portal_hub, time.monotonic()
    # The researcher's server runs before they ask, so after accepting it lacks the new grant. The
    # hub's API answers a start only once it runs or after 10 s: it starts while the pages are used.
    hub.api("POST", f"/users/{RESEARCHER}")
    start = ThreadPoolExecutor(1).submit(hub.api, "POST", f"/users/{RESEARCHER}/server", json={"profile": "standard"})

    researcher = sign_in(RESEARCHER, "")
    request_id = ask_for_sandbox_access(researcher)
    steward = sign_in(STEWARD, "review")
    approve_shorter_with_a_condition(steward, request_id)
    assert start.result().status_code in (201, 202), start.result().text
    wait_until_ready(hub)
    accept_the_terms(researcher, hub, request_id)
    expires = (utcnow() + timedelta(days=APPROVED_DAYS)).strftime("%Y-%m-%d")
    assert STEWARDED in researcher.inner_text("#restart")
    grant = researcher.inner_text(f'#grants tr[data-dataset="{STEWARDED}"]')
    assert "sandbox" in grant and expires in grant and CONDITION in grant
    save_screenshot(researcher, "portal-06-my-access")

    restart_from_the_hub_home(researcher, hub)
    researcher.reload()
    assert researcher.locator("#restart").count() == 0  # the new server mounts it
    assert run_in(docker, RESEARCHER, "ls /data") == (0, f"{STEWARDED}\n")
    assert run_in(docker, RESEARCHER, f"cat /data/{STEWARDED}/scan-001.dcm.txt") == (0, f"pixels of {STEWARDED}\n")

    steward.goto(f"{hub.url}{PORTAL}grants")
    revoke_on_the_grants_page(steward, request_id)
    revoked = time.monotonic()
    limit = 2 * hub.settings["sandbox"]["revocation_interval"]
    wait_for(lambda: running(hub) is None, limit + 30, what=f"{RESEARCHER}'s server to stop after the revocation")
    took = time.monotonic() - revoked
    with hub.ctx.session() as s:
        stop = [e for e in audit.events(s, action="server.revoked") if e.subject == f"{RESEARCHER}/"][-1]
        ended = audit.events(s, action="access.ended", dataset=STEWARDED)[-1]
        assert stop.details["reasons"] == {STEWARDED: "revoked"}
        assert (ended.actor, ended.details["reason"]) == (STEWARD, "the project's ethics approval lapsed")
    researcher.reload()
    assert researcher.locator(f'#grants tr[data-dataset="{STEWARDED}"]').count() == 0
    save_screenshot(researcher, "portal-12-my-access-after-revocation")
    print(f"server stopped {took:.1f} s after the revocation (limit {limit} s); "
          f"whole flow {time.monotonic() - began:.0f} s")
    assert took <= limit
