"""Sites and the server allow exactly the workbench's classes, and the deploy-time check refuses
a job naming anything else (the federation tier runs the same check on real FLARE processes)."""

import json
from dataclasses import replace

import pytest

from imaging_workbench.federation import algorithms as registry
from imaging_workbench.federation.protocol.allowlist import (
    ALGORITHM_GATE, CONTROLLER, EXECUTOR, PRIVACY_FILTER, allow_list_status, allowed_classes, app_problem,
    component_paths, read_allow_list,
)
from imaging_workbench.federation.protocol.validator import WorkbenchAppValidator
from imaging_workbench.federation.hub.job_folders import write_job
from imaging_workbench.federation.provision import ensure_embedded_kits
from imaging_workbench.federation.settings import federation_settings

STOCK_EXECUTOR = "nvflare.app_common.np.np_trainer.NPTrainer"


@pytest.fixture
def kits(settings):
    federation = federation_settings(settings)
    ensure_embedded_kits(federation)
    return federation


def deployed(workspace, job_folder, participant):
    """Lay a job's app out as FLARE deploys it: <workspace>/<job id>/app_<participant>."""
    app = workspace / "job-1" / f"app_{participant}"
    app.parent.mkdir(parents=True)
    (job_folder / "app").rename(app)
    return app


def test_the_lists_are_exactly_the_algorithms_classes_and_the_policy_filters():
    assert allowed_classes("server") == [CONTROLLER]
    assert allowed_classes("client") == sorted([EXECUTOR, ALGORITHM_GATE, PRIVACY_FILTER])
    assert not any(name.startswith("nvflare.") for kind in ("server", "client") for name in allowed_classes(kind))


def test_a_new_algorithm_brings_its_classes(monkeypatch):
    extra = replace(registry.ALGORITHMS["cohort-statistics"], id="radiomics", executor="imaging_workbench.x.Radiomics")
    monkeypatch.setitem(registry.ALGORITHMS, "radiomics", extra)
    assert "imaging_workbench.x.Radiomics" in allowed_classes("client")


def test_every_participant_holds_exactly_the_workbench_list(kits):
    for name, kind in [("server", "server"), *[(site, "client") for site in kits.sites]]:
        resources = json.loads((kits.kit(name) / "local" / "resources.json").read_text())
        assert resources["class_allow_list"] == allowed_classes(kind), name
        assert resources["class_list_enforcement_mode"] == "enforce"
        assert resources["app_validator"]["args"] == {"kind": kind}
        # No log streaming: it would inject a stock class into every job and send site logs away.
        assert resources["allow_log_streaming"] is False
        assert not any("logging" in c["path"] for c in resources.get("components", [])), name
        assert allow_list_status(kits.kit(name) / "local", kind)["allow_list_matches"]


def test_reprovisioning_repairs_an_older_kit_with_the_stock_list(kits):
    from nvflare.app_common.default_component_policy import DEFAULT_CLASS_ALLOW_LIST

    path = kits.kit("site-1") / "local" / "resources.json"
    resources = json.loads(path.read_text())
    resources["class_allow_list"] = sorted(set(DEFAULT_CLASS_ALLOW_LIST) | set(allowed_classes("client")))
    del resources["app_validator"]
    path.write_text(json.dumps(resources))
    assert allow_list_status(path.parent, "client") == {"allow_list": len(resources["class_allow_list"]),
                                                        "allow_list_matches": False}
    ensure_embedded_kits(kits)
    assert read_allow_list(path) == allowed_classes("client")
    assert json.loads(path.read_text())["app_validator"]["path"].endswith("WorkbenchAppValidator")


