"""The controller every approved algorithm runs under, in the FLARE server process."""

import json
import threading
import time
import traceback
from pathlib import Path

from nvflare.apis.fl_constant import ReturnCode
from nvflare.apis.fl_context import FLContext
from nvflare.apis.impl.controller import Controller, Task
from nvflare.apis.signal import Signal
from nvflare.widgets.info_collector import InfoCollector

from ..protocol.messages import RESULT_DIR, RESULT_FILE, TASK_NAME, payload, shareable


class WorkbenchController(Controller):
    """Runs one approved algorithm: rounds of one task to the job's sites, results combined by the
    algorithm's `Server`. Sites that fail or do not answer within `task_timeout` are named and
    dropped; the job ends `finished`, `partial` (some sites failed) or `failed` (none answered)."""

    def __init__(self, algorithm: str, version: str, params: dict, site_datasets: dict, min_count: int = 10,
                 task_timeout: int = 300, model_file: str = "", researcher: str = "", job: str = "",
                 conditions: dict | None = None):
        super().__init__()
        self.algorithm, self.version, self.params = algorithm, version, params
        self.researcher, self.job, self.conditions = researcher, job, conditions or {}
        self.reports = {site: {} for site in site_datasets}  # what each site said about its policy and budget
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

    def _report(self, site: str, body: dict) -> None:
        """Keep a site's latest policy, budget and the epsilon it charged (summed over rounds)."""
        report = self.reports[site]
        refused = body.get("refused") or {}
        for key, value in (("policy", body.get("policy") or refused.get("policy")),
                           ("budget", body.get("budget") or refused.get("budget")),
                           ("refused", refused or None)):
            if value:
                report[key] = value
        privacy = body.get("privacy") or {}
        if "epsilon" in privacy:
            report["epsilon_charged"] = report.get("epsilon_charged", 0.0) + privacy["epsilon"]
            report["delta_charged"] = report.get("delta_charged", 0.0) + privacy.get("delta", 0.0)

    def _app_dir(self, fl_ctx: FLContext) -> Path:
        return Path(fl_ctx.get_engine().get_workspace().get_app_dir(fl_ctx.get_job_id()))

    def _out_dir(self, fl_ctx: FLContext) -> Path:
        out = Path(fl_ctx.get_engine().get_workspace().get_run_dir(fl_ctx.get_job_id())) / RESULT_DIR
        out.mkdir(parents=True, exist_ok=True)
        return out

    def control_flow(self, abort_signal: Signal, fl_ctx: FLContext):
        from ..algorithms import get_algorithm

        started = time.time()
        server = get_algorithm(self.algorithm).server(self.params, self.min_count)
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
                body = payload(result) if result is not None else {}
                self._report(site, body)
                if rc != ReturnCode.OK or body.get("error") or body.get("refused"):
                    reason = body.get("error") or f"the site returned {rc}"
                    if body.get("refused"):
                        refused = body["refused"]
                        fields = "; ".join(f"{k}: {v}" for k, v in sorted((refused.get("fields") or {}).items()))
                        reason = f"refused: {refused['reason']}" + (f" ({fields})" if fields else "")
                    failures[site] = reason
                    self._set(site, "failed", reason)
                else:
                    _answered[site] = body
                    server.add(site, body)
                    self._set(site, "done" if _round == self.rounds - 1 else "waiting", "", _round + 1)
                client_task.result = None  # free the memory (weights)

            task_data = {"algorithm": self.algorithm, "version": self.version, "params": self.params,
                         "site_datasets": self.site_datasets, "round": round_, "rounds": self.rounds,
                         "researcher": self.researcher, "job": self.job, "conditions": self.conditions,
                         **server.task(round_)}
            for site in targets:
                self._set(site, "running", "", round_)
            task = Task(name=TASK_NAME, data=shareable(task_data), timeout=self.task_timeout,
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
                                "datasets": self.site_datasets[s], **self.reports[s]} for s in self.site_datasets},
                  "failed_sites": failures, "min_count": self.min_count, "seconds": round(time.time() - started, 2),
                  "rounds": self.round_metrics, **body}
        (out / RESULT_FILE).write_text(json.dumps(result, indent=1, default=str))
        self.log_info(fl_ctx, f"workbench job {status}; result in {out}")
