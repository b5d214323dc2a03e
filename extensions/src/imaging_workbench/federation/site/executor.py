"""The executor every approved algorithm's site part runs in, at each site."""

import secrets
import time
import traceback
from pathlib import Path

from nvflare.apis.event_type import EventType
from nvflare.apis.executor import Executor
from nvflare.apis.fl_constant import ReturnCode
from nvflare.apis.fl_context import FLContext
from nvflare.apis.shareable import Shareable, make_reply
from nvflare.apis.signal import Signal

from ...errors import WorkbenchError
from ..protocol.messages import TASK_NAME, payload, shareable, site_error


class WorkbenchExecutor(Executor):
    """Runs the site side of an approved algorithm on this site's own datasets, through
    `release.run_task` (policy, budget, release, charge); marks the charge released once FLARE
    has sent the result."""

    def __init__(self):
        super().__init__()
        self.state = {}  # kept between rounds of one job (e.g. prepared crops)
        self._data = None
        self._sent = None  # the release whose result FLARE sends next

    def _local_dir(self, fl_ctx: FLContext) -> Path:
        return Path(fl_ctx.get_engine().get_workspace().get_site_config_dir())

    def _site_data(self, fl_ctx: FLContext):
        from .data import SiteData

        if self._data is None:
            self._data = SiteData(self._local_dir(fl_ctx))
        return self._data

    def handle_event(self, event_type: str, fl_ctx: FLContext):
        if event_type == EventType.AFTER_SEND_TASK_RESULT and self._sent is not None:
            sent, self._sent = self._sent, None
            try:
                sent.ledger.mark_released(sent.charge_ids)
            except WorkbenchError as e:  # refunded or marked interrupted meanwhile: it stays counted
                self.log_warning(fl_ctx, f"workbench: {e.message}")

    def execute(self, task_name: str, task_shareable: Shareable, fl_ctx: FLContext, abort_signal: Signal) -> Shareable:
        if task_name != TASK_NAME:
            return make_reply(ReturnCode.TASK_UNKNOWN)
        from .release import Refusal, run_task

        task = payload(task_shareable)
        site = fl_ctx.get_identity_name()
        started = time.time()
        try:
            sent = run_task(task, site, self._local_dir(fl_ctx), self._site_data(fl_ctx), self.state)
            result, self._sent = sent.result, sent
        except Refusal as refusal:
            self.log_warning(fl_ctx, f"workbench refused a task of job {task.get('job')}: {refusal.reason}")
            result = refusal.as_result()
        except Exception:  # noqa: BLE001 - reported to the controller, which names the site
            # An exception's text can hold what the site holds (a path, a value, a patient's
            # header): it stays in the site's own log, under an id the researcher can quote.
            error_id = secrets.token_hex(6)
            self.log_error(fl_ctx, f"workbench error {error_id}:\n{traceback.format_exc()}")
            result = {"error": site_error(error_id)}
        result["meta"] = {"site": site, "algorithm": task.get("algorithm"), "round": task.get("round"),
                          "seconds": round(time.time() - started, 2)}
        return shareable(result)
