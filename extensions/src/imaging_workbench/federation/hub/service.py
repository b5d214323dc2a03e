"""The `workbench-federation` hub service: a JupyterHub-authenticated REST API for federated jobs.

Routes (under the service prefix, /services/workbench-federation/ by default):

    GET  api/health                          no auth; is the service up
    GET  api/algorithms                      the approved algorithms and their parameter schemas
    GET  api/datasets                        the caller's granted datasets at federation sites
    GET  api/budget                          the caller's privacy budget per dataset and site (as reported)
    GET  api/jobs                            the caller's jobs
    POST api/jobs                            {"algorithm", "datasets": [...], "params": {...}}
    GET  api/jobs/<id>                       status and per-site progress
    GET  api/jobs/<id>/result                aggregates only (counts below the minimum suppressed)
    GET  api/jobs/<id>/files/<name>          a result file (e.g. model.pt)
    POST api/jobs/<id>/cancel

Callers authenticate with their JupyterHub token (`Authorization: token ...`) holding the scope
access:services!service=workbench-federation. Errors are JSON: {"error", "hint", "fields"}.
Hub config: `hub_services(settings, host)` gives the service definition (see federation/README.md).
"""

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import threading
from datetime import datetime
from functools import partial

from jupyterhub.services.auth import HubAuthenticated
from tornado import web
from tornado.ioloop import IOLoop

from ...errors import NotFound, WorkbenchError
from ...hub.serving import managed_service, serve_until_stopped
from ..algorithms import ALGORITHMS
from ..settings import FederationSettings, federation_settings
from .manager import BadRequest, Forbidden, JobManager

SERVICE_NAME = "workbench-federation"
ACCESS_SCOPE = f"access:services!service={SERVICE_NAME}"
log = logging.getLogger("workbench.federation")


def _json_default(value):
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def job_view(job) -> dict:
    return job.as_dict()


class Follower:
    """Moves unfinished jobs forward in a thread, through the manager's shared FLARE session
    (closed when the service stops: an unclosed session can hang a process)."""

    def __init__(self, manager: JobManager, interval: float = 0.25):
        self.manager, self.interval = manager, interval
        self._wake, self._stop = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name="federation-follower", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def wake(self):
        self._wake.set()

    def stop(self, timeout: float = 10):
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self):
        while not self._stop.is_set():
            remaining = 0
            try:
                if self.manager.unfinished():
                    remaining = self.manager.flare.call(self.manager.follow_once)
                else:  # keep knowing which sites are connected, for submissions to leave the others out
                    self.manager.flare.call(self.manager.refresh_connected)
            except Exception as e:  # noqa: BLE001 - keep following; the session reconnects
                log.warning("following jobs or connected sites failed: %s", getattr(e, "message", e))
                remaining = 1
            self._wake.wait(self.interval if remaining else 30)
            self._wake.clear()


class BaseHandler(HubAuthenticated, web.RequestHandler):
    """JSON handlers for callers identified by their JupyterHub token (HubAuthenticated)."""

    def initialize(self, manager: JobManager, follower: "Follower | None", hub_auth):
        self.manager, self.follower = manager, follower
        self.hub_auth = hub_auth

    @property
    def hub_scopes(self):
        return {ACCESS_SCOPE}

    def prepare(self):
        if self.request.path.endswith("/api/health"):
            return
        if not self.current_user:
            raise web.HTTPError(403, reason=f"a JupyterHub token with scope {ACCESS_SCOPE} is required")

    @property
    def user(self) -> str:
        return self.current_user["name"]

    def send(self, data, status: int = 200):
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data, default=_json_default))

    def write_error(self, status_code, **kwargs):
        error = kwargs.get("exc_info", (None, None))[1]
        body = {"error": getattr(error, "log_message", None) or self._reason}
        self.send(body, status_code)

    async def call(self, fn, *args):
        """Run a blocking manager call off the event loop, mapping errors to HTTP statuses."""
        try:
            return await IOLoop.current().run_in_executor(None, partial(fn, *args))
        except BadRequest as e:
            self.send({"error": e.message, "hint": e.hint, "fields": e.errors}, 400)
        except Forbidden as e:
            self.send({"error": e.message, "hint": e.hint}, 403)
        except NotFound as e:
            self.send({"error": e.message, "hint": e.hint}, 404)
        except WorkbenchError as e:
            self.send({"error": e.message, "hint": e.hint}, 503)
        return None


class HealthHandler(BaseHandler):
    def get(self):
        self.send({"ok": True, "service": SERVICE_NAME})


class AlgorithmsHandler(BaseHandler):
    def get(self):
        self.send([a.as_dict() for a in ALGORITHMS.values()])


class DatasetsHandler(BaseHandler):
    def _datasets(self, user):
        from ...catalog.datasets import datasets_by_id
        from ...catalog.grants import approved_dataset_ids

        with self.manager.ctx.session() as s:
            found = datasets_by_id(s, approved_dataset_ids(s, user))
            return [{k: d.as_dict()[k] for k in ("id", "title", "modality", "body_part", "site", "n_subjects")}
                    for d in found.values() if d.site in self.manager.sites]

    async def get(self):
        rows = await self.call(self._datasets, self.user)
        if rows is not None:
            self.send(sorted(rows, key=lambda r: r["id"]))


class BudgetHandler(BaseHandler):
    async def get(self):
        rows = await self.call(self.manager.budget, self.user)
        if rows is not None:
            self.send(rows)


