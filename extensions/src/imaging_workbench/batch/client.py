"""Notebook side of batch runs: submit and follow runs through the portal with your own hub token.

    import imaging_workbench as workbench
    from imaging_workbench import batch
    r = batch.run("work/measure.ipynb", "lung-ct", parameters={"label": "first look"}, per_case=True)
    r = batch.wait(r["id"])              # until it ends; r["summary"]["results"]: one row per case
    batch.list_runs(), batch.show(r["id"]), batch.cancel(r["id"])

The run is a container of its own with your grants, limits and network rules; its outputs land in
~/batch/<run id>/ (one notebook per case, summary.json). Or use the widget:
imaging_workbench.widgets.batch_panel.BatchRunPanel().
"""

import time

from ..portal_client import PortalError, call

FINAL = ("finished", "failed", "refused", "cancelled")


class BatchError(PortalError):
    """The portal refused or failed the request: `status` (HTTP), `fields` (what was wrong)."""


def run(notebook: str, dataset: str, parameters: dict | None = None, per_case: bool = False,
        profile: str | None = None, url: str | None = None, token: str | None = None) -> dict:
    """Start a batch run of `notebook` (relative to your home) on `dataset`; returns the run.

    Raises:
        BatchError: refused (the field named in `fields`: notebook, parameters, dataset, profile).
    """
    body = {"notebook": notebook, "dataset": dataset, "parameters": parameters or {}, "per_case": bool(per_case)}
    if profile:
        body["profile"] = profile
    return call("POST", "api/batch", body, url, token, error=BatchError)


def list_runs(url: str | None = None, token: str | None = None) -> list[dict]:
    return call("GET", "api/batch", None, url, token, error=BatchError)


def show(run_id: int, url: str | None = None, token: str | None = None) -> dict:
    return call("GET", f"api/batch/{int(run_id)}", None, url, token, error=BatchError)


def cancel(run_id: int, url: str | None = None, token: str | None = None) -> dict:
    return call("DELETE", f"api/batch/{int(run_id)}", None, url, token, error=BatchError)


def wait(run_id: int, timeout: float = 3600, poll: float = 2.0, url: str | None = None,
         token: str | None = None) -> dict:
    """The run once it has ended (or as it is after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        current = show(run_id, url, token)
        if current["state"] in FINAL or time.monotonic() > deadline:
            return current
        time.sleep(poll)
