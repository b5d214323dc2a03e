"""Federation settings and the approved-algorithm registry: defaults, and errors that name the field."""

from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from imaging_workbench.deployment import validate_settings
from imaging_workbench.errors import WorkbenchError
from imaging_workbench.federation.algorithms import ALGORITHMS, get_algorithm
from imaging_workbench.federation.protocol.params import param_errors, validate_params
from imaging_workbench.federation.settings import FederationSettings, federation_settings
from imaging_workbench.settings_schema import SCHEMA


def test_defaults_put_everything_on_loopback_under_the_state_dir(settings):
    federation = federation_settings(settings)
    assert federation.host == "127.0.0.1"
    assert str(federation.workdir) == f"{settings['state_dir']}/federation"
    assert federation.sites == ("site-1", "site-2", "site-3")
    assert federation.min_count == 10 and federation.service_port == settings["hub"]["service_port"]


@pytest.mark.parametrize("section, key, problem", [
    ({"min_count": 0}, "min_count", "must be a positive integer, not 0"),
    ({"host": "localhost"}, "host", "must be an IP address such as 127.0.0.1, not 'localhost'"),
    ({"sites": ["Site 1"]}, "sites[0]", "must be a site name"),
    ({"sites": ["site-1", "site-1"]}, "sites", "must be a non-empty list of distinct site names"),
    ({"colour": 1}, "colour", "is not a setting (known here: workdir, host,"),
    ({"fl_port": 70000}, "fl_port", "must be a port number from 1 to 65535, not 70000"),
    ({"admin_port": 8102}, "admin_port", "is 8102, the same port as 'federation.fl_port'"),
    ({"project": ""}, "project", "must be a non-empty string"),
])
def test_bad_federation_settings_name_the_key(settings, section, key, problem):
    with pytest.raises(WorkbenchError) as e:
        validate_settings({**settings, "federation": section})
    assert f"'federation.{key}' {problem}" in e.value.message


def test_every_federation_setting_is_in_the_schema():
    assert set(SCHEMA["properties"]["federation"]["properties"]) == {f.name for f in fields(FederationSettings)}


def test_shipped_federation_example_gives_the_defaults(settings):
    """The commented `federation:` block in hub_config/workbench.yaml shows the real defaults."""
    text = (Path(__file__).parents[3] / "hub_config" / "workbench.yaml").read_text()
    block = text[text.index("# federation:"):].splitlines()
    example = yaml.safe_load("\n".join(line[2:] for line in block if "workdir:" not in line))
    assert federation_settings(validate_settings({**settings, **example})) == federation_settings(settings)


def test_given_values_override_the_defaults(settings):
    federation = federation_settings(validate_settings({**settings, "federation": {
        "workdir": "/srv/fl", "sites": ["hospital-a"], "max_bins": 32, "service_port": 9000}}))
    assert federation.workdir == Path("/srv/fl") and federation.sites == ("hospital-a",)
    assert federation.max_bins == 32 and federation.service_port == 9000


def test_every_algorithm_has_a_schema_and_says_what_leaves_the_site():
    for algorithm in ALGORITHMS.values():
        assert algorithm.version and algorithm.leaves_site and algorithm.params
        defaults = {k: v["default"] for k, v in algorithm.params.items() if "default" in v}
        assert not {k: e for k, e in param_errors(algorithm, defaults).items() if k in defaults}


def test_bad_parameters_are_named_one_by_one():
    errors = param_errors(get_algorithm("cohort-statistics"),
                          {"hu_bins": 1, "hu_range": [300, -100], "quantiles": [0, 0.5], "extra": True})
    assert set(errors) == {"hu_bins", "hu_range", "quantiles", "extra"}
    assert "at least 2" in errors["hu_bins"] and "increasing" in errors["hu_range"]


def test_validated_parameters_are_completed_with_defaults():
    params = validate_params(get_algorithm("federated-training"), {"rounds": 2})
    assert params["rounds"] == 2 and params["crop_size"] == 16


def test_exactly_one_of_alternative_parameters_and_unknown_algorithm():
    evaluation = get_algorithm("federated-evaluation")
    neither = {"model_job": "give exactly one of model_job and tool", "tool": "give exactly one of model_job and tool"}
    assert param_errors(evaluation, {}) == neither == param_errors(evaluation, {"model_job": "j", "tool": "t"})
    assert param_errors(evaluation, {"tool": "tumour-seg"}) == {} == param_errors(evaluation, {"model_job": "j"})
    with pytest.raises(WorkbenchError, match="unknown algorithm 'nope'"):
        get_algorithm("nope")
