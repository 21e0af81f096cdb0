"""``RainerClient``: the Python client of the Rainer HTTP API, shaped like pyrainer's.

A pyrainer script runs after changing only its import::

    from rainer.client import RainerClient

    client = RainerClient("http://rainer.example.com:8080/diary")
    commit = client.get_commit("my-config")
    print(commit.version, commit.author, commit.value)

Values are ``bytes`` (pyrainer's Python 2 ``str``). Beyond pyrainer: ``history()``, timeouts,
retries, TLS options, proxies from the environment, kept-alive connections shared by threads,
and typed errors that are both an HTTP answer (``status``, ``body``) and its meaning; and for
the server's additions: tokens (``token=``, ``whoami()``), bulk reads (``list(keys=…,
prefix=…)``), change sets (``commit_changes()``), blocking reads (``watch()``,
``watch_versions()``) and the change feed (``feed()``).

The HTTP work is urllib3's (pooled keep-alive connections, TLS, proxies); docs/cli.md says why,
with the measurements. The collection's ``plugins/module_utils/_client.py`` speaks the same
vocabulary on ``ansible.module_utils.urls``: the same error classes, defaults, retry rules and
commit attributes, checked by one test suite (tests/package/test_client_contract.py).
"""

from __future__ import annotations

import ast
import base64
import binascii
import builtins
import contextlib
import json
import os
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self, TypedDict, TypeVar
from urllib.parse import quote, unquote, urlencode, urlsplit, urlunsplit

from rainer import __version__, defaults, wire
from rainer.commit import validate_key
from rainer.errors import (
    BadRequestError,
    CommitOrderingError,
    RainerAccessError,
    RainerBadRequestError,
    RainerChangeSetConflictError,
    RainerConflictError,
    RainerError,
    RainerForbiddenError,
    RainerHeaderTooLargeError,
    RainerHTTPError,
    RainerNotFoundError,
    RainerPayloadTooLargeError,
    RainerProtocolError,
    RainerRateLimitedError,
    RainerServerError,
    RainerTLSError,
    RainerUnauthorizedError,
    RainerUnreachableError,
)

if TYPE_CHECKING:
    import urllib3

__all__ = [
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT",
    "FeedEvent",
    "RainerAccessError",
    "RainerBadRequestError",
    "RainerChangeSetConflictError",
    "RainerClient",
    "RainerCommit",
    "RainerConflictError",
    "RainerError",
    "RainerForbiddenError",
    "RainerHTTPError",
    "RainerHeaderTooLargeError",
    "RainerNotFoundError",
    "RainerPayloadTooLargeError",
    "RainerProtocolError",
    "RainerRateLimitedError",
    "RainerServerError",
    "RainerTLSError",
    "RainerUnauthorizedError",
    "RainerUnreachableError",
    "options_from_environment",
    "payload_from_json",
    "payload_json",
    "read_token_file",
    "redact_url",
]

T = TypeVar("T")

#: Seconds to wait for a connection, and then for each read of the answer. Above every bound
#: the server works within (10 s for a request head, for validating a payload and for a
#: graceful stop), so a commit is never given up on while the server is still saving it.
DEFAULT_TIMEOUT = 30.0
#: Extra tries of a read after no answer or a 502/503/504 (and of a commit that did not land).
DEFAULT_RETRIES = 2
#: The pause before the first extra try, doubled before each next one, never above the cap.
RETRY_DELAY = 0.5
RETRY_DELAY_MAX = 5.0
RETRYABLE_STATUSES = frozenset((502, 503, 504))
#: Commits asked for per history request: the most a server gives in one page.
HISTORY_PAGE = wire.HISTORY_LIMIT_MAX
#: Idle kept-alive connections kept per client (threads beyond it open short-lived ones).
POOL_SIZE = 16
USER_AGENT = f"rainer-client/{__version__}"
METADATA_FIELDS = ("key", "version", "author", "comment", "mtime", "empty")
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")
#: Keys a bulk read names per request (the server's bound), and the bytes of query they may take:
#: a request head over 64 KiB is refused, and 1000 long keys, percent-encoded, would be more.
LIST_KEYS_MAX = defaults.MAX_LISTED_KEYS
LIST_QUERY_BYTES = 32 * 1024
#: Changes in one change set: the server's bound (beyond it, 413).
CHANGES_MAX = defaults.MAX_CHANGES
#: The longest a blocking read may wait (the server's bound), and how long watch_versions asks.
WATCH_WAIT_MAX = 600.0
WATCH_WAIT = 300.0
#: The pause before reconnecting a watch doubles up to this; a watch never gives up by itself.
WATCH_RETRY_MAX = 10.0
#: A blocking read answered sooner than this with nothing new (a server that ignores ``index``,
#: such as the original) is asked again only after a pause, so that it is not hammered.
WATCH_TOO_SOON = 1.0
#: Seconds without a byte on the feed before it counts as dropped: the server sends a keep-alive
#: comment every 15 s of quiet, so three of them missed.
FEED_IDLE_TIMEOUT = 45.0


class RainerCommit:
    """One commit: its metadata (``meta``, the dict of the wire contract) and its payload.

    ``payload`` is the bytes (``b""`` for an empty commit, a tombstone) and ``text`` those
    bytes as UTF-8 text, None when they are not UTF-8. ``value`` is pyrainer's name: the
    payload, but None for an empty commit. The collection's ``RainerCommit`` has the same
    attributes (there ``payload`` is also None when a listing was asked without payloads).
    """

    def __init__(self, meta: Mapping[str, Any], value: bytes | str | None) -> None:
        self.meta: dict[str, Any] = dict(meta)
        data = value.encode("utf-8") if isinstance(value, str) else value
        empty = bool(self.meta.get("empty", False))
        if empty and data:
            raise ValueError("a value was given, so 'empty' should be false, but it is true")
        if not empty and data is None:
            raise ValueError("no value was given, so 'empty' should be true, but it is false")
        self.payload: bytes = data or b""

    @property
    def key(self) -> str:
        key: str = self.meta["key"]
        return key

    @property
    def version(self) -> int:
        version: int = self.meta["version"]
        return version

    @property
    def author(self) -> str:
        author: str = self.meta["author"]
        return author

    @property
    def comment(self) -> str:
        comment: str = self.meta["comment"]
        return comment

    @property
    def mtime(self) -> str:
        """ISO-8601 text exactly as the server sent it, e.g. ``2014-02-11T14:01:28.839-08:00``."""
        mtime: str = self.meta["mtime"]
        return mtime

    @property
    def empty(self) -> bool:
        return bool(self.meta.get("empty", False))

    @property
    def value(self) -> bytes | None:
        """pyrainer's value: the payload bytes, None for an empty commit."""
        return None if self.empty else self.payload

    @property
    def text(self) -> str | None:
        """The payload as text when it is UTF-8 ("" for an empty commit), else None."""
        try:
            return self.payload.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RainerCommit):
            return NotImplemented
        return self.meta == other.meta and self.payload == other.payload

    __hash__ = None  # type: ignore[assignment]  # mutable, like pyrainer's

    def __repr__(self) -> str:
        size = "empty" if self.empty else f"{len(self.payload):,} bytes"
        return f"RainerCommit({self.meta.get('key')!r}, version {self.meta.get('version')}, {size})"


