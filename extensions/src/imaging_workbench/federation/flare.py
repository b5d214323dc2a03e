"""The workbench's NVFlare components, installed at every site and listed in each site's
component allow-list: one controller (server), one executor (sites), two site filters, and the
app validator that refuses, at deployment, a job naming any class outside that list.

Jobs reference these by class path and carry no code ("byoc" is refused everywhere).
"""

import json
import logging
import random
import secrets
import threading
import time
import traceback
from pathlib import Path

from nvflare.apis.app_validation import AppValidator
from nvflare.apis.executor import Executor
from nvflare.apis.filter import ContentBlockedException, Filter
from nvflare.apis.fl_constant import FLContextKey, ReturnCode
from nvflare.apis.fl_context import FLContext
from nvflare.apis.impl.controller import Controller, Task
from nvflare.apis.shareable import Shareable, make_reply
from nvflare.apis.signal import Signal
from nvflare.widgets.info_collector import InfoCollector

from .allowlist import app_problem, read_allow_list
from .privacy import ALLOWED_SECTIONS, apply_privacy

TASK_NAME = "workbench"
PAYLOAD = "workbench"
RESULT_DIR = "workbench_result"
RESULT_FILE = "result.json"


def site_error(error_id: str) -> str:
    """What leaves a site when its part of a job fails: a fixed text and an id, never the error."""
    return (f"the site could not run its part of the job (error id {error_id}; "
            "the site's administrator finds the details under that id in the site's log)")


def _payload(shareable: Shareable) -> dict:
    return shareable.get(PAYLOAD) or {}


def _shareable(payload: dict) -> Shareable:
    s = Shareable()
    s[PAYLOAD] = payload
    return s


