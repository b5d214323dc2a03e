"""The mount plan gives a server the index file of each dataset it mounts, and of no other."""

from pathlib import Path

import pytest

from imaging_workbench.catalog import accounts, datasets, grants
from imaging_workbench.deployment import DEFAULTS
from imaging_workbench.dicom.index_files import INDEX_FOLDER, index_file
from imaging_workbench.hub.mount_plan import plan_server

from .test_kube_spawner import build, granted, mounts_by_path, pod_of  # noqa: F401 (fixtures)

PROFILE = DEFAULTS["sandbox"]["profiles"]["standard"]


@pytest.fixture
def indexed(ctx, dataset_dir):
    """alice holds a sandbox grant for set-a only; set-b and set-c (federated for alice) have index files too."""
    with ctx.session() as s:
        accounts.add_account(s, "steward", "alice", "pw")
        for name in ("set-a", "set-b", "set-c"):
            datasets.add_dataset(s, "steward", name, dataset_dir(name))
            index_file(ctx.state_dir / INDEX_FOLDER, name).parent.mkdir(parents=True, exist_ok=True)
            index_file(ctx.state_dir / INDEX_FOLDER, name).write_text(f"index of {name}")
        grants.grant_access(s, "steward", "alice", "set-a", 5, "study")
        grants.grant_access(s, "steward", "alice", "set-c", 5, "study", mode=grants.FEDERATED)
    return ctx


def test_a_user_granted_one_dataset_gets_its_index_and_no_other_datasets(indexed):
    with indexed.session() as s:
        plan = plan_server(s, "alice", profile=PROFILE, home_volume="h", state_dir=str(indexed.state_dir))
        nobody = plan_server(s, "nobody", profile=PROFILE, home_volume="h", state_dir=str(indexed.state_dir))
    indexes = {target: path for target, path in plan.read_only_paths.items() if target.startswith("/data-index")}
    assert indexes == {"/data-index/set-a.sqlite": str(index_file(indexed.state_dir / INDEX_FOLDER, "set-a"))}
    assert plan.docker_volumes()[indexes["/data-index/set-a.sqlite"]] == {"bind": "/data-index/set-a.sqlite",
                                                                          "mode": "ro"}
    assert not any(t.startswith("/data-index") for t in nobody.read_only_paths)


def test_a_plan_never_mounts_an_index_of_a_dataset_it_does_not_mount(indexed):
    with indexed.session() as s:
        plan = plan_server(s, "alice", profile=PROFILE, home_volume="h", state_dir=str(indexed.state_dir))
    forged = type(plan)(**{**{k: getattr(plan, k) for k in ("user", "server_name", "kind", "datasets", "home_volume",
                                                              "limits", "tools")},
                           "indexes": {"set-a": "/x/a.sqlite", "set-b": "/x/b.sqlite"}})
    assert "/data-index/set-b.sqlite" not in forged.read_only_paths
    assert forged.read_only_paths["/data-index/set-a.sqlite"] == "/x/a.sqlite"


def test_the_kubernetes_pod_mounts_the_granted_datasets_index_read_only_and_no_other(build, granted, settings):
    folder = Path(settings["state_dir"]) / INDEX_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("lung", "brain"):  # alice holds lung; brain is registered, not hers
        index_file(folder, name).write_text(f"index of {name}")
    mounts = mounts_by_path(pod_of(build, state_dir=settings["state_dir"]))
    indexes = {path: pair for path, pair in mounts.items() if path.startswith("/data-index")}
    assert sorted(indexes) == ["/data-index/lung.sqlite"]
    assert indexes["/data-index/lung.sqlite"][0]["readOnly"] is True