class _Answer:
    """A whole HTTP answer: status, headers, body, and the request it answers."""

    __slots__ = ("body", "headers", "method", "status", "url")

    def __init__(self, status: int, headers: Any, body: bytes, method: str, url: str) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.method = method
        self.url = url

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise RainerProtocolError(
                f"not a JSON answer from {self.url}: {_snippet(self.text)}",
                self.status,
                self.text,
                self.url,
                self.method,
            ) from None


class RainerClient:
    """A client of one Rainer diary, e.g. ``http://host:8080/diary``; safe to share between
    threads (connections are pooled and kept alive).

    ``url`` is pyrainer's ``base_uri`` (still the first positional argument; ``base_uri`` is
    kept as an attribute). ``timeout`` is in seconds, for the connection and for each read.
    Reads are tried ``retries`` more times after no answer or a 502/503/504, pausing 0.5 s, then
    1 s, ... (at most 5 s); a commit is tried again only after reading the key showed it did
    not land. TLS: ``ca_path`` trusts a private CA, ``client_cert`` (and ``client_key`` unless
    the same file holds it) presents a client certificate, ``validate_certs=False`` turns
    verification off. ``headers`` go with every request. ``token`` is sent as
    ``Authorization: Bearer TOKEN`` (``rainer serve --auth``); credentials in the URL
    (``https://principal:token@host/diary``) are sent as HTTP Basic instead, and left out of
    ``url``, so that it is safe to print. Proxies come from ``HTTP_PROXY``/``HTTPS_PROXY``/
    ``ALL_PROXY``, unless ``NO_PROXY`` names the host. ``trace``, when given, is called after
    each exchange with the method, the URL, the status (None when no answer came) and the
    seconds it took: what ``rainer --debug`` prints.
    """

    def __init__(
        self,
        url: str,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        retries: int = DEFAULT_RETRIES,
        validate_certs: bool = True,
        ca_path: str | None = None,
        client_cert: str | None = None,
        client_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        retry_delay: float = RETRY_DELAY,
        sleep: Callable[[float], object] = time.sleep,
        token: str | None = None,
        trace: Callable[[str, str, int | None, float], object] | None = None,
    ) -> None:
        if not url:
            raise ValueError("url is required: the diary's base URL, like http://host:8080/diary")
        parts = urlsplit(url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http:// or https:// URL: {redact_url(url)!r}")
        if parts.query or parts.fragment:
            raise ValueError(f"the diary URL cannot have a query or fragment: {redact_url(url)!r}")
        self.timeout = float(timeout)
        self.retries = max(0, int(retries))
        self.retry_delay = retry_delay
        self.sleep = sleep
        self.trace = trace
        self._host = parts.hostname
        self._prefix = parts.path.rstrip("/")
        self._origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
        self.url = self._origin + self._prefix
        self._headers = {"User-Agent": USER_AGENT, "Accept": "*/*", **(headers or {})}
        if parts.username is not None:
            if token is not None:
                raise ValueError("credentials twice: in the URL and as a token; give one")
            # Credentials in the URL: send them as HTTP Basic, as urllib would have.
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self._headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        elif token is not None:
            check_token(token)
            self._headers["Authorization"] = f"Bearer {token}"
        for name, value in self._headers.items():
            if "\r" in value or "\n" in value:
                raise ValueError(f"header {name} must be one line")
        self.has_credentials = "Authorization" in self._headers or bool(client_cert)
        tls = None
        if parts.scheme == "https":
            tls = _tls_context(ca_path, client_cert, client_key, validate_certs)
        self._pool = _pool_manager(parts.scheme, parts.hostname, self.timeout, tls)
        self._get_retries = _retries_for_reads()

    @property
    def base_uri(self) -> str:
        """pyrainer's name of ``url`` (without credentials)."""
        return self.url

    # -- pyrainer's API --------------------------------------------------------------------

    def commit_uri(self, key: str, version: int | None = None) -> str:
        """The URL of ``key``, or of one version of it (key and version percent-encoded)."""
        return self._origin + self._key_path(key, version)

    def list(
        self,
        all: bool = False,
        keys: Iterable[str] | None = None,
        prefix: str | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Key → metadata of its newest commit; empty commits only with ``all=True``.

        ``keys`` reads just those keys (absent ones are left out; no keys, no request), and
        ``prefix`` just the keys that start with it; both need a server with bulk reads (the
        original answers every key). Many keys are asked for a thousand at a time.
        """
        return self._list(all, keys, prefix, payloads=False)

    def list_full(
        self,
        all: bool = False,
        keys: Iterable[str] | None = None,
        prefix: str | None = None,
    ) -> dict[str, RainerCommit]:
        """Key → newest commit with its value, in one request (per thousand ``keys``)."""
        found = self._list(all, keys, prefix, payloads=True)
        return {key: commit_from_json(meta) for key, meta in found.items()}

    def _list(
        self, every: bool, keys: Iterable[str] | None, prefix: str | None, payloads: bool
    ) -> dict[str, dict[str, Any]]:
        params = self._scope(keys=None, prefix=prefix, every=every, payloads=payloads)
        if keys is None:
            return self._list_page(params)
        found: dict[str, dict[str, Any]] = {}
        for batch in _key_batches(self._checked_keys(keys)):
            found.update(self._list_page(params + [("key", key) for key in batch]))
        return found

    def _list_page(self, params: builtins.list[tuple[str, str]]) -> dict[str, dict[str, Any]]:
        found = self._read(_with_query(self._prefix or "/", params)).json()
        if not isinstance(found, dict):
            where = self._origin + (self._prefix or "/")
            raise RainerProtocolError(f"not a list of keys from {where}", url=where)
        return found

    def _scope(
        self,
        keys: Iterable[str] | None,
        prefix: str | None,
        every: bool = False,
        payloads: bool = False,
    ) -> builtins.list[tuple[str, str]]:
        """The query parameters of a list, a blocking list or a feed."""
        params: list[tuple[str, str]] = []
        if every:
            params.append(("all", "yes"))
        if payloads:
            params.append(("payload_base64", "yes"))
        if prefix is not None:
            params.append(("prefix", prefix))
        params += [("key", key) for key in keys or ()]
        return params

    def _checked_keys(self, keys: Iterable[str]) -> builtins.list[str]:
        """``keys`` once each, in order, every one a valid key (else RainerBadRequestError)."""
        wanted = list(dict.fromkeys(keys))
        for key in wanted:
            self._key_path(key)
        return wanted

    def get_commit(self, key: str, version: int | None = None) -> RainerCommit:
        """A commit with its value: the newest, or the one at ``version``. One request: the
        payload's answer carries the metadata in its ``X-Rainer-*`` headers."""
        answer = self._read(self._key_path(key, version), key=key, version=version)
        meta = _meta_from_headers(answer)
        return RainerCommit(meta, None if meta["empty"] else answer.body)

    def get_value(self, key: str, version: int | None = None) -> bytes:
        """The payload bytes (empty bytes for an empty commit)."""
        return self._read(self._key_path(key, version), key=key, version=version).body

    def get_metadata(self, key: str, version: int | None = None) -> dict[str, Any]:
        """The metadata dict: key, version, author, comment, mtime, empty."""
        path = self._key_path(key, version) + "/meta"
        meta: dict[str, Any] = self._read(path, key=key, version=version).json()
        return meta

    def post_commit(
        self, metadata: Mapping[str, Any], value: bytes | str | None, *, mtime: str | None = None
    ) -> dict[str, Any]:
        """Commit ``value`` as ``metadata["version"]`` of ``metadata["key"]``; returns the new
        commit's metadata. ``metadata`` is pyrainer's dict: key, version, author, comment
        (optional) and empty (optional; a true value makes a tombstone and needs no value).
        ``mtime`` (ISO-8601) back-dates the commit; by default the server's clock is used.
        An author of None is not sent: a server with ``--auth`` records the principal.

        Raises RainerConflictError when the version is not the key's head plus one. A post
        that got no answer (or a 502/503/504) is never sent again blindly: the version is read
        back, and only when it is not there is the commit posted again.
        """
        key = str(metadata["key"])
        version = int(metadata["version"])
        author = None if metadata.get("author") is None else str(metadata["author"])
        empty = _truthy(metadata.get("empty", False))
        body = value.encode("utf-8") if isinstance(value, str) else (value or b"")
        if empty and body:
            raise RainerBadRequestError("an empty commit (a tombstone) cannot carry a value")
        headers = _write_headers(author, str(metadata.get("comment") or ""), mtime)
        headers[wire.HEADER_EMPTY] = "yes" if empty else "no"
        headers["Content-Type"] = wire.BINARY
        path = self._key_path(key, version)
        return self._write(
            lambda: self._send("POST", path, body, headers, key=key, version=version).json(),
            lambda: self._landed(key, version, body, empty, author),
            f"this commit was not saved: version {version} of {key!r} is another commit",
        )

    def _write(
        self, send: Callable[[], T], landed: Callable[[], T | Literal[False] | None], taken: str
    ) -> T:
        """Send a write; after no answer (or a 502/503/504), read back whether it landed
        (``landed``: what it returned when it did, False when another write took its place,
        None when it is not there) and send it again only when it did not."""
        attempt = 0
        while True:
            try:
                return send()
            except CommitOrderingError as conflict:
                # After a post that got no answer, a conflict may be that post, landed late.
                if attempt:
                    with contextlib.suppress(RainerError):
                        found = landed()
                        if found:
                            return found
                raise conflict
            except RainerError as exc:
                if not _retryable(exc):
                    raise
                failure = exc
            try:
                found = landed()
            except RainerError as reread:
                raise _unsure(failure, reread) from None
            if found:
                return found
            if attempt >= self.retries:
                if found is False:
                    failure.args = (f"{failure}; {taken}",)
                    raise failure from None
                raise failure
            self._pause(attempt)
            attempt += 1

    # -- beyond pyrainer -------------------------------------------------------------------

    def commit_changes(
        self,
        changes: Iterable[Mapping[str, Any]],
        author: str | None = None,
        comment: str = "",
        mtime: str | None = None,
    ) -> builtins.list[dict[str, Any]]:
        """Commit a change set: every change, or none of them (``POST /diary``); returns the
        new commits' metadata in order.

        Each change is a mapping with ``key``, ``version`` (the key's head plus one) and either
        ``payload`` (bytes or str) or ``empty: True`` (a tombstone), and optionally its own
        ``comment``. ``author`` of None is not sent (a server with ``--auth`` records the
        principal). Raises RainerChangeSetConflictError, naming every stale key, when any
        version is not its key's head plus one; nothing is saved then. At most 1000 changes.
        """
        items: list[dict[str, Any]] = []
        for change in changes:
            items.append(_change_json(change))
            self._key_path(items[-1]["key"])  # a key that can never exist is refused here
        if not items:
            raise RainerBadRequestError("a change set needs at least one change")
        if len(items) > CHANGES_MAX:
            raise RainerBadRequestError(
                f"a change set holds at most {CHANGES_MAX} changes, not {len(items)}"
            )
        body = json.dumps({"changes": items}, ensure_ascii=False).encode("utf-8")
        headers = _write_headers(author, comment, mtime)
        headers["Content-Type"] = "application/json"
        path = self._prefix or "/"
        first = items[0]
        return self._write(
            lambda: self._send("POST", path, body, headers).json(),
            lambda: self._changes_landed(items, author),
            f"this change set was not saved: version {first['version']} of "
            f"{first['key']!r} is another commit",
        )

    def _changes_landed(
        self, items: builtins.list[dict[str, Any]], author: str | None
    ) -> builtins.list[dict[str, Any]] | Literal[False] | None:
        """Whether a change set that got no answer was saved. It is all or nothing, so its
        first change tells; the metadata of the others is then read too."""
        first = items[0]
        found = self._landed(
            first["key"],
            first["version"],
            b"" if "empty" in first else payload_from_json(first),
            "empty" in first,
            author,
        )
        if not isinstance(found, dict):
            return found
        return [found] + [self.get_metadata(i["key"], i["version"]) for i in items[1:]]

    def whoami(self) -> dict[str, Any] | None:
        """Who the server takes this client for: ``{"principal", "roles", "admin", "read",
        "write"}`` (``GET /whoami``); None when the server checks no credentials (it runs
        without ``--auth``, or is the original, which has no such route)."""
        answer = self._read("/whoami", check=False)
        if answer.status == 404:
            return None
        if answer.status >= 400:
            self._raise(answer, None, None)
        found = answer.json()
        if not isinstance(found, dict) or "principal" not in found:
            raise RainerProtocolError(f"not an answer to /whoami from {answer.url}", url=answer.url)
        return found

    def history(
        self, key: str, limit: int | None = None, before: int | None = None
    ) -> builtins.list[RainerCommit]:
        """Commits of ``key`` with their values, newest first; only versions below ``before``
        when it is given, at most ``limit`` of them (every one when None).

        The server answers a page at a time (at most ``HISTORY_PAGE`` commits); this asks for
        page after page, each below the oldest version of the one before, until it has them.
        """
        path = self._key_path(key) + "/history"
        found: list[RainerCommit] = []
        while limit is None or len(found) < limit:
            page = HISTORY_PAGE if limit is None else min(HISTORY_PAGE, limit - len(found))
            params = {"payload_base64": "yes", "limit": str(page)}
            if before is not None:
                params["before"] = str(before)
            answer = self._read(_with_query(path, params), key=key)
            metas = answer.json()
            if not isinstance(metas, list):
                raise RainerProtocolError(f"not a history from {answer.url}", url=answer.url)
            found += [commit_from_json(meta) for meta in metas]
            if not metas or (len(metas) < page and not _has_next(answer.headers)):
                break
            before = found[-1].version
        return found

    def watch(self, key: str, index: int = 0, wait: float = WATCH_WAIT) -> RainerCommit | None:
        """Wait until ``key``'s newest version is above ``index`` (a tombstone counts), or
        until ``wait`` seconds (at most 600) have passed; then return its newest commit, with
        its value (so, after the wait, perhaps one at ``index`` or below), or None when the key
        has no commits. A blocking read of the server's (``?index=&wait=``).

        A dropped connection or a 502/503/504 is tried again, pausing 0.5 s, 1 s, ... (at most
        10 s), for as long as the wait lasts; after that the last error is raised.
        """
        deadline = time.monotonic() + min(max(0.0, wait), WATCH_WAIT_MAX)
        attempt = 0
        while True:
            try:
                # The payload's blocking read: its headers carry the metadata, so one request.
                answer = self._wait(key, "", index, max(0.0, deadline - time.monotonic()))
                break
            except RainerNotFoundError:
                return None
            except RainerError as exc:
                if not _retryable(exc) or time.monotonic() >= deadline:
                    raise
            self.sleep(min(self._watch_delay(attempt), max(0.0, deadline - time.monotonic())))
            attempt += 1
        meta = _meta_from_headers(answer)
        return RainerCommit(meta, None if meta["empty"] else answer.body)

    def watch_versions(
        self,
        key: str,
        index: int = 0,
        on_retry: Callable[[RainerError, float], object] | None = None,
    ) -> Iterator[RainerCommit]:
        """Every version of ``key`` above ``index`` as it is committed, oldest first, with
        its value; never ends by itself. Versions committed close together come all, each
        once (the history fills the gap between two blocking reads).

        A dropped connection, a server that is down or a 502/503/504 is waited out: the read
        is made again after 0.5 s, 1 s, ... (at most 10 s), forever; ``on_retry`` hears of
        each such error and the pause. Any other error (401, 403, 400, ...) is raised.
        """
        last = index
        attempt = 0
        while True:
            began = time.monotonic()
            try:
                try:
                    head = int(self._wait_meta(key, last, WATCH_WAIT)["version"])
                except RainerNotFoundError:
                    head = 0  # no commits yet: the server waited the whole wait
                news = [] if head <= last else self.history(key, head - last, head + 1)
            except RainerError as exc:
                if not _retryable(exc):
                    raise
                delay = self._watch_delay(attempt)
                if on_retry is not None:
                    on_retry(exc, delay)
                self.sleep(delay)
                attempt += 1
                continue
            attempt = 0
            if not news and time.monotonic() - began < WATCH_TOO_SOON:
                self.sleep(WATCH_TOO_SOON)
            for commit in reversed(news):
                if commit.version > last:
                    last = commit.version
                    yield commit

    def _wait_meta(self, key: str, index: int, wait: float) -> dict[str, Any]:
        """One blocking read of ``key``'s metadata."""
        answer = self._wait(key, "/meta", index, wait)
        meta = answer.json()
        if not isinstance(meta, dict) or "version" not in meta:
            raise RainerProtocolError(f"not a commit's metadata from {answer.url}")
        return meta

    def _wait(self, key: str, suffix: str, index: int, wait: float) -> _Answer:
        """One blocking read of ``key`` (its payload, or with ``suffix`` "/meta" its metadata)."""
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ValueError(f"index must be a version, 0 or more: {index!r}")
        path = _with_query(
            self._key_path(key) + suffix, [("index", str(index)), ("wait", _wait_text(wait))]
        )
        # The server holds the answer for the wait plus up to a sixteenth (its jitter).
        patience = wait * 17 / 16 + self.timeout
        return self._send("GET", path, key=key, read_timeout=patience)

    def _watch_delay(self, attempt: int) -> float:
        # Never zero, even with retry_delay=0: a watch that cannot reach its server must not spin.
        return min(max(self.retry_delay, 0.1) * 2.0**attempt, WATCH_RETRY_MAX)

    def feed(
        self,
        prefix: str | None = None,
        keys: Iterable[str] | None = None,
        last_event_id: int | None = None,
        payloads: bool = False,
        on_retry: Callable[[RainerError, float], object] | None = None,
    ) -> Iterator[FeedEvent]:
        """The server's change feed (``GET /diary?watch=yes``): a FeedEvent per commit in the
        scope (``prefix``, ``keys``; every key the caller may read by default), from the one
        after ``last_event_id`` (by default from now on), with its payload when ``payloads``.
        Never ends by itself; close the iterator to stop it.

        A feed that is cut (a dropped connection, a server stopping or down, nothing heard for
        45 s) is opened again after 0.5 s, 1 s, ... (at most 10 s), resuming with
        ``Last-Event-ID``, so no commit is missed (the few filled in from the server's
        database when it fell behind may come twice); ``on_retry`` hears of each cut.
        When the server no longer knows the events after that id, it says so and this lists
        the scope again: the iterator yields a ``reset`` event whose ``heads`` are the newest
        commit of every key in the scope (tombstones included), then goes on.
        """
        wanted = None if keys is None else self._checked_keys(keys)
        if wanted is not None and not 0 < len(wanted) <= LIST_KEYS_MAX:
            raise ValueError(f"a feed watches 1 to {LIST_KEYS_MAX} keys, not {len(wanted)}")
        scope = self._scope(wanted, prefix, payloads=payloads)
        path = _with_query(self._prefix or "/", [("watch", "yes"), *scope])
        last = last_event_id
        attempt = 0
        while True:
            try:
                if last is None:
                    # Where the feed starts: a cut before the first event then resumes here.
                    last = self.list_index(prefix, wanted)
                url, response = self._open_stream(path, {"Last-Event-ID": str(last)})
            except RainerError as exc:
                if not _retryable(exc):
                    raise
                cut: RainerError = exc
            else:
                attempt = 0
                try:
                    for fields in _server_sent_events(response):
                        event = self._feed_event(fields, last, wanted, prefix, payloads)
                        if event is not None:
                            last = event.index
                            yield event
                    cut = RainerUnreachableError(f"the feed from {self._origin} ended", url)
                except _stream_errors() as exc:
                    cut = self._unreachable(exc, "GET", url)
                finally:
                    response.release_conn()
                    response.close()
            delay = self._watch_delay(attempt)
            if on_retry is not None:
                on_retry(cut, delay)
            self.sleep(delay)
            attempt += 1

    def _feed_event(
        self,
        fields: dict[str, str],
        last: int,
        keys: builtins.list[str] | None,
        prefix: str | None,
        payloads: bool,
    ) -> FeedEvent | None:
        """The FeedEvent of one server-sent event; None for an event of no known kind. An
        event without an id keeps the ``last`` one, as EventSource does: the server leaves it
        off commits it filled in from its database but the last of them, so resuming from the
        last id seen repeats those rather than miss them."""
        kind = fields.get("event", "message")
        try:
            index = int(fields["id"]) if "id" in fields else last
            data = json.loads(fields.get("data", ""))
        except ValueError:
            raise RainerProtocolError(f"not a Rainer feed event: {_snippet(str(fields))}") from None
        if kind == "commit" and isinstance(data, dict):
            return _event_from_meta(index, data)
        if kind == "reset":
            heads = self._list(True, keys, prefix, payloads)
            return FeedEvent(
                "reset", index, heads=tuple(_event_from_meta(index, m) for m in heads.values())
            )
        return None

    def list_index(self, prefix: str | None = None, keys: Iterable[str] | None = None) -> int:
        """Where the list of this scope stands (its ``X-Rainer-Index``): give it to ``feed``
        as ``last_event_id`` to have every commit after this moment. One HEAD request."""
        wanted = None if keys is None else self._checked_keys(keys)
        path = _with_query(self._prefix or "/", self._scope(wanted, prefix))
        answer = self._send("HEAD", path)
        text = answer.headers.get(wire.HEADER_INDEX, "")
        if not text.isdigit():
            raise RainerProtocolError(
                f"no {wire.HEADER_INDEX} from {answer.url}: the server has no watch", url=answer.url
            )
        return int(text)

    def ping(self) -> None:
        """Raise unless the server answers. Uses ``/healthz``; a server without one (the
        original) counts as up when it answers at all."""
        self._read("/healthz", check=False)

    def close(self) -> None:
        """Close every kept-alive connection of this client."""
        self._pool.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RainerClient({self._origin + self._prefix!r})"  # without credentials

    # -- requests --------------------------------------------------------------------------

    def _key_path(self, key: str, version: int | None = None) -> str:
        # Validating here keeps '' or '..' from quietly addressing the list or another path.
        try:
            validate_key(key)
        except BadRequestError as exc:
            raise RainerBadRequestError(str(exc)) from None
        path = f"{self._prefix}/{quote(key, safe='')}"
        return path if version is None else f"{path}/{quote(str(version), safe='')}"

    def _read(
        self, path: str, *, key: str | None = None, version: int | None = None, check: bool = True
    ) -> _Answer:
        """A GET, tried again after no answer or a 502/503/504 (``retries`` times)."""
        attempt = 0
        while True:
            try:
                return self._send("GET", path, key=key, version=version, check=check)
            except RainerError as exc:
                if attempt >= self.retries or not _retryable(exc):
                    raise
            self._pause(attempt)
            attempt += 1

    def _pause(self, attempt: int) -> None:
        if self.retry_delay:
            self.sleep(min(self.retry_delay * 2**attempt, RETRY_DELAY_MAX))

    def _send(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        key: str | None = None,
        version: int | None = None,
        check: bool = True,
        read_timeout: float | None = None,
    ) -> _Answer:
        """One request, its whole answer read. An error status raises (typed); with ``check``
        false only a 5xx does. ``read_timeout`` replaces ``timeout`` for reading the answer
        (a blocking read is answered late on purpose)."""
        url, response = self._urlopen(method, path, body, headers, read_timeout, stream=False)
        answer = _Answer(response.status, response.headers, response.data, method, url)
        if not 200 <= answer.status < 300 and (check or answer.status >= 500):
            self._raise(answer, key, version)
        return answer

    def _open_stream(
        self, path: str, headers: Mapping[str, str]
    ) -> tuple[str, urllib3.BaseHTTPResponse]:
        """A GET whose answer is read as it comes (the feed); an error status raises."""
        url, response = self._urlopen("GET", path, None, headers, FEED_IDLE_TIMEOUT, stream=True)
        if not 200 <= response.status < 300:
            try:
                data = response.read()
            except _stream_errors() as exc:
                raise self._unreachable(exc, "GET", url) from None
            finally:
                response.release_conn()
            self._raise(_Answer(response.status, response.headers, data, "GET", url), None, None)
        return url, response

    def _urlopen(
        self,
        method: str,
        path: str,
        body: bytes | None,
        headers: Mapping[str, str] | None,
        read_timeout: float | None,
        stream: bool,
    ) -> tuple[str, urllib3.BaseHTTPResponse]:
        import urllib3

        url = self._origin + path
        # Header values go out as UTF-8 bytes: http.client would encode str as Latin-1 only.
        sent: dict[str, bytes] = {}
        for name, value in {**self._headers, **(headers or {})}.items():
            if "\r" in value or "\n" in value:
                raise RainerBadRequestError(
                    f"{name} must be one line: HTTP headers cannot break lines"
                )
            sent[name] = value.encode("utf-8")
        options: dict[str, Any] = {}
        if read_timeout is not None:
            options["timeout"] = urllib3.Timeout(connect=self.timeout, read=read_timeout)
        began = time.monotonic()
        try:
            response = self._pool.urlopen(
                method,
                url,
                body=body,
                headers=sent,  # http.client sends bytes as they are
                # Redirects of reads are followed (as urllib followed them for pyrainer);
                # every other retry is this client's own, the same as the collection's.
                retries=self._get_retries if method in ("GET", "HEAD") else False,
                redirect=method in ("GET", "HEAD"),
                preload_content=not stream,
                **options,
            )
        except urllib3.exceptions.HTTPError as exc:
            self._traced(method, url, None, began)
            raise self._unreachable(exc, method, url) from None
        self._traced(method, url, response.status, began)
        return url, response

    def _traced(self, method: str, url: str, status: int | None, began: float) -> None:
        if self.trace is not None:
            self.trace(method, url, status, time.monotonic() - began)

    def _unreachable(self, exc: BaseException, method: str, url: str) -> RainerUnreachableError:
        """The error for an exchange that got no answer."""
        reason, tls = _reason(exc, self.timeout, self._host)
        kind = RainerTLSError if tls else RainerUnreachableError
        return kind(f"cannot reach {self._origin}: {reason}", url, method)

    def _raise(self, answer: _Answer, key: str | None, version: int | None) -> None:
        status, text, url, method = answer.status, answer.text, answer.url, answer.method
        what = f"{key!r}" + ("" if version is None else f" version {version}")
        details = (status, text, url, method)
        if status == 404:
            message = f"not found: {what}"
            if key is None:
                message = f"not found: {url} (is it a diary's base URL, like http://host/diary?)"
            raise RainerNotFoundError(message, *details)
        if status == 409:
            try:
                found = json.loads(answer.body)
                if "conflicts" in found:  # a change set's: every stale key
                    stale = [_conflict(item, None) for item in found["conflicts"]]
                    raise RainerChangeSetConflictError(stale, *details)
                conflict = _conflict(found["conflict"], key)
            except (ValueError, KeyError, TypeError):
                message = f"a 409 without a Rainer conflict from {url}: {_snippet(text)}"
                raise RainerProtocolError(message, *details) from None
            raise RainerConflictError(
                conflict.key, conflict.expected_version, conflict.provided_version, *details
            )
        reason = _snippet(text)
        if status in (401, 403):
            kind = RainerUnauthorizedError if status == 401 else RainerForbiddenError
            raise kind(f"refused ({status}): {reason}", *details, **_refusal(text, key))
        kinds: dict[int, type[RainerHTTPError]] = {
            400: RainerBadRequestError,
            413: RainerPayloadTooLargeError,
            431: RainerHeaderTooLargeError,
        }
        if status in kinds:
            raise kinds[status](f"refused ({status}): {reason}", *details)
        if status == 429:
            error = RainerRateLimitedError(f"refused (429): {reason}", *details)
            retry_after = answer.headers.get("Retry-After", "")
            if retry_after.isdigit():
                error.retry_after = float(retry_after)
                error.args = (f"{error}; the server asks to wait {retry_after} s",)
            raise error
        if status >= 500:
            raise RainerServerError(f"server error {status} at {url}: {reason}", *details)
        raise RainerHTTPError(f"unexpected answer {status} from {url}: {reason}", *details)

    def _landed(
        self, key: str, version: int, payload: bytes, empty: bool, author: str | None
    ) -> dict[str, Any] | Literal[False] | None:
        """After a post without a clear answer: the metadata of ``version`` when it holds this
        commit (same author, payload and emptiness; any author when none was sent, as the
        server then recorded the principal), False when it holds another one, None when it is
        not there."""
        try:
            found = self.get_commit(key, version)
        except RainerNotFoundError:
            return None
        same = found.payload == payload or empty
        ours = found.empty == empty and author in (None, found.author) and same
        return {name: found.meta.get(name) for name in METADATA_FIELDS} if ours else False


@dataclass(frozen=True)
class FeedEvent:
    """One event of ``RainerClient.feed()``.

    ``kind`` is ``"commit"``: ``meta`` is the commit's metadata and ``payload`` its bytes
    when the feed was asked for payloads (else None; None for a tombstone too); or
    ``"reset"``: the server could not resume, the scope was listed again, and ``heads`` holds
    a commit event for the newest commit of each key in it. ``index`` is where the feed stands
    (the event id, to resume from with ``last_event_id``).
    """

    kind: str
    index: int
    meta: dict[str, Any] | None = None
    payload: bytes | None = None
    heads: tuple[FeedEvent, ...] = ()

    @property
    def key(self) -> str | None:
        return None if self.meta is None else self.meta.get("key")

    @property
    def version(self) -> int | None:
        return None if self.meta is None else self.meta.get("version")


def _meta_from_headers(answer: _Answer) -> dict[str, Any]:
    """The metadata of a payload's answer, from its ``X-Rainer-*`` headers (UTF-8 on the wire,
    which the HTTP library hands over decoded as Latin-1)."""

    def text(name: str) -> str | None:
        value = answer.headers.get(name)
        if value is None:
            return None
        try:
            return str(value).encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            return str(value)

    version, key, author = (
        text(wire.HEADER_VERSION),
        text(wire.HEADER_KEY),
        text(wire.HEADER_AUTHOR),
    )
    mtime = text(wire.HEADER_MTIME)
    if (
        version is None
        or not version.isascii()
        or not version.isdigit()
        or None in (key, author, mtime)
    ):
        raise RainerProtocolError(
            f"no Rainer metadata headers in the answer from {answer.url}",
            answer.status,
            answer.text[:200],
            answer.url,
            answer.method,
        )
    return {
        "key": key,
        "version": int(version),
        "author": author,
        "comment": text(wire.HEADER_COMMENT) or "",
        "mtime": mtime,
        "empty": (text(wire.HEADER_EMPTY) or "").strip().lower() == "yes",
    }


def _event_from_meta(index: int, meta: Mapping[str, Any]) -> FeedEvent:
    """A commit event from metadata that may carry ``payload_base64``."""
    fields = {name: value for name, value in meta.items() if not name.startswith("payload_")}
    payload = None
    if "payload_base64" in meta and not fields.get("empty"):
        try:
            payload = base64.b64decode(meta["payload_base64"], validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise RainerProtocolError("not base64: the payload of a feed event") from None
    return FeedEvent("commit", index, fields, payload)


def _server_sent_events(response: urllib3.BaseHTTPResponse) -> Iterator[dict[str, str]]:
    """The fields of each event of a ``text/event-stream`` answer, as they arrive (comments
    skipped; several ``data`` lines joined with newlines, as EventSource does)."""
    buffer = b""
    fields: dict[str, str] = {}
    data: list[str] = []
    while True:
        # read1 hands over what has arrived, without waiting to fill a buffer.
        chunk = response.read1(65536)
        if not chunk:
            return
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for raw in lines:
            line = raw.rstrip(b"\r").decode("utf-8", "replace")
            if not line:
                if data:
                    yield {**fields, "data": "\n".join(data)}
                fields, data = {}, []
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "data":
                    data.append(value)
                else:
                    fields[name] = value


def commit_from_json(meta: Mapping[str, Any]) -> RainerCommit:
    """A RainerCommit from metadata carrying ``payload_base64`` (list and history answers)."""
    try:
        fields = {name: value for name, value in meta.items() if not name.startswith("payload_")}
        if fields.get("empty"):
            return RainerCommit(fields, None)
        return RainerCommit(fields, base64.b64decode(meta.get("payload_base64", "")))
    except (AttributeError, TypeError, ValueError) as exc:
        raise RainerProtocolError(f"not a Rainer commit in the answer: {exc}") from None


# -- the parts of a client that are not per request --------------------------------------------


def _retries_for_reads() -> urllib3.Retry:
    """urllib3's retry settings for a GET: follow up to five redirects (as urllib followed them
    for pyrainer), and raise every failure at once, for the client's own rule to decide."""
    import urllib3

    return urllib3.Retry(total=None, connect=False, read=False, other=0, status=0, redirect=5)


def _pool_manager(
    scheme: str, host: str, timeout: float, tls: ssl.SSLContext | None
) -> urllib3.PoolManager:
    """Kept-alive connections to the diary's origin, through a proxy when the environment
    names one for it (``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY``, honouring ``NO_PROXY``)."""
    import urllib3

    options: dict[str, Any] = {
        "timeout": urllib3.Timeout(connect=timeout, read=timeout),
        "maxsize": POOL_SIZE,
        "block": False,
        "retries": False,
    }
    if tls is not None:
        options["ssl_context"] = tls
    proxy = _proxy_for(scheme, host)
    if proxy is None:
        return urllib3.PoolManager(num_pools=4, **options)
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    proxy_headers = {}
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        proxy_headers = urllib3.make_headers(proxy_basic_auth=credentials)
    bare = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
    return urllib3.ProxyManager(bare, num_pools=4, proxy_headers=proxy_headers, **options)


def _proxy_for(scheme: str, host: str) -> str | None:
    """The proxy the environment names for ``scheme://host``, as urllib and requests read it."""
    if not any(os.environ.get(name) or os.environ.get(name.upper()) for name in _PROXY_VARIABLES):
        return None  # the usual case, without importing urllib.request
    import urllib.request

    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(scheme) or proxies.get("all")
    # typeshed leaves out proxy_bypass_environment (undocumented, but what proxy_bypass calls).
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    if not proxy or bypass(host, proxies):
        return None
    return proxy


def _tls_context(
    ca_path: str | None, client_cert: str | None, client_key: str | None, validate_certs: bool
) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_path)
    if not validate_certs:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if client_cert:
        context.load_cert_chain(client_cert, client_key)
    return context


def _reason(exc: BaseException, timeout: float, host: str) -> tuple[str, bool]:
    """Why an exchange got no answer, in a few words, and whether TLS failed."""
    import urllib3

    errors = urllib3.exceptions
    if isinstance(exc, errors.MaxRetryError) and exc.reason is not None:
        return _reason(exc.reason, timeout, host)
    if isinstance(exc, errors.ProxyError):
        inner, tls = _reason(exc.original_error, timeout, host)
        return f"the proxy failed: {inner}", tls
    if isinstance(exc, errors.SSLError):
        cause = exc.__cause__ or (exc.args[0] if exc.args else exc)
        return f"TLS failed: {getattr(cause, 'reason', None) or cause}", True
    if isinstance(exc, errors.NameResolutionError):
        return f"cannot resolve {host!r}", False
    if isinstance(exc, errors.NewConnectionError):
        cause = exc.__cause__
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused", False
        if isinstance(cause, TimeoutError | socket.timeout):
            return f"no answer within {timeout:g} s", False
        return _os_reason(cause) if isinstance(cause, OSError) else str(exc), False
    if isinstance(exc, errors.TimeoutError):
        return f"no answer within {timeout:g} s", False
    if isinstance(exc, errors.ProtocolError):
        cause = exc.args[1] if len(exc.args) > 1 else None
        if isinstance(cause, OSError):
            return _os_reason(cause), False
        return "the connection closed before an answer came", False
    return str(exc) or type(exc).__name__, False


def _os_reason(exc: OSError) -> str:
    """An OSError in words, without the ``[Errno N]`` prefix."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    return str(exc) or "the connection closed before an answer came"


def _retryable(error: RainerError) -> bool:
    """No answer (but not a TLS failure, which trying again cannot change), or 502/503/504."""
    if isinstance(error, RainerTLSError):
        return False
    if isinstance(error, RainerUnreachableError):
        return True
    return isinstance(error, RainerServerError) and error.status in RETRYABLE_STATUSES


def _unsure(failure: RainerError, reread: RainerError) -> RainerError:
    """``failure`` of a post, saying that whether the commit was saved is not known."""
    failure.args = (
        f"{failure}; the commit may or may not have been saved: reading it back failed too "
        f"({reread})",
    )
    return failure


def _has_next(headers: Any) -> bool:
    """Whether a ``Link`` header names a next page."""
    return any('rel="next"' in link for link in headers.getlist("Link"))


def _with_query(path: str, params: Mapping[str, str] | Sequence[tuple[str, str]]) -> str:
    """``path?name=value&...``, every name and value percent-encoded (a key's ``+``, ``&`` or
    ``,`` included: a comma is part of a key, not a separator)."""
    pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
    if not pairs:
        return path
    return path + "?" + urlencode(pairs, quote_via=lambda text, *_: quote(text, safe=""))


def _key_batches(keys: Sequence[str]) -> Iterator[list[str]]:
    """``keys`` in runs a bulk read can name in one request."""
    batch: list[str] = []
    size = 0
    for key in keys:
        length = len(quote(key, safe="")) + len("&key=")
        if batch and (len(batch) >= LIST_KEYS_MAX or size + length > LIST_QUERY_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(key)
        size += length
    if batch:
        yield batch


def _wait_text(seconds: float) -> str:
    """A blocking read's ``wait`` parameter: whole milliseconds, within the server's bound."""
    return f"{round(min(max(0.0, seconds), WATCH_WAIT_MAX) * 1000)}ms"


def _conflict(item: Mapping[str, Any], key: str | None) -> CommitOrderingError:
    """A conflict of a 409's JSON: ``{key, expectedVersion, providedVersion}``."""
    return CommitOrderingError(
        str(item["key"] if key is None else item.get("key", key)),
        int(item["expectedVersion"]),
        int(item["providedVersion"]),
    )


_FORBIDDEN = re.compile(r"Forbidden: (?P<principal>.+?) may not (?P<what>.+)")
_REQUIRED = re.compile(r"Authentication required to (?P<permission>\w+) (?P<key>.+)")
_PERMISSION = re.compile(r"(?P<permission>read|write) (?P<key>.+)")


class _Refusal(TypedDict):
    """Who a 401 or 403 refused, for what and on which key: RainerAccessError's keywords."""

    principal: str | None
    permission: str | None
    key: str | None


def _refusal(text: str, key: str | None) -> _Refusal:
    """The principal, the permission and the key a 401 or 403 names (None for those it does
    not): ``Forbidden: ci-bot may not write 'db.x'``, ``... may not commit as 'alice'``,
    ``Authentication required to read 'k'``."""
    found: _Refusal = {"principal": None, "permission": None, "key": key}
    required = _REQUIRED.fullmatch(text.strip())
    if required:
        return {"principal": "anonymous", "permission": required["permission"],
                "key": _unquoted(required["key"])}  # fmt: skip
    forbidden = _FORBIDDEN.fullmatch(text.strip())
    if forbidden:
        found["principal"] = forbidden["principal"]
        permission = _PERMISSION.fullmatch(forbidden["what"])
        if permission:
            found["permission"] = permission["permission"]
            found["key"] = _unquoted(permission["key"])
        else:
            found["permission"] = forbidden["what"]  # commit as 'NAME'
    return found


def _unquoted(text: str) -> str:
    """A key as the server quotes it in a message (Python's repr), unquoted."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    return value if isinstance(value, str) else text


def _write_headers(author: str | None, comment: str, mtime: str | None) -> dict[str, str]:
    """The headers of a commit or a change set; no author header when there is no author."""
    headers = {wire.HEADER_COMMENT: comment}
    if author is not None:
        headers[wire.HEADER_AUTHOR] = author
    if mtime is not None:
        headers[wire.HEADER_MTIME] = mtime
    return headers


def _change_json(change: Mapping[str, Any]) -> dict[str, Any]:
    """A change of ``commit_changes`` in the JSON of ``POST /diary``."""
    unknown = set(change) - {"key", "version", "payload", "empty", "comment"}
    if unknown:
        raise RainerBadRequestError(f"a change has no field {sorted(unknown)[0]!r}")
    item: dict[str, Any] = {"key": str(change["key"]), "version": int(change["version"])}
    payload = change.get("payload")
    if _truthy(change.get("empty", False)):
        if payload:
            raise RainerBadRequestError(
                f"{item['key']!r}: an empty commit (a tombstone) cannot carry a value"
            )
        item["empty"] = True
    elif isinstance(payload, str):
        item["payload_utf8"] = payload
    elif isinstance(payload, bytes | bytearray):
        item.update(payload_json(bytes(payload)))
    else:
        raise RainerBadRequestError(f"{item['key']!r}: a change needs a payload or empty: true")
    if change.get("comment") is not None:
        item["comment"] = str(change["comment"])
    return item


def payload_json(payload: bytes) -> dict[str, str]:
    """A payload in JSON, as change sets, plans and exports carry it: ``payload_utf8`` when
    it is UTF-8 (readable, and a third shorter than base64), else ``payload_base64``."""
    try:
        return {"payload_utf8": payload.decode("utf-8")}
    except UnicodeDecodeError:
        return {"payload_base64": base64.b64encode(payload).decode("ascii")}


def payload_from_json(item: Mapping[str, Any]) -> bytes:
    """The payload of ``payload_json``'s fields; KeyError without either, ValueError (or
    TypeError) for a malformed one."""
    if "payload_base64" in item:
        return base64.b64decode(item["payload_base64"], validate=True)
    text = item["payload_utf8"]
    if not isinstance(text, str):
        raise TypeError("payload_utf8 must be text")
    return text.encode("utf-8")


# -- credentials and settings ------------------------------------------------------------------


def check_token(token: str) -> str:
    """``token`` when it can go in an Authorization header, else ValueError (which never
    shows the token)."""
    if not token or not token.isprintable() or any(char.isspace() for char in token):
        raise ValueError("the token must be one word of printable characters")
    return token


def read_token_file(path: str, source: str = "the token file") -> str:
    """The token in the file at ``path`` (surrounding whitespace and the newline dropped).
    Errors name ``source`` (the option or variable that gave the path), not the path: a token
    given there by mistake must not be printed."""
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ValueError(f"cannot read {source}: {reason}") from None
    try:
        return check_token(text)
    except ValueError:
        raise ValueError(f"{source} must hold one token on one line") from None


def options_from_environment(
    environ: Mapping[str, str] | None = None, url: str | None = None
) -> dict[str, Any]:
    """RainerClient's credentials and TLS options as the environment gives them: the token
    from ``RAINER_TOKEN`` (or the file ``RAINER_TOKEN_FILE`` names), ``RAINER_CA_FILE``,
    ``RAINER_CLIENT_CERT``, ``RAINER_CLIENT_KEY`` and ``RAINER_INSECURE=yes``. The command line
    reads these, and so does ``rainer serve --database http(s)://...``. Only the options the
    environment sets are in the result; ValueError for a token file that cannot be read.

    For a ``url`` that carries credentials itself (``user:token@``), no token is taken from
    the environment: the URL's are the ones meant for it."""
    env = os.environ if environ is None else environ
    options: dict[str, Any] = {}
    if url is not None and "@" in urlsplit(url).netloc:
        pass
    elif env.get("RAINER_TOKEN"):
        options["token"] = check_token(env["RAINER_TOKEN"].strip())
    elif env.get("RAINER_TOKEN_FILE"):
        options["token"] = read_token_file(
            env["RAINER_TOKEN_FILE"], "the token file RAINER_TOKEN_FILE names"
        )
    for variable, option in (
        ("RAINER_CA_FILE", "ca_path"),
        ("RAINER_CLIENT_CERT", "client_cert"),
        ("RAINER_CLIENT_KEY", "client_key"),
    ):
        if env.get(variable):
            options[option] = env[variable]
    if wire.parse_yes_no(env.get("RAINER_INSECURE", "no")):
        options["validate_certs"] = False
    return options


def redact_url(url: str) -> str:
    """``url`` with any credentials in it replaced by ``***``, for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<a malformed URL>"
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


def _stream_errors() -> tuple[type[BaseException], ...]:
    import urllib3

    return (urllib3.exceptions.HTTPError, OSError)


def _truthy(value: object) -> bool:
    # pyrainer sent str(metadata["empty"]): accept True, "True", "yes", 1 and the like.
    if isinstance(value, str):
        parsed = wire.parse_yes_no(value)
        if parsed is None:
            raise RainerBadRequestError(f"'empty' should be yes or no, not {value!r}")
        return parsed
    return bool(value)


def _snippet(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
