"""Provisioned kits keep every listener on the configured host and carry the workbench's site files;
the hub service definition and the CLI are wired."""

import json

import pytest

from imaging_workbench.federation.protocol.allowlist import PRIVACY_FILTER, allowed_classes
from imaging_workbench.federation.provision import ensure_embedded_kits, provision_project
from imaging_workbench.federation.hub.service import SERVICE_NAME, hub_services
from imaging_workbench.federation.settings import federation_settings
from imaging_workbench.federation.site.policy_file import POLICY_FILE, load_site_policy


@pytest.fixture
def kits(settings):
    federation = federation_settings(settings)
    ensure_embedded_kits(federation)
    return federation


def test_server_listens_on_loopback_only(kits):
    config = json.loads((kits.kit("server") / "startup" / "fed_server.json").read_text())
    assert config["servers"][0]["service"]["target"] == f"127.0.0.1:{kits.fl_port}"
    assert config["servers"][0]["admin_server"] == "127.0.0.1"
    client = json.loads((kits.kit("site-1") / "startup" / "fed_client.json").read_text())
    assert client["servers"][0]["service"]["target"].startswith("127.0.0.1:")


def test_sites_refuse_custom_code_and_allow_only_workbench_components(kits):
    for name in kits.sites:
        local = kits.kit(name) / "local"
        authz = json.loads((local / "authorization.json").read_text())
        assert all(p.get("byoc", "none") == "none" for p in authz["permissions"].values() if isinstance(p, dict))
        resources = json.loads((local / "resources.json").read_text())
        assert resources["class_list_enforcement_mode"] == "enforce"
        assert resources["class_allow_list"] == allowed_classes("client")
        scope = json.loads((local / "privacy.json").read_text())
        assert scope["default_scope"] == "workbench"
        assert [f["path"] for f in scope["scopes"][0]["task_result_filters"]] == [PRIVACY_FILTER]
        policy = load_site_policy(local)
        assert policy.for_dataset("lung-ct").min_count == 10 and policy.for_dataset("lung-ct").max_bins == 64


def test_a_site_admins_policy_edits_survive_reprovisioning(kits):
    policy = kits.kit("site-2") / "local" / POLICY_FILE
    policy.write_text(policy.read_text().replace("min_count: 10", "min_count: 25"))
    ensure_embedded_kits(kits)
    assert load_site_policy(policy.parent).for_dataset("liver-ct").min_count == 25


def test_an_older_sites_privacy_json_becomes_its_policy_file(kits):
    local = kits.kit("site-3") / "local"
    (local / POLICY_FILE).unlink()
    old = {"scopes": [{"name": "workbench", "properties": {"allowed_algorithms": ["cohort-statistics"]},
                       "task_result_filters": [{"path": "imaging_workbench.federation.flare.WorkbenchPrivacyFilter",
                                                "args": {"min_count": 25, "noise": 0.02, "max_bins": 16}}]}],
           "default_scope": "workbench"}
    (local / "privacy.json").write_text(json.dumps(old))
    ensure_embedded_kits(kits)
    policy = load_site_policy(local)
    assert policy.allowed_algorithms == ["cohort-statistics"]
    assert (policy.for_dataset("x").min_count, policy.for_dataset("x").max_bins) == (25, 16)
    assert "flare.WorkbenchPrivacyFilter" not in (local / "privacy.json").read_text()


def test_provision_for_real_hosts(settings, tmp_path):
    project = tmp_path / "project.yml"
    project.write_text("""
api_version: 3
name: hospitals
participants:
  - {name: fl.example.org, type: server, org: coord, fed_learn_port: 8002, admin_port: 8003}
  - {name: hospital-a, type: client, org: hosp_a}
  - {name: service@example.org, type: admin, org: coord, role: project_admin}
""")
    prod = provision_project(project, tmp_path / "out", federation_settings(settings))
    assert (prod / "hospital-a" / "local" / "privacy.json").is_file()
    assert (prod / "fl.example.org" / "startup" / "fed_server.json").is_file()


def test_hub_service_definition(settings, monkeypatch):
    [service] = hub_services(settings, "172.29.248.1", settings_file="/etc/workbench.yaml")
    assert service["name"] == SERVICE_NAME
    assert service["url"] == f"http://172.29.248.1:{settings['hub']['service_port']}"
    assert service["command"][-1] == "imaging_workbench.federation.hub.service"
    assert service["environment"]["WORKBENCH_SETTINGS"] == "/etc/workbench.yaml"
    assert service["oauth_no_confirm"] is True
    monkeypatch.delenv("WORKBENCH_SETTINGS", raising=False)
    monkeypatch.setenv("WORKBENCH_SITE", "/etc/old.yaml")  # the old name, still read
    [service] = hub_services(settings, "172.29.248.1")
    assert service["environment"]["WORKBENCH_SETTINGS"] == "/etc/old.yaml"


def test_cli_status_when_nothing_runs(cli):
    rc, out, err = cli("federation", "status")
    assert rc == 3 and "server" in out and "site-3" in out


def test_service_application_answers_health_without_a_socket(ctx):
    from tornado.testing import AsyncHTTPTestCase  # noqa: F401 - tornado is importable

    from imaging_workbench.federation.hub.manager import JobManager
    from imaging_workbench.federation.hub.service import create_application

    app = create_application(JobManager(ctx, federation_settings(ctx.settings)), hub_auth=None)
    paths = {rule.matcher.regex.pattern for rule in app.wildcard_router.rules}
    assert any(p.startswith("/services/workbench-federation/api/jobs") for p in paths)
    assert any(p.startswith("/api/jobs") for p in paths)
