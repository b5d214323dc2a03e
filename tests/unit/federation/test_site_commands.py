"""`workbench site ...`: the site admin's policy check, budgets and audit trail, on a site kit."""

import json

import pytest

from imaging_workbench.federation.protocol.policy import DatasetPolicy
from imaging_workbench.federation.site.ledger import LEDGER_FILE, Ledger
from imaging_workbench.federation.site.policy_file import POLICY_FILE, load_site_policy, write_policy_if_missing

DEFAULTS = DatasetPolicy(epsilon_per_job=4.0, epsilon_per_researcher=10.0, epsilon_total=100.0)


@pytest.fixture
def kit(tmp_path):
    kit = tmp_path / "site-1"
    (kit / "local").mkdir(parents=True)
    write_policy_if_missing(kit / "local", DEFAULTS, ["cohort-statistics"])
    return kit


def charge(kit, researcher, job, epsilon=4.0, dataset="lung-ct"):
    policies = {dataset: load_site_policy(kit / "local").for_dataset(dataset)}
    return Ledger(kit / "local" / LEDGER_FILE).charge(job, 0, researcher, [dataset], epsilon, 0.0, policies)[0]


def test_policy_check(cli, kit):
    rc, out, _ = cli("site", "policy", "check", "--kit", str(kit))
    assert rc == 0 and "fine; runs cohort-statistics" in out
    (kit / "local" / POLICY_FILE).write_text("allowed_algorithms: []\ndefaults:\n  min_count: 5\n  weights: all\n")
    rc, out, _ = cli("site", "policy", "check", "--kit", str(kit))
    assert rc == 2
    assert f"{kit / 'local' / POLICY_FILE}, line 4: defaults.weights must be one of none, dp-sgd, min-count" in out


def test_budget_show(cli, kit):
    charge(kit, "ana", "job-1")
    charge(kit, "bo", "job-2", epsilon=1.0)
    rc, out, _ = cli("site", "budget", "show", "--kit", str(kit), "--researcher", "ana", "--json")
    assert rc == 0
    assert json.loads(out) == [{"researcher": "ana", "dataset": "lung-ct", "spent": 4.0, "remaining": 6.0,
                                "dataset_spent": 5.0, "dataset_remaining": 95.0, "epsilon_per_job": 4.0,
                                "unreleased": 0.0}]
    rc, out, _ = cli("site", "budget", "show", "--kit", str(kit))
    assert rc == 0 and out.splitlines()[0].split()[:3] == ["RESEARCHER", "DATASET", "SPENT"]
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["ana", "bo"]


def test_reset_raise_and_refund_are_audited_with_the_admin(cli, kit, monkeypatch):
    monkeypatch.setenv("USER", "sam")
    released = charge(kit, "ana", "job-1")
    faulted = charge(kit, "ana", "job-2")
    ledger = Ledger(kit / "local" / LEDGER_FILE)
    ledger.mark_released([released])
    ledger.mark_unreleased([faulted], "the site process died")

    rc, out, _ = cli("site", "budget", "raise", "--kit", str(kit), "--researcher", "ana", "--dataset", "lung-ct",
                     "--epsilon", "5", "--reason", "grant extended")
    assert rc == 0 and "raised by epsilon 5 by sam" in out
    rc, out, err = cli("site", "budget", "refund", "--kit", str(kit), "--charge", str(released), "--reason", "x")
    assert rc == 1 and f"charge {released} is released" in err
    rc, out, _ = cli("site", "budget", "refund", "--kit", str(kit), "--charge", str(faulted), "--reason", "fault",
                     "--admin", "lee")
    assert rc == 0 and f"charge {faulted} refunded by lee" in out
    rc, out, _ = cli("site", "budget", "reset", "--kit", str(kit), "--researcher", "ana", "--dataset", "lung-ct",
                     "--reason", "new study period")
    assert rc == 0 and "reset by sam" in out

    rc, out, _ = cli("site", "budget", "charges", "--kit", str(kit), "--status", "refunded", "--json")
    assert [c["id"] for c in json.loads(out)] == [faulted]
    rc, out, _ = cli("site", "audit", "--kit", str(kit), "--json")
    trail = [(r["actor"], r["action"], r["epsilon"]) for r in json.loads(out)]
    assert trail[:3] == [("sam", "reset", None), ("lee", "refund", 4.0), ("sam", "raise", 5.0)]
    rc, out, _ = cli("site", "audit", "--kit", str(kit))
    assert rc == 0 and "grant extended" in out


def test_a_folder_that_is_no_kit_is_named(cli, tmp_path):
    rc, _, err = cli("site", "budget", "show", "--kit", str(tmp_path / "nowhere"))
    assert rc == 1 and "is not a FLARE site kit" in err
