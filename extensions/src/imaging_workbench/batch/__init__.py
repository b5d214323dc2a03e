"""Batch runs: a parameterised notebook run by papermill in a sandbox of its own (README.md).

From a notebook, through the portal with your own hub token (client.py):

    from imaging_workbench import batch
    r = batch.run("work/measure.ipynb", "lung-ct", parameters={"label": "x"}, per_case=True)
    batch.wait(r["id"])["summary"]
"""

from .client import BatchError, cancel, list_runs, run, show, wait

__all__ = ["BatchError", "cancel", "list_runs", "run", "show", "wait"]
