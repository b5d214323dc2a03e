"""Login through a real OpenID Connect provider (tests/oidc_provider.py) on a real hub with real sandboxes.

The provider requires client registration (a wrong secret is refused by it, not by us) and checks
PKCE. Its users, each a `sub` with the claims the provider sends:
- petra: in the platform's group and the output checkers' group; holds a grant on lung-ct. She
  signs in in Chromium and gets her sandbox; then the provider takes her out of the checkers'
  group (she loses the role at the next refresh, her server running), then out of the platform's
  group (her access ends and her server stops, without her coming back);
- sam: the platform's group and lung-ct's stewards' group: a steward, with no way into petra's server;
- nora (no username claim), quinn (a username no account can have), otto (in no allowed group),
  wendy (signs in while the hub holds a wrong client secret), and anyone while the provider is
  down: each gets a page that says what happened, and nothing is created in the catalog or the hub.
"""

import html
import re

import pytest
import requests
import yaml

from imaging_workbench.catalog import accounts, audit, datasets, grants, idp_roles
from imaging_workbench.catalog.models import Account
from imaging_workbench.context import WorkbenchContext
from imaging_workbench.deployment import validate_settings, with_defaults
from imaging_workbench.hub.network import ensure_firewall, ensure_network, sandbox_open_ports
from imaging_workbench.portal.base import SERVICE_NAME

from ..browser.servers import OfflineGuard
from ..hubtools import HubProcess
from ..oidc_provider import Provider, login, s256
from ..screenshots import save_screenshot
from ..waiting import wait_for
from .sandboxes import Box, remove_box

pytestmark = [pytest.mark.docker, pytest.mark.browser]

BOX = Box(network="wbtest-oidc-sandbox", subnet="172.29.252.0/24", prefix="wbtest-oidc")
PLATFORM, CHECKERS, LUNG_STEWARDS = "imaging-researchers", "output-checkers", "lung-ct-stewards"
DATASET = "lung-ct"
SUBS = {name: f"{name}@uni.example" for name in ("petra", "sam", "nora", "otto", "wendy", "quinn")}
PORTAL = f"/services/{SERVICE_NAME}/"


@pytest.fixture(scope="module")
def provider():
    p = Provider().start()
    p.set_user(SUBS["petra"], preferred_username="petra", groups=[PLATFORM, CHECKERS])
    p.set_user(SUBS["sam"], preferred_username="sam", groups=[PLATFORM, LUNG_STEWARDS])
    p.set_user(SUBS["nora"], email=SUBS["nora"], groups=[PLATFORM])  # no preferred_username
    p.set_user(SUBS["otto"], preferred_username="otto", groups=["marketing"])
    p.set_user(SUBS["wendy"], preferred_username="wendy", groups=[PLATFORM])
    p.set_user(SUBS["quinn"], preferred_username="Quinn Smith", groups=[PLATFORM])
    yield p
    p.stop()


@pytest.fixture(scope="module")
def oidc_hub(tmp_path_factory, docker, provider):
    """A hub logging in through `provider`, started while the provider is down (it must start)."""
    workdir = tmp_path_factory.mktemp("oidc-hub")
    secret_file = workdir / "client-secret"
    settings = validate_settings(with_defaults({
        "state_dir": str(workdir / "state"),
        "roles": {"operators": []},
        "hub": {"authenticator": "oidc"},
        "oidc": {"issuer": provider.url, "client_id": "registered-below", "client_secret_file": str(secret_file),
                 "login_groups": [PLATFORM], "login_service": "Test IdP", "discovery_ttl": 1,
                 "role_groups": {"stewards": {DATASET: [LUNG_STEWARDS]}, "output_checkers": [CHECKERS]}},
        "sandbox": {"network": BOX.network, "subnet": BOX.subnet, "revocation_interval": 3,
                    "home_volume": BOX.home_volume("{username}"), "default_profile": "standard",
                    "profiles": {"standard": {"display": "Standard", "cpu": 1, "memory": "1G"}}},
    }))
    hub = HubProcess(workdir, settings, api_ip=BOX.gateway, extra_config=BOX.spawner_config())
    client_id, secret = provider.register_client(f"{hub.url}/hub/oauth_callback")
    hub.settings["oidc"]["client_id"] = client_id
    hub.settings_file.write_text(yaml.safe_dump(hub.settings))
    secret_file.write_text(secret)
    secret_file.chmod(0o600)
    hub.secret, hub.secret_file = secret, secret_file
    hub.ctx = WorkbenchContext(hub.settings, actor="steward")
    folder = workdir / "datasets" / DATASET
    folder.mkdir(parents=True)
    (folder / "scan-001.dcm.txt").write_text("pixels of the lung cohort\n")
    for path in (folder, folder.parent):
        path.chmod(0o755)
    with hub.ctx.session() as s:  # petra's account exists before her first login: a steward granted her
        accounts.add_account(s, "steward", "petra")
        datasets.add_dataset(s, "steward", DATASET, folder, title="Lung CT", modality="CT", site="site-1")
        grants.grant_access(s, "steward", "petra", DATASET, 7, "OIDC login tests")
    try:
        ensure_network(docker, BOX.network, BOX.subnet)
        ensure_firewall(BOX.network, BOX.subnet, sandbox_open_ports(hub.settings))
        with provider.down():
            hub.start()
        yield hub
    finally:
        try:
            hub.stop()
        finally:
            remove_box(docker, BOX)


