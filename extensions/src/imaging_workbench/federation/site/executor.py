"""The executor every approved algorithm's site part runs in, at each site."""

import secrets
import time
import traceback
from pathlib import Path

from nvflare.apis.executor import Executor
from nvflare.apis.fl_constant import ReturnCode
from nvflare.apis.fl_context import FLContext
from nvflare.apis.shareable import Shareable, make_reply
from nvflare.apis.signal import Signal

from ..protocol.messages import TASK_NAME, payload, shareable, site_error


class WorkbenchExecutor(Executor):
    """Runs the site side of an approved algorithm on this site's own datasets."""

    def __init__(self):
        super().__init__()
        self.state = {}  # kept between rounds of one job (e.g. prepared crops)
        self._data = None

    def _site_data(self, fl_ctx: FLContext):
        from .data import SiteData

        if self._data is None:
            local = Path(fl_ctx.get_engine().get_workspace().get_site_config_dir())
            self._data = SiteData(local)
        return self._data

    def execute(self, task_name: str, task_shareable: Shareable, fl_ctx: FLContext, abort_signal: Signal) -> Shareable:
        if task_name != TASK_NAME:
            return make_reply(ReturnCode.TASK_UNKNOWN)
        task = payload(task_shareable)
        site = fl_ctx.get_identity_name()
        started = time.time()
        try:
            from ..algorithms import get_algorithm

            dataset_ids = task["site_datasets"].get(site, [])
            data = self._site_data(fl_ctx)
            result = get_algorithm(task["algorithm"]).site_run(task["params"], task, data, data.check(dataset_ids), self.state)
        except Exception:  # noqa: BLE001 - reported to the controller, which names the site
            # An exception's text can hold what the site holds (a path, a value, a patient's
            # header): it stays in the site's own log, under an id the researcher can quote.
            error_id = secrets.token_hex(6)
            self.log_error(fl_ctx, f"workbench error {error_id}:\n{traceback.format_exc()}")
            result = {"error": site_error(error_id)}
        result["meta"] = {"site": site, "algorithm": task.get("algorithm"), "round": task.get("round"),
                          "seconds": round(time.time() - started, 2)}
        return shareable(result)