class JobsHandler(BaseHandler):
    async def get(self):
        jobs = await self.call(self.manager.list_jobs, self.user)
        if jobs is not None:
            self.send([job_view(j) for j in jobs])

    async def post(self):
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            self.send({"error": "the request body is not JSON", "fields": {}}, 400)
            return
        if not isinstance(body, dict):
            self.send({"error": "the request body must be a JSON object", "fields": {}}, 400)
            return
        job = await self.call(self.manager.submit, self.user, body.get("algorithm"), body.get("datasets"),
                              body.get("params") or {})
        if job is not None:
            if self.follower:
                self.follower.wake()
            self.send(job_view(job), 201)


class JobHandler(BaseHandler):
    async def get(self, job_id):
        job = await self.call(self.manager.get, self.user, job_id)
        if job is not None:
            self.send(job_view(job))


class ResultHandler(BaseHandler):
    async def get(self, job_id):
        result = await self.call(self.manager.result, self.user, job_id)
        if result is not None:
            self.send(result)


class FileHandler(BaseHandler):
    async def get(self, job_id, name):
        path = await self.call(self.manager.result_file, self.user, job_id, name)
        if path is not None:
            self.set_header("Content-Type", "application/octet-stream")
            self.set_header("Content-Disposition", f'attachment; filename="{name}"')
            self.finish(path.read_bytes())


class CancelHandler(BaseHandler):
    async def post(self, job_id):
        job = await self.call(self.manager.cancel, self.user, job_id)
        if job is not None:
            self.send(job_view(job))


def create_application(manager: JobManager, hub_auth, prefix: str = f"/services/{SERVICE_NAME}/",
                       follower: Follower | None = None) -> web.Application:
    """The tornado application; tests can call it without a socket."""
    prefix = "/" + prefix.strip("/") + "/" if prefix.strip("/") else "/"
    args = {"manager": manager, "follower": follower, "hub_auth": hub_auth}
    routes = [
        (r"api/health", HealthHandler), (r"api/algorithms", AlgorithmsHandler), (r"api/datasets", DatasetsHandler),
        (r"api/budget", BudgetHandler),
        (r"api/jobs", JobsHandler), (r"api/jobs/([0-9a-f]+)", JobHandler),
        (r"api/jobs/([0-9a-f]+)/result", ResultHandler), (r"api/jobs/([0-9a-f]+)/files/([A-Za-z0-9_.-]+)", FileHandler),
        (r"api/jobs/([0-9a-f]+)/cancel", CancelHandler),
    ]
    # Served under the hub's service prefix and at the root, so a sandbox may call the service
    # through the proxy or directly at the URL hub_services() gives.
    prefixes = [prefix] + (["/"] if prefix != "/" else [])
    return web.Application([(p + path, handler, args) for p in prefixes for path, handler in routes])


def hub_services(settings: dict, host: str, settings_file: str | None = None) -> list[dict]:
    """JupyterHub service definitions for `workbench-federation` (a managed service the hub starts).

    Args:
        settings: the loaded deployment settings (its `federation:` section gives the port).
        host: the address the service listens on and the hub reaches it at.
        settings_file: the deployment settings file the service reads (default: $WORKBENCH_SETTINGS,
            or its old name $WORKBENCH_SITE, when called).
    """
    url = f"http://{host}:{federation_settings(settings).service_port}"
    return [managed_service(SERVICE_NAME, url, "imaging_workbench.federation.hub.service", settings_file,
                            WORKBENCH_FEDERATION_HOST=host)]


def _hub_auth():
    from jupyterhub.services.auth import HubAuth

    return HubAuth(cache_max_age=60)


def main(argv=None) -> int:
    """Run the service: settings from the deployment settings file, hub credentials from the JupyterHub environment."""
    from ...context import WorkbenchContext
    from ...deployment import load_settings

    parser = argparse.ArgumentParser(prog="workbench-federation-service")
    parser.add_argument("--settings", "--site", dest="settings_file", metavar="FILE",
                        help="deployment settings file (default: $WORKBENCH_SETTINGS); --site is its old name")
    parser.add_argument("--host", default=os.environ.get("WORKBENCH_FEDERATION_HOST"))
    parser.add_argument("--port", type=int)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    ctx = WorkbenchContext(load_settings(args.settings_file), actor=SERVICE_NAME)
    settings: FederationSettings = federation_settings(ctx.settings)
    manager = JobManager(ctx, settings)
    follower = Follower(manager).start()
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", f"/services/{SERVICE_NAME}/")
    app = create_application(manager, _hub_auth(), prefix, follower)
    host = args.host or settings.host
    port = args.port or settings.service_port
    try:
        asyncio.run(serve_until_stopped(app, host, port, prefix, log))
    finally:
        # The stop signal often comes twice (from `make up`'s script and from the hub): a second
        # SIGINT must not interrupt the shutdown, or FLARE's threads keep the process alive;
        # SIGTERM still ends it at once.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _shut_down(follower, manager)
    return 0


def _shut_down(follower: Follower, manager: JobManager, grace: float = 0.5) -> None:
    """Stop following and close the FLARE session, without waiting on a FLARE server that is down.

    A follower inside a call to such a server holds the session for as long as FLARE retries
    (a minute), and FLARE's session threads are not daemons, so an unclosed session keeps the
    process alive: after `grace` seconds the process ends anyway (unfinished jobs are resumed
    from the catalog at the next start).
    """
    follower.stop(timeout=grace)
    closed = manager.flare.close(wait=0 if follower.running else grace)
    stuck = [t.name for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if not closed or stuck:
        log.warning("FLARE session not closed within %.0f s (threads %s); exiting anyway", grace, stuck)
        logging.shutdown()
        os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
