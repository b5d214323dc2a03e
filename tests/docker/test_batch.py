"""Batch runs through the real docker tier: a parameterised notebook run by papermill in a batch
container of its own, with the user's grants, limits and network rules (imaging_workbench/batch).

A new user, bea, holds a sandbox grant on a small synthetic CT cohort; one of its cases holds a
file that is no DICOM, so the notebook fails on that case. Her notebooks are in her home volume,
put there by a throwaway container as her sandbox user."""

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from imaging_workbench import batch
from imaging_workbench.batch import BatchError, control, runs
from imaging_workbench.batch.protocol import LABEL
from imaging_workbench.catalog import accounts, datasets, grants
from imaging_workbench.catalog.access_requests import BadField
from imaging_workbench.catalog.models import AuditEvent, BatchRun
from imaging_workbench.dicom.synth import generate_cohort
from imaging_workbench.hub.network import gateway
from imaging_workbench.portal.base import ACCESS_SCOPE, SERVICE_NAME

from ..waiting import wait_for
from .conftest import HOME_VOLUME, SUBNET

pytestmark = pytest.mark.docker

USER, DATASET, PATIENTS = "bea", "batch-ct", 3
BROKEN = 1  # index of the case made to fail
PORTAL = f"/services/{SERVICE_NAME}/"
UNGRANTED = "liver-b"  # bob's (tests/docker/sandboxes.py); bea holds no grant on it

MEASURE = new_notebook(cells=[
    new_code_cell('case_path = ""\ndataset_path = ""\nlabel = "none"', metadata={"tags": ["parameters"]}),
    new_code_cell("import os\nimport pydicom\n"
                  "files = sorted(os.path.join(d, f) for d, _, fs in os.walk(case_path) for f in fs if f.endswith('.dcm'))\n"
                  "ids = {pydicom.dcmread(f, stop_before_pixels=True).PatientID for f in files}\n"
                  "print(label, len(files), sorted(ids))"),
])
PROBE = new_notebook(cells=[
    new_code_cell('dataset_path = ""\nhost = ""\nport = 0', metadata={"tags": ["parameters"]}),
    new_code_cell("""import errno, json, os, socket
probe = {"uid": os.getuid()}
for name, path in (("write_data", os.path.join(dataset_path, "x")), ("write_root", "/opt/x")):
    try:
        open(path, "w").close()
        probe[name] = "written"
    except OSError as e:
        probe[name] = errno.errorcode[e.errno]
try:
    socket.getaddrinfo("example.org", 80)
    probe["dns"] = "resolved"
except OSError:
    probe["dns"] = "failed"
s = socket.socket()
s.settimeout(3)
try:
    s.connect((host, port))
    probe["host_port"] = "connected"
except OSError as e:
    probe["host_port"] = type(e).__name__
probe["default_route"] = any(l.split()[1] == "00000000" for l in open("/proc/net/route").readlines()[1:])
probe["cap_eff"] = [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")][0]
print("PROBE " + json.dumps(probe))"""),
])
SLEEPER = new_notebook(cells=[
    new_code_cell('dataset_path = ""', metadata={"tags": ["parameters"]}),
    new_code_cell("import time\ntime.sleep(600)"),
])
RUN_TOOL = nbformat.read(Path(__file__).parents[2] / "notebooks" / "researcher" / "run_tool.ipynb", 4)  # shipped
NOTEBOOKS = {"work/measure.ipynb": MEASURE, "work/probe.ipynb": PROBE, "work/sleep.ipynb": SLEEPER,
             "work/run_tool.ipynb": RUN_TOOL}


def home_volume(docker):
    return docker.volumes.get(HOME_VOLUME.format(username=USER))


def read_home(docker, path: str) -> bytes:
    """A file of bea's home, read by the test on the host (the workbench itself never does)."""
    with open(os.path.join(home_volume(docker).attrs["Mountpoint"], path), "rb") as f:
        return f.read()


def batch_containers(docker):
    return docker.containers.list(all=True, filters={"label": LABEL})


