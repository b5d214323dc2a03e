"""A published dashboard's server: Voila showing one pinned notebook, and nothing else.

A dashboard runs as a named server of its owner (`dashboard-NAME`) with the Jupyter server
extension of dashboard_guard.py and the dashboard configuration (images/singleuser/
jupyter-dashboard/), which the spawner selects with $JUPYTER_CONFIG_DIR; this module holds the
layout both sides share. Clinicians who open it must see the rendered
notebook and its widgets, and nothing that runs code of theirs or shows the owner's files:
- every path outside Voila's rendering and the kernel's websocket answers 404, before any
  other handler sees it: no JupyterLab, no terminals, no contents or kernels REST API, and none
  of the routes another installed extension adds;
- the kernel's websocket passes only the messages widgets need (comm messages, kernel info):
  an `execute_request` from a browser is dropped by the server (MappingKernelManager's
  `allowed_message_types`); Voila runs the notebook's cells itself, server-side;
- Voila's progressive rendering, whose websocket asks the server to run cells, is off;
- kernels are culled when idle, and at most `CappedKernelManager.max_kernels` live at once
  (each page view starts one: voila#209), in a container with the profile's memory limit.
"""

ENV = "WORKBENCH_DASHBOARD"  # the pinned notebook's file name under ROOT
ROOT = "/opt/workbench/dashboard"
CONFIG_DIR = "/opt/workbench/dashboard-config"  # $JUPYTER_CONFIG_DIR of a dashboard's server
# What a dashboard's page needs, relative to the server's base URL.
ALLOWED_PATHS = (
    r"$", r"voila/render/", r"voila/static/", r"voila/templates/", r"voila/labextensions/",
    r"voila/api/themes/", r"voila/api/shutdown/", r"voila/files/", r"static/",
    r"api/kernels/[^/]+/channels$", r"api/kernels/[^/]+$",  # the page's kernel: its model and websocket
    r"oauth_callback", r"logout", r"api/?$", r"api/status$",
)
WIDGET_MESSAGES = ["comm_msg", "comm_info_request", "comm_open", "comm_close", "kernel_info_request"]