def hub_roles(hub, name: str) -> set[str]:
    return set(hub.api("GET", f"/users/{name}").json()["roles"])


def in_catalog(hub, name: str) -> bool:
    with hub.ctx.session() as s:
        return s.get(Account, name) is not None


def server(hub, name: str) -> dict | None:
    return hub.api("GET", f"/users/{name}").json()["servers"].get("")


def wait_until_ready(hub, name: str) -> None:
    def ready():
        running = server(hub, name)
        if running is None:
            raise AssertionError(f"{name}'s server failed to start:\n{hub.log_tail()}")
        return running["ready"]

    wait_for(ready, 180, what=f"{name}'s server")


def test_a_researcher_signs_in_at_the_provider_and_gets_her_sandbox(oidc_hub, provider, chromium):
    hub, guard = oidc_hub, OfflineGuard()
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    guard.attach(page)
    try:
        page.goto(f"{hub.url}/hub/login")
        save_screenshot(page, "oidc-01-hub-login")
        page.click("text=Sign in with Test IdP")
        page.wait_for_url(f"{provider.url}/oauth2/authorize*")
        save_screenshot(page, "oidc-02-provider-form")
        page.fill("input[name=sub]", SUBS["petra"])
        page.click("button:has-text('Authorize')")
        page.wait_for_url(re.compile(rf"{re.escape(hub.url)}/hub/(spawn|home).*"))
        page.goto(f"{hub.url}/hub/spawn")
        save_screenshot(page, "oidc-03-spawn-form")
        page.click("#spawn_form button[type=submit]")
        wait_until_ready(hub, "petra")
        page.goto(f"{hub.url}/user/petra/lab")
        page.wait_for_selector("#jp-main-dock-panel", timeout=90_000)
        save_screenshot(page, "oidc-04-jupyterlab")
    finally:
        context.close()
    # The test provider's own form links its stylesheet from a CDN (refused by the guard, like any other).
    blocked = [url for url in guard.blocked if not url.endswith("/pico.min.css")]
    assert not blocked, f"a page tried to reach addresses other than 127.0.0.1: {blocked}"

    # PKCE: the challenge the hub sent with the browser, and the verifier it sent with the code.
    exchange = provider.gate.exchanges[-1]
    assert exchange["code_challenge_method"] == "S256"
    assert exchange["code_verifier"] and s256(exchange["code_verifier"]) == exchange["code_challenge"]
    # Her groups gave her the checker role, in the hub and in the catalog the portal reads.
    assert "workbench-output-checker" in hub_roles(hub, "petra") and "admin" not in hub_roles(hub, "petra")
    with hub.ctx.session() as s:
        assert idp_roles.idp_section_of(s, "petra") == {"output_checkers": ["petra"]}


