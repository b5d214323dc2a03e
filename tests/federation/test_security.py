"""What the service and the sites refuse: bad requests, missing grants, missing tokens, custom code."""

import json

import pytest
import requests

from imaging_workbench.federation.client import FederationError

from ..waiting import wait_for

pytestmark = pytest.mark.federation


def refused(call) -> FederationError:
    with pytest.raises(FederationError) as e:
        call()
    return e.value


def test_unknown_algorithm_is_a_400_naming_it(client_for):
    e = refused(lambda: client_for("alice").submit("train-anything", datasets=["lung-ct"]))
    assert e.status == 400 and "train-anything" in e.message and "algorithm" in e.fields


def test_bad_parameters_are_a_400_naming_each_field(client_for):
    e = refused(lambda: client_for("alice").submit("cohort-statistics", datasets=["lung-ct"], hu_bins="many",
                                                   quantiles=[0.5, 1.5], colour="red"))
    assert e.status == 400
    assert set(e.fields) == {"hu_bins", "quantiles", "colour"}
    assert "1.5" in e.fields["quantiles"] and "hu_bins" in e.message


def test_dataset_without_a_grant_is_a_403_naming_it(client_for):
    e = refused(lambda: client_for("bob").submit("cohort-statistics", datasets=["lung-ct", "liver-ct"]))
    assert e.status == 403 and "liver-ct" in e.message and "lung-ct" not in e.message


def test_requests_without_a_token_or_without_the_scope_are_refused(fed_service, fed_hub):
    assert requests.get(fed_service.url + "api/jobs", timeout=10).status_code == 403
    headers = {"Authorization": f"token {fed_hub.tokens['unscoped']}"}
    assert requests.get(fed_service.url + "api/jobs", headers=headers, timeout=10).status_code == 403
    assert requests.get(fed_service.url + "api/health", timeout=10).ok


def test_a_user_cannot_see_another_users_job(client_for):
    job = client_for("bob").submit("cohort-statistics", datasets=["lung-ct"])
    e = refused(lambda: client_for("alice").job(job.id))
    assert e.status == 404
    job.wait(timeout=180, progress=False)


def test_sites_refuse_custom_code(federation, tmp_path):
    from imaging_workbench.federation.admin import FlareAdmin

    job = tmp_path / "byoc"
    (job / "app" / "config").mkdir(parents=True)
    (job / "app" / "custom").mkdir()
    (job / "app" / "custom" / "evil.py").write_text("import os\nos.system('id')\n")
    (job / "meta.json").write_text(json.dumps({"name": "byoc", "deploy_map": {"app": ["@ALL"]}, "min_clients": 1}))
    (job / "app" / "config" / "config_fed_server.json").write_text(json.dumps(
        {"format_version": 2, "workflows": [{"id": "w", "path": "evil.Controller", "args": {}}], "components": []}))
    (job / "app" / "config" / "config_fed_client.json").write_text(json.dumps(
        {"format_version": 2, "executors": [{"tasks": ["*"], "executor": {"path": "evil.Executor"}}]}))
    admin = FlareAdmin(federation)
    flare_id = admin.submit(job)
    with admin.session() as sess:
        meta = wait_for(lambda: (m := sess.get_job_meta(flare_id))["status"].startswith("FINISHED") and m, 60,
                        what="FLARE to end the custom-code job")
    assert meta["status"] == "FINISHED:FAILED_TO_RUN"
    assert "BYOC not permitted" in str(meta.get("job_deploy_detail"))


def test_an_algorithm_a_site_does_not_allow_leaves_that_site_out(client_for, federation):
    policy_file = federation.kit("site-3") / "local" / "privacy.json"
    original = policy_file.read_text()
    policy = json.loads(original)
    policy["scopes"][0]["properties"]["allowed_algorithms"] = ["federated-training"]
    policy_file.write_text(json.dumps(policy))
    try:
        job = client_for("alice").submit("cohort-statistics", datasets=["lung-ct", "liver-ct-site3"])
        job.wait(timeout=180, progress=False)
    finally:
        policy_file.write_text(original)
    assert job.state == "partial"
    assert "site-3" in job.row["error"] and "site-1" not in job.row["error"]
    assert job.result().raw["sites"]["site-1"]["status"] == "ok"
