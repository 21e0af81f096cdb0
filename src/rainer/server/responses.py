"""Responses, rendered once: status, headers and body, encoded when they are built."""

from __future__ import annotations

from collections.abc import Sequence

from rainer import wire
from rainer.commit import Commit, CommitInfo


class Refused(Exception):
    """A request answered with a status of its own (401, 403, 405, 408, 421, 429, 431), a
    one-line reason and headers."""

    def __init__(self, status: int, message: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.headers = list(headers)


class Response:
    """A whole response: status, body bytes and headers (Content-Length first), encoded once
    when it is built, so an answer kept in memory costs nothing to send again."""

    __slots__ = ("body", "headers", "status")

    def __init__(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: list[tuple[str, str]] | tuple[()] = (),
    ) -> None:
        self.status = status
        self.body = body
        self.headers = [
            (b"content-length", b"%d" % len(body)),
            *encode_headers([("content-type", content_type), *headers]),
        ]

    def with_headers(self, extra: list[tuple[bytes, bytes]]) -> Response:
        """A copy with ``extra`` (encoded) headers added."""
        copy = Response.__new__(Response)
        copy.status, copy.body, copy.headers = self.status, self.body, self.headers + extra
        return copy


def allow_method(method: str, *allowed: str) -> None:
    """Refuse (405, with ``Allow``) a method not in ``allowed``; HEAD goes where GET does."""
    if method in allowed or (method == "HEAD" and "GET" in allowed):
        return
    names = ", ".join(allowed)
    raise Refused(405, f"Method not allowed: use {names}", [("Allow", names)])


def encode_headers(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(name.encode("latin-1"), _header_value(value)) for name, value in headers]


def _header_value(value: str) -> bytes:
    # Header values cannot carry line breaks; UTF-8 passes through as the original's Jetty did.
    return value.replace("\r", " ").replace("\n", " ").replace("\x00", " ").encode("utf-8")


def text(status: int, message: str, headers: list[tuple[str, str]] | tuple[()] = ()) -> Response:
    """A one-line plain-text answer (every error is one)."""
    return Response(status, message.encode(), wire.TEXT, headers)


def json_response(status: int, value: object) -> Response:
    return Response(status, wire.json_body(value), wire.JSON)


def payload_response(commit: Commit) -> Response:
    """A commit's payload as the body, its metadata in ``X-Rainer-*`` headers."""
    payload = commit.payload or b""
    return Response(200, payload, wire.content_type(payload), wire.commit_headers(commit))


def meta_response(info: Commit | CommitInfo) -> Response:
    """A commit's metadata as JSON (``wire.json_body`` of its ``meta()``)."""
    return Response(200, info.meta_json() + b"\r\n", wire.JSON)
