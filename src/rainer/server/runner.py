"""Runs the ASGI application on uvicorn with httptools and uvloop.

Chosen by measurement (docs/benchmarks.md): a bare ASGI app on uvicorn's httptools protocol
serves head reads as fast as the alternatives measured here, and uvicorn stops cleanly on SIGTERM
and Ctrl-C, finishing in-flight requests before the lifespan shutdown drains pending commits.
"""

from __future__ import annotations

import importlib.util

import uvicorn

from rainer.server.app import RainerApp


def run_server(app: RainerApp, host: str, port: int, log_level: str, access_log: bool) -> int:
    """Serve until SIGTERM or Ctrl-C; returns the exit code."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http="httptools" if importlib.util.find_spec("httptools") else "h11",
        lifespan="on",
        log_level=log_level,
        access_log=access_log,
        server_header=False,
        date_header=True,
        timeout_graceful_shutdown=30,
    )
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 1
