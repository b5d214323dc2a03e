"""The site policy's task filters, FLARE's last walls around the executor: which algorithms may
run here, and that nothing leaves without having passed the release step."""

from nvflare.apis.filter import ContentBlockedException, Filter
from nvflare.apis.fl_context import FLContext
from nvflare.apis.shareable import Shareable

from ...errors import WorkbenchError
from ..protocol.messages import DATA_SECTIONS, PAYLOAD, RESULT_SECTIONS, payload


class AlgorithmGate(Filter):
    """Task-data filter: refuses tasks of algorithms the site's policy file does not allow.

    A policy file that does not load is left to the executor, which refuses the task with the
    file and line (a filter's refusal reaches the server without its reason)."""

    def process(self, shareable: Shareable, fl_ctx: FLContext) -> Shareable:
        from pathlib import Path

        from .policy_file import load_site_policy

        task = payload(shareable)
        try:
            policy = load_site_policy(Path(fl_ctx.get_engine().get_workspace().get_site_config_dir()))
        except WorkbenchError:
            return shareable
        if task.get("algorithm") not in policy.allowed_algorithms:
            raise ContentBlockedException(f"algorithm {task.get('algorithm')!r} is not allowed at this site")
        return shareable


class WorkbenchPrivacyFilter(Filter):
    """Task-result filter: only the known sections leave, and data sections only with the release
    step's stamp (its privacy accounting); anything else is blocked whole."""

    def process(self, shareable: Shareable, fl_ctx: FLContext) -> Shareable:
        body = payload(shareable)
        if not body:
            return shareable
        if any(k in body for k in DATA_SECTIONS) and "epsilon" not in (body.get("privacy") or {}):
            raise ContentBlockedException("a result with data but without its privacy accounting never leaves")
        filtered = {k: v for k, v in body.items() if k in RESULT_SECTIONS}
        dropped = sorted(set(body) - set(RESULT_SECTIONS))
        if dropped:
            filtered.setdefault("meta", {})["dropped"] = dropped
        shareable[PAYLOAD] = filtered
        return shareable
