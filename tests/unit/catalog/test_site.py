"""The site file: defaults, and a clear message for each kind of mistake."""

import pytest

from imaging_workbench.errors import WorkbenchError
from imaging_workbench.site import DEFAULTS, load_site


def write(tmp_path, text):
    path = tmp_path / "workbench.yaml"
    path.write_text(text)
    return path


def test_empty_file_gives_defaults(tmp_path):
    site = load_site(write(tmp_path, ""))
    assert site["sandbox"]["profiles"].keys() == DEFAULTS["sandbox"]["profiles"].keys()
    assert site["hub"]["port"] == 8000


def test_shipped_site_file_is_valid():
    from pathlib import Path

    site = load_site(Path(__file__).parents[3] / "hub_config" / "workbench.yaml")
    assert site["sandbox"]["default_profile"] == "standard"


def test_partial_section_is_merged(tmp_path):
    site = load_site(write(tmp_path, "hub:\n  port: 9000\n"))
    assert site["hub"]["port"] == 9000 and site["hub"]["api_port"] == 8081


@pytest.mark.parametrize("text, message", [
    ("hub: [1, 2\n", "not valid YAML"),
    ("- a\n- b\n", "must hold a mapping"),
    ("colour: blue\n", "'colour' is not a site setting"),
    ("hub:\n  port: eighty\n", "'hub.port' must be a positive integer"),
    ("roles: admin\n", "'roles' must be a dict"),
    ("sandbox:\n  subnet: 300.1.1.0/24\n", "'sandbox.subnet' must be a network"),
    ("sandbox:\n  default_profile: huge\n", "'sandbox.default_profile' names no profile"),
    ("sandbox:\n  profiles:\n    tiny: {cpu: 1, memory: lots}\n    standard: {cpu: 1, memory: 1G}\n",
     "'sandbox.profiles.tiny' needs cpu"),
])
def test_malformed_site_file(tmp_path, text, message):
    with pytest.raises(WorkbenchError) as e:
        load_site(write(tmp_path, text))
    assert message in str(e.value) and str(tmp_path) in str(e.value)


def test_cli_reports_a_bad_site_file(tmp_path, capsys):
    from imaging_workbench.cli import main

    assert main(["--site", str(write(tmp_path, "hub:\n  port: -1\n")), "datasets", "list"]) == 1
    assert "'hub.port' must be a positive integer" in capsys.readouterr().err


def test_missing_site_file(tmp_path, capsys):
    from imaging_workbench.cli import main

    assert main(["--site", str(tmp_path / "nope.yaml"), "datasets", "list"]) == 1
    assert "does not exist" in capsys.readouterr().err
