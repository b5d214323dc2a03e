"""What leaves this site for one task, in one place and in this order: the site's policy file,
the request's check against it (before any data is touched), the researcher's and the dataset's
remaining budget, the algorithm's site function, the differentially private release, and the
ledger's charge, committed before the result is handed to FLARE.

The hub is trusted for one thing only: the researcher's name that the task carries.
"""

from dataclasses import dataclass, field
from datetime import timedelta
from functools import reduce
from pathlib import Path

from ...clock import utcnow
from ...errors import WorkbenchError
from ..algorithms import get_algorithm
from ..protocol.disclosure import release
from ..protocol.params import param_errors
from ..protocol.policy import request_problems, stricter
from .ledger import LEDGER_FILE, BudgetExceeded, Ledger
from .policy_file import load_site_policy

# A fault drill for site admins: while this file in local/ reads "after-charge", the site's FLARE
# client and the job process die right after a charge is committed, before its result is sent,
# as in a power cut (the charge must stay, and count, unreleased).
DRILL_FILE = "workbench_fault_drill"
# A charge is committed milliseconds before its result is handed to FLARE; one still not marked
# released after this long was interrupted (its job process died), and is marked so.
SEND_GRACE = timedelta(seconds=30)


@dataclass
class Refusal(Exception):
    """The site will not run this task: why, which fields, and the budget when that is the reason."""

    reason: str
    fields: dict = field(default_factory=dict)
    budget: dict = field(default_factory=dict)
    policy: dict = field(default_factory=dict)  # what the site applied, so the hub can check the next request

    def as_result(self) -> dict:
        return {"refused": {"reason": self.reason, "fields": self.fields, "budget": self.budget,
                            "policy": self.policy}}


@dataclass
class Release:
    """A result ready to leave and the ledger rows it was charged under."""

    result: dict
    charge_ids: list
    ledger: Ledger


def reported(effective, policy, dataset_ids) -> dict:
    """What the site applied to this task (the researcher's grant conditions included), and under
    "own" its own policy per dataset: the hub keeps only that for checking other researchers'
    requests, so one researcher's conditions never bind another's jobs."""
    return {**effective.as_dict(), "own": {d: policy.for_dataset(d).as_dict() for d in dataset_ids}}


def _drill(local_dir: Path, point: str, researcher: str) -> None:
    """The site dies at `point` if its drill file names that point (and, after it, this job's
    researcher, when it names one)."""
    import contextlib
    import os
    import signal

    from ...process_tree import descendants

    path = local_dir / DRILL_FILE
    words = path.read_text().split() if path.is_file() else []
    if words[:1] == [point] and words[1:] in ([], [researcher]):
        client = os.getppid()
        for pid in descendants(client):  # the site's other jobs, each in a session of its own
            if pid != os.getpid():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        os.killpg(os.getpgid(client), signal.SIGKILL)  # the site's client, started in a group of its own
        os._exit(70)


def dp_sgd_epsilon(algorithm, params: dict, job_epsilon: float) -> float:
    """What one training round's DP-SGD may spend: the job's epsilon less every round's release,
    shared evenly by the training rounds."""
    if not algorithm.weights_leave:
        return 0.0
    releases = sum(algorithm.epsilon_for_release(params, r) for r in range(algorithm.rounds(params)))
    return max(job_epsilon - releases, 0.0) / int(params[algorithm.rounds_param])


def run_task(task: dict, site: str, local_dir: Path, data, state: dict) -> Release:
    """Check, compute, release and charge one task; raises Refusal with what the researcher may see."""
    local_dir = Path(local_dir)
    try:
        policy = load_site_policy(local_dir)
    except WorkbenchError as e:
        raise Refusal(f"this site's policy file is not usable: {e.message}; the site refuses every job "
                      "until its administrator fixes it") from None
    algorithm = get_algorithm(task["algorithm"])
    if algorithm.id not in policy.allowed_algorithms:
        raise Refusal(f"this site does not run {algorithm.id}", {"algorithm": "not allowed by this site's policy"})
    params, researcher = task["params"], task.get("researcher")
    if not researcher:
        raise Refusal("the task names no researcher, so no budget can be charged")
    errors = param_errors(algorithm, params)
    if errors:
        raise Refusal("parameters outside the algorithm's schema", errors)
    dataset_ids = data.check(task["site_datasets"].get(site, []))
    conditions = task.get("conditions") or {}
    policies = {d: stricter(policy.for_dataset(d), conditions.get(d) or {}) for d in dataset_ids}
    effective = reduce(stricter, policies.values())
    applied = reported(effective, policy, dataset_ids)
    problems = request_problems(algorithm.id, params, effective)
    if problems:
        raise Refusal("the request is outside this site's policy", problems, policy=applied)

    ledger = Ledger(local_dir / LEDGER_FILE)
    mark_interrupted(ledger)
    job_epsilon = algorithm.epsilon(params)
    dp_sgd = algorithm.weights_leave and effective.weights == "dp-sgd"
    delta = effective.delta_per_job if dp_sgd else 0.0
    if task["round"] == 0:  # the whole job must fit before any of it runs
        try:
            ledger.check(researcher, dataset_ids, job_epsilon, delta, policies)
        except BudgetExceeded as e:
            raise Refusal(e.message, budget=_budget(ledger, researcher, policies), policy=applied) from None
    release_epsilon = algorithm.epsilon_for_release(params, task["round"])
    site_task = dict(task, site_policy={"weights": effective.weights, "min_count": effective.min_count,
                                        "delta": delta, "dp_epsilon": dp_sgd_epsilon(algorithm, params, job_epsilon)})
    raw = algorithm.site_run(params, site_task, data, dataset_ids, state)
    result = release(raw, release_epsilon, effective.min_count, effective.weights)
    spent = result["privacy"]["epsilon"]
    # DP-SGD accounts for the whole job at once: its delta is the job's, charged with its first round.
    spent_delta = result["privacy"].get("delta", 0.0) if task["round"] == 0 else 0.0
    try:
        charge_ids = ledger.charge(task["job"], task["round"], researcher, dataset_ids, spent, spent_delta, policies)
    except BudgetExceeded as e:  # another job spent it meanwhile: nothing leaves
        raise Refusal(e.message, budget=_budget(ledger, researcher, policies), policy=applied) from None
    _drill(local_dir, "after-charge", researcher)
    result["budget"] = _budget(ledger, researcher, policies)
    result["policy"] = applied
    return Release(result, charge_ids, ledger)


def mark_interrupted(ledger: Ledger) -> list[int]:
    """Mark charges whose release was never confirmed as unreleased; they stay spent until the site
    admin refunds them (`workbench site budget refund`)."""
    stale = [r["id"] for r in ledger.rows(status="charged") if _aware(r["created_at"]) < utcnow() - SEND_GRACE]
    return ledger.mark_unreleased(stale, "the site stopped before the result was sent") if stale else []


def _aware(moment):
    from datetime import timezone

    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _budget(ledger: Ledger, researcher: str, policies: dict) -> dict:
    return {"researcher": researcher, "datasets": ledger.budget(researcher, policies)}