class WorkbenchController(Controller):
    """Runs one approved algorithm: rounds of one task to the job's sites, results combined by the
    algorithm's `Server`. Sites that fail or do not answer within `task_timeout` are named and
    dropped; the job ends `finished`, `partial` (some sites failed) or `failed` (none answered)."""

    def __init__(self, algorithm: str, version: str, params: dict, site_datasets: dict, min_count: int = 10,
                 task_timeout: int = 300, model_file: str = ""):
        super().__init__()
        self.algorithm, self.version, self.params = algorithm, version, params
        self.site_datasets, self.min_count = site_datasets, min_count
        self.task_timeout, self.model_file = task_timeout, model_file
        self.progress = {site: {"state": "waiting", "round": 0, "detail": ""} for site in site_datasets}
        self.rounds, self.current_round, self.round_metrics = 1, 0, []
        self._lock = threading.Lock()

    def start_controller(self, fl_ctx: FLContext):
        pass

    def stop_controller(self, fl_ctx: FLContext):
        pass

    def process_result_of_unknown_task(self, client, task_name, client_task_id, result, fl_ctx):
        pass

    def handle_event(self, event_type: str, fl_ctx: FLContext):
        super().handle_event(event_type, fl_ctx)
        if event_type == InfoCollector.EVENT_TYPE_GET_STATS:
            collector = fl_ctx.get_prop(InfoCollector.CTX_KEY_STATS_COLLECTOR)
            if collector is not None:
                with self._lock:
                    collector.add_info(group_name="workbench", info={
                        "progress": json.loads(json.dumps(self.progress)), "round": self.current_round,
                        "rounds": self.rounds, "metrics": list(self.round_metrics)})

    def _set(self, site: str, state: str, detail: str = "", round_: int | None = None) -> None:
        with self._lock:
            entry = self.progress[site]
            if entry["state"] == "failed":
                return
            entry.update(state=state, detail=detail)
            if round_ is not None:
                entry["round"] = round_

    def _app_dir(self, fl_ctx: FLContext) -> Path:
        return Path(fl_ctx.get_engine().get_workspace().get_app_dir(fl_ctx.get_job_id()))

    def _out_dir(self, fl_ctx: FLContext) -> Path:
        out = Path(fl_ctx.get_engine().get_workspace().get_run_dir(fl_ctx.get_job_id())) / RESULT_DIR
        out.mkdir(parents=True, exist_ok=True)
        return out

    def control_flow(self, abort_signal: Signal, fl_ctx: FLContext):
        from .algorithms import load

        started = time.time()
        module = load(self.algorithm)
        server = module.Server(self.params, self.min_count)
        if self.model_file:
            server.load_model((self._app_dir(fl_ctx) / "config" / self.model_file).read_bytes())
        self.rounds = server.rounds
        failures = {}
        for round_ in range(self.rounds):
            self.current_round = round_
            targets = [s for s in self.site_datasets if s not in failures]
            if not targets or abort_signal.triggered:
                break
            answered = {}

            def on_result(client_task, fl_ctx, _answered=answered, _round=round_):
                site = client_task.client.name
                result = client_task.result
                rc = result.get_return_code() if result is not None else "no result"
                payload = _payload(result) if result is not None else {}
                if rc != ReturnCode.OK or payload.get("error"):
                    reason = payload.get("error") or f"the site returned {rc}"
                    failures[site] = reason
                    self._set(site, "failed", reason)
                else:
                    _answered[site] = payload
                    server.add(site, payload)
                    self._set(site, "done" if _round == self.rounds - 1 else "waiting", "", _round + 1)
                client_task.result = None  # free the memory (weights)

            task_data = {"algorithm": self.algorithm, "version": self.version, "params": self.params,
                         "site_datasets": self.site_datasets, "round": round_, "rounds": self.rounds,
                         **server.task(round_)}
            for site in targets:
                self._set(site, "running", "", round_)
            task = Task(name=TASK_NAME, data=_shareable(task_data), timeout=self.task_timeout,
                        result_received_cb=on_result)
            self.broadcast_and_wait(task, fl_ctx, targets=targets, min_responses=len(targets),
                                    abort_signal=abort_signal)
            for site in targets:
                if site not in answered and site not in failures:
                    failures[site] = (f"no answer within {self.task_timeout} s (site down or disconnected)"
                                      if not abort_signal.triggered else "job aborted")
                    self._set(site, "failed", failures[site])
            metrics = server.end_round(round_)
            if metrics:
                self.round_metrics.append(metrics)
        self._finish(server, failures, started, abort_signal, fl_ctx)

    def _finish(self, server, failures, started, abort_signal, fl_ctx):
        out = self._out_dir(fl_ctx)
        ok_sites = [s for s in self.site_datasets if s not in failures]
        status = "finished" if not failures else ("partial" if ok_sites else "failed")
        if abort_signal.triggered:
            status = "aborted"
        body = {}
        if ok_sites and status != "aborted":
            try:
                body = server.final(out)
            except Exception as e:  # noqa: BLE001 - the job must still end with a result file
                status, body = "failed", {"error": f"combining the site results failed: {e}"}
                self.log_error(fl_ctx, traceback.format_exc())
        result = {"algorithm": self.algorithm, "version": self.version, "params": self.params, "status": status,
                  "sites": {s: {"status": "failed" if s in failures else "ok", "detail": failures.get(s, ""),
                                "datasets": self.site_datasets[s]} for s in self.site_datasets},
                  "failed_sites": failures, "min_count": self.min_count, "seconds": round(time.time() - started, 2),
                  "rounds": self.round_metrics, **body}
        (out / RESULT_FILE).write_text(json.dumps(result, indent=1, default=str))
        self.log_info(fl_ctx, f"workbench job {status}; result in {out}")