@pytest.fixture(scope="module")
def bea(sandbox_hub, docker, tmp_path_factory):
    """bea with a grant on a synthetic cohort (case BROKEN holds a file that is no DICOM), her
    notebooks in her home volume."""
    folder = tmp_path_factory.mktemp("batch-data") / DATASET
    generate_cohort(folder, DATASET, PATIENTS, shape=(6, 16, 16), workers=1)
    cases = sorted(p.name for p in folder.iterdir())
    (folder / cases[BROKEN] / "broken.dcm").write_bytes(b"this is no DICOM file\n")
    for dirpath, _, filenames in os.walk(folder):  # the sandbox reads it as uid 1000
        os.chmod(dirpath, 0o755)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)
    os.chown(folder, 1000, 100)  # the sandbox user owns the dataset's folder: only the read-only mount stops a write
    with sandbox_hub.ctx.session() as s:
        accounts.add_account(s, "steward", USER, "bea-password-123")
        datasets.add_dataset(s, "steward", DATASET, folder, site="site-1")
        grants.grant_access(s, "steward", USER, DATASET, 7, "batch test")
    script = "mkdir -p work && " + " && ".join(
        f'printf %s "$NB{i}" > {name}' for i, name in enumerate(NOTEBOOKS))
    docker.containers.run(sandbox_hub.settings["sandbox"]["image"], entrypoint=["sh", "-c", script],
                          environment={f"NB{i}": nbformat.writes(nb) for i, nb in enumerate(NOTEBOOKS.values())},
                          user="1000:100",
                          working_dir="/home/jovyan", network_mode="none", remove=True,
                          volumes={HOME_VOLUME.format(username=USER): {"bind": "/home/jovyan", "mode": "rw"}})
    yield sandbox_hub, cases
    for container in batch_containers(docker):
        container.remove(force=True)


def workbench(hub, *args: str) -> subprocess.CompletedProcess:
    """The `workbench` command line, as an operator of the test hub's deployment."""
    return subprocess.run([sys.executable, "-m", "imaging_workbench.cli", "--settings", str(hub.settings_file),
                           "--as", "operator", *args], capture_output=True, text=True, timeout=300)


def audit_rows(hub, action: str, run_id: int) -> list[dict]:
    with hub.ctx.session() as s:
        return [e.details for e in s.query(AuditEvent).filter_by(action=action, subject=f"batch/{run_id}")]


def test_a_per_case_run_records_the_failing_case_and_runs_the_others(bea, docker):
    hub, cases = bea
    result = workbench(hub, "batch", "run", "work/measure.ipynb", "--user", USER, "--dataset", DATASET, "--per-case",
                       "-p", "label", "seen")
    assert result.returncode == 1, result.stdout + result.stderr  # one case failed
    with hub.ctx.session() as s:
        run = s.query(BatchRun).filter_by(user=USER, notebook="work/measure.ipynb").one().as_dict()
    assert run["state"] == runs.FINISHED, (run["error"], result.stderr[-3000:])
    summary = run["summary"]
    assert (summary["cases"], summary["ok"], summary["failed"]) == (PATIENTS, PATIENTS - 1, 1), summary["results"]
    by_case = {r["case"]: r for r in summary["results"]}
    assert sorted(by_case) == cases
    assert by_case[cases[BROKEN]]["status"] == "failed"
    assert "InvalidDicomError" in by_case[cases[BROKEN]]["error"], by_case[cases[BROKEN]]
    for i, case in enumerate(cases):
        out = nbformat.reads(read_home(docker, f"batch/{run['id']}/{case}.ipynb").decode(), 4)
        text = "".join(o.get("text", "") for c in out.cells for o in c.get("outputs", []))
        if i != BROKEN:
            assert by_case[case]["status"] == "ok" and by_case[case]["error"] is None
            assert "seen" in text and f"'{case}'" in text, text
    on_disk = json.loads(read_home(docker, f"batch/{run['id']}/summary.json"))
    assert on_disk["results"] == summary["results"]
    # The summary table: one line per case with its status, the failure with its error.
    table = [line.split() for line in result.stdout.splitlines()]
    assert f"{PATIENTS - 1} of {PATIENTS} ok, 1 failed" in result.stdout, result.stdout
    for i, case in enumerate(cases):
        row = next(words for words in table if words and words[0] == case)
        assert row[1] == ("failed" if i == BROKEN else "ok"), result.stdout
    assert "InvalidDicomError" in result.stdout
    # Audited: the notebook's hash (of what ran) and the image's id.
    sha = hashlib.sha256(nbformat.writes(MEASURE).encode()).hexdigest()
    image = docker.images.get(hub.settings["sandbox"]["image"]).id
    submitted, = audit_rows(hub, "batch.submit", run["id"])
    finished, = audit_rows(hub, "batch.finish", run["id"])
    assert submitted["image"] == image and submitted["user"] == USER and submitted["per_case"] is True
    assert (finished["notebook_sha256"], finished["image"], finished["failed"]) == (sha, image, 1)
    assert run["notebook_sha256"] == sha
    assert not batch_containers(docker), "the finished run's container was not removed"
    shown = workbench(hub, "batch", "show", str(run["id"]))
    assert shown.returncode == 0 and sha in shown.stdout and "InvalidDicomError" in shown.stdout, shown.stderr
    listed = workbench(hub, "batch", "list", "--user", USER, "--json")
    assert [r["id"] for r in json.loads(listed.stdout)] == [run["id"]]


