"""The deployment settings: defaults, the schema, and a message naming each mistake's key and line."""

from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from imaging_workbench.deployment import (DEFAULTS, OLD_SETTINGS_ENV, SETTINGS_ENV, load_settings, settings_path,
                                          validate_settings, with_defaults)
from imaging_workbench.errors import WorkbenchError
from imaging_workbench.settings_schema import SCHEMA

SHIPPED = Path(__file__).parents[3] / "hub_config" / "workbench.yaml"


def write(tmp_path, text):
    path = tmp_path / "workbench.yaml"
    path.write_text(text)
    return path


def refusal(tmp_path, text) -> WorkbenchError:
    with pytest.raises(WorkbenchError) as e:
        load_settings(write(tmp_path, text))
    return e.value


def test_empty_file_gives_defaults(tmp_path):
    settings = load_settings(write(tmp_path, ""))
    assert settings["sandbox"]["profiles"].keys() == DEFAULTS["sandbox"]["profiles"].keys()
    assert settings["hub"]["port"] == 8000


def test_shipped_settings_file_and_the_defaults_are_valid():
    settings = load_settings(SHIPPED)
    assert settings["sandbox"]["default_profile"] == "standard"
    assert validate_settings(with_defaults({})) == DEFAULTS


def test_schema_is_valid_draft_2020_12_and_documents_every_key():
    Draft202012Validator.check_schema(SCHEMA)

    def undocumented(schema, path=""):
        for key, sub in schema.get("properties", {}).items():
            yield from ([] if sub.get("description") else [f"{path}{key}"])
            yield from undocumented(sub, f"{path}{key}.")
        for ref in ("additionalProperties", "items"):
            if isinstance(schema.get(ref), dict):
                yield from undocumented(schema[ref], path)

    assert not list(undocumented(SCHEMA)) and not list(undocumented(SCHEMA["$defs"]["profile"]))


def test_every_fixed_mapping_refuses_unknown_keys():
    def open_mappings(schema, path="settings"):
        if "properties" in schema and schema.get("additionalProperties") is not False:
            yield path
        for key, sub in schema.get("properties", {}).items():
            yield from open_mappings(sub, f"{path}.{key}")

    assert not list(open_mappings(SCHEMA)) and not list(open_mappings(SCHEMA["$defs"]["profile"]))


def test_demo_sizes_are_the_generators():
    from imaging_workbench.dicom.demo import SIZES

    assert SCHEMA["properties"]["demo"]["properties"]["size"]["enum"] == list(SIZES)


def test_partial_section_is_merged(tmp_path):
    settings = load_settings(write(tmp_path, "hub:\n  port: 9000\n"))
    assert settings["hub"]["port"] == 9000 and settings["hub"]["api_port"] == 8081


@pytest.mark.parametrize("text, message", [
    ("hub: [1, 2\n", "not valid YAML"),
    ("- a\n- b\n", "must hold a mapping"),
    ("colour: blue\n", "line 1: 'colour' is not a setting (known here: state_dir,"),
    ("hub:\n  port: eighty\n", "line 2: 'hub.port' must be a port number from 1 to 65535, not 'eighty'"),
    ("roles: admin\n", "line 1: 'roles' must be a mapping of settings, not 'admin'"),
    ("sandbox:\n  subnet: 300.1.1.0/24\n", "line 2: 'sandbox.subnet' must be an IPv4 network such as"),
    ("sandbox:\n  subnet: 172.29.248.1/24\n", "has host bits set"),
    ("sandbox:\n  default_profile: huge\n", "line 2: 'sandbox.default_profile' names no profile: 'huge'"),
    ("sandbox:\n  profiles:\n    tiny: {cpu: 1, memory: lots}\n    standard: {cpu: 1, memory: 1G}\n",
     "line 3: 'sandbox.profiles.tiny.memory' must be a memory size such as 512M or 4G"),
    ("sandbox:\n  profiles:\n    tiny: {memory: 1G}\n", "line 3: 'sandbox.profiles.tiny' lacks 'cpu'"),
    ("database_url: 'not a url'\n", "line 1: 'database_url' must be a SQLAlchemy URL"),
    ("hub:\n  port: 1\n  port: 2\n", "line 2: 'hub.port' is set twice (lines 2 and 3)"),
    ("demo:\n  grants: {alcie: all}\n", "line 2: 'demo.grants.alcie' is not a demo user or operator"),
    ("demo:\n  size: huge\n", "line 2: 'demo.size' must be one of small, demo, full, not 'huge'"),
])
def test_malformed_settings_file(tmp_path, text, message):
    error = refusal(tmp_path, text)
    assert message in str(error) and str(tmp_path) in str(error)


