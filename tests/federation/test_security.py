"""What the service and the sites refuse: bad requests, missing grants, missing tokens, custom code."""

import json
import os
import threading

import pytest
import requests
import yaml

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
    from imaging_workbench.federation.hub.flare_session import FlareAdmin

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
    detail = str(meta.get("job_deploy_detail"))
    assert "BYOC not permitted" in detail or "custom code" in detail


@pytest.fixture
def fifo_trap(tmp_path):
    """A FIFO that a thread holds open for writing: its open returns only once something opens
    the FIFO for reading, which sets `opened`."""
    path = tmp_path / "trap.npy"
    os.mkfifo(path)
    path.chmod(0o666)
    opened = threading.Event()

    def hold():
        os.close(os.open(path, os.O_WRONLY))
        opened.set()

    writer = threading.Thread(target=hold, daemon=True)
    writer.start()
    yield path, opened
    os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))  # let the writer go
    writer.join(5)


def stock_component_job(folder, settings, fifo) -> str:
    """Our controller on the server (so only the sites can refuse); at the sites a stock NVFlare
    executor, result filter and a model locator pointed at the FIFO."""
    from imaging_workbench.federation.hub.job_folders import write_job
    from imaging_workbench.federation.algorithms import get_algorithm

    sites = {site: [] for site in settings.sites}
    job = write_job(folder, get_algorithm("cohort-statistics"), {}, sites, settings, "stock-classes")
    client = job / "app" / "config" / "config_fed_client.json"
    client.write_text(json.dumps({
        "format_version": 2,
        "executors": [{"tasks": ["*"], "executor": {"path": "nvflare.app_common.np.np_trainer.NPTrainer",
                                                    "args": {"submit_model_task_name": "workbench"}}}],
        "task_result_filters": [{"tasks": ["*"], "filters": [
            {"path": "nvflare.app_common.filters.exclude_vars.ExcludeVars", "args": {}}]}],
        "task_data_filters": [],
        "components": [{"id": "model_locator", "path": "nvflare.app_common.np.np_model_locator.NPModelLocator",
                        "args": {"model_name": {"server": str(fifo)}}}],
    }))
    return job


def test_sites_refuse_a_job_of_stock_flare_classes_before_building_any(federation, tmp_path, fifo_trap):
    from imaging_workbench.federation.hub.flare_session import FlareAdmin
    from imaging_workbench.federation.embedded import log_file

    fifo, opened = fifo_trap
    admin = FlareAdmin(federation)
    flare_id = admin.submit(stock_component_job(tmp_path, federation, fifo))
    with admin.session() as sess:
        meta = wait_for(lambda: (m := sess.get_job_meta(flare_id))["status"].startswith("FINISHED") and m, 90,
                        what="FLARE to end the stock-class job")
    assert meta["status"] == "FINISHED:FAILED_TO_RUN"
    detail = {line.split(": ", 1)[0]: line for line in meta["job_deploy_detail"]}
    assert detail["server"] == "server: OK"
    for site in federation.sites:
        assert "workbench allow-list" in detail[site] and "NPTrainer" in detail[site], detail
        logs = log_file(federation, site).read_text()
        assert f"workbench refused job {flare_id}" in logs, site
    assert not opened.wait(2), "a site opened the FIFO for reading"


def job_after_a_site_admins_edit(client, path, edit):
    """Run a statistics job on lung-ct (site-1) and liver-ct-site3 while the JSON or YAML file
    `path` of site-3 holds `edit(content)`; the file is restored afterwards."""
    original = path.read_text()
    content = yaml.safe_load(original) if path.suffix == ".yaml" else json.loads(original)
    edit(content)
    path.write_text(yaml.safe_dump(content) if path.suffix == ".yaml" else json.dumps(content))
    try:
        job = client.submit("cohort-statistics", datasets=["lung-ct", "liver-ct-site3"])
        job.wait(timeout=180, progress=False)
        return job
    finally:
        path.write_text(original)


def test_an_algorithm_a_site_does_not_allow_leaves_that_site_out(client_for, federation):
    from imaging_workbench.federation.site.policy_file import POLICY_FILE

    def allow_training_only(policy):
        policy["allowed_algorithms"] = ["federated-training"]

    job = job_after_a_site_admins_edit(client_for("alice"), federation.kit("site-3") / "local" / POLICY_FILE,
                                       allow_training_only)
    assert job.state == "partial"
    assert "site-3" in job.row["error"] and "site-1" not in job.row["error"]
    assert job.result().raw["sites"]["site-1"]["status"] == "ok"


def test_a_sites_error_leaves_only_an_id_and_the_details_stay_in_its_log(client_for, federation):
    """The site-3 admin takes a dataset off the site's own list: the job fails there. What leaves
    the site is a fixed text with an error id; the exception's text stays in the site's log."""
    from imaging_workbench.federation.embedded import log_file

    datasets_file = federation.kit("site-3") / "local" / "workbench_datasets.json"
    hidden_path = json.loads(datasets_file.read_text())["datasets"]["liver-ct-site3"]["path"]
    job = job_after_a_site_admins_edit(client_for("alice"), datasets_file,
                                       lambda served: served["datasets"].pop("liver-ct-site3"))
    assert job.state == "partial"
    error = job.row["error"]
    assert "site-3" in error and "error id" in error
    assert "liver-ct-site3" not in error and hidden_path not in error and "WorkbenchError" not in error
    error_id = error.split("error id ", 1)[1].split(";", 1)[0]
    log = log_file(federation, "site-3").read_text()
    assert f"workbench error {error_id}" in log and "does not serve dataset(s) liver-ct-site3" in log
