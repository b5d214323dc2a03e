"""A `federated` grant made in the portal, in real Chromium through the hub's login page: the
researcher asks for it on the catalogue's form, the dataset's steward approves it on the Review
page with a higher minimum count, the researcher accepts. Then the researcher's cohort statistics
run on the dataset, under that minimum count, while the mount plan of their server holds nothing:
/data would not hold the dataset.

The people are conftest's: rita (no grants) and sam (steward of kidney-ct). Screenshots of each
page go to tests/screenshots.py's folder.
"""

import json
import re
from contextlib import contextmanager

import pytest
import requests
from playwright.sync_api import expect, sync_playwright

from imaging_workbench.catalog import accounts
from imaging_workbench.catalog.grants import FEDERATED, live_grants
from imaging_workbench.catalog.models import ServerMount
from imaging_workbench.clock import utcnow
from imaging_workbench.dicom.demo import MARKER
from imaging_workbench.federation.client import FederationError
from imaging_workbench.hub.mount_plan import DATA_ROOT, plan_server
from imaging_workbench.portal.base import SERVICE_NAME

from ..browser.servers import OfflineGuard, launch_chromium
from ..screenshots import save_screenshot
from ..waiting import wait_for
from .conftest import NEWCOMER, STEWARD, STEWARDED

pytestmark = [pytest.mark.federation, pytest.mark.browser]
MIN_COUNT = 20  # the steward's condition, above the deployment's 10
EPSILON = 8.0  # the most one job may spend under the sites' default policy: figures close to the truth


@pytest.fixture(scope="module")
def portal_url(fed_hub):
    """The portal's address through the hub's proxy, once the hub has started it."""
    url = f"{fed_hub.url}/services/{SERVICE_NAME}/"

    def up():
        try:
            return requests.get(url + "api/health", timeout=5).ok
        except requests.RequestException:
            return False

    wait_for(up, 60, what=f"the hub to start {SERVICE_NAME} (log: {fed_hub.log_path})")
    return url


@pytest.fixture(scope="module")
def passwords(fed_env):
    """Login passwords for the two people, generated as the demo logins are."""
    _, _, ctx = fed_env
    made = {name: accounts.generate_password() for name in (NEWCOMER, STEWARD)}
    with ctx.session() as s:
        for name, password in made.items():
            accounts.set_password(s, "steward", name, password)
    return made


@pytest.fixture(scope="module")
def running_server(fed_env):
    """The researcher's server counts as running, with the mounts its last start recorded (as the
    spawner records them): "My access" then offers a restart for any grant it does not mount yet,
    so the absence of that notice says something. Recorded as stopped afterwards."""
    _, _, ctx = fed_env
    plan = server_plan(ctx, NEWCOMER)
    with ctx.session() as s:
        mount = ServerMount(user=NEWCOMER, server_name="", container=f"jupyter-{NEWCOMER}",
                            datasets=sorted(plan.datasets), started_at=utcnow())
        s.add(mount)
    yield
    with ctx.session() as s:
        s.get(ServerMount, mount.id).stopped_at = utcnow()


@pytest.fixture(scope="module")
def site_index(federation, demo_data):
    """The dataset's site has indexed it, as its first job would: a cold index (about 30 s on 2
    cores) and the job's reading exceed the tier's task timeout of 45 s. Earlier tests of the tier
    usually did it already; then this re-reads only changed files (about a second)."""
    from imaging_workbench.federation.site.data import SiteData

    SiteData(federation.kit(demo_data[STEWARDED][0].site) / "local").series([STEWARDED])


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        chromium = launch_chromium(p)
        yield chromium
        chromium.close()


@contextmanager
def signed_in(browser, portal_url: str, name: str, password: str):
    """A page of `name`'s own browser, signed in through the hub's login page and on the portal's
    catalogue; every request off 127.0.0.1 is refused, and fails the test once the page closes."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    guard = OfflineGuard()
    page = context.new_page()
    guard.attach(page)
    try:
        page.goto(portal_url)  # the portal sends the stranger to the hub's login page
        page.wait_for_url(re.compile(r"/hub/login"))
        page.fill("#username_input", name)
        page.fill("#password_input", password)
        page.click("#login_submit")
        page.wait_for_url(portal_url)
        yield page
    finally:
        context.close()
    assert not guard.blocked, f"the page tried to reach addresses other than 127.0.0.1: {guard.blocked}"


def server_plan(ctx, user: str):
    """The mount plan hub/spawner.py makes for `user`'s default server now (default profile)."""
    box = ctx.settings["sandbox"]
    with ctx.session() as s:
        return plan_server(s, user, "", "default", profile=box["profiles"][box["default_profile"]],
                           home_volume=box["home_volume"], state_dir=ctx.settings["state_dir"])


