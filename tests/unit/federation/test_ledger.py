"""The site's privacy-budget ledger: refusals name the numbers, the dataset's cap holds across
researchers, concurrent job processes never overspend, and every change is in the site's audit trail."""

import multiprocessing

import pytest
from sqlalchemy import text

from imaging_workbench.errors import WorkbenchError
from imaging_workbench.federation.protocol.policy import DatasetPolicy
from imaging_workbench.federation.site.ledger import BudgetExceeded, Ledger

POLICY = DatasetPolicy(epsilon_per_job=4.0, epsilon_per_researcher=10.0, epsilon_total=15.0, delta_per_job=1e-5,
                       delta_per_researcher=1e-3)
POLICIES = {"lung-ct": POLICY, "liver-ct": POLICY}


@pytest.fixture
def ledger(tmp_path):
    return Ledger(tmp_path / "local" / "workbench_site.sqlite")


def spent(ledger, researcher=None, dataset="lung-ct"):
    return sum(r["epsilon"] for r in ledger.rows(researcher=researcher, dataset_id=dataset)
               if r["status"] != "refunded")


def test_overspending_is_refused_naming_researcher_dataset_and_numbers(ledger):
    ledger.charge("job-1", 0, "ana", ["lung-ct"], 4.0, 1e-6, POLICIES)
    ledger.charge("job-2", 0, "ana", ["lung-ct"], 4.0, 1e-6, POLICIES)
    ledger.check("ana", ["lung-ct"], 2.0, 1e-6, POLICIES)  # exactly what is left fits
    with pytest.raises(BudgetExceeded) as e:
        ledger.charge("job-3", 0, "ana", ["liver-ct", "lung-ct"], 3.0, 1e-6, POLICIES)
    assert (e.value.researcher, e.value.dataset, e.value.spent, e.value.remaining) == ("ana", "lung-ct", 8.0, 2.0)
    assert e.value.dataset_remaining == 7.0
    assert ("researcher ana has spent epsilon 8 of 10 on dataset lung-ct at this site: 2 remains, this job asks 3"
            in e.value.message)
    assert "total has 7 of 15 left" in e.value.message
    assert ledger.rows(dataset_id="liver-ct") == []  # all or nothing: liver-ct fitted, but was not charged
    with pytest.raises(BudgetExceeded, match="over this site's limit of epsilon 4, delta 1e-05 per job"):
        ledger.check("bo", ["lung-ct"], 5.0, 1e-6, POLICIES)


def test_a_jobs_rounds_together_stay_within_the_per_job_limit(ledger):
    for round_ in range(4):
        ledger.charge("job-1", round_, "ana", ["lung-ct"], 1.0, 0.0, POLICIES)
    with pytest.raises(BudgetExceeded, match="job job-1 of researcher ana asks epsilon 5, delta 0 on dataset "
                                             "lung-ct in all its rounds, over this site's limit of epsilon 4"):
        ledger.charge("job-1", 4, "ana", ["lung-ct"], 1.0, 0.0, POLICIES)
    ledger.charge("job-2", 0, "ana", ["lung-ct"], 1.0, 0.0, POLICIES)


def test_the_datasets_total_cap_holds_across_researchers(ledger):
    for job in range(2):
        ledger.charge(f"ana-{job}", 0, "ana", ["lung-ct"], 4.0, 0.0, POLICIES)
    ledger.charge("bo-0", 0, "bo", ["lung-ct"], 4.0, 0.0, POLICIES)
    with pytest.raises(BudgetExceeded) as e:
        ledger.charge("bo-1", 0, "bo", ["lung-ct"], 4.0, 0.0, POLICIES)  # bo has 6 left, the dataset only 3
    assert (e.value.researcher, e.value.spent, e.value.remaining, e.value.dataset_remaining) == ("bo", 4.0, 6.0, 3.0)
    assert "dataset lung-ct has spent epsilon 12 of its total 15 across all researchers" in e.value.message
    ledger.reset("bo", "lung-ct", "admin", "new project")  # a researcher's reset gives the dataset nothing back
    with pytest.raises(BudgetExceeded, match="of its total 15"):
        ledger.charge("bo-2", 0, "bo", ["lung-ct"], 4.0, 0.0, POLICIES)


def _charge_until_refused(path, process, researcher, barrier, attempts):
    ledger = Ledger(path)
    barrier.wait()
    for attempt in range(attempts):
        try:
            ledger.charge(f"job-{process}-{attempt}", 0, researcher, ["lung-ct"], 1.0, 0.0, {"lung-ct": POLICY})
        except BudgetExceeded:
            pass