@pytest.mark.parametrize("text, key, line, suggestion", [
    ("sandbox:\n  image: x\n  revocaton_interval: 30\n", "sandbox.revocaton_interval", 3, "revocation_interval"),
    ("federation:\n  min_cont: 5\n", "federation.min_cont", 2, "min_count"),
    ("hub:\n  ip: 127.0.0.1\n  api_prot: 8081\n", "hub.api_prot", 3, "api_port"),
    ("sandbox:\n  profiles:\n    big:\n      cpu: 4\n      memory: 8G\n      gpu: 1\n",
     "sandbox.profiles.big.gpu", 6, "gpus"),
    ("roles:\n  steward: {lung-ct: [dana]}\n", "roles.steward", 2, "stewards"),
])
def test_misspelt_nested_key_is_named_with_its_line_and_the_likely_key(tmp_path, text, key, line, suggestion):
    error = refusal(tmp_path, text)
    assert error.message == (f"deployment settings file {tmp_path / 'workbench.yaml'}, line {line}: "
                             f"'{key}' is not a setting (did you mean '{suggestion}'?)")
    assert error.hint == f"rename '{key}' to '{suggestion}' in {tmp_path / 'workbench.yaml'}"


def test_wrong_type_deep_inside_names_the_whole_path(tmp_path):
    error = refusal(tmp_path, "roles:\n  stewards:\n    lung-ct: [dana]\n    '*': [erin, 7]\n")
    assert "line 4: 'roles.stewards.*[1]' must be a user name (no spaces), not 7" in error.message
    error = refusal(tmp_path, "federation:\n  sites: [site-1, Site 2]\n")
    assert "line 2: 'federation.sites[1]' must be a site name: lower-case letters" in error.message


def test_every_problem_is_reported_together_in_file_order(tmp_path):
    error = refusal(tmp_path, "\n".join([
        "hub:",
        "  prot: 8000",               # 2: misspelt
        "sandbox:",
        "  idle_timeout: -5",          # 4: out of range
        "  profiles:",
        "    small: {cpu: two, memory: 1G}",  # 6: wrong type in a profile
        "federation:",
        "  min_count: 0",              # 8: out of range
        "  colour: blue",              # 9: unknown, nothing close
        "roles:",
        "  stewards: {Lung CT: [dana]}",  # 11: not a dataset id
    ]))
    lines = error.message.splitlines()
    assert lines[0].endswith("workbench.yaml has 6 problems:")
    assert [line.split(":")[0].strip() for line in lines[1:]] == [f"line {n}" for n in (2, 4, 6, 8, 9, 11)]
    assert "'hub.prot' is not a setting (did you mean 'port'?)" in lines[1]
    assert "'sandbox.idle_timeout' must be a positive whole number of seconds, not -5" in lines[2]
    assert "'sandbox.profiles.small.cpu' must be a number of CPUs" in lines[3]
    assert "'federation.min_count' must be a positive" in lines[4]
    assert "'federation.colour' is not a setting (known here: workdir, host," in lines[5]
    assert "'roles.stewards.Lung CT' is not a valid name here: use a dataset id" in lines[6]
    assert "settings_schema.py" in error.hint


def test_federation_port_clash_is_found_with_defaults_filled_in(tmp_path):
    error = refusal(tmp_path, "hub:\n  service_port: 8102\n")
    assert "line 2: 'hub.service_port' is 8102, the same port as 'federation.fl_port' (its default)" in error.message
    error = refusal(tmp_path, "federation:\n  fl_port: 8000\n  admin_port: 8000\n")
    assert error.message.endswith("line 3: 'federation.admin_port' is 8000, the same port as 'federation.fl_port'")


def test_checked_dict_without_a_file_names_the_key(settings):
    with pytest.raises(WorkbenchError, match=r"^deployment settings: 'hub.port' must be a port number"):
        validate_settings({**settings, "hub": {**settings["hub"], "port": 0}})


def test_cli_reports_a_bad_settings_file(tmp_path, capsys):
    from imaging_workbench.cli import main

    assert main(["--settings", str(write(tmp_path, "hub:\n  port: -1\n")), "datasets", "list"]) == 1
    assert "line 2: 'hub.port' must be a port number from 1 to 65535, not -1" in capsys.readouterr().err


def test_missing_settings_file(tmp_path, capsys):
    from imaging_workbench.cli import main

    assert main(["--site", str(tmp_path / "nope.yaml"), "datasets", "list"]) == 1  # --settings' old name
    assert "does not exist" in capsys.readouterr().err


def test_the_settings_file_from_the_environment_under_its_new_or_old_name(tmp_path, monkeypatch):
    new, old = tmp_path / "new.yaml", tmp_path / "old.yaml"
    monkeypatch.delenv(SETTINGS_ENV, raising=False)
    monkeypatch.setenv(OLD_SETTINGS_ENV, str(old))
    assert settings_path() == old
    monkeypatch.setenv(SETTINGS_ENV, str(new))
    assert settings_path() == new
    assert settings_path(tmp_path / "given.yaml") == tmp_path / "given.yaml"
