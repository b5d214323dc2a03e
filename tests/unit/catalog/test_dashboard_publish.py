"""`workbench dashboard publish`, its refusals: each names what was wrong before the notebook runs
anywhere, and nothing is recorded or pinned. (Publishing itself runs the notebook in a sandbox:
tests/docker/test_dashboards.py.)"""

import json
from pathlib import Path

import pytest

from imaging_workbench.catalog import accounts, dashboards, datasets, grants
from imaging_workbench.cli import main

pytestmark = pytest.mark.usefixtures("database_url")

NOTEBOOK = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


@pytest.fixture
def owner(ctx, settings_file, tmp_path):
    """otis holds a sandbox grant on clinic-ct, and publishes the dashboard 'taken' already."""
    data = tmp_path / "clinic-ct"
    data.mkdir()
    with ctx.session() as s:
        accounts.add_account(s, "steward", "otis")
        datasets.add_dataset(s, "steward", "clinic-ct", data, title="Clinic CT")
        grants.grant_access(s, "steward", "otis", "clinic-ct", 7, "tumour board")
        dashboards.publish(s, "otis", "otis", "taken", "a.ipynb", "0" * 64, "sha256:x", ["clinic-ct"], "clinicians")
    return ctx, settings_file


@pytest.mark.parametrize("args, content, says", [
    (["--owner", "nobody"], NOTEBOOK, "unknown user 'nobody'"),
    (["--owner", "otis", "--name", "Bad Name!"], NOTEBOOK, "'Bad Name!' is not a dashboard name"),
    (["--owner", "otis", "--name", "taken"], NOTEBOOK, "a dashboard named 'taken' exists"),
    (["--owner", "otis", "--dataset", "lung-ct"], NOTEBOOK, "holds no live grant for dataset 'lung-ct'"),
    (["--owner", "otis", "--group", " "], NOTEBOOK, "name the hub group"),
    (["--owner", "otis"], "{not json", "is not a notebook"),
])
def test_a_refused_publication_names_the_field_and_records_nothing(owner, tmp_path, capsys, args, content, says):
    ctx, settings_file = owner
    path = tmp_path / "review.ipynb"
    path.write_text(content)
    extra = [] if "--dataset" in args else ["--dataset", "clinic-ct"]
    assert main(["--settings", str(settings_file), "dashboard", "publish", str(path), *args, *extra]) == 1
    assert says in capsys.readouterr().err
    with ctx.session() as s:
        assert [d.name for d in dashboards.list_dashboards(s)] == ["taken"]
    assert not (Path(ctx.settings["state_dir"]) / dashboards.FOLDER / "review").exists()


def test_a_missing_file_is_named(owner, tmp_path, capsys):
    _, settings_file = owner
    assert main(["--settings", str(settings_file), "dashboard", "publish", str(tmp_path / "gone.ipynb"),
                 "--owner", "otis", "--dataset", "clinic-ct"]) == 1
    assert f"{tmp_path / 'gone.ipynb'} is not a file" in capsys.readouterr().err