def test_a_stewards_groups_make_a_steward_with_no_way_into_a_researchers_server(oidc_hub, provider):
    hub = oidc_hub
    if server(hub, "petra") is None:  # the browser test above starts it; alone, this test does
        hub.api("POST", "/users/petra/server", json={})
        wait_until_ready(hub, "petra")
    http, landed = login(hub.url, SUBS["sam"])
    assert landed.status_code == 200, landed.text[-2000:]
    assert {"workbench-steward", "user"} <= hub_roles(hub, "sam") and "admin" not in hub_roles(hub, "sam")

    grants_page = http.get(f"{hub.url}{PORTAL}grants", timeout=60)
    assert grants_page.status_code == 200 and 'data-user="petra"' in grants_page.text  # sam stewards lung-ct

    for path in ("/user/petra/lab", "/user/petra/api/contents"):
        into_petras = http.get(f"{hub.url}{path}", timeout=60)
        assert into_petras.status_code == 403, f"{path}: {into_petras.status_code} {into_petras.url}"

    # Nor can a user's own token make the hub ask the provider about anyone (the access service's scope).
    sams_token = hub.user_token("sam")
    assert hub.api("POST", "/workbench/auth-refresh/petra", token=sams_token).status_code == 403

    # Logout ends the hub session and offers the provider's end-session URL.
    out = http.get(f"{hub.url}/hub/logout", timeout=30)
    link = re.search(r'id="end-provider-session"[^>]*href="([^"]+)"', out.text)
    assert out.status_code == 200 and link, out.text[-2000:]
    end_session = link.group(1).replace("&amp;", "&")
    assert end_session.startswith(f"{provider.url}/oauth2/end_session?") and "id_token_hint=" in end_session
    assert http.get(f"{hub.url}/hub/api/user", timeout=30).status_code == 403


def test_a_group_removed_at_the_provider_takes_the_role_at_the_next_refresh(oidc_hub, provider):
    hub = oidc_hub
    assert server(hub, "petra") is not None and "workbench-output-checker" in hub_roles(hub, "petra")
    logins = len(provider.gate.exchanges)
    provider.set_user(SUBS["petra"], preferred_username="petra", groups=[PLATFORM])

    wait_for(lambda: "workbench-output-checker" not in hub_roles(hub, "petra"), 30,
             what="the hub to take petra's checker role after the provider took her group")
    with hub.ctx.session() as s:
        assert idp_roles.idp_section_of(s, "petra") == {}
        change = [e for e in audit.events(s, action="roles.changed") if e.subject == "petra"][-1]
        assert change.details["removed"] == ["output checker"]
    assert server(hub, "petra") is not None  # still working: only the role went
    assert len(provider.gate.exchanges) == logins  # and she did not sign in again


def test_a_researcher_taken_out_of_the_platform_loses_access_and_servers(oidc_hub, provider):
    hub = oidc_hub
    assert server(hub, "petra") is not None
    provider.set_user(SUBS["petra"], preferred_username="petra", groups=[])

    wait_for(lambda: server(hub, "petra") is None, 60, what="petra's server to stop")
    with hub.ctx.session() as s:
        assert grants.live_grants(s, "petra") == []
        ended = [e for e in audit.events(s, action="access.ended") if e.subject == "petra"][-1]
    assert ended.actor == "workbench-access" and ended.details["datasets"] == [DATASET]
    assert ended.details["reason"].startswith("identity provider: petra is in none of the groups")


@pytest.mark.parametrize("case", ["provider down", "wrong client secret", "no username claim", "unusable username",
                                  "no allowed group"])
def test_a_login_that_cannot_succeed_gets_a_clear_page_and_creates_nothing(oidc_hub, provider, case):
    hub = oidc_hub
    name, sub = {"provider down": ("wendy", SUBS["wendy"]), "wrong client secret": ("wendy", SUBS["wendy"]),
                 "no username claim": ("nora", SUBS["nora"]), "unusable username": ("quinn smith", SUBS["quinn"]),
                 "no allowed group": ("otto", SUBS["otto"])}[case]
    if case == "provider down":
        with provider.down():
            page = requests.get(f"{hub.url}/hub/oauth_login", timeout=30)
        status, says = 503, f"the identity provider at {provider.url} cannot be reached"
    elif case == "wrong client secret":
        hub.secret_file.write_text("not-the-registered-secret")
        try:
            _, page = login(hub.url, sub)
        finally:
            hub.secret_file.write_text(hub.secret)
        status, says = 503, "refused this workbench's client credentials (invalid_client)"
    elif case == "no username claim":
        _, page = login(hub.url, sub)
        status, says = 403, "has no 'preferred_username' claim"
    elif case == "unusable username":
        _, page = login(hub.url, sub)
        status, says = 403, "names you 'Quinn Smith' ('preferred_username'), which cannot name a workbench account"
    else:
        _, page = login(hub.url, sub)
        status, says = 403, f"otto is in none of the groups that may use this workbench ({PLATFORM})"
    assert page.status_code == status and says in html.unescape(page.text), page.text[-3000:]
    assert not in_catalog(hub, name)
    assert hub.api("GET", f"/users/{name}").status_code == 404
