"""Serving a hub service's tornado application until the hub stops it."""

import asyncio
import logging
import signal


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
