"""Which folders may be a dataset: at registration, at every index run and at every spawn."""

import json
import os
import socket
from pathlib import Path

import pytest

from imaging_workbench.catalog import accounts, dataset_paths, datasets, grants
from imaging_workbench.catalog.dataset_paths import check_new_folder, walk_files
from imaging_workbench.errors import WorkbenchError
from imaging_workbench.hub.mount_plan import granted_datasets

DICOM_ISH = b"\0" * 128 + b"DICM" + b"\0" * 64


@pytest.fixture
def state(settings) -> Path:
    path = Path(settings["state_dir"])
    path.mkdir(parents=True, exist_ok=True)
    return path


def link(tmp_path, name: str, target) -> Path:
    path = tmp_path / "links" / name
    path.parent.mkdir(exist_ok=True)
    path.symlink_to(target)
    return path


@pytest.mark.parametrize("path, reason", [
    ("/", "is the root of the host's file system"),
    ("/run", "is a system folder"),
    ("/etc", "is a system folder"),
    ("/var", "is a folder above the system folder /var/run"),
    ("/var/lib", "is a folder above the system folder /var/lib/docker"),
    ("/usr/share", "is inside the system folder /usr"),
    ("/bin", "resolves to /usr/bin, inside the system folder /usr"),
    ("/tmp", "is a folder the whole host shares"),
])
def test_system_and_shared_folders_are_refused(path, reason, state):
    with pytest.raises(WorkbenchError, match="a dataset must be a folder of its own") as e:
        check_new_folder(path, state)
    assert e.value.message.startswith(f"dataset folder {path} {reason}") and e.value.hint


def test_the_state_dir_itself_above_it_and_inside_it_are_refused(state, tmp_path):
    (state / "federation" / "kits").mkdir(parents=True)
    for path, reason in ((state, "the deployment's state directory"),
                         (tmp_path, "a folder above the deployment's state directory"),
                         (state / "federation" / "kits", "inside the deployment's state directory")):
        with pytest.raises(WorkbenchError, match=reason) as e:
            check_new_folder(path, state)
        assert "outside the state directory" in e.value.hint


def test_demo_data_the_workbench_writes_under_the_state_dir_is_accepted(state):
    cohort = state / dataset_paths.DEMO_DATA / "lung-ct"
    (cohort / "patient-1").mkdir(parents=True)
    (cohort / "patient-1" / "1.dcm").write_bytes(DICOM_ISH)
    assert check_new_folder(cohort, state) == cohort.resolve()


@pytest.mark.parametrize("target", ["/", "/run", "state"])
def test_a_symlink_to_a_refused_folder_is_refused_naming_both_paths(target, state, tmp_path):
    real = state if target == "state" else Path(target)
    given = link(tmp_path, "innocent", real)
    with pytest.raises(WorkbenchError, match="a dataset must be a folder of its own") as e:
        check_new_folder(given, state)
    assert e.value.message.startswith(f"dataset folder {given} resolves to {real.resolve()}, ")


def test_a_folder_holding_a_unix_socket_is_refused(dataset_dir, state, monkeypatch):
    folder = dataset_dir("sock")
    monkeypatch.chdir(folder)  # a relative bind: tmp paths can pass the 108-byte limit of socket paths
    with socket.socket(socket.AF_UNIX) as server:
        server.bind("docker.sock")
        with pytest.raises(WorkbenchError, match=f"holds a socket at {folder / 'docker.sock'}") as e:
            check_new_folder(folder, state)
    assert e.value.hint.startswith("remove it")


def test_a_fifo_deep_inside_even_in_a_hidden_folder_is_refused(dataset_dir, state):
    deep = dataset_dir("fifo") / "a" / "b" / ".cache" / "c"
    deep.mkdir(parents=True)
    os.mkfifo(deep / "pipe")
    with pytest.raises(WorkbenchError, match=r"holds a FIFO at .*/a/b/\.cache/c/pipe"):
        check_new_folder(deep.parents[3], state)


def test_a_dataset_folder_with_nested_subfolders_and_dicom_files_is_accepted(dataset_dir, state):
    folder = dataset_dir("lung")
    for patient in ("p1", "p2"):
        series = folder / patient / "study" / "series"
        series.mkdir(parents=True)
        for i in range(3):
            (series / f"{i}.dcm").write_bytes(DICOM_ISH)
    (folder / ".workbench-demo.json").write_text("{}")
    assert check_new_folder(folder, state) == folder
    assert sorted(rel for rel, _ in walk_files(folder))[:2] == ["README.txt", "p1/study/series/0.dcm"]


