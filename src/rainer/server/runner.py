"""Runs the ASGI application on uvicorn with httptools and uvloop.

Chosen by measurement (docs/benchmarks.md): a bare ASGI app on uvicorn's httptools protocol,
with each response sent in one write, serves head reads within a few per cent of granian, the
fastest alternative measured, and uvicorn runs in our process, stopping cleanly on SIGTERM and
Ctrl-C: in-flight requests finish before the lifespan shutdown drains pending commits. The
protocol (``protocol``) adds the bounds uvicorn lacks; ``--max-connections`` is uvicorn's
concurrency limit, answered with 503 beyond it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import resource
import signal
import threading
from collections.abc import Iterator

import uvicorn

from rainer import defaults
from rainer.server.app import RainerApp
from rainer.server.protocol import RainerHttpProtocol

log = logging.getLogger(__name__)


def run_server(
    app: RainerApp,
    host: str,
    port: int,
    log_level: str,
    access_log: bool,
    max_connections: int = defaults.MAX_CONNECTIONS,
) -> int:
    """Serve until SIGTERM or Ctrl-C; returns the exit code."""
    _allow_open_files(max_connections + 256)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http=RainerHttpProtocol,
        lifespan="on",
        log_level=log_level,
        access_log=access_log,
        server_header=False,
        date_header=True,
        limit_concurrency=max_connections,
        timeout_keep_alive=defaults.KEEP_ALIVE_TIMEOUT,
        timeout_graceful_shutdown=defaults.GRACEFUL_SHUTDOWN,
    )
    server = _Server(config)
    server.run()
    return 0 if server.started else 1


def _allow_open_files(wanted: int) -> None:
    """Raise this process's open-file limit towards ``wanted`` (each connection is a file), as
    far as the hard limit allows; say so when the connection limit cannot be reached."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < wanted:
            log.warning(
                "At most %d open files (ulimit -n): fewer connections than --max-connections",
                soft,
            )


class _Server(uvicorn.Server):
    """uvicorn's server, but a stop asked for by SIGTERM or Ctrl-C is a clean exit (status 0).

    uvicorn re-raises the signal after its graceful shutdown, so the process would end "killed by
    SIGTERM"; for us the shutdown is complete and nothing was lost, which is a success.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        originals = {sig: signal.signal(sig, self.handle_exit) for sig in _STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
