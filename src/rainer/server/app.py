"""The HTTP API: a bare ASGI application serving the original Rainer's wire contract.

No web framework: routing is a split of the path, and the hot paths (head reads from memory) run
on the event loop without a thread hop. Anything that touches the database, renders a large body
or parses a payload runs in a worker thread; commits go through the group committer, which
answers once the commit is durable.

Routes, under the prefix (``/diary`` by default)::

    GET  PREFIX                      heads (?all, ?payload_utf8, ?payload_base64)
    GET  PREFIX/KEY[/VERSION]        payload, with X-Rainer-* headers
    GET  PREFIX/KEY[/VERSION]/meta   metadata JSON
    GET  PREFIX/KEY/history          metadata of the versions, newest first, a page at a time
    POST PREFIX/KEY/VERSION          commit
    GET  /healthz                    200 when the storage answers
    GET  /openapi.json               the OpenAPI description of this API

Heads are read from the server's head view when it has one (``rainer.storage.head_view``): the
head cache of a single-writer database, or the ZooKeeper mirror, whose answers carry
``X-Rainer-Cached: Yes``. Payloads and rendered answers are kept within ``--cache-bytes``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar, TypeVarTuple
from urllib.parse import quote

from rainer import defaults, wire
from rainer.commit import Commit, CommitInfo, now, parse_mtime, validate_key
from rainer.errors import (
    BadRequestError,
    ChangeSetConflictError,
    CommitOrderingError,
    CorruptCommitError,
    NotFoundError,
    PayloadTooLargeError,
    RainerError,
    StorageUnavailableError,
)
from rainer.server import changesets, listing, openapi, validation, watch
from rainer.server.asgi_types import HANG_UP, App, HangUps, Receive, Scope, Send
from rainer.server.audit import AuditLog
from rainer.server.auth import Credentials, Guard, Patterns, Principal
from rainer.server.commit_cache import CommitCache
from rainer.server.group_commit import GroupCommitter
from rainer.server.request import (
    INT_MAX,
    LOOPBACK_NAMES,
    Query,
    decode,
    host_allowed,
    host_name,
    parse_version,
    rainer_headers,
)
from rainer.server.responses import (
    Refused,
    Response,
    allow_method,
    encode_headers,
    json_response,
    meta_response,
    text,
)
from rainer.server.stalls import Stalls
from rainer.server.watch import Change, HungUp, Watch, parse_wait
from rainer.storage.base import SLICE_BYTES, Storage
from rainer.storage.cached import HeadCache
from rainer.storage.head_view import HeadView

log = logging.getLogger(__name__)

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

_CACHED = encode_headers([(wire.HEADER_CACHED, "Yes")])
_UNAVAILABLE_LOG_EVERY = 10.0  # seconds between two log lines about an unavailable database
_PACE_MAX = 0.005  # seconds: the longest pause after a streamed chunk
_GAP_FILL = 100  # the most commits of one key a feed event recovers from the database
#: Heads a list without a view reads by (key, version) when the cache lacks them; more, and
#: it reads every head in one query instead.
_FETCH_INFOS_MAX = 256
#: What one (key, version) of a list's heads holds in memory, beyond the key's characters.
_HEAD_VERSION_BYTES = 136


@dataclass(frozen=True)
class ServerConfig:
    """What ``rainer serve`` was told, less where to listen."""

    prefix: str = defaults.PREFIX
    validate: str = "none"  # none | json | yaml
    max_payload_bytes: int = defaults.MAX_PAYLOAD_BYTES
    #: the memory budget for payloads and rendered answers (see commit_cache)
    cache_bytes: int = defaults.CACHE_BYTES
    #: Host header names accepted (see request.host_allowed); the default suits loopback
    allowed_hosts: tuple[str, ...] = LOOPBACK_NAMES
    #: longest wait for the next piece of a request body
    body_timeout: float = defaults.BODY_TIMEOUT
    #: requests waiting at once (blocking reads, feeds)
    max_watchers: int = defaults.MAX_WATCHERS


class _Facts:
    """What a request turned out to be, for the audit log: filled in as it is handled."""

    __slots__ = ("failed_auth", "key", "principal", "sha256", "size", "version_text", "write")

    def __init__(self) -> None:
        self.write = False
        self.failed_auth = False
        self.principal: str | None = None
        self.key: str | None = None
        self.version_text: str | None = None
        self.size: int | None = None
        self.sha256: str | None = None


class _CutShort(Exception):
    """A streamed answer could not be finished."""


class Streamed:
    """A response whose body is made a chunk at a time in a worker thread (sent chunked)."""

    __slots__ = ("chunks", "headers", "status")

    def __init__(
        self, chunks: Iterator[bytes], content_type: str, headers: list[tuple[str, str]]
    ) -> None:
        self.status = 200
        self.chunks = chunks
        self.headers = encode_headers([("content-type", content_type), *headers])


class Feed:
    """``GET PREFIX?watch=yes``: a server-sent event stream of the commits in a scope."""

    __slots__ = ("b64", "in_scope", "queue", "utf8")

    status = 200
    headers = encode_headers(
        [
            ("content-type", "text/event-stream; charset=UTF-8"),
            ("cache-control", "no-cache"),
            ("x-accel-buffering", "no"),  # a proxy must pass each event on at once
        ]
    )

    def __init__(
        self,
        in_scope: Callable[[str], bool],
        utf8: bool,
        b64: bool,
        queue: asyncio.Queue[list[Change] | None],
    ) -> None:
        self.in_scope = in_scope
        self.utf8 = utf8
        self.b64 = b64
        #: the watch's batches of changes, from when the request was taken (``Watch.feed``)
        self.queue = queue


class RainerApp:
    """The ASGI application. Owns the storage's life cycle through ASGI lifespan events.

    ``view`` is where heads are read from: given for a cluster (the ZooKeeper mirror); made here,
    as a head cache, for a storage no other process writes; otherwise none, and every read asks
    the storage. ``guard`` turns authentication and authorization on; ``audit`` records every
    write attempt.
    """

    def __init__(
        self,
        storage: Storage,
        config: ServerConfig | None = None,
        view: HeadView | None = None,
        guard: Guard | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self.config = config or ServerConfig()
        #: ``--auth``: who may read and commit what (None: everyone may do everything)
        self.guard = guard
        #: ``--audit-log``: one line per write attempt and failed authentication
        self.audit = audit
        if view is None and storage.single_writer:
            storage = storage if isinstance(storage, HeadCache) else HeadCache(storage)
            view = storage
        self.storage = storage
        self.view = view
        self.cache = CommitCache(self.config.cache_bytes)
        self.watch = Watch(self.config.max_watchers)
        if view is not None:
            view.on_commit = self.cache.put  # what the view sees is likely to be read next
            view.on_change = self.watch.changed
        self._own_index = 0  # without a view, watchers hear of this server's own commits
        self.committer = GroupCommitter(storage)
        self.executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="rainer-storage")
        # Lists and histories are rendered on a thread of their own, so that however many are
        # being sent, reads and the health check never wait behind them; and one thread, so
        # that rendering never takes more than its share of the interpreter (see _stream).
        self._rendering = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rainer-render")
        self._health = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rainer-health")
        self.validator = (
            validation.Validator(self.config.validate) if self.config.validate != "none" else None
        )
        self._validating = ThreadPoolExecutor(max_workers=2, thread_name_prefix="rainer-validate")
        self._prefix = self.config.prefix.rstrip("/").encode()
        self._stalls = Stalls(self.config.body_timeout)
        self._payloads = _Payloads(self.storage, self.cache)
        #: Bodies up to this size are made whole (and lists kept in the cache); larger ones are
        #: streamed, so a request in flight holds a few slices, not its whole answer.
        self._whole_bytes = min(self.cache.max_entry_bytes, listing.WHOLE_BYTES)
        self._openapi_response: Response | None = None
        #: The web console's ASGI application, served under /ui/ (None: not served).
        self.console: App | None = None
        self._hosts: dict[bytes, bool] = {}
        self._unavailable_logged = 0.0
        self._started = False

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        if not self._started:
            self.storage.start()
            self.committer.start()
            self._started = True

    def stop(self) -> None:
        if self._started:
            close = getattr(self.console, "close", None)
            if close is not None:
                close()
            self.committer.stop()
            if self.validator is not None:
                self.validator.close()
            for pool in (self._validating, self._rendering, self._health, self.executor):
                pool.shutdown(wait=True)
            self.storage.stop()
            self._started = False

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.watch.bind(asyncio.get_running_loop())
                try:
                    await asyncio.get_running_loop().run_in_executor(None, self.start)
                except Exception as exc:
                    log.error("startup failed: %s", exc)
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.get_running_loop().run_in_executor(None, self.stop)
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- ASGI entry ------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.console is not None and _for_console(scope):
            try:
                self._check_host(scope)
            except Refused as exc:
                await self._send(scope, send, text(exc.status, str(exc), exc.headers))
                return
            await self.console(scope, receive, send)
        elif scope["type"] == "http":
            scope["rainer"] = facts = _Facts()
            try:
                response = await self._route(scope, receive, facts)
            except HungUp:
                return  # a waiting request whose client went away: nobody to answer
            except BadRequestError as exc:
                response = text(400, str(exc))
            except Refused as exc:
                response = text(exc.status, str(exc), exc.headers)
            except NotFoundError as exc:
                response = text(404, str(exc) or "Not found")
            except PayloadTooLargeError as exc:
                response = text(413, str(exc))
            except StorageUnavailableError as exc:
                self._log_unavailable(scope, exc)
                response = text(503, "Database unavailable")
            except CorruptCommitError as exc:
                # The storage logged the row once; the client learns which commit it was.
                response = text(500, _unreadable(exc))
            except Exception:
                log.exception("%s %s failed", scope["method"], scope["path"][:200])
                response = text(500, "Internal server error (logged on the server)")
            if self.audit is not None and (facts.write or facts.failed_auth):
                self._audit_line(scope, facts, response.status)
            await self._send(scope, send, response, receive)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _send(
        self,
        scope: Scope,
        send: Send,
        response: Response | Streamed | Feed,
        receive: Receive | None = None,
    ) -> None:
        head = scope["method"] == "HEAD"
        start = {"type": "http.response.start", "status": response.status}
        if isinstance(response, Feed):
            try:
                await send({**start, "headers": response.headers})
                if not head:
                    await self._feed(scope, send, receive, response)
                await send({"type": "http.response.body", "body": b""})
            finally:
                self.watch.unfeed(response.queue)
            return
        await send({**start, "headers": response.headers})
        if isinstance(response, Streamed):
            if not head:
                try:
                    await self._stream(send, receive, response.chunks)
                except _CutShort:
                    return  # uvicorn closes a connection whose answer was not completed
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.body", "body": b"" if head else response.body})

    async def _stream(self, send: Send, receive: Receive | None, chunks: Iterator[bytes]) -> None:
        """Send ``chunks``, each made on a rendering thread while the previous one is sent, and
        stop making them as soon as the client goes away."""
        loop = asyncio.get_running_loop()
        gone = asyncio.ensure_future(_disconnected(receive))
        try:
            while not gone.done():
                try:
                    chunk = await loop.run_in_executor(self._rendering, _paced, chunks)
                except RainerError as exc:
                    # Too late for an error status: the answer is cut short, which the client
                    # sees as a chunked body that never ends properly.
                    log.warning("A streamed answer was cut short: %s", exc)
                    raise _CutShort from exc
                if chunk is None or gone.done():
                    return
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        finally:
            gone.cancel()
            close = getattr(chunks, "close", None)
            if close is not None:
                await loop.run_in_executor(self._rendering, close)

    def _log_unavailable(self, scope: Scope, exc: StorageUnavailableError) -> None:
        # One line per outage every few seconds, not one per request.
        now = time.monotonic()
        if now - self._unavailable_logged >= _UNAVAILABLE_LOG_EVERY:
            self._unavailable_logged = now
            log.error("%s %s: %s", scope["method"], scope["path"][:200], exc)

    # -- routing ---------------------------------------------------------------------------

    async def _route(
        self, scope: Scope, receive: Receive, facts: _Facts
    ) -> Response | Streamed | Feed:
        self._check_host(scope)
        path: bytes = scope.get("raw_path") or scope["path"].encode()
        path = path.split(b"?", 1)[0]
        method = scope["method"]
        if path == b"/healthz":
            allow_method(method, "GET")
            return await self._healthz()
        if path == b"/openapi.json":
            allow_method(method, "GET")
            return self._openapi()
        prefix = self._prefix
        who = self._identify(scope, facts) if self.guard is not None else None
        if path == b"/whoami":
            allow_method(method, "GET")
            if who is None:
                raise NotFoundError("Not found: the server runs without --auth")
            return json_response(200, who.describe())
        if not path.startswith(prefix) or path[len(prefix) : len(prefix) + 1] not in (b"", b"/"):
            raise NotFoundError("Not found")
        rest = path[len(prefix) + 1 :]
        if not rest:
            if method == "POST":
                facts.write = True
                return await self._changeset(scope, receive, who, facts)
            allow_method(method, "GET", "POST")
            return await self._list(Query(scope["query_string"]), who, _hang_ups(scope, receive))
        if b"/" not in rest:  # the hot path: a head read
            allow_method(method, "GET")
            key = validate_key(decode(rest, "path"))
            if who is not None:
                self._may(who, key, "read")
            if scope["query_string"]:
                query = Query(scope["query_string"])
                await self._block_on_key(key, query, _hang_ups(scope, receive))
            return await self._get(key, None, meta=False)
        parts = [decode(part, "path") for part in rest.split(b"/")]
        if "" in parts or len(parts) > 3:
            raise NotFoundError("Not found")
        key = validate_key(parts[0])
        if len(parts) == 2 and method == "POST" and parts[1] not in ("meta", "history"):
            facts.write = True
            facts.key, facts.version_text = key, parts[1]
            return await self._post(scope, receive, key, parse_version(parts[1]), who, facts)
        if len(parts) == 2 and parts[1] not in ("meta", "history"):
            allow_method(method, "GET", "POST")
        elif len(parts) != 3 or parts[2] == "meta":
            allow_method(method, "GET")
        if who is not None:
            self._may(who, key, "read")
        if len(parts) == 1 or (len(parts) == 2 and parts[1] == "meta"):
            if scope["query_string"]:
                query = Query(scope["query_string"])
                await self._block_on_key(key, query, _hang_ups(scope, receive))
            return await self._get(key, None, meta=len(parts) == 2)
        if len(parts) == 2:
            if parts[1] == "history":
                return await self._history(key, Query(scope["query_string"]))
            return await self._get(key, parse_version(parts[1]), meta=False)
        if parts[2] == "meta":
            return await self._get(key, parse_version(parts[1]), meta=True)
        raise NotFoundError("Not found")

    # -- who may do what (--auth) ----------------------------------------------------------

    def _identify(self, scope: Scope, facts: _Facts) -> Principal:
        """The request's principal, from its Authorization header or its TLS certificate."""
        assert self.guard is not None
        authorization = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
                break
        tls = scope.get("extensions", {}).get("tls", {})
        credentials = Credentials(authorization, tls.get("client_cert_name"))
        address = (scope.get("client") or ("-", 0))[0]
        try:
            who = self.guard.identify(credentials, address)
        except Refused:
            facts.failed_auth = True
            raise
        facts.principal = who.name
        return who

    def _may(self, who: Principal, key: str, permission: str) -> None:
        allowed = who.can_read(key) if permission == "read" else who.can_write(key)
        if not allowed:
            raise Guard.refuse(who, key, permission)

    def _audit_line(self, scope: Scope, facts: _Facts, status: int) -> None:
        self.audit_write(
            principal=facts.principal,
            address=(scope.get("client") or ("-", 0))[0],
            method=scope["method"],
            key=facts.key,
            version=facts.version_text,
            status=status,
            size=facts.size,
            sha256=facts.sha256,
            failed_auth=facts.failed_auth,
        )

    def _check_host(self, scope: Scope) -> None:
        """Refuse Host names the server was not told to answer for: a page that rebinds its own
        name to 127.0.0.1 must not reach a server on loopback (DNS rebinding)."""
        for name, value in scope["headers"]:
            if name == b"host":
                allowed = self._hosts.get(value)
                if allowed is None:
                    allowed = host_allowed(host_name(value), self.config.allowed_hosts)
                    if len(self._hosts) < 256:
                        self._hosts[value] = allowed
                if not allowed:
                    raise Refused(421, "Host not allowed: start the server with --allowed-hosts")
                return

    async def _in_thread(self, function: Callable[[*Ts], T], *args: *Ts) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)

    # -- reads -----------------------------------------------------------------------------

    async def _healthz(self) -> Response:
        try:
            await asyncio.get_running_loop().run_in_executor(self._health, self.storage.ping)
        except StorageUnavailableError as exc:
            log.warning("health check: %s", exc)
            return json_response(503, {"status": "unavailable", "database": "unavailable"})
        # Still 200 without ZooKeeper: commits are journaled and published once it is back.
        watchers = {"waiting": self.watch.waiting, "limit": self.watch.limit}
        health = {"status": "ok", "database": "ok", "watchers": watchers}
        return json_response(200, {**health, **self.storage.status()})

    def _openapi(self) -> Response:
        if self._openapi_response is None:
            body = openapi.description_json(self.config.prefix)
            self._openapi_response = Response(200, body, wire.JSON)
        return self._openapi_response

    async def _get(self, key: str, version: int | None, meta: bool) -> Response:
        view = self.view
        if version is None:
            if view is not None:
                info = view.info(key)
                if info is not None:
                    entry = self.cache.entry(info)
                    if meta:
                        response = entry.meta_response()
                    elif entry.commit is not None:
                        response = entry.payload_response()
                    else:
                        response = await self._load(info)
                    return response if not view.cached else _with_cached(response)
                if view.complete:
                    raise NotFoundError("Key not found")
            # No view, or a key the mirror lacks (a tombstone, or not seen yet): the database.
            found = await self._in_thread(self.storage.get, key)
            if found is None:
                raise NotFoundError("Key not found")
            entry = self.cache.put(found)
            return entry.meta_response() if meta else entry.payload_response()
        if version < 1 or (view is not None and view.complete and _beyond_head(view, key, version)):
            raise NotFoundError("Key not found")
        cached = self.cache.get(key, version)
        if cached is None or cached.commit is None:
            found = await self._in_thread(self.storage.get, key, version)
            if found is None:
                raise NotFoundError("Key not found")
            cached = self.cache.put(found)
        return cached.meta_response() if meta else cached.payload_response()

    async def _load(self, info: CommitInfo) -> Response:
        """The payload answer for a head the view knows, read from the database."""
        found = await self._in_thread(self.storage.get, info.key, info.version)
        if found is None:  # the database lost what the view saw: nothing to answer with
            raise NotFoundError("Key not found")
        return self.cache.put(found).payload_response()

    async def _list(
        self, query: Query, who: Principal | None, hang_ups: HangUps
    ) -> Response | Streamed | Feed:
        every = query.flag("all")
        utf8 = query.flag("payload_utf8")
        b64 = query.flag("payload_base64")
        keys = query.every("key")
        prefix = query.get("prefix")
        if len(keys) > defaults.MAX_LISTED_KEYS:
            raise BadRequestError(f"Too many keys: at most {defaults.MAX_LISTED_KEYS}")
        for key in keys:
            validate_key(key)
        # With --auth, a list holds only what the caller may read.
        readable = None if who is None or who.read.everything else who.read
        if readable is not None and readable.nothing and who is not None and who.anonymous:
            raise Guard.refuse(who, "*", "read")
        wanted = frozenset(keys)

        def in_scope(key: str) -> bool:
            return (
                (not wanted or key in wanted)
                and (prefix is None or key.startswith(prefix))
                and (readable is None or readable.match(key))
            )

        if query.flag("watch"):
            # Taken (or refused, 503) before the answer starts; let go of when it ends.
            return Feed(in_scope, utf8, b64, self.watch.feed())
        index = self._index()
        if query.get("index") is not None:
            since = query.number("index", 0, 2**63 - 1)
            assert since is not None
            wait = parse_wait(query.get("wait"))
            index = await self._block_on_list(since, in_scope, wait, hang_ups)
        response = await self._list_answer(every, utf8, b64, keys, prefix, readable)
        return _with_index(response, index)

    async def _list_answer(
        self,
        every: bool,
        utf8: bool,
        b64: bool,
        keys: list[str],
        prefix: str | None,
        readable: Patterns | None,
    ) -> Response | Streamed:
        """The list's answer, once it is time to give it."""

        def in_scope(key: str) -> bool:
            return (readable is None or readable.match(key)) and (
                prefix is None or key.startswith(prefix)
            )

        def only_readable(infos: dict[str, CommitInfo]) -> dict[str, CommitInfo]:
            if readable is None and prefix is None:
                return infos
            return {key: info for key, info in infos.items() if in_scope(key)}

        view = self.view
        if keys:  # just those keys, from the view where it knows them
            rendered = await self._render(
                lambda: only_readable(self._some_infos(dict.fromkeys(keys), every)), utf8, b64
            )
            return (
                rendered if isinstance(rendered, Streamed) else Response(200, rendered, wire.JSON)
            )
        if view is not None and (view.complete or not every) and prefix is not None:
            rendered = await self._render(lambda: only_readable(view.infos(every)), utf8, b64)
            return (
                rendered if isinstance(rendered, Streamed) else Response(200, rendered, wire.JSON)
            )
        if view is not None and (view.complete or not every):
            # Read the generation before the heads, so a body is never filed as newer than it is.
            generation = view.generation
            flags = (every, utf8, b64, readable)
            body = self.cache.list_body(generation, flags)
            if body is None:
                rendered = await self._render(lambda: only_readable(view.infos(every)), utf8, b64)
                if isinstance(rendered, Streamed):
                    return rendered
                body = rendered
                self.cache.put_list_body(generation, flags, body)
            response = Response(200, body, wire.JSON)
            return _with_cached(response) if view.cached else response

        # No view: the database is asked, in a worker thread (the rendering thread is for
        # rendering; a query there would make lists wait for each other's round trips). Only
        # the head versions are asked for each time: what a list of those versions renders
        # to never changes, so it is kept, keyed by them, as a view's lists are by generation.
        versions = await self._in_thread(self._head_versions, in_scope)
        flags = (every, utf8, b64, readable)
        body = self.cache.list_body(versions, flags)
        if body is not None:
            return Response(200, body, wire.JSON)
        infos = await self._in_thread(self._infos_of, versions, every)
        rendered = await self._render(lambda: infos, utf8, b64)
        if isinstance(rendered, Streamed):
            return rendered
        # The versions are the body's key: charged too (a tuple, an int and a str per head).
        held = sum(_HEAD_VERSION_BYTES + len(key) for key, _ in versions)
        self.cache.put_list_body(versions, flags, rendered, held)
        return Response(200, rendered, wire.JSON)

    def _head_versions(self, in_scope: Callable[[str], bool]) -> tuple[tuple[str, int], ...]:
        """In a worker thread: the (key, version) of each head in scope, tombstones included."""
        versions = self.storage.head_versions()
        return tuple(sorted((key, v) for key, v in versions.items() if in_scope(key)))

    def _infos_of(
        self, versions: tuple[tuple[str, int], ...], every: bool
    ) -> dict[str, CommitInfo]:
        """In a worker thread: the metadata of each (key, version), from the commit cache where
        it is (a commit never changes), so only heads not seen before are read and decoded."""
        found: dict[str, CommitInfo] = {}
        missing = []
        for key, version in versions:
            entry = self.cache.get(key, version)
            if entry is not None:
                found[key] = entry.info
            else:
                missing.append((key, version))
        fetched: Iterable[CommitInfo] = ()
        if len(missing) > _FETCH_INFOS_MAX:
            # Most of them (a first list, or a budget too small to keep them): one query for
            # every head beats a query per few dozen. A head newer than ``versions`` is as
            # good: the list is a snapshot either way.
            wanted = dict(missing)
            fetched = [i for i in self.storage.head_infos(include_empty=True) if i.key in wanted]
        elif missing:
            fetched = self.storage.get_many_infos(missing).values()
        for info in fetched:
            self.cache.entry(info)
            found[info.key] = info
        return {key: info for key, info in found.items() if every or not info.empty}

    def _some_infos(self, keys: Iterable[str], every: bool) -> dict[str, CommitInfo]:
        """In a worker thread: the heads of ``keys`` that exist (tombstones with ``every``)."""
        found: dict[str, CommitInfo] = {}
        view = self.view
        missing = []
        for key in keys:
            try:
                info = view.info(key) if view is not None else None
            except CorruptCommitError:
                continue
            if info is not None:
                found[key] = info
            elif view is None or not view.complete:
                missing.append(key)
        if missing:
            versions = {key: self.storage.head_version(key) for key in missing}
            wanted = [(key, v) for key, v in versions.items() if v is not None]
            for (key, _), commit in self.storage.get_many(wanted).items():
                found[key] = commit.info()
        return {key: info for key, info in found.items() if every or not info.empty}

    # -- watching ----------------------------------------------------------------------------

    async def _feed(self, scope: Scope, send: Send, receive: Receive | None, feed: Feed) -> None:
        """Send commits as server-sent events until the client goes away or the server stops:
        first those after ``Last-Event-ID`` (or a ``reset`` event when they are no longer
        known), then each as it comes, with keep-alive comments in quiet times."""
        queue = feed.queue  # taken before the replay, so nothing falls between the two
        gone = asyncio.ensure_future(_disconnected(receive))
        sent: dict[str, int] = {}  # newest version sent of each key

        async def emit(changes: Iterable[Change]) -> None:
            for change in changes:
                if feed.in_scope(change.key):
                    found = await self._commits_of(change, sent)
                    for position, (index, info) in enumerate(found, start=1):
                        # Commits filled in from the database share their change's index: only
                        # the last carries it as its id, so a client resuming from that id has
                        # had them all, and one cut off before it gets them again.
                        last = position == len(found)
                        data = await self._event(info, feed)
                        await send_event("commit", index if last else None, data)

        async def send_event(kind: str, index: int | None, data: bytes) -> None:
            event = b"event: %s\ndata: %s\n\n" % (kind.encode(), data)
            if index is not None:
                event = b"id: %d\n" % index + event
            await send({"type": "http.response.body", "body": event, "more_body": True})

        try:
            last = _last_event_id(scope)
            recent = list(self.watch.recent)
            current = self._index()
            if last is not None:
                known = not recent or recent[0].index <= last + 1
                if last > current or (not known and last < current):
                    reset = {"reason": "the events after that id are no longer known: list again"}
                    await send_event("reset", current, wire.json_body(reset).rstrip())
                else:
                    await emit(change for change in recent if change.index > last)
            await send({"type": "http.response.body", "body": b": watching\n\n", "more_body": True})
            while not gone.done() and not self.watch.closing:
                getting = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait(
                    {getting, gone}, timeout=watch.KEEP_ALIVE, return_when=asyncio.FIRST_COMPLETED
                )
                if getting not in done:
                    getting.cancel()
                    if not gone.done():
                        keep = {"type": "http.response.body", "body": b": keep-alive\n\n"}
                        await send({**keep, "more_body": True})
                    continue
                batch = getting.result()
                if batch is None:  # the server is stopping
                    return
                await emit(batch)
        finally:
            gone.cancel()

    async def _commits_of(
        self, change: Change, sent: dict[str, int]
    ) -> list[tuple[int, CommitInfo]]:
        """The commits a change stands for, oldest first: a mirror may report two commits of a
        key as one change, or a tombstone as a key that left; the database fills the gap."""
        info = change.info
        if info is not None and info.version == sent.get(change.key, 0) + 1:
            found = [info]
        else:
            newest = info.version if info is not None else await self._head_version(change.key)
            if newest is None or newest <= sent.get(change.key, 0):
                return []
            missing = newest - sent.get(change.key, newest - 1)
            found = await self.read_history(change.key, min(missing, _GAP_FILL), newest + 1)
            found.reverse()
        if found:
            sent[change.key] = found[-1].version
        return [(change.index, found_info) for found_info in found]

    async def _event(self, info: CommitInfo, feed: Feed) -> bytes:
        """A commit's event data: its metadata, with its payload when the feed asked for it."""
        if (feed.utf8 or feed.b64) and not info.empty:
            commit = await self.read_commit(info.key, info.version)
            payload = commit.payload if commit is not None else None
            return wire.json_body(
                wire.meta_with_payload(info, payload, feed.utf8, feed.b64)
            ).rstrip()
        return info.meta_json()

    def _index(self) -> int:
        """The index a list answer carries: the view's, or this server's own commit count."""
        return self.view.index if self.view is not None else self._own_index

    async def _head_version(self, key: str) -> int | None:
        """The newest version of ``key``, tombstones included."""
        view = self.view
        if view is not None:
            try:
                info = view.info(key)
            except CorruptCommitError as exc:
                return exc.version
            if info is not None or view.complete:
                return None if info is None else info.version
        return await self._in_thread(self.storage.head_version, key)

    async def _block_on_key(self, key: str, query: Query, hang_ups: HangUps) -> None:
        """``?index=N&wait=…``: return once ``key``'s newest version is above N (a tombstone
        counts), or when the wait is over."""
        index = query.number("index", 0, INT_MAX)
        wait = parse_wait(query.get("wait"))
        if index is None:
            return
        deadline = time.monotonic() + _jittered(wait)
        while True:
            current = await self._head_version(key)
            remaining = deadline - time.monotonic()
            if (current is not None and current > index) or remaining <= 0:
                return
            if not await self.watch.key(key, lambda _change: True, remaining, hang_ups):
                return

    async def _block_on_list(
        self, since: int, in_scope: Callable[[str], bool], wait: float, hang_ups: HangUps
    ) -> int:
        """``?index=I&wait=…`` on the list: return the index to answer with, once a key in the
        list's scope changed after I (at once when one already has), or when the wait is over.
        """
        current = self._index()
        recent = self.watch.recent
        if current > since and (
            not recent
            or recent[0].index > since + 1  # older than what is remembered: cannot tell
            or any(change.index > since and in_scope(change.key) for change in recent)
        ):
            return current
        if current < since and self.view is not None and not self.view.cached:
            return current  # an index from before this server's journal: start again
        matches = lambda change: change.index > since and in_scope(change.key)  # noqa: E731
        await self.watch.any(matches, _jittered(wait), hang_ups)
        return self._index()

    async def _render(
        self, source: Callable[[], dict[str, CommitInfo]], utf8: bool, b64: bool
    ) -> bytes | Streamed:
        """The body of a list: made whole when it is small enough to keep, else streamed."""

        def whole_or_streamed() -> bytes | Streamed:
            infos = source()
            ordered = [infos[key] for key in sorted(infos)]
            chunks = listing.render_list(ordered, self._payloads, utf8, b64)
            if listing.estimated_size(ordered, utf8, b64) > self._whole_bytes:
                return Streamed(chunks, wire.JSON, [])
            return b"".join(chunks)

        return await asyncio.get_running_loop().run_in_executor(self._rendering, whole_or_streamed)

    async def _history(self, key: str, query: Query) -> Response | Streamed:
        limit = query.number("limit", 1, wire.HISTORY_LIMIT_MAX, wire.HISTORY_LIMIT)
        assert limit is not None
        before = query.number("before", 1, INT_MAX)
        utf8 = query.flag("payload_utf8")
        b64 = query.flag("payload_base64")
        # One more than the page, to know whether there is a next page.
        infos = await self._in_thread(self.storage.history_infos, key, limit + 1, before)
        if not infos and await self._in_thread(self.storage.head_version, key) is None:
            # An empty page of an existing key is a 200; a key with no commits is a 404.
            raise NotFoundError("Key not found")
        page = infos[:limit]
        headers: list[tuple[str, str]] = []
        if len(infos) > limit:
            query_text = f"before={page[-1].version}&limit={limit}"
            query_text += "&payload_utf8=yes" if utf8 else ""
            query_text += "&payload_base64=yes" if b64 else ""
            target = f"{self.config.prefix.rstrip('/')}/{quote(key, safe='')}/history?{query_text}"
            headers.append(("Link", f'<{target}>; rel="next"'))
        chunks = listing.render_history(page, self._payloads, utf8, b64)
        if listing.estimated_size(page, utf8, b64) > self._whole_bytes:
            return Streamed(chunks, wire.JSON, headers)
        loop = asyncio.get_running_loop()
        body = await loop.run_in_executor(self._rendering, b"".join, chunks)
        return Response(200, body, wire.JSON, headers)

    # -- writes ----------------------------------------------------------------------------

    async def _changeset(
        self, scope: Scope, receive: Receive, who: Principal | None, facts: _Facts
    ) -> Response:
        """``POST PREFIX``: many commits, all or nothing."""
        headers = rainer_headers(scope["headers"])
        content_type = _header(scope, b"content-type").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise Refused(415, "A change set is JSON: send it with Content-Type: application/json")
        body = await self._read_body(headers, receive, defaults.MAX_CHANGESET_BYTES)
        facts.size = len(body)
        facts.sha256 = hashlib.sha256(body).hexdigest() if self.audit is not None else None
        loop = asyncio.get_running_loop()
        changes = await loop.run_in_executor(self._validating, changesets.parse, body)
        facts.key = ",".join(change.key for change in changes)
        facts.version_text = ",".join(str(change.version) for change in changes)
        header_author = headers.get("x-rainer-author")
        comment = _comment(headers.get("x-rainer-comment", ""))
        mtime = _mtime(headers.get("x-rainer-modified-time"))
        if who is not None:
            for change in changes:
                self._may(who, change.key, "write")
        author = _author(header_author, who)
        commits = [
            Commit(
                change.key,
                change.version,
                change.payload,
                author,
                comment if change.comment is None else _comment(change.comment),
                mtime,
            )
            for change in changes
        ]
        for commit in commits:
            await self._check(commit)
        if not self.storage.supports_changesets:
            raise Refused(501, "This server's storage cannot save change sets")
        try:
            await self.committer.save_changeset_async(commits)
            self._heard(commits)
        except ChangeSetConflictError as exc:
            return json_response(
                409,
                {
                    "conflicts": [
                        {
                            "key": c.key,
                            "expectedVersion": c.expected_version,
                            "providedVersion": c.provided_version,
                        }
                        for c in exc.conflicts
                    ]
                },
            )
        return json_response(200, [commit.meta() for commit in commits])

    async def _post(
        self,
        scope: Scope,
        receive: Receive,
        key: str,
        version: int,
        who: Principal | None,
        facts: _Facts,
    ) -> Response:
        validate_key(key, new=True)
        headers = rainer_headers(scope["headers"])
        declared = headers.get("content-length", "")
        if declared.isascii() and declared.isdigit():
            facts.size = int(declared)
        if who is not None:
            self._may(who, key, "write")
        if headers.get("x-rainer-key", key) != key:
            raise BadRequestError("X-Rainer-Key must match URL key, or be omitted")
        sent_version = headers.get("x-rainer-version")
        if sent_version is not None and sent_version.strip() != str(version):
            raise BadRequestError("X-Rainer-Version must match URL version, or be omitted")
        author = _author(headers.get("x-rainer-author"), who)
        comment = _comment(headers.get("x-rainer-comment", ""))
        empty = wire.parse_yes_no(headers.get("x-rainer-empty", "no"))
        if empty is None:
            raise BadRequestError("Malformed header: X-Rainer-Empty (should be yes or no)")
        mtime = _mtime(headers.get("x-rainer-modified-time"))
        body = await self._read_body(headers, receive)
        facts.size = len(body)
        facts.sha256 = hashlib.sha256(body).hexdigest() if self.audit is not None else None
        if empty and body:
            raise BadRequestError("Empty payload required with X-Rainer-Empty")
        commit = Commit(key, version, None if empty else body, author, comment, mtime)
        try:
            await self.commit(commit)
        except CommitOrderingError as exc:
            return Response(
                409,
                wire.conflict_body(exc.key, exc.expected_version, exc.provided_version),
                wire.JSON,
            )
        # The metadata JSON made for the stored form: one meta per commit, not two.
        return meta_response(commit)

    async def commit(self, commit: Commit) -> None:
        """Check ``commit`` as every write is checked, and save it; returns once it is durable.

        Raises BadRequestError, PayloadTooLargeError or Refused (431) for a commit the server
        will not take, CommitOrderingError when its version is not the head's plus one.
        """
        await self._check(commit)
        await self.committer.save_async(commit)
        self._heard([commit])

    def _heard(self, commits: list[Commit]) -> None:
        """Without a view, watchers learn of this server's own commits, and only of those."""
        if self.view is None:
            for commit in commits:
                self._own_index += 1
                self.watch.changed([(commit.key, commit.info())], self._own_index)

    async def _check(self, commit: Commit) -> None:
        """Refuse a commit the server will not take, whatever its version."""
        validate_key(commit.key, new=True)
        _author(commit.author)
        _comment(commit.comment)
        if commit.payload is not None:
            if len(commit.payload) > self.config.max_payload_bytes:
                limit = self.config.max_payload_bytes
                raise PayloadTooLargeError(f"Payload too large: more than {limit} bytes")
            if self.validator is not None:
                await self._validate(commit.payload)
        self.storage.check(commit)  # 400/413 for what could never be stored or published

    # -- reads for other front ends (the web console) --------------------------------------

    async def read_infos(self, include_empty: bool = False) -> dict[str, CommitInfo]:
        """The metadata of every key's newest commit (tombstones with ``include_empty``)."""
        view = self.view
        if view is not None and (view.complete or not include_empty):
            return view.infos(include_empty)
        infos = await self._in_thread(self.storage.head_infos, include_empty)
        return {info.key: info for info in infos}

    async def read_commit(self, key: str, version: int | None = None) -> Commit | None:
        """The newest commit of ``key``, or the one at ``version``, with its payload."""
        if version is None and self.view is not None:
            info = self.view.info(key)
            if info is not None:
                version = info.version
            elif self.view.complete:
                return None
        if version is not None:
            entry = self.cache.get(key, version)
            if entry is not None and entry.commit is not None:
                return entry.commit
        found = await self._in_thread(self.storage.get, key, version)
        if found is not None:
            self.cache.put(found)
        return found

    async def read_info(self, key: str) -> CommitInfo | None:
        """The metadata of ``key``'s newest commit (a tombstone included), from the view when it
        knows, otherwise from the storage; None when the key has no commits."""
        view = self.view
        if view is not None:
            info = view.info(key)
            if info is not None or view.complete:
                return info
        found = await self.read_history(key, 1)
        return found[0] if found else None

    async def wait_for_head(self, key: str, above: int, timeout: float) -> CommitInfo | None:
        """``key``'s newest commit once its version is above ``above``, or as it is when
        ``timeout`` seconds have passed (what ``?index=&wait=`` does, for other front ends)."""
        deadline = time.monotonic() + timeout
        while True:
            found = await self.read_info(key)
            remaining = deadline - time.monotonic()
            if (found is not None and found.version > above) or remaining <= 0:
                return found
            if not await self.watch.key(key, lambda _change: True, remaining):
                return await self.read_info(key)

    def audit_write(
        self,
        *,
        principal: str | None,
        address: str,
        method: str,
        key: str | None,
        version: str | None,
        status: int,
        payload: bytes | None = None,
        size: int | None = None,
        sha256: str | None = None,
        failed_auth: bool = False,
    ) -> None:
        """A line in the audit log (when there is one), worded as every other front end's.
        The payload is described by its size and SHA-256 (given, or made from ``payload``)."""
        if self.audit is None:
            return
        if payload is not None:
            size, sha256 = len(payload), hashlib.sha256(payload).hexdigest()
        outcome = (
            "committed" if status == 200 else "authentication failed" if failed_auth else "refused"
        )
        self.audit.write(
            principal=principal,
            address=address,
            method=method,
            key=key,
            version=version,
            status=status,
            outcome=outcome,
            size=size,
            sha256=sha256,
        )

    async def read_history(
        self, key: str, limit: int = wire.HISTORY_LIMIT, before: int | None = None
    ) -> list[CommitInfo]:
        """The metadata of up to ``limit`` commits of ``key``, newest first, below ``before``."""
        return await self._in_thread(self.storage.history_infos, key, limit, before)

    async def _read_body(self, headers: dict[str, str], receive: Receive, limit: int = 0) -> bytes:
        limit = limit or self.config.max_payload_bytes
        declared = headers.get("content-length")
        if (
            declared is not None
            and declared.isascii()
            and declared.isdigit()
            and int(declared) > limit
        ):
            raise PayloadTooLargeError(f"Payload too large: more than {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self._stalls.receive(receive)  # 408 after body_timeout
            if message["type"] == "http.disconnect":
                raise BadRequestError("Client went away before the whole payload arrived")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLargeError(f"Payload too large: more than {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _validate(self, payload: bytes) -> None:
        assert self.validator is not None
        # Large payloads wait for a parsing process on their own threads, never on the storage's.
        pool = self.executor if len(payload) <= defaults.VALIDATE_INLINE_BYTES else self._validating
        loop = asyncio.get_running_loop()
        reason = await loop.run_in_executor(pool, self.validator.check, payload)
        if reason is not None:
            raise BadRequestError(f"Malformed input: {reason}")


def _header(scope: Scope, name: bytes) -> str:
    """A request header's value (Latin-1), or "" when it is absent."""
    headers: Iterable[tuple[bytes, bytes]] = scope["headers"]
    for found, value in headers:
        if found == name:
            return value.decode("latin-1")
    return ""


def _for_console(scope: Scope) -> bool:
    path: str = scope["path"]
    return path == "/ui" or path.startswith("/ui/")


def _beyond_head(view: HeadView, key: str, version: int) -> bool:
    """True when a complete view shows ``key`` has no commit at ``version``."""
    try:
        head = view.info(key)
    except CorruptCommitError as exc:  # the head is unreadable, but its version is known
        return exc.version is not None and version > exc.version
    return head is None or version > head.version


def _with_cached(response: Response) -> Response:
    """The same answer, saying it was drawn from the ZooKeeper mirror."""
    return response.with_headers(_CACHED)


def _unreadable(exc: CorruptCommitError) -> str:
    if exc.key is None:
        return "Unreadable commit (logged on the server)"
    return f"Unreadable commit: key {exc.key!r} version {exc.version} (logged on the server)"


def _author(value: str | None, who: Principal | None = None) -> str:
    """The author a commit records: the header's, or with --auth the proven principal (an
    admin may name someone else, as a release tool committing on a person's behalf does)."""
    if who is not None:
        if value is None or value == who.name:
            return who.name
        if not who.admin:
            raise Refused(403, f"Forbidden: {who.name} may not commit as {value!r}")
    if value is None:
        raise BadRequestError("Missing header: X-Rainer-Author")
    if not value.strip():
        raise BadRequestError("Invalid header: X-Rainer-Author must not be empty")
    _check_length(value, wire.HEADER_AUTHOR, wire.MAX_AUTHOR_BYTES)
    _check_characters(value, wire.HEADER_AUTHOR, allow_tab=False)
    return value


def _comment(value: str) -> str:
    _check_length(value, wire.HEADER_COMMENT, wire.MAX_COMMENT_BYTES)
    _check_characters(value, wire.HEADER_COMMENT, allow_tab=True)
    return value


def _check_length(value: str, header: str, limit: int) -> None:
    if len(value) > limit // 4 and len(value.encode("utf-8")) > limit:
        raise Refused(431, f"Header too large: {header} is longer than {limit} bytes")


def _check_characters(value: str, header: str, allow_tab: bool) -> None:
    # Shown in listings, logs and terminals: control characters could rewrite what is shown.
    if value.isprintable():
        return
    for char in value:
        if (char < " " and not (allow_tab and char == "\t")) or "\x7f" <= char < "\xa0":
            raise BadRequestError(
                f"Invalid header: {header} contains control character U+{ord(char):04X}"
            )


def _mtime(value: str | None) -> datetime:
    if value is None:
        return now()
    try:
        return parse_mtime(value)
    except ValueError:
        raise BadRequestError(
            "Malformed header: X-Rainer-Modified-Time (should be ISO-8601, "
            "e.g. 2014-02-11T14:01:28.839-08:00)"
        ) from None


class _Payloads:
    """Payloads for the renderers: from the memory budget when there, else from the storage,
    small ones a batch at a time and large ones a slice at a time; and the list entries
    rendered of small ones, kept within the budget. Runs on rendering threads."""

    def __init__(self, storage: Storage, cache: CommitCache) -> None:
        self.storage = storage
        self.cache = cache

    def whole(self, infos: Sequence[CommitInfo]) -> dict[tuple[str, int], bytes | None]:
        found: dict[tuple[str, int], bytes | None] = {}
        wanted = []
        for info in infos:
            entry = self.cache.get(info.key, info.version)
            if entry is not None and entry.commit is not None:
                found[info.key, info.version] = entry.commit.payload
            else:
                wanted.append((info.key, info.version))
        if wanted:
            for name, commit in self.storage.get_many(wanted).items():
                found[name] = commit.payload
        return found

    def slices(self, info: CommitInfo) -> Iterator[bytes]:
        entry = self.cache.get(info.key, info.version)
        if entry is not None and entry.commit is not None and entry.commit.payload is not None:
            payload = entry.commit.payload
            return (payload[i : i + SLICE_BYTES] for i in range(0, len(payload), SLICE_BYTES))
        return self.storage.payload_slices(info.key, info.version, info.size)

    def entry(self, info: CommitInfo, utf8: bool, b64: bool) -> bytes | None:
        return self.cache.list_entry(info.key, info.version, (utf8, b64))

    def keep_entry(self, info: CommitInfo, utf8: bool, b64: bool, entry: bytes) -> None:
        self.cache.put_list_entry(info.key, info.version, (utf8, b64), entry)


def _last_event_id(scope: Scope) -> int | None:
    """The ``Last-Event-ID`` a resuming event-stream client sends, when it is a number."""
    text = _header(scope, b"last-event-id").strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) < 20 else None


def _jittered(wait: float) -> float:
    """A wait, plus up to a sixteenth more, so that many watchers do not all wake together."""
    return wait + random.uniform(0, wait / 16)


def _with_index(response: Response | Streamed, index: int) -> Response | Streamed:
    header = encode_headers([(wire.HEADER_INDEX, str(index))])
    if isinstance(response, Streamed):
        response.headers += header
        return response
    return response.with_headers(header)


def _paced(chunks: Iterator[bytes]) -> bytes | None:
    """The next chunk, then a pause twice as long as it took (at most a few milliseconds): large
    answers give way to small ones, as the pause leaves the interpreter to the event loop."""
    began = time.perf_counter()
    chunk = next(chunks, None)
    time.sleep(min(2 * (time.perf_counter() - began), _PACE_MAX))
    return chunk


def _hang_ups(scope: Scope, receive: Receive) -> HangUps:
    """Where a waiting request hears that its client went away: from this server's protocol,
    or, under another server, from ``receive``."""
    found: HangUps | None = scope.get("extensions", {}).get(HANG_UP, {}).get("callbacks")
    return found if found is not None else _HangUpsFromReceive(receive)


class _HangUpsFromReceive:
    """Hang-ups heard through ``receive`` (``http.disconnect``), for servers without the
    protocol's extension: a task reads it while a callback is registered."""

    __slots__ = ("_callbacks", "_receive", "_task")

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._callbacks: set[Callable[[], None]] = set()
        self._task: asyncio.Future[None] | None = None

    def add(self, callback: Callable[[], None], /) -> None:
        self._callbacks.add(callback)
        if self._task is None:
            self._task = asyncio.ensure_future(_disconnected(self._receive))
            self._task.add_done_callback(self._heard)

    def discard(self, callback: Callable[[], None], /) -> None:
        self._callbacks.discard(callback)
        if not self._callbacks and self._task is not None:
            task, self._task = self._task, None
            task.cancel()

    def _heard(self, task: asyncio.Future[None]) -> None:
        if not task.cancelled() and task.exception() is None:
            for callback in list(self._callbacks):
                callback()


async def _disconnected(receive: Receive | None) -> None:
    """Returns once the client has gone away (uvicorn says so through ``receive``); never
    without ``receive`` (until cancelled)."""
    if receive is None:
        await asyncio.Event().wait()  # set by nobody: waits until cancelled
        return
    while (await receive())["type"] != "http.disconnect":
        pass
