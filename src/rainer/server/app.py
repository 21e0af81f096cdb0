"""The HTTP API: a bare ASGI application serving the original Rainer's wire contract.

No web framework: routing is a split of the path, and the hot paths (head reads from memory) run
on the event loop without a thread hop. Anything that touches the database runs in a thread pool;
commits go through the group committer, which answers once the commit is durable.

Routes, under the prefix (``/diary`` by default)::

    GET  PREFIX                      heads (?all, ?payload_utf8, ?payload_base64)
    GET  PREFIX/KEY[/VERSION]        payload, with X-Rainer-* headers
    GET  PREFIX/KEY[/VERSION]/meta   metadata JSON
    GET  PREFIX/KEY/history          metadata of every version, newest first (?limit, ?before)
    POST PREFIX/KEY/VERSION          commit
    GET  /healthz                    200 when the storage answers
    GET  /openapi.json               the OpenAPI description of this API

With ZooKeeper (``rainer serve --zookeeper``, see rainer.keeper.link) commits are published after
they are durable, and head reads without ``?all`` are answered from the live mirror with
``X-Rainer-Cached: Yes``; a key the mirror lacks (new, or a tombstone) is read from the database.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

import yaml

from rainer import commit as commits
from rainer import wire
from rainer.commit import Commit
from rainer.errors import (
    BadRequestError,
    CommitOrderingError,
    NotFoundError,
    PayloadTooLargeError,
    StorageUnavailableError,
)
from rainer.server import openapi
from rainer.storage.base import Storage
from rainer.storage.cached import HeadCachingStorage
from rainer.storage.group_commit import GroupCommitter

if TYPE_CHECKING:  # kazoo is optional: only a server run with --zookeeper imports it
    from rainer.keeper.link import ZooKeeperLink

log = logging.getLogger(__name__)

DEFAULT_MAX_PAYLOAD_BYTES = 16 * 1024 * 1024  # the original's MEDIUMBLOB column
_INTEGER = re.compile(r"-?[0-9]{1,10}")
_INT_MAX = 2**31 - 1
_HEAD_MEMO_SIZE = 100_000  # rendered head responses kept; cleared whole when full


@dataclass(frozen=True)
class ServerConfig:
    """What ``rainer serve`` was told, less where to listen."""

    prefix: str = "/diary"
    validate: str = "none"  # none | json | yaml
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES


class Response:
    """A whole response: status, body bytes and headers, encoded once when it is built."""

    __slots__ = ("body", "headers", "status")

    def __init__(
        self, status: int, body: bytes, content_type: str, headers: list[tuple[str, str]] = ()
    ) -> None:
        self.status = status
        self.body = body
        self.headers = encode_headers([("content-type", content_type), *headers])


def encode_headers(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(name.encode("latin-1"), _header_value(value)) for name, value in headers]


def text(status: int, message: str) -> Response:
    return Response(status, message.encode(), wire.TEXT)


def json_response(status: int, value: object) -> Response:
    return Response(status, wire.json_body(value), wire.JSON)


def parse_version(text_: str) -> int:
    """A version from a URL: a 32-bit integer, as the original's Int, else BadRequestError."""
    if not _INTEGER.fullmatch(text_) or abs(int(text_)) > _INT_MAX:
        raise BadRequestError(f"Invalid version: {text_!r} is not an integer")
    return int(text_)


def parse_positive(params: dict[str, str], name: str) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if not value.isdigit() or not 1 <= int(value) <= _INT_MAX:
        raise BadRequestError(f"Invalid '{name}' parameter (should be a positive integer)")
    return int(value)


def _header_value(value: str) -> bytes:
    # Header values cannot carry line breaks; UTF-8 passes through as the original's Jetty did.
    return value.replace("\r", " ").replace("\n", " ").replace("\x00", " ").encode("utf-8")


