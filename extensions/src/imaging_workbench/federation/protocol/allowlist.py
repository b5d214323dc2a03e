"""Which component classes a FLARE participant may build, and the check that refuses a job naming
anything else before any of its components is built.

The lists are generated from the approved algorithms' declarations (`Algorithm.controller`,
`Algorithm.executor` in `algorithms/base.py`) plus the site policy's two filters, so a new algorithm
brings its classes with it. A job of ours instantiates no FLARE framework class of its own: its
server configuration names only the controller and its site configuration only the executor
(FLARE's engine, communicator and job runner are built by FLARE itself, never from a job's
configuration, so they need no entry).

Two walls use the lists: FLARE's own `class_allow_list` (resources.json, checked as each
component is built) and `WorkbenchAppValidator` in `protocol/validator.py` (FLARE's app validator hook,
checked when a job is deployed, before its job process starts). This module stays free of
nvflare imports so that the hub and the CLI can read it cheaply.
"""

import json
from pathlib import Path

PACKAGE = "imaging_workbench.federation"
CONTROLLER = f"{PACKAGE}.server.controller.WorkbenchController"
EXECUTOR = f"{PACKAGE}.site.executor.WorkbenchExecutor"
ALGORITHM_GATE = f"{PACKAGE}.site.filters.AlgorithmGate"
PRIVACY_FILTER = f"{PACKAGE}.site.filters.WorkbenchPrivacyFilter"
APP_VALIDATOR = f"{PACKAGE}.protocol.validator.WorkbenchAppValidator"
# The site policy's filters (privacy.json) are built for every task a job receives.
POLICY_FILTERS = (ALGORITHM_GATE, PRIVACY_FILTER)

ALLOW_LIST_KEY = "class_allow_list"
JOB_CONFIG = {"server": "config_fed_server", "client": "config_fed_client"}
COMPONENT_KEYS = ("path", "class_path", "name")


def allowed_classes(kind: str) -> list[str]:
    """The exact class allow-list of a participant (`kind`: server or client), sorted."""
    from ..algorithms import ALGORITHMS

    if kind == "server":
        classes = {a.controller for a in ALGORITHMS.values()}
    elif kind == "client":
        classes = {a.executor for a in ALGORITHMS.values()} | set(POLICY_FILTERS)
    else:
        raise ValueError(f"kind must be 'server' or 'client', not {kind!r}")
    return sorted(classes)


def component_paths(config) -> list[str]:
    """Every class a job configuration names, at any depth (components can nest in args)."""
    found = []
    if isinstance(config, dict):
        for key in COMPONENT_KEYS:
            if isinstance(config.get(key), str):  # FLARE builds "name" by a class-name lookup
                found.append(config[key])
        for value in config.values():
            found += component_paths(value)
    elif isinstance(config, list):
        for value in config:
            found += component_paths(value)
    return found


def read_allow_list(resources_file: Path) -> list[str] | None:
    """The `class_allow_list` of a participant's resources.json, or None when it has none."""
    try:
        resources = json.loads(Path(resources_file).read_text())
    except (OSError, ValueError):
        return None
    allow = resources.get(ALLOW_LIST_KEY) if isinstance(resources, dict) else None
    return allow if isinstance(allow, list) else None


def app_problem(app_folder: Path, kind: str, allowed: list[str] | None) -> str:
    """Why a deployed job app must not run here, or "" when every class it names is allowed.

    Only exact class names count (FLARE's own list also accepts package prefixes and "*"); only
    JSON configurations are read, so a configuration in another format is refused rather than
    skipped; an app with custom code is refused outright.
    """
    app_folder = Path(app_folder)
    if allowed is None:
        return "this site has no class_allow_list in local/resources.json; refusing every job"
    if (app_folder / "custom").exists():
        return "the job brings custom code, which this site never runs"
    config_dir = app_folder / "config"
    stem = JOB_CONFIG[kind]
    others = sorted(p.name for p in config_dir.glob(f"{stem}.*") if p.suffix != ".json")
    if others:
        return f"job configuration {', '.join(others)} is not JSON; this site reads only {stem}.json"
    try:
        config = json.loads((config_dir / f"{stem}.json").read_text())
    except (OSError, ValueError) as e:
        return f"job configuration {stem}.json cannot be read: {e}"
    refused = sorted(set(component_paths(config)) - set(allowed))
    if refused:
        return f"components outside this site's allow-list: {', '.join(refused)}"
    return ""


def allow_list_status(local: Path, kind: str) -> dict:
    """{size, matches} of a participant's allow-list against the workbench's, for `status`."""
    allow = read_allow_list(Path(local) / "resources.json")
    return {"allow_list": len(allow) if allow is not None else None,
            "allow_list_matches": allow is not None and sorted(allow) == allowed_classes(kind)}
