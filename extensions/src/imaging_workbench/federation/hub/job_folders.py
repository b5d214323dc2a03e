"""FLARE job folders for approved algorithms: configuration only, never code.

A job names the workbench's installed components by class path; its sites are exactly the
sites that hold the job's datasets, and each site is told only dataset ids.
"""

import json
import re
from pathlib import Path

from ..algorithms.base import Algorithm
from ..provision import PRIVACY_SCOPE
from ..settings import FederationSettings

APP = "app"


def job_name(algorithm_id: str, workbench_job_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"{algorithm_id}-{workbench_job_id}")[:60]


def write_job(folder: Path, algorithm: Algorithm, params: dict, site_datasets: dict[str, list[str]],
              settings: FederationSettings, name: str, model_bytes: bytes | None = None, researcher: str = "",
              job_id: str = "", conditions: dict | None = None) -> Path:
    """Write a FLARE job folder under `folder`; returns its path.

    `researcher` is whose budget the sites charge; `conditions` ({dataset: {min_count, weights}})
    are the grants' conditions, which sites apply on top of their own policy."""
    job = Path(folder) / name
    config = job / APP / "config"
    config.mkdir(parents=True, exist_ok=True)
    sites = sorted(site_datasets)
    meta = {
        "name": name,
        "resource_spec": {},
        "deploy_map": {APP: ["server", *sites]},
        "min_clients": len(sites),
        "mandatory_clients": [],
        "scope": PRIVACY_SCOPE,
    }
    server = {
        "format_version": 2,
        "workflows": [{
            "id": "workbench_controller",
            "path": algorithm.controller,
            "args": {"algorithm": algorithm.id, "version": algorithm.version, "params": params,
                     "site_datasets": {s: list(site_datasets[s]) for s in sites}, "min_count": settings.min_count,
                     "task_timeout": settings.task_timeout, "model_file": "model.pt" if model_bytes else "",
                     "researcher": researcher, "job": job_id, "conditions": conditions or {}},
        }],
        "components": [],
    }
    client = {
        "format_version": 2,
        "executors": [{"tasks": ["workbench"], "executor": {"path": algorithm.executor, "args": {}}}],
        "task_result_filters": [],
        "task_data_filters": [],
        "components": [],
    }
    (job / "meta.json").write_text(json.dumps(meta, indent=2))
    (config / "config_fed_server.json").write_text(json.dumps(server, indent=2))
    (config / "config_fed_client.json").write_text(json.dumps(client, indent=2))
    if model_bytes:
        (config / "model.pt").write_bytes(model_bytes)
    return job
