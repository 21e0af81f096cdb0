"""The HTTP/1.1 protocol the server speaks: uvicorn's httptools protocol, with bounds.

uvicorn bounds neither the size nor the number of request headers, nor how long a client may
take to send a request head, nor how long it may leave a response unread. Each of those lets one
client hold memory or a connection for as long as it likes, so this protocol adds:

- a request head (request line and headers) of at most ``MAX_HEAD_BYTES`` bytes and
  ``MAX_HEADERS`` headers, else ``431`` and the connection is closed;
- ``HEAD_TIMEOUT`` seconds to send a whole request head, counted from the connection or from
  the end of the previous response, else ``408`` (or a silent close when nothing was sent);
- ``WRITE_TIMEOUT`` seconds for a client that stops reading a response, then the connection is
  dropped;
- at most ``--max-connections`` connections served at once (uvicorn's own check counts one
  short and answers in its own words): a request on a further one gets ``503`` at once;

and writes each response in one piece (``coalescing``). It also tells the application when a
client hangs up (the ``HANG_UP`` scope extension), so a request waiting for a change ends at
once instead of holding its place until its wait runs out. Bodies are bounded by the application
(``--max-payload-bytes`` and its own timeout between pieces of a body).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from rainer.defaults import HEAD_TIMEOUT, MAX_HEAD_BYTES, MAX_HEADERS, WRITE_TIMEOUT
from rainer.server.asgi_types import HANG_UP, App, Receive, Scope, Send
from rainer.server.coalescing import CoalescingTransport

_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


class _HeadRefused(Exception):
    """Raised inside a parser callback to stop parsing a request head we will not take."""


class RainerHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with bounded request heads, a head timeout and a write
    timeout, on a coalescing transport."""

    # uvicorn narrows the transport to asyncio.Transport (ignoring the override itself), and
    # the coalescing transport is one by delegation, not by class: its missing methods are the
    # wrapped transport's (a subclass would inherit asyncio.Transport's NotImplementedError ones).
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
        self._max_connections = self.config.limit_concurrency
        self.limit_concurrency = None  # checked in on_headers_complete instead
        self._tls = _tls_extension(transport)
        self._head_bytes = 0
        self._head_count = 0
        self._refusal: tuple[int, str] | None = None
        self._received = False
        # When the head now awaited began to be awaited, or None while a request is in hand.
        self._head_since: float | None = self.loop.time()
        self._head_timer: asyncio.TimerHandle | None = None
        self._write_timer: asyncio.TimerHandle | None = None
        self._hang_ups: set[Callable[[], None]] = set()
        self._arm_head_timer(HEAD_TIMEOUT)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)
        hang_ups, self._hang_ups = self._hang_ups, set()
        for hang_up in hang_ups:
            hang_up()

    def data_received(self, data: bytes) -> None:
        self._received = True
        super().data_received(data)

    # -- the request head ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        extensions: dict[str, dict[object, object]] = {HANG_UP: {"callbacks": self._hang_ups}}
        if self._tls is not None:
            extensions["tls"] = self._tls
        self.scope["extensions"] = extensions
        self._head_bytes = 0
        self._head_count = 0
        if self._head_since is None:  # a head begun while another request is in hand
            self._head_since = self.loop.time()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        # httptools may deliver one header in pieces; every piece counts towards the bytes.
        self._count(len(name) + len(value) + 4)
        self._head_count += 1
        if self._head_count > MAX_HEADERS:
            self._refuse(431, f"Too many request headers: at most {MAX_HEADERS}")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_since = None
        limit = self._max_connections
        if limit is None or (len(self.connections) <= limit and len(self.tasks) < limit):
            super().on_headers_complete()
            return
        # This request is answered by _too_busy instead of the application.
        app, self.app = self.app, _too_busy(limit)
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._received = False
        if self._head_since is None and not self.pipeline:
            # The next request's head has HEAD_TIMEOUT from now (unless it is under way, or in
            # hand already); uvicorn's keep-alive timeout (shorter) closes an idle connection
            # first.
            self._head_since = self.loop.time()

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:
            self._refuse(431, f"Request head too large: at most {MAX_HEAD_BYTES} bytes")

    def _refuse(self, status: int, message: str) -> None:
        self._refusal = (status, message)
        raise _HeadRefused(message)

    def send_400_response(self, msg: str) -> None:
        # uvicorn answers every parser error with 400; a head we refused gets its own status.
        refusal, self._refusal = self._refusal, None
        if refusal is None:
            super().send_400_response(msg)
        else:
            self._send_error(*refusal)

    def _send_error(self, status: int, message: str) -> None:
        body = message.encode()
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=UTF-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s"
            % (status, _REASONS[status], len(body), body)
        )
        self.transport.close()

    # -- timers ----------------------------------------------------------------------------

    # One timer per connection, not one per request: it fires at the earliest moment the head
    # awaited could be overdue, and sets itself again for the head awaited then (arming and
    # cancelling a timer for every request took about a microsecond of each head read's 24).

    def _arm_head_timer(self, delay: float) -> None:
        self._head_timer = self.loop.call_later(delay, self._check_head)

    def _check_head(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        since = self._head_since
        if since is None:  # a request in hand: its successor's head has the whole timeout
            self._arm_head_timer(HEAD_TIMEOUT)
            return
        left = since + HEAD_TIMEOUT - self.loop.time()
        if left > 0:
            self._arm_head_timer(left)
            return
        if self._received:
            self._send_error(
                408, f"Request timeout: no complete request head in {HEAD_TIMEOUT:g} s"
            )
        else:
            self.transport.close()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_timer is None:
            self._write_timer = self.loop.call_later(WRITE_TIMEOUT, self._write_timed_out)

    def resume_writing(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        super().resume_writing()

    def _write_timed_out(self) -> None:
        # The client has not read for WRITE_TIMEOUT seconds: drop it, and the response with it.
        self._write_timer = None
        self.transport.abort()

    def _cancel_timers(self) -> None:
        for timer in (self._head_timer, self._write_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._write_timer = None


def _too_busy(limit: int) -> App:
    """An ASGI application answering 503 when ``limit`` connections are being served."""
    body = f"Too many connections: at most {limit} are served at once; try again".encode()

    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [
            (b"content-length", b"%d" % len(body)),
            (b"content-type", b"text/plain; charset=UTF-8"),
            (b"retry-after", b"1"),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return answer


def _tls_extension(transport: asyncio.Transport) -> dict[object, object] | None:
    """What a TLS connection tells the application, as ASGI's TLS extension names it: the
    subject common name of the client certificate, when one was presented and verified.
    (Typed as uvicorn types a scope's extensions.)"""
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    name = None
    for rdn in (ssl_object.getpeercert() or {}).get("subject", ()):
        for attribute, value in rdn:
            if attribute == "commonName":
                name = value
    return {"client_cert_name": name, "tls_version": ssl_object.version()}
