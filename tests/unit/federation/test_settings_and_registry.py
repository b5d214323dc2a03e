"""Federation settings and the approved-algorithm registry: defaults, and errors that name the field."""

import pytest

from imaging_workbench.errors import WorkbenchError
from imaging_workbench.federation.registry import ALGORITHMS, get_algorithm, param_errors, validate_params
from imaging_workbench.federation.settings import federation_settings


def test_defaults_put_everything_on_loopback_under_the_state_dir(site):
    settings = federation_settings(site)
    assert settings.host == "127.0.0.1"
    assert str(settings.workdir) == f"{site['state_dir']}/federation"
    assert settings.sites == ("site-1", "site-2", "site-3")
    assert settings.min_count == 10 and settings.service_port == site["hub"]["service_port"]


@pytest.mark.parametrize("section, key", [
    ({"min_count": 0}, "min_count"), ({"noise": 2}, "noise"), ({"host": "localhost"}, "host"),
    ({"sites": ["Site 1"]}, "sites"), ({"colour": 1}, "colour"), ({"fl_port": 70000}, "fl_port"),
])
def test_bad_federation_settings_name_the_key(site, section, key):
    with pytest.raises(WorkbenchError) as e:
        federation_settings({**site, "federation": section})
    assert f"federation.{key}" in e.value.message


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
    assert params["rounds"] == 2 and params["crop_size"] == 32


def test_required_parameter_and_unknown_algorithm():
    assert param_errors(get_algorithm("federated-evaluation"), {}) == {"model_job": "is required"}
    with pytest.raises(WorkbenchError, match="unknown algorithm 'nope'"):
        get_algorithm("nope")