def request_federated_access(page) -> int:
    """On the catalogue, choose the dataset and fill the request form for federated access;
    returns the request's id from the page the form leads to."""
    save_screenshot(page, "portal-federated-1-catalogue")
    page.check(f'#catalogue tr[data-dataset="{STEWARDED}"] input[name=datasets]')
    page.click("text=Request access to the chosen datasets")
    expect(page.locator(f"#ds-{STEWARDED}")).to_be_checked()
    page.fill("#project", "Renal tumour volumes")
    page.fill("#purpose", "Tumour volume and HU distributions across the cohort, aggregates only.")
    page.check("#mode-federated")
    page.fill("#days", "30")
    save_screenshot(page, "portal-federated-2-request-form")
    page.click("text=Send the request")
    page.wait_for_url(re.compile(r"/requests/[0-9]+$"))
    expect(page.locator("body")).to_contain_text("mode federated")
    save_screenshot(page, "portal-federated-3-request-sent")
    return int(page.url.rsplit("/", 1)[1])


def approve_with_min_count(page, portal_url: str, request_id: int) -> None:
    """On the Review page, the steward approves the request's dataset with a higher minimum count."""
    page.goto(portal_url + "review")
    item = page.locator(f'section[data-item="{request_id}/{STEWARDED}"]')
    expect(item).to_contain_text(NEWCOMER)
    approve = item.locator("form[data-decide=approve]")
    approve.locator("input[name=min_count]").fill(str(MIN_COUNT))
    approve.locator("textarea[name=conditions_text]").fill("Publish aggregate figures only.")
    save_screenshot(page, "portal-federated-4-review")
    approve.locator("button[type=submit]").click()
    page.wait_for_url(portal_url + "review")
    expect(item).to_have_count(0)
    save_screenshot(page, "portal-federated-5-reviewed")


def accept_the_conditions(page, portal_url: str, request_id: int) -> None:
    """The researcher reads the approved conditions on the request's page, accepts, and lands on My access."""
    page.goto(f"{portal_url}requests/{request_id}")
    expect(page.locator(f'#items tr[data-dataset="{STEWARDED}"]')).to_contain_text(f"minimum count {MIN_COUNT}")
    save_screenshot(page, "portal-federated-6-conditions")
    page.click("text=Accept the conditions")
    page.wait_for_url(portal_url + "access")
    save_screenshot(page, "portal-federated-7-my-access")


def demo_patients(demo_data) -> int:
    _, folder = demo_data[STEWARDED]
    return json.loads((folder / MARKER).read_text())["n_patients"]


def test_a_federated_grant_from_the_portal_runs_statistics_while_data_holds_nothing(
        client_for, fed_env, demo_data, site_index, portal_url, passwords, running_server, browser):
    _, _, ctx = fed_env
    fed = client_for(NEWCOMER)
    # The attack first: statistics on a dataset without a grant.
    with pytest.raises(FederationError) as refused:
        fed.submit("cohort-statistics", datasets=[STEWARDED], epsilon=EPSILON)
    assert refused.value.status == 403
    assert "grant" in refused.value.message and STEWARDED in refused.value.message, refused.value.message

    with signed_in(browser, portal_url, NEWCOMER, passwords[NEWCOMER]) as researcher, \
            signed_in(browser, portal_url, STEWARD, passwords[STEWARD]) as steward:
        request_id = request_federated_access(researcher)
        approve_with_min_count(steward, portal_url, request_id)
        accept_the_conditions(researcher, portal_url, request_id)
        grant = researcher.locator(f'#grants tr[data-dataset="{STEWARDED}"]')
        expect(grant.locator("td").nth(1)).to_have_text(FEDERATED)
        expect(grant).to_contain_text(f"minimum count {MIN_COUNT}")
        expect(researcher.locator("#restart")).to_have_count(0)  # nothing for a restart to mount

    job = fed.submit("cohort-statistics", datasets=[STEWARDED], epsilon=EPSILON)
    result = job.wait(timeout=180, progress=False).result()
    assert result.status == "finished", result.raw.get("error")
    site = demo_data[STEWARDED][0].site
    assert result.raw["sites"][site]["policy"]["min_count"] == MIN_COUNT  # the condition reached the site
    table = result.table.set_index(["variable", "value"])
    # Counts carry discrete Laplace noise of scale 7/4 at this epsilon: 20 away is a chance of 1e-5.
    assert table.loc[("patients", "all"), "count"] == pytest.approx(demo_patients(demo_data), abs=20)
    shown = result.table[~result.table.suppressed]["count"]
    assert (shown >= MIN_COUNT).all() and result.table.suppressed.any(), result.table

    plan = server_plan(ctx, NEWCOMER)
    with ctx.session() as s:
        assert {g.dataset_id: g.mode for g in live_grants(s, NEWCOMER)} == {STEWARDED: FEDERATED}
    assert plan.datasets == {} and f"{DATA_ROOT}/{STEWARDED}" not in plan.read_only_paths
