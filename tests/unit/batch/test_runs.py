"""The catalog side of batch runs (imaging_workbench/batch/runs.py, control.py's checks and its
reading of a run's log): on SQLite, and PostgreSQL where the tier has it. No docker: everything
here happens before a container would start, or after it ended."""

import pytest

from imaging_workbench.batch import control, runs
from imaging_workbench.batch.commands import parse_value
from imaging_workbench.batch.protocol import event_line
from imaging_workbench.catalog import accounts, datasets, grants
from imaging_workbench.catalog.access_requests import BadField, Conflict, NotAllowed
from imaging_workbench.catalog.models import AuditEvent, BatchRun

pytestmark = pytest.mark.usefixtures("database_url")

SHA = "ab" * 32


@pytest.fixture
def people(ctx, tmp_path):
    with ctx.session() as s:
        for user in ("bea", "carl"):
            accounts.add_account(s, "steward", user, f"{user}-password-123")
        for dataset_id in ("lung-ct", "colon-ct"):
            (tmp_path / dataset_id).mkdir()
            datasets.add_dataset(s, "steward", dataset_id, tmp_path / dataset_id, site="site-1")
        grants.grant_access(s, "steward", "bea", "lung-ct", 7, "batch tests")
    return ctx


def new_run(ctx, user="bea", per_case=True):
    with ctx.session() as s:
        return runs.create_run(s, "operator", user, "work/m.ipynb", "lung-ct", {"label": "x"}, per_case,
                               "standard", "sha256:img", lambda i: f"wb-batch-t-{i}").id


def audit(ctx, action):
    with ctx.session() as s:
        return [(e.subject, e.details) for e in s.query(AuditEvent).filter_by(action=action)]


@pytest.mark.parametrize("name", ["", "/etc/passwd.ipynb", "../x.ipynb", "a//b.ipynb", "a/./b.ipynb", "notes.txt",
                                  None, 3])
def test_a_notebook_that_is_no_relative_ipynb_in_the_home_is_refused_by_field(name):
    with pytest.raises(BadField) as refused:
        runs.check_notebook(name)
    assert refused.value.field == "notebook"


@pytest.mark.parametrize("parameters, named", [
    ({"1x": 1}, "1x"), ({"class": 1}, "class"), ({"case_path": "/etc"}, "case_path"),
    ({"dataset_path": "/"}, "dataset_path"), ({"f": object()}, "f"), ({"big": "x" * 20_000}, "big"), ([1], "name")])
def test_a_bad_parameter_is_refused_naming_it(parameters, named):
    with pytest.raises(BadField) as refused:
        runs.check_parameters(parameters)
    assert refused.value.field == "parameters" and named in refused.value.message


def test_parameters_values_read_as_papermill_reads_them():
    assert [parse_value(v) for v in ("1", "0.5", "true", "[1, 2]", "lung", "null")] == [1, 0.5, True, [1, 2], "lung",
                                                                                       None]


def test_a_run_is_recorded_and_its_submit_audited_with_the_image(people):
    run_id = new_run(people)
    with people.session() as s:
        run = runs.get_run(s, run_id).as_dict()
    assert (run["state"], run["container"], run["image"]) == (runs.RUNNING, f"wb-batch-t-{run_id}", "sha256:img")
    (subject, details), = audit(people, "batch.submit")
    assert subject == f"batch/{run_id}" and details["image"] == "sha256:img" and details["user"] == "bea"


def test_a_finished_run_is_audited_once_with_the_notebook_hash_and_its_counts(people):
    run_id = new_run(people)
    summary = {"cases": 3, "ok": 2, "failed": 1, "results": []}
    for _ in range(2):  # two followers see the same end
        with people.session() as s:
            runs.settle(s, runs.get_run(s, run_id), runs.FINISHED, notebook_sha256=SHA, summary=summary)
    (_, details), = audit(people, "batch.finish")
    assert (details["notebook_sha256"], details["image"], details["ok"], details["failed"]) == (SHA, "sha256:img", 2, 1)
    with people.session() as s, pytest.raises(Conflict):
        runs.cancel(s, "operator", runs.get_run(s, run_id))


def test_cancel_marks_a_running_run_and_is_audited(people):
    run_id = new_run(people)
    with people.session() as s:
        runs.cancel(s, "bea", runs.get_run(s, run_id))
    with people.session() as s:
        run = runs.get_run(s, run_id)
        assert run.state == runs.CANCELLED and run.finished_at is not None
        runs.settle(s, run, runs.FINISHED, summary={"cases": 0, "ok": 0, "failed": 0})  # too late: stays cancelled
        assert run.state == runs.CANCELLED
    assert [subject for subject, _ in audit(people, "batch.cancel")] == [f"batch/{run_id}"]


def test_a_run_is_its_users_to_see(people):
    run_id = new_run(people)
    with people.session() as s:
        assert runs.own_run(s, "bea", run_id).id == run_id
        with pytest.raises(NotAllowed):
            runs.own_run(s, "carl", run_id)
        assert [r.id for r in runs.runs_of(s, "bea")] == [run_id]
        assert runs.runs_of(s, "carl") == []
        with pytest.raises(BadField):
            runs.runs_of(s, state="sleeping")


def test_a_run_on_a_dataset_without_a_sandbox_grant_is_refused_before_docker_is_asked(people):
    for dataset_id in ("colon-ct", "no-such-dataset"):
        with pytest.raises(BadField) as refused:
            control.submit(people, "bea", "work/m.ipynb", dataset_id, per_case=True)
        assert refused.value.field == "dataset" and dataset_id in refused.value.message
    with pytest.raises(BadField) as refused:
        control.submit(people, "bea", "work/m.ipynb", "lung-ct", profile="huge")
    assert refused.value.field == "profile"
    with people.session() as s:
        assert s.query(BatchRun).count() == 0
    assert audit(people, "batch.submit") == []


@pytest.mark.parametrize("lines, state, error", [
    ([event_line("start", notebook_sha256=SHA, cases=2),
      event_line("summary", cases=2, ok=1, failed=1, results=[{"case": "P1", "status": "failed", "error": "E: x"}])],
     runs.FINISHED, None),
    ([event_line("refused", field="parameters", error="lable: not declared")], runs.REFUSED, "lable: not declared"),
    (["some noise", event_line("start", notebook_sha256=SHA, cases=1)], runs.FAILED, "Killed"),
])
def test_a_runs_end_is_read_from_its_log(people, lines, state, error):
    run_id = new_run(people)
    with people.session() as s:
        control.settle_from_log(s, runs.get_run(s, run_id), "\n".join(lines) + "\n", "Killed\n")
    with people.session() as s:
        run = runs.get_run(s, run_id)
        assert (run.state, run.error) == (state, error)
        if state == runs.FINISHED:
            assert run.notebook_sha256 == SHA and run.summary["failed"] == 1
        if state == runs.REFUSED:
            assert run.summary == {"field": "parameters"}
