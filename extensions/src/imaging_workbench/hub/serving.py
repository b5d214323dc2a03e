"""The workbench's hub services: their definition for the hub, and serving each one's tornado
application until the hub stops it."""

import asyncio
import logging
import signal
import sys


async def serve_until_stopped(app, host: str, port: int, prefix: str, log: logging.Logger) -> None:
    """Listen on host:port until SIGTERM or SIGINT (how the hub, or Ctrl-C, stops a managed service)."""
    server = app.listen(port, address=host)
    log.info("listening on http://%s:%s%s", host, port, prefix)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()


def managed_service(name: str, url: str, module: str, settings_file: str | None = None, display: bool = False,
                    **env: str) -> dict:
    """The JupyterHub definition of a managed service running `python -m module`, with the
    deployment settings file (default: $WORKBENCH_SETTINGS) and `env` in its environment; it is part
    of the workbench, so users are not asked to consent to its OAuth."""
    from ..deployment import SETTINGS_ENV, settings_file_from_env

    environment = {"PYTHONUNBUFFERED": "1", **env}
    settings_file = settings_file or settings_file_from_env()
    if settings_file:
        environment[SETTINGS_ENV] = str(settings_file)
    return {"name": name, "url": url, "command": [sys.executable, "-m", module], "environment": environment,
            "oauth_no_confirm": True, "display": display}
