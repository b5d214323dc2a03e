"""Runs next to JupyterHub: the workbench-federation service, its job store, the FLARE admin
session it submits with, and the job folders it writes."""
