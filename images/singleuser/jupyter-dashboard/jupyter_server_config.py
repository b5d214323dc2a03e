# A published dashboard's server (imaging_workbench/dashboard_server.py says why each line is here).
# The spawner selects this folder with $JUPYTER_CONFIG_DIR and names the notebook in $WORKBENCH_DASHBOARD.
import os

from imaging_workbench.dashboard_server import ENV, ROOT, WIDGET_MESSAGES

c = get_config()  # noqa: F821 - given by Jupyter's config loader
c.ServerApp.jpserver_extensions.update({
    "imaging_workbench.dashboard_guard": True, "voila": True,
    "jupyterlab": False, "notebook": False, "jupyter_lsp": False, "jupyter_server_terminals": False,
    "imaging_workbench.material_extension": False,
})
c.ServerApp.root_dir = ROOT  # Voila's file and contents routes see the pinned notebook only
c.ContentsManager.preferred_dir = ""  # the sandbox's is home/jovyan, which is not under ROOT
c.ServerApp.default_url = f"/voila/render/{os.environ[ENV]}"
c.ServerApp.terminals_enabled = False
c.ServerApp.kernel_manager_class = "imaging_workbench.dashboard_guard.CappedKernelManager"
c.MappingKernelManager.allowed_message_types = WIDGET_MESSAGES
c.MappingKernelManager.cull_idle_timeout = 600
c.MappingKernelManager.cull_interval = 60
c.MappingKernelManager.cull_connected = True  # a page left open in a browser tab does not hold a kernel forever
c.VoilaConfiguration.progressive_rendering = False
c.VoilaConfiguration.show_tracebacks = False