def test_concurrent_processes_never_overspend(tmp_path):
    path = tmp_path / "workbench_site.sqlite"
    Ledger(path)
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(8)
    procs = [ctx.Process(target=_charge_until_refused, args=(path, i, f"r{i % 2}", barrier, 12)) for i in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * 8  # no process failed (e.g. "database is locked")
    ledger = Ledger(path)
    assert spent(ledger, "r0") <= 10.0 and spent(ledger, "r1") <= 10.0
    assert spent(ledger) == 15.0  # 96 tries, 15 fit: the whole budget is used and not one more
    assert len([r for r in ledger.audit_rows() if r["action"] == "charge"]) == 15


def test_the_spend_survives_a_restart(ledger):
    ledger.charge("job-1", 0, "ana", ["lung-ct"], 4.0, 0.0, POLICIES)
    again = Ledger(ledger.path)
    assert again.budget("ana", POLICIES)["lung-ct"] == {
        "spent": 4.0, "remaining": 6.0, "dataset_spent": 4.0, "dataset_remaining": 11.0, "epsilon_per_job": 4.0,
        "unreleased": 0.0}


def test_reset_and_raise_change_the_budget_and_are_audited(ledger):
    for job in range(2):
        ledger.charge(f"job-{job}", 0, "ana", ["lung-ct"], 4.0, 0.0, POLICIES)
    ledger.raise_budget("ana", "lung-ct", 3.0, "sam", "grant extended")
    assert ledger.budget("ana", POLICIES)["lung-ct"]["remaining"] == 5.0
    ledger.reset("ana", "lung-ct", "sam", "new study period")
    budget = ledger.budget("ana", POLICIES)["lung-ct"]
    assert (budget["spent"], budget["remaining"], budget["dataset_spent"]) == (0.0, 10.0, 8.0)  # the raise lapsed
    trail = ledger.audit_rows(researcher="ana")
    assert [r["action"] for r in trail] == ["reset", "raise", "charge", "charge"]
    assert trail[0]["actor"] == "sam" and trail[0]["detail"]["reason"] == "new study period"
    assert trail[1]["epsilon"] == 3.0 and trail[1]["dataset_id"] == "lung-ct"
    with pytest.raises(WorkbenchError, match="needs a reason"):
        ledger.reset("ana", "lung-ct", "sam", " ")


def test_release_and_refund(ledger):
    [released] = ledger.charge("job-1", 0, "ana", ["lung-ct"], 4.0, 0.0, POLICIES)
    [faulted] = ledger.charge("job-2", 0, "ana", ["lung-ct"], 4.0, 0.0, POLICIES)
    ledger.mark_released([released])
    assert ledger.mark_unreleased([faulted, released], "site process died") == [faulted]
    assert ledger.budget("ana", POLICIES)["lung-ct"]["unreleased"] == 4.0
    assert spent(ledger, "ana") == 8.0  # unreleased counts until refunded
    with pytest.raises(WorkbenchError, match="charge 1 is released"):
        ledger.refund(released, "sam", "please")
    ledger.refund(faulted, "sam", "the fault happened before the release")
    assert spent(ledger, "ana") == 4.0
    with pytest.raises(WorkbenchError, match="charge 2 is refunded"):
        ledger.refund(faulted, "sam", "again")
    with pytest.raises(WorkbenchError, match="must not leave"):
        ledger.mark_released([faulted])  # a refunded charge must stop its release
    actions = [(r["action"], r["charge_id"]) for r in ledger.audit_rows()]
    assert actions[:3] == [("refund", faulted), ("unrelease", faulted), ("release", released)]


def test_the_audit_trail_is_append_only(ledger):
    ledger.charge("job-1", 0, "ana", ["lung-ct"], 1.0, 0.0, POLICIES)
    with ledger.engine.begin() as conn, pytest.raises(Exception, match="append-only"):
        conn.execute(text("DELETE FROM site_audit"))


def test_a_write_after_the_ledger_is_opened_again_reaches_every_other_process(tmp_path):
    """A site process makes a Ledger per task while its earlier connections stay open. Closing any
    descriptor of the file (as creating it 0600 used to) drops their locks: the next process to
    close the file then takes itself for the last one and deletes the -wal and -shm under them, and
    what they write after that is lost to every other process (or fails: "disk I/O error")."""
    import subprocess
    import sys

    from imaging_workbench.federation.site.ledger import LEDGER_FILE, _engine

    path = tmp_path / LEDGER_FILE
    first = Ledger(path)
    first.rows()  # a connection open, as the site's earlier tasks leave theirs

    def another_process(code: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", f"import sqlite3; c = sqlite3.connect({str(path)!r}, "
                               f"isolation_level=None); {code}; c.close()"], capture_output=True, text=True, timeout=60)

    _engine(path)  # what the next task's Ledger does first
    assert another_process("c.execute('SELECT count(*) FROM budget_charges')").returncode == 0
    with first.engine.begin() as conn:
        conn.execute(text("CREATE TABLE written_after (x)"))
        conn.execute(text("INSERT INTO written_after VALUES (1)"))
    seen = another_process("print(c.execute('SELECT count(*) FROM written_after').fetchone()[0])")
    assert (seen.returncode, seen.stdout.strip()) == (0, "1"), seen.stderr