def test_a_symlink_inside_pointing_out_of_the_folder_is_left_alone_and_never_read(dataset_dir, state, tmp_path):
    # A bind mount keeps the link as a link, resolved inside the container: no host file comes with it.
    folder = dataset_dir("links")
    os.mkfifo(tmp_path / "outside-pipe")
    (folder / "run").symlink_to("/run")
    (folder / "pipe.dcm").symlink_to(tmp_path / "outside-pipe")  # opening it would block the index
    (folder / "scan.dcm").symlink_to(folder / "README.txt")
    assert check_new_folder(folder, state) == folder
    assert sorted(rel for rel, _ in walk_files(folder)) == ["README.txt", "scan.dcm"]


def test_the_cli_refuses_the_folder_naming_the_reason_and_writes_nothing(cli, dataset_dir, state, monkeypatch):
    folder = dataset_dir("sock")
    monkeypatch.chdir(folder)
    with socket.socket(socket.AF_UNIX) as server:
        server.bind("s")
        cases = [("/run", "dataset folder /run is a system folder"), (str(state), "the deployment's state directory"),
                 (str(folder), "holds a socket at")]
        for path, reason in cases:
            rc, out, err = cli("datasets", "add", "x", "--path", path)
            assert rc == 1 and reason in err and "what to do:" in err, err
    rc, out, _ = cli("datasets", "list", "--json")
    assert rc == 0 and json.loads(out) == []
    rc, out, _ = cli("audit", "--json")
    assert "dataset.add" not in out


def test_the_index_run_refuses_a_fifo_added_since_registration(cli, dataset_dir, state):
    folder = dataset_dir("lung")
    assert cli("datasets", "add", "lung", "--path", str(folder))[0] == 0
    assert cli("datasets", "index", "lung", "--quiet")[0] == 0
    os.mkfifo(folder / "late-pipe")
    rc, _, err = cli("datasets", "index", "lung", "--quiet")
    assert rc == 1 and f"holds a FIFO at {folder / 'late-pipe'}" in err


def test_the_index_run_refuses_a_folder_swapped_for_a_symlink(cli, dataset_dir, state, tmp_path):
    folder = dataset_dir("lung")
    assert cli("datasets", "add", "lung", "--path", str(folder))[0] == 0
    folder.rename(tmp_path / "moved")
    folder.symlink_to("/")
    rc, _, err = cli("datasets", "index", "lung", "--quiet")
    assert rc == 1 and f"dataset folder {folder} resolves to /, the root" in err


@pytest.fixture
def granted(ctx, dataset_dir):
    folder = dataset_dir("lung")
    with ctx.session() as s:
        accounts.add_account(s, "steward", "alice", "pw")
        datasets.add_dataset(s, "steward", "lung", folder, state_dir=ctx.state_dir)
        grants.grant_access(s, "steward", "alice", "lung", 5, "study")
    return folder


def test_a_registered_folder_later_replaced_by_a_symlink_to_root_is_not_mounted(granted, ctx, tmp_path):
    with ctx.session() as s:
        assert granted_datasets(s, "alice", state_dir=ctx.settings["state_dir"]) == {"lung": str(granted)}
    granted.rename(tmp_path / "moved")
    granted.symlink_to("/")
    with ctx.session() as s, pytest.raises(WorkbenchError, match=f"'lung' cannot be mounted: dataset folder "
                                                                 f"{granted} resolves to /, the root"):
        granted_datasets(s, "alice", state_dir=ctx.settings["state_dir"])


def test_a_registered_folder_swapped_for_a_symlink_to_another_folder_is_not_mounted(granted, ctx, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o755)
    granted.rename(tmp_path / "moved")
    granted.symlink_to(elsewhere)
    with ctx.session() as s, pytest.raises(WorkbenchError, match="now resolves to .*elsewhere, not the folder"):
        granted_datasets(s, "alice", state_dir=ctx.settings["state_dir"])


def test_a_registered_folder_swapped_for_the_state_dir_is_not_mounted(granted, ctx, tmp_path, state):
    granted.rename(tmp_path / "moved")
    granted.symlink_to(state)
    with ctx.session() as s, pytest.raises(WorkbenchError, match="resolves to .*, the deployment's state directory"):
        granted_datasets(s, "alice", state_dir=ctx.settings["state_dir"])
