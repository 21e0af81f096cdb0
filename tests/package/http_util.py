"""A tiny HTTP caller for tests: every status comes back as data, never as an exception."""

from __future__ import annotations

import http.client
import json
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self):
        assert self.body.endswith(b"\r\n"), "JSON bodies end with CRLF"
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def call(
    method: str,
    url: str,
    body: bytes | str | None = None,
    headers: dict | None = None,
    tls: ssl.SSLContext | None = None,
) -> Reply:
    """Send one request on a fresh connection; ``url`` may carry raw percent-escapes. ``tls`` is
    the client context for an https:// URL."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=30, context=tls
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    if isinstance(body, str):
        body = body.encode()
    try:
        connection.request(method, target, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        found = {name.lower(): value for name, value in response.getheaders()}
        return Reply(response.status, found, data)
    finally:
        connection.close()


def post_commit(
    diary: str,
    key: str,
    version: int | str,
    payload: bytes | str = b"",
    /,
    auth: dict | None = None,
    tls: ssl.SSLContext | None = None,
    **headers,
):
    """POST a commit; keyword arguments become X-Rainer-* headers (author='x' → X-Rainer-Author);
    ``auth`` adds headers as they are (an Authorization header, say)."""
    sent = {"X-Rainer-" + name.replace("_", "-").title(): value for name, value in headers.items()}
    return call("POST", f"{diary}/{key}/{version}", payload, {**sent, **(auth or {})}, tls)
