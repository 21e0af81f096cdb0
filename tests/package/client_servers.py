"""Servers that misbehave on purpose, for the client tests: a scripted one (any status, any
body), a relay that loses answers or refuses commits, and a forward proxy that records what it
is asked for. Each runs on a loopback port in a thread, as a context manager."""

from __future__ import annotations

import http.client
import http.server
import json
import socket
import threading
from collections.abc import Callable
from typing import Any, ClassVar
from urllib.parse import urlsplit


def closed_port_url() -> str:
    """A loopback URL where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/diary"


class _Threaded:
    """An http.server on a loopback port, served from a thread; a context manager."""

    handler: ClassVar[type[http.server.BaseHTTPRequestHandler]]

    def __enter__(self) -> Any:
        owner = self

        class Handler(self.handler):  # type: ignore[name-defined,misc]
            server_owner = owner

        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.shutdown()
        self.http.server_close()


class _Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _ScriptedHandler(_Quiet):
    def setup(self) -> None:
        super().setup()
        self.server_owner.connections += 1

    def _any(self) -> None:
        owner = self.server_owner
        self.body()
        owner.seen.append((self.command, self.path))
        status, body = owner.script[min(len(owner.seen), len(owner.script)) - 1]
        if isinstance(body, dict):
            body = (json.dumps(body) + "\r\n").encode()
        self.answer(status, [], body)

    do_GET = do_POST = _any


class Scripted(_Threaded):
    """Answers from a script of (status, body), in order, the last one repeated."""

    handler = _ScriptedHandler

    def __init__(self, script: list[tuple[int, Any]]) -> None:
        self.script = script
        self.seen: list[tuple[str, str]] = []
        self.connections = 0

    def __enter__(self) -> Scripted:
        super().__enter__()
        self.url += "/diary"
        return self


class _RelayHandler(_Quiet):
    def _any(self) -> None:
        owner: Relay = self.server_owner
        body = self.body()
        owner.seen.append((self.command, self.path))
        if self.command == "POST" and owner.refuse_posts:
            owner.refuse_posts -= 1
            if owner.before_post:
                owner.before_post()
            self.answer(503, [], b"Database unavailable")
            return
        target = urlsplit(owner.target)
        upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
        names = ("x-rainer-author", "x-rainer-comment", "x-rainer-empty", "content-type")
        headers = {name: value for name, value in self.headers.items() if name.lower() in names}
        upstream.request(self.command, self.path, body=body or None, headers=headers)
        reply = upstream.getresponse()
        data = reply.read()
        upstream.close()
        if self.command == "POST" and owner.drop_answers:
            owner.drop_answers -= 1
            self.close_connection = True  # saved upstream, but no answer reaches the client
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        passed = [(name, value) for name, value in reply.getheaders() if _passed(name)]
        self.answer(reply.status, passed, data)

    do_GET = do_POST = _any


def _passed(name: str) -> bool:
    return name.lower() not in ("content-length", "transfer-encoding", "connection", "date")


class Relay(_Threaded):
    """A reverse proxy to ``target`` that records requests and can lose answers: the next
    ``drop_answers`` commits are saved upstream but their answers dropped; the next
    ``refuse_posts`` commits never reach upstream and are answered 503."""

    handler = _RelayHandler

    def __init__(
        self,
        target: str,
        drop_answers: int = 0,
        refuse_posts: int = 0,
        before_post: Callable[[], object] | None = None,
    ) -> None:
        self.target = target
        self.drop_answers = drop_answers
        self.refuse_posts = refuse_posts
        self.before_post = before_post
        self.seen: list[tuple[str, str]] = []


class _ForwardHandler(_Quiet):
    def _any(self) -> None:
        owner: ForwardProxy = self.server_owner
        body = self.body()
        owner.seen.append((self.command, self.path))  # an absolute URI, as proxies receive
        target = urlsplit(self.path)
        upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
        hop = ("proxy-connection", "connection", "keep-alive", "proxy-authorization")
        headers = {k: v for k, v in self.headers.items() if k.lower() not in hop}
        path = target.path + (f"?{target.query}" if target.query else "")
        upstream.request(self.command, path, body=body or None, headers=headers)
        reply = upstream.getresponse()
        data = reply.read()
        upstream.close()
        self.answer(reply.status, [(k, v) for k, v in reply.getheaders() if _passed(k)], data)

    do_GET = do_POST = _any


class ForwardProxy(_Threaded):
    """An HTTP forward proxy that records the absolute URIs it is asked for."""

    handler = _ForwardHandler

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
