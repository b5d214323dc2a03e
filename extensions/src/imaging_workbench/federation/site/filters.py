"""The site policy's task filters: what a site accepts to run and what it lets leave."""

import random

from nvflare.apis.filter import ContentBlockedException, Filter
from nvflare.apis.fl_constant import FLContextKey
from nvflare.apis.fl_context import FLContext
from nvflare.apis.shareable import Shareable

from ..protocol.messages import PAYLOAD, RESULT_SECTIONS, payload
from ..protocol.privacy import apply_privacy


class AlgorithmGate(Filter):
    """Task-data filter: refuses tasks of algorithms the site's policy does not allow."""

    def process(self, shareable: Shareable, fl_ctx: FLContext) -> Shareable:
        task = payload(shareable)
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
        body = payload(shareable)
        if not body:
            return shareable
        dropped = sorted(set(body) - set(RESULT_SECTIONS))
        filtered = apply_privacy(body, self.min_count, self.noise, self.max_bins, self._rng)
        if dropped:
            filtered.setdefault("meta", {})["dropped"] = dropped
        shareable[PAYLOAD] = filtered
        return shareable
