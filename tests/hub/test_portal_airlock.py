"""The airlock through the portal's API on a real hub, with homes in real docker volumes.

`alice` and `bob` are researchers holding lung-ct; `olga`, `oscar` and `bob` are output checkers.
A test writes into a user's home volume as their sandbox would (the volume's folder on this host),
and files releases with the user's own hub token, as `workbench.release()` does from a sandbox.
"""

import hashlib
import os
import shutil

import pydicom.data
import pytest

from imaging_workbench.catalog import grants
from imaging_workbench.context import WorkbenchContext
from imaging_workbench.deployment import validate_settings, with_defaults
from imaging_workbench.hub.network import docker_client

from ..hubtools import log_in
from .portal_calls import portal_caller, register

pytestmark = pytest.mark.hub

PEOPLE = ("alice", "bob", "olga", "oscar")
HOME_VOLUME = "wbtest-airlock-{username}"
TABLE = "band,n\n0-39,3\n40-59,25\n60+,31\n"
SAFE_TABLE = "band,n\n0-59,28\n60+,31\n"


@pytest.fixture(scope="module")
def hub_settings(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("hub-airlock")
    overrides = {"state_dir": str(workdir / "state"), "demo": {"users": ["alice", "bob"], "grants": {}},
                 "roles": {"output_checkers": ["olga", "oscar", "bob"]},
                 "sandbox": {"home_volume": HOME_VOLUME}}
    return workdir, validate_settings(with_defaults(overrides))


@pytest.fixture(scope="module")
def homes(hub_settings):
    """name -> the host folder of that user's home volume, as their sandbox sees ~."""
    client = docker_client()
    made = {}

    def home(name):
        if name not in made:
            volume = client.volumes.create(HOME_VOLUME.format(username=name))
            made[name] = volume
        folder = made[name].attrs["Mountpoint"]
        return folder

    yield home
    for volume in made.values():
        volume.remove(force=True)


@pytest.fixture(scope="module")
def portal(hub, hub_settings, logins):
    workdir, settings = hub_settings
    ctx = WorkbenchContext(settings, actor="steward")
    register(ctx, workdir, {"lung-ct": {"title": "Lung CT", "site": "site-1"}})
    with ctx.session() as s:
        for name in ("alice", "bob"):
            grants.grant_access(s, "steward", name, "lung-ct", 30, "study")
    return portal_caller(hub, PEOPLE, timeout=120)



def outbox(homes, user, files: dict[str, str | bytes]) -> str:
    """Write `files` into `user`'s ~/outbox (emptied first); the folder's host path."""
    folder = os.path.join(homes(user), "outbox")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    for name, content in files.items():
        path = os.path.join(folder, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content.encode() if isinstance(content, str) else content)
    return folder


def file_release(portal, user="alice", files=("age.csv",), **fields):
    body = {"files": list(files), "statement": "age bands of the lung cohort", "controls": "none yet",
            "datasets": ["lung-ct"], "count_columns": {"age.csv": ["n"]}, **fields}
    return portal(user, "POST", "api/releases", json=body)


def review(portal, checker, release, name, decision="approve", comment=""):
    file_id = next(f["id"] for f in release["files"] if f["name"] == name)
    return portal(checker, "POST", f"api/releases/{release['id']}/reviews",
                  json={"file_id": file_id, "decision": decision, "comment": comment})


def test_a_small_cell_is_flagged_and_a_corrected_table_goes_out_after_two_checkers(portal, homes):
    folder = outbox(homes, "alice", {"age.csv": TABLE})
    r = file_release(portal)
    assert r.status_code == 201, r.text
    release = r.json()
    assert release["state"] == "submitted"
    failures = [f for f in release["files"][0]["findings"] if f["severity"] == "fail"]
    assert failures and "3" in failures[0]["message"], release["files"][0]["findings"]
    with open(os.path.join(folder, "age.csv"), "w") as f:
        f.write("changed in the sandbox after filing\n")
    filed = portal("olga", "GET", f"releases/{release['id']}/files/{release['files'][0]['id']}/content")
    assert filed.status_code == 200 and filed.text == TABLE  # the store's copy, not the outbox
    early = portal("alice", "GET", f"releases/{release['id']}/files/{release['files'][0]['id']}/content")
    assert early.status_code == 403  # the author gets nothing out before two checkers approved it

    assert review(portal, "olga", release, "age.csv", "changes", "suppress the cell of 3").ok
    assert review(portal, "oscar", release, "age.csv", "changes", "agreed").ok
    returned = portal("olga", "POST", f"api/releases/{release['id']}/return", json={"reason": "small cell"})
    assert returned.json()["state"] == "returned", returned.text

    outbox(homes, "alice", {"age.csv": SAFE_TABLE})
    updated = portal("alice", "POST", f"api/releases/{release['id']}/files", json={"files": ["age.csv"],
                                                                                   "count_columns": {"age.csv": ["n"]}})
    assert updated.ok, updated.text
    assert updated.json()["files"][0]["reviews"] == []  # the changed file starts again
    assert not [f for f in updated.json()["files"][0]["findings"] if f["severity"] == "fail"]
    release = portal("alice", "POST", f"api/releases/{release['id']}/submit").json()
    assert review(portal, "olga", release, "age.csv").ok
    approved = review(portal, "oscar", release, "age.csv").json()
    assert approved["state"] == "approved"
    released = portal("oscar", "POST", f"api/releases/{release['id']}/release")
    assert released.json()["state"] == "released", released.text

    url = f"releases/{release['id']}/files/{release['files'][0]['id']}/download"
    got = portal("alice", "GET", url)
    assert got.status_code == 200 and got.content == SAFE_TABLE.encode()
    assert got.headers["Content-Disposition"].startswith("attachment")
    assert released.json()["files"][0]["sha256"] == hashlib.sha256(SAFE_TABLE.encode()).hexdigest()
    for other in ("bob", "olga"):  # only the author downloads
        assert portal(other, "GET", url).status_code == 403


def test_nobody_reviews_their_own_release_and_researchers_see_only_their_own(portal, homes):
    outbox(homes, "bob", {"age.csv": SAFE_TABLE})
    release = file_release(portal, "bob").json()
    refused = review(portal, "bob", release, "age.csv")
    assert refused.status_code == 403 and "own request" in refused.json()["error"]
    assert portal("alice", "GET", f"api/releases/{release['id']}").status_code == 403
    assert portal("alice", "GET", "api/checks").status_code == 403
    assert review(portal, "alice", release, "age.csv").status_code == 403
    assert [r["id"] for r in portal("olga", "GET", "api/checks").json()].count(release["id"]) == 1
    assert release["id"] not in [r["id"] for r in portal("bob", "GET", "api/checks").json()]


@pytest.mark.parametrize("name, field_says", [
    ("../age.csv", "not a path inside"), ("/etc/passwd", "not a path inside"), ("a/./b.csv", "not a path inside"),
    ("escape.csv", "symbolic link"), ("etc/passwd", "symbolic link"), ("missing.csv", "not in ~/outbox"),
    ("pipe", "not a regular file"),
])
def test_path_tricks_in_release_file_names_are_refused(portal, homes, name, field_says):
    folder = outbox(homes, "alice", {"age.csv": SAFE_TABLE})
    os.symlink("/etc/shadow", os.path.join(folder, "escape.csv"))  # resolves on the host, not in the sandbox
    os.symlink("/etc", os.path.join(folder, "etc"))
    os.mkfifo(os.path.join(folder, "pipe"))
    r = file_release(portal, files=[name], count_columns={})
    assert r.status_code == 400, r.text
    assert field_says in r.json()["fields"]["files"], r.json()


def test_images_dicom_and_nifti_never_leave(portal, homes):
    dicom = open(pydicom.data.get_testdata_file("CT_small.dcm"), "rb").read()
    nifti = bytearray(352)
    nifti[0:4], nifti[344:348] = (348).to_bytes(4, "little"), b"n+1\0"
    outbox(homes, "alice", {"table.csv": dicom, "seg.nii": bytes(nifti), "age.csv": SAFE_TABLE})
    for name in ("table.csv", "seg.nii"):
        r = file_release(portal, files=["age.csv", name], count_columns={})
        assert r.status_code == 400 and name in r.json()["fields"]["files"], r.text
    assert not [r for r in portal("alice", "GET", "api/releases").json()
                if {"table.csv", "seg.nii"} & {f["name"] for f in r["files"]}]  # nothing half-filed


@pytest.mark.parametrize("change, field", [
    ({"datasets": ["liver-mr"]}, "datasets"), ({"statement": " "}, "statement"), ({"controls": ""}, "controls"),
    ({"files": []}, "files"), ({"count_columns": {"other.csv": ["n"]}}, "count_columns"),
])
def test_a_bad_release_is_refused_naming_the_field(portal, homes, change, field):
    outbox(homes, "alice", {"age.csv": SAFE_TABLE})
    r = file_release(portal, **change)
    assert r.status_code == 400 and field in r.json()["fields"], r.text


def test_a_form_post_needs_the_pages_xsrf_token(hub, logins, portal, homes):
    outbox(homes, "bob", {"age.csv": SAFE_TABLE})
    release = file_release(portal, "bob").json()
    http, response = log_in(hub.url, "olga", logins["olga"])
    assert response.status_code == 302
    page = http.get(f"{portal.base}releases/{release['id']}", timeout=30)
    assert page.status_code == 200 and 'class="review-form' in page.text
    form = {"file_id": str(release["files"][0]["id"]), "decision": "approve"}
    url = f"{portal.base}releases/{release['id']}/review"
    assert http.post(url, data=form, allow_redirects=False, timeout=30).status_code == 403
    assert http.post(url, data={**form, "_xsrf": "forged"}, allow_redirects=False, timeout=30).status_code == 403
    assert portal("olga", "GET", f"api/releases/{release['id']}").json()["files"][0]["reviews"] == []