class RainerApp:
    """The ASGI application. Owns the storage's life cycle through ASGI lifespan events."""

    def __init__(
        self,
        storage: Storage,
        config: ServerConfig | None = None,
        zookeeper: ZooKeeperLink | None = None,
    ) -> None:
        self.config = config or ServerConfig()
        self.zookeeper = zookeeper
        # With ZooKeeper the mirror is the head source, so no HeadCachingStorage: the publishing
        # wrapper sees every save after the database made it durable.
        self.mirror = zookeeper.mirror if zookeeper is not None else None
        if zookeeper is not None:
            storage = zookeeper.wrap(storage)
        elif storage.single_writer and not isinstance(storage, HeadCachingStorage):
            storage = HeadCachingStorage(storage)
        self.storage = storage
        self.cache = storage if isinstance(storage, HeadCachingStorage) else None
        self.committer = GroupCommitter(storage)
        self.executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="rainer-storage")
        self._prefix = self.config.prefix.rstrip("/").encode()
        self._list_cache: dict[tuple[bool, bool, bool], bytes] = {}
        self._head_memo: dict[tuple[str, bool], tuple[Commit, Response, Response]] = {}
        self._list_generation = -1
        self._openapi_response: Response | None = None
        self._started = False

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        if not self._started:
            self.storage.start()
            if self.zookeeper is not None:
                try:
                    self.zookeeper.start()
                except BaseException:
                    self.storage.stop()
                    raise
            self.committer.start()
            self._started = True

    def stop(self) -> None:
        if self._started:
            self.committer.stop()
            self.executor.shutdown(wait=True)
            if self.zookeeper is not None:
                self.zookeeper.stop()
            self.storage.stop()
            self._started = False

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await asyncio.get_running_loop().run_in_executor(None, self.start)
                except Exception as exc:
                    log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.get_running_loop().run_in_executor(None, self.stop)
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- ASGI entry ------------------------------------------------------------------------

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            try:
                response = await self._route(scope, receive)
            except BadRequestError as exc:
                response = text(400, str(exc))
            except _MethodNotAllowed as exc:
                response = text(405, f"Method not allowed: use {exc}")
                response.headers += encode_headers([("allow", str(exc))])
            except NotFoundError as exc:
                response = text(404, str(exc) or "Not found")
            except PayloadTooLargeError as exc:
                response = text(413, str(exc))
            except StorageUnavailableError as exc:
                log.error("%s %s: %s", scope["method"], scope["path"], exc)
                response = text(503, str(exc))
            except Exception:
                log.exception("%s %s failed", scope["method"], scope["path"])
                response = text(500, "Internal server error (logged on the server)")
            await self._send(scope, send, response)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _send(self, scope, send, response: Response) -> None:
        body = response.body
        headers = [(b"content-length", b"%d" % len(body)), *response.headers]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        if scope["method"] == "HEAD":
            body = b""
        await send({"type": "http.response.body", "body": body})

    # -- routing ---------------------------------------------------------------------------

    async def _route(self, scope, receive) -> Response:
        path: bytes = scope.get("raw_path") or scope["path"].encode()
        path = path.split(b"?", 1)[0]
        method = scope["method"]
        if path == b"/healthz":
            self._allow(method, "GET")
            return await self._healthz()
        if path == b"/openapi.json":
            self._allow(method, "GET")
            return self._openapi()
        prefix = self._prefix
        if not path.startswith(prefix) or (len(path) > len(prefix) and path[len(prefix)] != 47):
            return text(404, "Not found")
        rest = path[len(prefix) + 1 :]
        if not rest:
            self._allow(method, "GET")
            return await self._list(_params(scope))
        parts = [_segment(part) for part in rest.split(b"/")]
        if "" in parts:
            return text(404, "Not found")
        key = commits.validate_key(parts[0])
        if len(parts) == 1:
            self._allow(method, "GET")
            return await self._get(key, None, meta=False)
        if len(parts) == 2:
            if parts[1] == "meta":
                self._allow(method, "GET")
                return await self._get(key, None, meta=True)
            if parts[1] == "history":
                self._allow(method, "GET")
                return await self._history(key, _params(scope))
            version = parse_version(parts[1])
            if method == "POST":
                return await self._post(scope, receive, key, version)
            self._allow(method, "GET", "POST")
            return await self._get(key, version, meta=False)
        if len(parts) == 3 and parts[2] == "meta":
            version = parse_version(parts[1])
            self._allow(method, "GET")
            return await self._get(key, version, meta=True)
        return text(404, "Not found")

    @staticmethod
    def _allow(method: str, *allowed: str) -> None:
        if method in allowed or (method == "HEAD" and "GET" in allowed):
            return
        raise _MethodNotAllowed(allowed)

    async def _in_thread(self, function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)

    # -- reads -----------------------------------------------------------------------------

    async def _healthz(self) -> Response:
        try:
            await self._in_thread(self.storage.ping)
        except StorageUnavailableError as exc:
            return json_response(503, {"status": "unavailable", "database": str(exc)})
        if self.zookeeper is not None:
            # Still 200 without ZooKeeper: commits are journaled and published once it is back.
            return json_response(
                200, {"status": "ok", "database": "ok", "zookeeper": self.zookeeper.health()}
            )
        return json_response(200, {"status": "ok", "database": "ok"})

    def _openapi(self) -> Response:
        if self._openapi_response is None:
            self._openapi_response = Response(
                200, openapi.description_json(self.config.prefix), wire.JSON
            )
        return self._openapi_response

    async def _list(self, params: dict[str, str]) -> Response:
        every = wire.flag(params, "all")
        utf8 = wire.flag(params, "payload_utf8")
        b64 = wire.flag(params, "payload_base64")
        if self.mirror is not None and not every:  # the mirror holds no empty commits
            # Read the generation before the heads, so a body is never filed as newer than it is.
            if self._list_generation != self.mirror.generation:
                self._list_cache = {}
                self._list_generation = self.mirror.generation
            body = self._list_cache.get((every, utf8, b64))
            if body is None:
                body = self._list_cache[every, utf8, b64] = _list_body(
                    self.mirror.heads(), utf8, b64
                )
            return Response(200, body, wire.JSON, [(wire.HEADER_CACHED, "Yes")])
        if self.cache is not None:
            # The body only changes with the heads: keep it per flag combination.
            if self._list_generation != self.cache.generation:
                self._list_cache = {}
                self._list_generation = self.cache.generation
            body = self._list_cache.get((every, utf8, b64))
            if body is None:
                heads = self.cache.heads() if every else self.cache.non_empty_heads()
                body = self._list_cache[every, utf8, b64] = _list_body(heads, utf8, b64)
            return Response(200, body, wire.JSON)
        heads = await self._in_thread(self.storage.heads if every else self.storage.non_empty_heads)
        return Response(200, _list_body(heads, utf8, b64), wire.JSON)

    async def _get(self, key: str, version: int | None, meta: bool) -> Response:
        if self.mirror is not None and version is None:
            mirrored = self.mirror.head(key)
            if mirrored is not None:
                return self._rendered(mirrored, meta, cached=True)
        if self.cache is None:
            found = await self._in_thread(self.storage.get, key, version)
            if found is None:
                return text(404, "Key not found")
            return _commit_response(found, meta)
        found = self.cache.head(key)
        if found is None:
            return text(404, "Key not found")
        if version is not None and version != found.version:
            older = 1 <= version < found.version
            found = await self._in_thread(self.storage.get, key, version) if older else None
            if found is None:
                return text(404, "Key not found")
            return _commit_response(found, meta)
        return self._rendered(found, meta, cached=False)

    def _rendered(self, head: Commit, meta: bool, cached: bool) -> Response:
        """The response for a head held in memory, rendered once per head and reused.

        Head reads are the hot path: rendering the headers and the metadata JSON costs more
        than the rest of the request, and a head only changes when a commit replaces it.
        """
        memo = self._head_memo.get((head.key, cached))
        if memo is None or memo[0] is not head:
            extra = [(wire.HEADER_CACHED, "Yes")] if cached else []
            memo = (head, _commit_response(head, False, extra), _commit_response(head, True, extra))
            if len(self._head_memo) >= _HEAD_MEMO_SIZE:
                self._head_memo.clear()
            self._head_memo[head.key, cached] = memo
        return memo[2] if meta else memo[1]

    async def _history(self, key: str, params: dict[str, str]) -> Response:
        limit = parse_positive(params, "limit")
        before = parse_positive(params, "before")
        utf8 = wire.flag(params, "payload_utf8")
        b64 = wire.flag(params, "payload_base64")
        found = await self._in_thread(self.storage.history, key, limit, before)
        if not found:
            # An empty page of an existing key is a 200; a key with no commits is a 404.
            if self.cache is not None:
                head = self.cache.head(key)
            else:
                head = await self._in_thread(self.storage.get, key, None)
            if head is None:
                return text(404, "Key not found")
        return json_response(200, [wire.meta_with_payload(c, utf8, b64) for c in found])

    # -- writes ----------------------------------------------------------------------------

    async def _post(self, scope, receive, key: str, version: int) -> Response:
        headers = _headers(scope)
        if headers.get("x-rainer-key", key) != key:
            raise BadRequestError("X-Rainer-Key must match URL key, or be omitted")
        sent_version = headers.get("x-rainer-version")
        if sent_version is not None and sent_version.strip() != str(version):
            raise BadRequestError("X-Rainer-Version must match URL version, or be omitted")
        author = headers.get("x-rainer-author")
        if author is None:
            raise BadRequestError("Missing header: X-Rainer-Author")
        comment = headers.get("x-rainer-comment", "")
        empty = wire.parse_yes_no(headers.get("x-rainer-empty", "no"))
        if empty is None:
            raise BadRequestError("Malformed header: X-Rainer-Empty (should be yes or no)")
        mtime_text = headers.get("x-rainer-modified-time")
        if mtime_text is None:
            mtime = commits.now()
        else:
            try:
                mtime = commits.parse_mtime(mtime_text)
            except ValueError:
                raise BadRequestError(
                    "Malformed header: X-Rainer-Modified-Time (should be ISO-8601, "
                    "e.g. 2014-02-11T14:01:28.839-08:00)"
                ) from None
        body = await self._read_body(headers, receive)
        if empty:
            if body:
                raise BadRequestError("Empty payload required with X-Rainer-Empty")
            payload = None
        else:
            self._validate(body)
            payload = body
        commit = Commit(key, version, payload, author, comment, mtime)
        if self.zookeeper is not None:
            self.zookeeper.check(commit)  # 400/413 for what could never reach ZooKeeper
        try:
            await self.committer.save_async(commit)
        except CommitOrderingError as exc:
            return Response(
                409,
                wire.conflict_body(exc.key, exc.expected_version, exc.provided_version),
                wire.JSON,
            )
        return json_response(200, commit.meta())

    async def _read_body(self, headers: dict[str, str], receive) -> bytes:
        limit = self.config.max_payload_bytes
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLargeError(f"Payload too large: more than {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise BadRequestError("Client went away before the whole payload arrived")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLargeError(f"Payload too large: more than {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _validate(self, payload: bytes) -> None:
        if self.config.validate == "none":
            return
        try:
            if self.config.validate == "json":
                json.loads(payload)
            else:
                yaml.safe_load(payload)
        except (ValueError, yaml.YAMLError) as exc:
            reason = " ".join(str(exc).split())
            raise BadRequestError(f"Malformed input: {reason}") from None


class _MethodNotAllowed(Exception):
    def __init__(self, allowed: tuple[str, ...]) -> None:
        super().__init__(", ".join(allowed))
        self.allowed = allowed


def _segment(raw: bytes) -> str:
    if b"%" not in raw and raw.isascii():
        return raw.decode("ascii")
    try:
        return unquote(raw.decode("utf-8"), errors="strict")
    except UnicodeError:
        raise BadRequestError("Invalid path: not percent-encoded UTF-8") from None


def _params(scope) -> dict[str, str]:
    query = scope.get("query_string", b"")
    if not query:
        return {}
    return dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True))


def _headers(scope) -> dict[str, str]:
    found = {}
    for name, value in scope["headers"]:
        try:
            found[name.decode("latin-1").lower()] = value.decode("utf-8")
        except UnicodeDecodeError:
            found[name.decode("latin-1").lower()] = value.decode("latin-1")
    return found


def _commit_response(
    commit: Commit, meta: bool, extra: list[tuple[str, str]] | None = None
) -> Response:
    if meta:
        return Response(200, wire.json_body(commit.meta()), wire.JSON, extra or [])
    payload = commit.payload or b""
    headers = wire.commit_headers(commit) + (extra or [])
    return Response(200, payload, wire.content_type(payload), headers)


def _list_body(heads: dict[str, Commit], utf8: bool, b64: bool) -> bytes:
    return wire.json_body(
        {key: wire.meta_with_payload(heads[key], utf8, b64) for key in sorted(heads)}
    )
