"""Logging in through the real hub's login page with the catalog's accounts."""

import pytest

from ..hubtools import log_in

pytestmark = pytest.mark.hub


def test_demo_user_logs_in_through_the_login_page(hub, logins):
    http, response = log_in(hub.url, "alice", logins["alice"])
    assert response.status_code == 302, hub.log_tail()
    assert "jupyterhub-session-id" in http.cookies
    home = http.get(f"{hub.url}/hub/home", timeout=30)
    assert home.status_code == 200 and "alice" in home.text


@pytest.mark.parametrize("name, password", [("alice", "wrong-password"), ("mallory", "anything"), ("alice", "")])
def test_bad_credentials_are_refused(hub, name, password):
    http, response = log_in(hub.url, name, password)
    assert response.status_code == 403
    assert "Invalid username or password" in response.text
    assert "jupyterhub-hub-login" not in http.cookies


def test_no_shared_or_default_password(hub, logins):
    """Each demo login has its own generated password; one user's does not open another's account."""
    assert len(set(logins.values())) == len(logins)
    assert log_in(hub.url, "bob", logins["alice"])[1].status_code == 403


def test_the_operator_has_the_operator_role_and_nobody_is_hub_admin(hub, logins):
    for name in ("admin", "alice"):
        assert log_in(hub.url, name, logins[name])[1].status_code == 302
    users = {u["name"]: u for u in hub.api("GET", "/users").json()}
    assert users["admin"]["admin"] is False and "workbench-operator" in users["admin"]["roles"]
    assert users["alice"]["admin"] is False


def test_spawn_form_offers_profiles(hub, logins):
    http, _ = log_in(hub.url, "carol", logins["carol"])
    page = http.get(f"{hub.url}/hub/spawn", timeout=30)
    assert page.status_code == 200
    assert "Standard: 2 CPU, 4 GB" in page.text and "Large: 2 CPU, 12 GB" in page.text
    assert "NVIDIA" not in page.text  # no GPU on this host, so no GPU profile


def test_workbench_services_run(hub):
    services = hub.api("GET", "/services").json()
    for name in ("workbench-access", "idle-culler", "workbench-federation"):
        assert name in services, sorted(services)
        assert services[name].get("pid"), f"{name} is not running: {services[name]}"
