"""Material delivered into a home without overwriting the user's changes (imaging_workbench/material.py),
on real folders: first delivery, unchanged files updated, changed files kept with the new version
beside them, the user's own files and symlinks left alone, and the server extension's settings."""

import json
import os
from pathlib import Path

import pytest

from imaging_workbench.material import MANIFEST, beside_name, deliver
from imaging_workbench.material_extension import deliveries


@pytest.fixture
def material(tmp_path) -> Path:
    source = tmp_path / "material"
    (source / "week1").mkdir(parents=True)
    (source / "intro.ipynb").write_text("intro v1")
    (source / "week1" / "windowing.ipynb").write_text("windowing v1")
    (source / ".ipynb_checkpoints").mkdir()
    (source / ".ipynb_checkpoints" / "intro-checkpoint.ipynb").write_text("not material")
    return source


def test_the_first_delivery_copies_everything_but_hidden_files(material, tmp_path):
    home = tmp_path / "home" / "course"
    done = deliver(material, home)
    assert sorted(done.copied) == ["intro.ipynb", "week1/windowing.ipynb"]
    assert (home / "week1" / "windowing.ipynb").read_text() == "windowing v1"
    assert not (home / ".ipynb_checkpoints").exists()
    assert set(json.loads((home / MANIFEST).read_text())) == {"intro.ipynb", "week1/windowing.ipynb"}
    again = deliver(material, home)
    assert (again.copied, again.updated, again.beside, again.kept) == ([], [], [], [])


def test_a_new_version_replaces_an_unchanged_file_and_lands_beside_a_changed_one(material, tmp_path):
    home = tmp_path / "course"
    deliver(material, home)
    (home / "intro.ipynb").write_text("intro with my notes")  # the learner's work
    (home / "mine.ipynb").write_text("my own notebook")
    unchanged_material = deliver(material, home)  # the next start, with the same material
    assert unchanged_material.kept == ["intro.ipynb"] and unchanged_material.beside == []
    assert not (home / "intro (updated).ipynb").exists()
    (material / "intro.ipynb").write_text("intro v2")
    (material / "week1" / "windowing.ipynb").write_text("windowing v2")
    (material / "week2.ipynb").write_text("week 2")

    done = deliver(material, home)
    assert done.updated == ["week1/windowing.ipynb"] and done.copied == ["week2.ipynb"]
    assert done.kept == ["intro.ipynb"] and done.beside == ["intro (updated).ipynb"]
    assert (home / "intro.ipynb").read_text() == "intro with my notes"
    assert (home / "intro (updated).ipynb").read_text() == "intro v2"
    assert (home / "week1" / "windowing.ipynb").read_text() == "windowing v2"
    assert (home / "mine.ipynb").read_text() == "my own notebook"

    # A later version replaces the untouched "(updated)" copy; the learner's file still stays.
    (material / "intro.ipynb").write_text("intro v3")
    done = deliver(material, home)
    assert done.kept == ["intro.ipynb"] and done.beside == ["intro (updated).ipynb"]
    assert (home / "intro (updated).ipynb").read_text() == "intro v3"
    assert (home / "intro.ipynb").read_text() == "intro with my notes"

    # Once the learner works in the "(updated)" copy too, both are theirs.
    (home / "intro (updated).ipynb").write_text("v3 with notes")
    (material / "intro.ipynb").write_text("intro v4")
    done = deliver(material, home)
    assert done.beside == [] and (home / "intro (updated).ipynb").read_text() == "v3 with notes"


def test_a_deleted_file_comes_back_and_a_removed_one_stays(material, tmp_path):
    home = tmp_path / "course"
    deliver(material, home)
    (home / "intro.ipynb").unlink()
    (material / "week1" / "windowing.ipynb").unlink()
    done = deliver(material, home)
    assert done.copied == ["intro.ipynb"] and (home / "week1" / "windowing.ipynb").read_text() == "windowing v1"


def test_a_symlink_or_folder_where_a_file_is_due_is_the_users_and_is_not_followed(material, tmp_path):
    home, elsewhere = tmp_path / "course", tmp_path / "elsewhere.txt"
    elsewhere.write_text("not to be overwritten")
    home.mkdir()
    os.symlink(elsewhere, home / "intro.ipynb")
    (home / "week1" / "windowing.ipynb").mkdir(parents=True)
    done = deliver(material, home)
    assert sorted(done.kept) == ["intro.ipynb", "week1/windowing.ipynb"]
    assert elsewhere.read_text() == "not to be overwritten" and (home / "intro.ipynb").is_symlink()
    assert (home / "intro (updated).ipynb").read_text() == "intro v1"


def test_a_spoiled_manifest_makes_every_differing_file_the_users(material, tmp_path):
    home = tmp_path / "course"
    deliver(material, home)
    (home / MANIFEST).write_text("{not json")
    (material / "intro.ipynb").write_text("intro v2")
    done = deliver(material, home)
    assert done.kept == ["intro.ipynb"] and (home / "intro.ipynb").read_text() == "intro v1"


def test_beside_names_keep_the_extension():
    assert beside_name("week1/windowing.ipynb") == "week1/windowing (updated).ipynb"
    assert beside_name("README") == "README (updated)"


def test_the_extension_delivers_only_inside_the_home(tmp_path):
    assert deliveries('[["/opt/workbench/examples", "examples"]]', tmp_path) == [
        (Path("/opt/workbench/examples"), tmp_path / "examples")]
    assert deliveries("", tmp_path) == []
    for bad in ('[["/src", "../other-user"]]', '[["/src", "/etc"]]', '[["/src", "."]]', '{"a": 1}', '[["/src"]]'):
        with pytest.raises(ValueError, match="WORKBENCH_MATERIAL"):
            deliveries(bad, tmp_path)
