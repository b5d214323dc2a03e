"""The Jupyter server extension of a dashboard's server (dashboard_server.py says what it is for):
every path outside ALLOWED_PATHS answers 404 before any other handler sees it, and kernels
(page views) are capped."""

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.routing import PathMatches, Rule
from traitlets import Integer

from .dashboard_server import ALLOWED_PATHS


class CappedKernelManager(AsyncMappingKernelManager):
    """Kernels of a dashboard's page views, at most `max_kernels` at once."""

    max_kernels = Integer(4, config=True, help="Kernels (page views) that may live at once.")

    async def start_kernel(self, *args, **kwargs):
        if kwargs.get("kernel_id") is None and len(self.list_kernel_ids()) >= self.max_kernels:
            raise web.HTTPError(503, f"this dashboard serves {self.max_kernels} views at once; "
                                     "close another view of it, or try again in a few minutes")
        return await super().start_kernel(*args, **kwargs)


class NotOnADashboard(JupyterHandler):
    """Any path a dashboard does not serve."""

    def prepare(self):
        raise web.HTTPError(404)


def _load_jupyter_server_extension(serverapp) -> None:
    web_app = serverapp.web_app
    base = url_path_join(web_app.settings["base_url"], "/")
    refused = f"{base}(?!(?:{'|'.join(ALLOWED_PATHS)})).*"
    # First rule of the application's router: ahead of the server's and every extension's handlers.
    web_app.default_router.rules.insert(0, Rule(PathMatches(refused), NotOnADashboard))
    serverapp.log.info("Dashboard server: Voila only; other paths answer 404")


def _jupyter_server_extension_points():
    return [{"module": "imaging_workbench.dashboard_guard"}]
