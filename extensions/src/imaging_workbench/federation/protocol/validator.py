"""FLARE's deploy-time hook, at the server and at every site: a job naming any class outside the
participant's allow-list is refused before its job process starts."""

import logging
from pathlib import Path

from nvflare.apis.app_validation import AppValidator

from .allowlist import app_problem, read_allow_list


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
