"""A small asyncio HTTP/1.1 client on raw sockets, for holding thousands of watchers at once.

bench/watch_bench.py needs 10,000 requests in flight from one process: a thread per request
would cost more than the server being measured, and the venv has no asyncio HTTP library, so
this speaks just enough HTTP/1.1 itself: one request at a time per kept-alive connection,
answers with a Content-Length (all of Rainer's and etcd's short answers), and etcd's streamed
watch answers, scanned for the revision they announce.

Every answer is stamped with ``time.perf_counter()`` in ``data_received``, the first moment
Python sees it, before any parsing or bookkeeping of other answers could delay the stamp
(CLOCK_MONOTONIC on Linux: comparable across processes too).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar, cast

_HEAD_END = b"\r\n\r\n"
_REVISION = re.compile(rb'"revision":"(\d+)"')
_MOD_REVISION = re.compile(rb'"mod_revision":"(\d+)"')


T = TypeVar("T")


class Failed(Exception):
    """An answer that the benchmark did not expect (a status, a dropped connection)."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    head: bytes  # the status line and headers, lower-cased: for header lookups
    body: bytes
    at: float  # perf_counter() when the last byte arrived

    def header(self, name: str) -> str | None:
        wanted = b"\r\n" + name.lower().encode() + b":"
        start = self.head.find(wanted)
        if start < 0:
            return None
        start += len(wanted)
        end = self.head.find(b"\r\n", start)
        return self.head[start : end if end >= 0 else None].strip().decode("latin-1")


class HttpConnection(asyncio.Protocol):
    """One kept-alive connection with at most one request in flight."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.pending: asyncio.Future[Answer] | None = None
        self.closed = False
        self.unasked: list[bytes] = []  # data that arrived while no request was in flight

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but behave as one
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if self.pending is None or self.pending.done():
            # An answer nobody asked for: a watcher answered before its commit, or a 408.
            self.unasked.append(bytes(data))
            return
        self.buffer += data
        end = self.buffer.find(_HEAD_END)
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        length = 0
        marker = head.find(b"\r\ncontent-length:")
        if marker >= 0:
            stop = head.find(b"\r\n", marker + 2)
            length = int(head[marker + 17 : stop if stop >= 0 else None])
        total = end + 4 + length
        if len(self.buffer) < total:
            return
        body = bytes(self.buffer[end + 4 : total])
        del self.buffer[:total]
        self.pending.set_result(Answer(int(head[9:12]), head, body, now))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.pending is not None and not self.pending.done():
            self.pending.set_exception(Failed(f"connection closed by the server ({exc!r})"))

    def request(self, raw: bytes) -> asyncio.Future[Answer]:
        """Send ``raw`` (a whole request); the future gets the answer."""
        assert self.transport is not None
        if self.closed:
            raise Failed("the connection is closed")
        self.pending = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return self.pending

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


P = TypeVar("P", bound=asyncio.Protocol)


async def connect_many(host: str, port: int, count: int, factory: Callable[[], P]) -> list[P]:
    """``count`` connections, at most 200 being opened at a time: a burst of 10,000 SYNs
    would overflow the server's accept backlog and stall in retransmissions."""
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(200)

    async def one() -> P:
        async with gate:
            _, protocol = await loop.create_connection(factory, host, port)
            return protocol

    return list(await asyncio.gather(*(one() for _ in range(count))))


def get(host: str, port: int, path: str, headers: Iterable[tuple[str, str]] = ()) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", *(f"{n}: {v}" for n, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def post(
    host: str, port: int, path: str, body: bytes, headers: Iterable[tuple[str, str]] = ()
) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        f"Content-Length: {len(body)}",
        *(f"{n}: {v}" for n, v in headers),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def gather_answers(
    futures: list[asyncio.Future[Answer]], timeout: float
) -> tuple[list[Answer], list[str]]:
    """The answers that came within ``timeout`` seconds, and why the others did not."""
    _, waiting = await asyncio.wait(futures, timeout=timeout) if futures else (set(), set())
    answers, problems = [], []
    for future in futures:
        if future in waiting:
            future.cancel()
            problems.append(f"no answer within {timeout:g} s")
        elif future.exception() is not None:
            problems.append(str(future.exception()))
        else:
            answers.append(future.result())
    return answers, problems


# -- etcd's watch through its gRPC gateway --------------------------------------------------


class EtcdWatch(asyncio.Protocol):
    """``POST /v3/watch`` on one key: a chunked answer that never ends, one JSON message per
    event. ``created`` is set when etcd confirms the watch; every event's ``mod_revision`` is
    stamped as it arrives, and ``expect(revision)`` gives that stamp (at once if the event came
    before we asked: the put's answer and the event race each other)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.created: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.seen: dict[int, float] = {}
        self.waiting: dict[int, asyncio.Future[float]] = {}
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but behave as one
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self.buffer += data
        if not self.created.done():
            if self.buffer.startswith(b"HTTP/1.1 ") and not self.buffer.startswith(b"HTTP/1.1 200"):
                self.created.set_exception(Failed(bytes(self.buffer[:80]).decode()))
            elif b'"created":true' in self.buffer:
                self.created.set_result(now)
                del self.buffer[: self.buffer.index(b'"created":true') + 14]
            return
        last = 0
        for found in _MOD_REVISION.finditer(self.buffer):
            revision = int(found.group(1))
            self.seen[revision] = now
            future = self.waiting.pop(revision, None)
            if future is not None and not future.done():
                future.set_result(now)
            last = found.end()
        # A message cut between two reads is matched once its closing quote has come.
        del self.buffer[:last]
        if len(self.buffer) > 1 << 16:
            del self.buffer[: -(1 << 10)]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        for future in (self.created, *self.waiting.values()):
            if not future.done():
                future.set_exception(Failed(f"etcd closed the watch ({exc!r})"))

    def start(self, host: str, port: int, key: bytes) -> None:
        assert self.transport is not None
        request = {"create_request": {"key": base64.b64encode(key).decode()}}
        body = json.dumps(request).encode()
        headers = [("Content-Type", "application/json")]
        self.transport.write(post(host, port, "/v3/watch", body, headers))

    def expect(self, revision: int) -> asyncio.Future[float]:
        future = asyncio.get_running_loop().create_future()
        if revision in self.seen:
            future.set_result(self.seen.pop(revision))
        else:
            self.waiting[revision] = future
        return future

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def etcd_revision(answer: Answer) -> int:
    """The revision a put created, from its answer's header."""
    found = _REVISION.search(answer.body)
    if found is None:
        raise Failed(f"etcd's put answered without a revision: {answer.body[:200]!r}")
    return int(found.group(1))


async def bounded(awaitable: Awaitable[T], timeout: float, what: str) -> T:
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except TimeoutError as exc:
        raise Failed(f"{what}: nothing within {timeout:g} s") from exc
