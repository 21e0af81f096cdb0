"""Runs the ASGI application on uvicorn with httptools and uvloop.

Chosen by measurement (docs/benchmarks.md): a bare ASGI app on uvicorn's httptools protocol,
with each response sent in one write (``coalescing``), serves head reads within a few per cent of
granian, the fastest alternative measured, and uvicorn runs in our process, stopping cleanly on
SIGTERM and Ctrl-C: in-flight requests finish before the lifespan shutdown drains pending
commits.
"""

from __future__ import annotations

import contextlib
import importlib.util
import signal
import threading
from collections.abc import Iterator

import uvicorn

from rainer.server.app import RainerApp


def run_server(app: RainerApp, host: str, port: int, log_level: str, access_log: bool) -> int:
    """Serve until SIGTERM or Ctrl-C; returns the exit code."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http=_http_protocol(),
        lifespan="on",
        log_level=log_level,
        access_log=access_log,
        server_header=False,
        date_header=True,
        timeout_graceful_shutdown=30,
    )
    server = _Server(config)
    server.run()
    return 0 if server.started else 1


def _http_protocol() -> type | str:
    if importlib.util.find_spec("httptools") is None:
        return "h11"
    from rainer.server.coalescing import CoalescingHttpToolsProtocol

    return CoalescingHttpToolsProtocol


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