def test_status_reports_the_list_size_and_whether_it_matches(kits, cli):
    path = kits.kit("site-2") / "local" / "resources.json"
    resources = json.loads(path.read_text())
    resources["class_allow_list"].append(STOCK_EXECUTOR)
    path.write_text(json.dumps(resources))
    rc, out, _ = cli("federation", "status", "--json")
    rows = {row["participant"]: row for row in json.loads(out)}
    assert rows["site-2"]["allow_list"] == 4 and rows["site-2"]["allow_list_matches"] is False
    assert rows["site-1"]["allow_list"] == 3 and rows["site-1"]["allow_list_matches"] is True
    assert rows["server"]["allow_list"] == 1 and rc == 3


def test_component_paths_finds_nested_and_named_classes():
    config = {"executors": [{"tasks": ["*"], "executor": {"path": "a.B", "args": {
        "learner": {"class_path": "c.D", "args": {}}}}}], "components": [{"id": "x", "name": "Short"}]}
    assert sorted(component_paths(config)) == ["Short", "a.B", "c.D"]


@pytest.mark.parametrize("algorithm", sorted(registry.ALGORITHMS))
@pytest.mark.parametrize("participant", ["server", "site-1"])
def test_every_approved_algorithms_job_passes_the_check(kits, tmp_path, algorithm, participant):
    job = write_job(tmp_path, registry.get_algorithm(algorithm), {}, {"site-1": ["lung-ct"]}, kits, "j")
    app = deployed(kits.kit(participant), job, participant)
    kind = "server" if participant == "server" else "client"
    assert WorkbenchAppValidator(kind).validate(str(app)) == ("", {})


def stock_job(tmp_path, kits):
    """Our controller on the server; a stock executor and component at the sites."""
    job = write_job(tmp_path, registry.get_algorithm("cohort-statistics"), {}, {"site-1": ["lung-ct"]}, kits, "evil")
    client = job / "app" / "config" / "config_fed_client.json"
    config = json.loads(client.read_text())
    config["executors"][0]["executor"] = {"path": STOCK_EXECUTOR, "args": {}}
    config["components"] = [{"id": "locator", "path": "nvflare.app_common.np.np_model_locator.NPModelLocator",
                             "args": {"model_name": {"server": "/etc/shadow"}}}]
    client.write_text(json.dumps(config))
    return job


def test_a_job_of_stock_classes_is_refused_at_the_site_and_the_refusal_is_logged(kits, tmp_path, caplog):
    app = deployed(kits.kit("site-1"), stock_job(tmp_path, kits), "site-1")
    error, _ = WorkbenchAppValidator("client").validate(str(app))
    assert STOCK_EXECUTOR in error and "NPModelLocator" in error and "allow-list" in error
    assert any("refused job" in r.getMessage() and STOCK_EXECUTOR in r.getMessage() for r in caplog.records)


def test_the_check_follows_the_sites_list_so_adding_a_stock_class_back_lets_it_through(kits, tmp_path):
    """The weakened build: with the stock classes back in the site's list, the same job passes."""
    app = deployed(kits.kit("site-1"), stock_job(tmp_path, kits), "site-1")
    path = kits.kit("site-1") / "local" / "resources.json"
    resources = json.loads(path.read_text())
    resources["class_allow_list"] += [STOCK_EXECUTOR, "nvflare.app_common.np.np_model_locator.NPModelLocator"]
    path.write_text(json.dumps(resources))
    assert WorkbenchAppValidator("client").validate(str(app)) == ("", {})


def test_custom_code_other_formats_and_a_missing_list_are_refused(tmp_path):
    app = tmp_path / "ws" / "job" / "app_site-1"
    (app / "config").mkdir(parents=True)
    (app / "config" / "config_fed_client.json").write_text(json.dumps({"executors": []}))
    assert "no class_allow_list" in app_problem(app, "client", None)
    assert app_problem(app, "client", allowed_classes("client")) == ""
    (app / "config" / "config_fed_client.conf").write_text("executors = []")
    assert "not JSON" in app_problem(app, "client", allowed_classes("client"))
    (app / "custom").mkdir()
    assert "custom code" in app_problem(app, "client", allowed_classes("client"))