def test_a_run_on_an_ungranted_dataset_is_refused_before_any_container_starts(bea, docker):
    hub, _ = bea
    seen = []
    stop = threading.Event()

    def watch():  # a container that starts and is removed between two looks would escape a single check
        while not stop.is_set():
            seen.extend(c.name for c in batch_containers(docker))
            stop.wait(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with pytest.raises(BadField) as refused:
            control.submit(hub.ctx, USER, "work/measure.ipynb", UNGRANTED, {"label": "x"}, per_case=True)
    finally:
        stop.set()
        watcher.join()
    assert refused.value.field == "dataset" and UNGRANTED in refused.value.message
    assert not seen
    with hub.ctx.session() as s:
        assert not s.query(BatchRun).filter_by(dataset_id=UNGRANTED).count()
    with pytest.raises(BadField) as bad:
        control.submit(hub.ctx, USER, "../carol/x.ipynb", DATASET)
    assert bad.value.field == "notebook"
    with pytest.raises(BadField) as bad:
        control.submit(hub.ctx, USER, "work/measure.ipynb", DATASET, {"case_path": "/etc"})
    assert bad.value.field == "parameters" and "case_path" in bad.value.message


def test_an_approved_tool_runs_over_the_cohort_case_by_case_and_each_seg_lands_in_her_home(bea, approved_tool,
                                                                                           docker):
    """The shipped run_tool notebook, per case: the tool from the sandbox's /tools on each case's CT
    series (the broken case's non-DICOM file is no series and is passed over), one SEG per series."""
    import pydicom

    hub, cases = bea
    result = workbench(hub, "batch", "run", "work/run_tool.ipynb", "--user", USER, "--dataset", DATASET,
                       "--per-case", "-p", "tool", "tumour-seg")
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    with hub.ctx.session() as s:
        run = s.query(BatchRun).filter_by(user=USER, notebook="work/run_tool.ipynb").one().as_dict()
    assert (run["summary"]["cases"], run["summary"]["ok"]) == (PATIENTS, PATIENTS), run["summary"]
    segs = sorted((Path(home_volume(docker).attrs["Mountpoint"]) / "tool-results" / "tumour-seg").glob("*.dcm"))
    assert len(segs) == PATIENTS
    algorithm = pydicom.dcmread(segs[0]).SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert (algorithm.AlgorithmName, algorithm.AlgorithmVersion) == ("tumour-seg", "1.0.0")


def test_an_unknown_notebook_or_parameter_is_refused_naming_the_field_and_writes_nothing(bea, docker):
    hub, _ = bea
    for notebook, parameters, field in (("work/missing.ipynb", {}, "notebook"),
                                        ("work/measure.ipynb", {"lable": "x"}, "parameters")):
        run = control.submit(hub.ctx, USER, notebook, DATASET, parameters)
        run = wait_for(lambda: (r := control.refresh(hub.ctx, run["id"]))["state"] != runs.RUNNING and r, 60,
                       what=f"batch run {run['id']} to end")
        assert run["state"] == runs.REFUSED and run["summary"] == {"field": field}, run
        assert (notebook if field == "notebook" else "lable") in run["error"]
        with pytest.raises(FileNotFoundError):
            read_home(docker, f"batch/{run['id']}/summary.json")
        assert not os.path.exists(os.path.join(home_volume(docker).attrs["Mountpoint"], f"batch/{run['id']}"))


def test_through_the_portal_her_run_has_only_her_grants_no_way_out_and_is_hers_alone(bea, docker):
    hub, _ = bea
    for user in (USER, "carol"):
        hub.api("POST", f"/users/{user}")  # the hub learns of users at their first login; 409 if known
    url, token = hub.url + PORTAL, hub.user_token(USER, [ACCESS_SCOPE])
    with pytest.raises(BatchError) as refused:
        batch.run("work/probe.ipynb", UNGRANTED, url=url, token=token)
    assert refused.value.status == 400 and "dataset" in refused.value.fields
    listener = socket.socket()  # on a host address the firewall does not open to sandboxes
    listener.bind((gateway(SUBNET), 0))
    listener.listen()
    try:
        run = batch.run("work/probe.ipynb", DATASET, {"host": gateway(SUBNET), "port": listener.getsockname()[1]},
                        url=url, token=token)
        assert run["user"] == USER and run["submitted_by"] == USER
        done = batch.wait(run["id"], timeout=120, poll=1, url=url, token=token)
    finally:
        listener.close()
    assert done["state"] == runs.FINISHED and done["summary"]["ok"] == 1, done
    out = nbformat.reads(read_home(docker, f"batch/{run['id']}/output.ipynb").decode(), 4)
    text = "".join(o.get("text", "") for c in out.cells for o in c.get("outputs", []))
    probe = json.loads(text.split("PROBE ", 1)[1].splitlines()[0])
    assert probe == {"uid": 1000, "write_data": "EROFS", "write_root": "EROFS", "dns": "failed",
                     "host_port": probe["host_port"], "default_route": False, "cap_eff": "0000000000000000"}, probe
    assert probe["host_port"] != "connected", probe
    assert [r["id"] for r in batch.list_runs(url=url, token=token)][0] == run["id"]
    with pytest.raises(BatchError) as other:
        batch.show(run["id"], url=url, token=hub.user_token("carol", [ACCESS_SCOPE]))
    assert other.value.status == 403


def test_cancel_stops_the_run(bea, docker):
    hub, _ = bea
    run = control.submit(hub.ctx, USER, "work/sleep.ipynb", DATASET)

    def started():
        now = control.refresh(hub.ctx, run["id"]).get("progress") or {}
        return now if now.get("cases") else None

    progress = wait_for(started, 60, what="the run to start its case")
    assert progress == {"cases": 1, "done": 0, "failed": 0}
    cancelled = control.cancel(hub.ctx, run["id"])
    assert cancelled["state"] == runs.CANCELLED
    assert cancelled["notebook_sha256"] == hashlib.sha256(nbformat.writes(SLEEPER).encode()).hexdigest()
    assert not batch_containers(docker)
    assert control.refresh(hub.ctx, run["id"])["state"] == runs.CANCELLED
    row, = audit_rows(hub, "batch.cancel", run["id"])
    assert row["notebook_sha256"] == cancelled["notebook_sha256"]
    assert row["user"] == USER and row["image"] == docker.images.get(hub.settings["sandbox"]["image"]).id
