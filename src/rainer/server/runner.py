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
import gc
import importlib.util
import logging
import resource
import signal
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypedDict

import uvicorn

from rainer import defaults
from rainer.server.app import RainerApp
from rainer.server.auth import PolicyError
from rainer.server.protocol import RainerHttpProtocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tls:
    """``--tls-cert``, ``--tls-key`` and ``--tls-client-ca`` (client certificates are then
    verified against that CA, and asked for but not required: a client may use a token)."""

    cert: str
    key: str
    client_ca: str | None = None


class _TlsOptions(TypedDict, total=False):
    """uvicorn.Config's TLS keywords, as ``--tls-*`` set them."""

    ssl_certfile: str
    ssl_keyfile: str
    ssl_ca_certs: str | None
    ssl_cert_reqs: int


def run_server(
    app: RainerApp,
    host: str,
    port: int,
    log_level: str,
    access_log: bool,
    max_connections: int = defaults.MAX_CONNECTIONS,
    tls: Tls | None = None,
    forwarded_allow_ips: str | None = None,
) -> int:
    """Serve until SIGTERM or Ctrl-C, re-reading what can be re-read on SIGHUP; returns the exit
    code. ``forwarded_allow_ips``: the proxies whose ``X-Forwarded-For`` and
    ``X-Forwarded-Proto`` are believed; None believes nobody's (uvicorn would believe any
    client on 127.0.0.1, which could then write any address into the audit log and spread its
    failed sign-ins over made-up addresses)."""
    _allow_open_files(max_connections + 256)
    tls_options: _TlsOptions = {}
    if tls is not None:
        tls_options = {
            "ssl_certfile": tls.cert,
            "ssl_keyfile": tls.key,
            "ssl_ca_certs": tls.client_ca,
            "ssl_cert_reqs": ssl.CERT_OPTIONAL if tls.client_ca else ssl.CERT_NONE,
        }
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
        proxy_headers=forwarded_allow_ips is not None,
        forwarded_allow_ips=forwarded_allow_ips,
        limit_concurrency=max_connections,
        timeout_keep_alive=defaults.KEEP_ALIVE_TIMEOUT,
        timeout_graceful_shutdown=defaults.GRACEFUL_SHUTDOWN,
        **tls_options,
    )
    _tune_collector()
    server = _Server(config, lambda: _hang_up(app, config, tls), app.watch.close)
    server.run()
    return 0 if server.started else 1


def _tune_collector() -> None:
    """Keep the garbage collector from stalling a server that holds many connections.

    A full collection visits every object: with 10,000 waiting requests, 100-240 ms, found
    nothing to free (measured), and at Python's default thresholds a burst of 10,000 new
    connections set off six of them. Freezing what exists at start (modules, the loaded heads)
    takes it out of every collection, and collecting the young generations less often makes full
    ones rare: that burst then costs young collections of at most 18 ms. Almost everything a
    request makes is freed by reference counting, not by the collector.
    """
    gc.freeze()
    gc.set_threshold(7_000, 10, 100)


def _hang_up(app: RainerApp, config: uvicorn.Config, tls: Tls | None) -> None:
    """SIGHUP: re-read the auth file (a refused one leaves the last good one in force), reopen
    the audit log (for log rotation) and re-read the certificates. Connections stay open."""
    if app.guard is not None:
        try:
            app.guard.reload()
        except PolicyError as exc:
            log.error("Keeping the last good auth file: %s", exc)
        else:
            log.info("Re-read the auth file %s", app.guard.path)
    if app.audit is not None:
        app.audit.reopen()
    if tls is not None and isinstance(config.ssl, ssl.SSLContext):
        try:
            config.ssl.load_cert_chain(tls.cert, tls.key)
            if tls.client_ca:
                config.ssl.load_verify_locations(tls.client_ca)
        except (OSError, ssl.SSLError) as exc:
            log.error("Keeping the last good certificate: %s", exc)
        else:
            log.info("Re-read the TLS certificate %s", tls.cert)


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
    """uvicorn's server, but a stop asked for by SIGTERM or Ctrl-C is a clean exit (status 0),
    and SIGHUP calls ``on_hang_up``.

    uvicorn re-raises the signal after its graceful shutdown, so the process would end "killed by
    SIGTERM"; for us the shutdown is complete and nothing was lost, which is a success.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        on_hang_up: Callable[[], None],
        on_stopping: Callable[[], None],
    ) -> None:
        super().__init__(config)
        self.on_hang_up = on_hang_up
        self.on_stopping = on_stopping

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # Requests waiting for a change are answered now, and feeds end, rather than holding
        # the stop for the whole graceful period.
        self.on_stopping()
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        originals = {sig: signal.signal(sig, self.handle_exit) for sig in _STOP_SIGNALS}
        originals[signal.SIGHUP] = signal.signal(signal.SIGHUP, lambda *_: self.on_hang_up())
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