class WorkbenchExecutor(Executor):
    """Runs the site side of an approved algorithm on this site's own datasets."""

    def __init__(self):
        super().__init__()
        self.state = {}  # kept between rounds of one job (e.g. prepared crops)
        self._data = None

    def _site_data(self, fl_ctx: FLContext):
        from .sitedata import SiteData

        if self._data is None:
            local = Path(fl_ctx.get_engine().get_workspace().get_site_config_dir())
            self._data = SiteData(local)
        return self._data

    def execute(self, task_name: str, shareable: Shareable, fl_ctx: FLContext, abort_signal: Signal) -> Shareable:
        if task_name != TASK_NAME:
            return make_reply(ReturnCode.TASK_UNKNOWN)
        task = _payload(shareable)
        site = fl_ctx.get_identity_name()
        started = time.time()
        try:
            from .algorithms import load

            dataset_ids = task["site_datasets"].get(site, [])
            data = self._site_data(fl_ctx)
            result = load(task["algorithm"]).site_run(task["params"], task, data, data.check(dataset_ids), self.state)
        except Exception:  # noqa: BLE001 - reported to the controller, which names the site
            # An exception's text can hold what the site holds (a path, a value, a patient's
            # header): it stays in the site's own log, under an id the researcher can quote.
            error_id = secrets.token_hex(6)
            self.log_error(fl_ctx, f"workbench error {error_id}:\n{traceback.format_exc()}")
            result = {"error": site_error(error_id)}
        result["meta"] = {"site": site, "algorithm": task.get("algorithm"), "round": task.get("round"),
                          "seconds": round(time.time() - started, 2)}
        return _shareable(result)


class AlgorithmGate(Filter):
    """Task-data filter: refuses tasks of algorithms the site's policy does not allow."""

    def process(self, shareable: Shareable, fl_ctx: FLContext) -> Shareable:
        task = _payload(shareable)
        props = fl_ctx.get_prop(FLContextKey.SCOPE_PROPERTIES) or {}
        allowed = props.get("allowed_algorithms", [])
        if task.get("algorithm") not in allowed:
            raise ContentBlockedException(f"algorithm {task.get('algorithm')!r} is not allowed at this site")
        return shareable


class WorkbenchPrivacyFilter(Filter):
    """Task-result filter: applies the site's minimum count, noise and histogram-bin cap."""

    def __init__(self, min_count: int = 10, noise: float = 0.02, max_bins: int = 64):
        super().__init__()
        self.min_count, self.noise, self.max_bins = min_count, noise, max_bins
        self._rng = random.Random()

    def process(self, shareable: Shareable, fl_ctx: FLContext) -> Shareable:
        payload = _payload(shareable)
        if not payload:
            return shareable
        dropped = sorted(set(payload) - set(ALLOWED_SECTIONS))
        filtered = apply_privacy(payload, self.min_count, self.noise, self.max_bins, self._rng)
        if dropped:
            filtered.setdefault("meta", {})["dropped"] = dropped
        shareable[PAYLOAD] = filtered
        return shareable


class WorkbenchAppValidator(AppValidator):
    """FLARE's deploy-time hook: refuses a job whose configuration names any class outside this
    participant's `class_allow_list`, before the job process starts or builds anything.

    The list is read from the participant's own local/resources.json at every deployment (the
    site admin owns it); a refusal is logged here and reaches the submitter as the deploy error.
    """

    def __init__(self, kind: str = "client"):
        if kind not in ("server", "client"):
            raise ValueError(f"WorkbenchAppValidator: kind must be 'server' or 'client', not {kind!r}")
        self.kind = kind
        self.log = logging.getLogger("workbench.allowlist")

    def validate(self, app_folder: str) -> tuple[str, dict]:
        # FLARE deploys an app to <workspace>/<job id>/app_<participant>; resources are in
        # <workspace>/local.
        app = Path(app_folder).resolve()
        problem = app_problem(app, self.kind, read_allow_list(app.parents[1] / "local" / "resources.json"))
        if problem:
            self.log.error("workbench refused job %s: %s", app.parent.name, problem)
            return f"workbench allow-list: {problem}", {}
        return "", {}
