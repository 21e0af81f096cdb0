"""``RainerClient``: the Python client of the Rainer HTTP API, shaped like pyrainer's.

A pyrainer script runs after changing only its import::

    from rainer.client import RainerClient

    client = RainerClient("http://rainer.example.com:8080/diary")
    commit = client.get_commit("my-config")
    print(commit.version, commit.author, commit.value)

Values are ``bytes`` (pyrainer's Python 2 ``str``); ``RainerCommit.text`` decodes them. Beyond
pyrainer: ``history()``, a timeout, TLS options, a kept-alive connection per thread, and typed
errors that are both an HTTP answer (``status``, ``body``) and its meaning (``NotFoundError``,
``CommitOrderingError``, ...). Only the standard library is used, so scripts need nothing else.
"""

from __future__ import annotations

import base64
import http.client
import json
import select
import socket
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote, urlencode, urlsplit

from rainer import wire
from rainer.commit import validate_key
from rainer.errors import (
    BadRequestError,
    CommitOrderingError,
    HttpStatusError,
    NotFoundError,
    PayloadTooLargeError,
    RainerError,
    StorageUnavailableError,
    UnreachableError,
)

__all__ = [
    "RainerBadRequestError",
    "RainerClient",
    "RainerCommit",
    "RainerConflictError",
    "RainerNotFoundError",
    "RainerPayloadTooLargeError",
    "RainerServerError",
    "UnreachableError",
]

DEFAULT_TIMEOUT = 30.0
#: Commits asked for per history request: the most a server gives in one page.
HISTORY_PAGE = wire.HISTORY_LIMIT_MAX


class RainerCommit:
    """One commit as pyrainer shaped it: the metadata dict ``meta`` and the payload ``value``.

    ``value`` is None exactly when the commit is empty (a tombstone); otherwise it is bytes.
    """

    def __init__(self, meta: Mapping[str, Any], value: bytes | str | None) -> None:
        self.meta: dict[str, Any] = dict(meta)
        self.value: bytes | None = value.encode("utf-8") if isinstance(value, str) else value
        empty = bool(self.meta.get("empty", False))
        if empty and self.value is not None:
            raise ValueError("a value was given, so 'empty' should be false, but it is true")
        if not empty and self.value is None:
            raise ValueError("no value was given, so 'empty' should be true, but it is false")

    @property
    def key(self) -> str:
        return self.meta["key"]

    @property
    def version(self) -> int:
        return self.meta["version"]

    @property
    def author(self) -> str:
        return self.meta["author"]

    @property
    def comment(self) -> str:
        return self.meta["comment"]

    @property
    def mtime(self) -> str:
        """ISO-8601 text exactly as the server sent it, e.g. ``2014-02-11T14:01:28.839-08:00``."""
        return self.meta["mtime"]

    @property
    def empty(self) -> bool:
        return bool(self.meta.get("empty", False))

    @property
    def text(self) -> str | None:
        """The value decoded as UTF-8 (undecodable bytes replaced); None for an empty commit."""
        return None if self.value is None else self.value.decode("utf-8", "replace")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RainerCommit):
            return NotImplemented
        return self.meta == other.meta and self.value == other.value

    __hash__ = None  # type: ignore[assignment]  # mutable, like pyrainer's

    def __repr__(self) -> str:
        size = "empty" if self.value is None else f"{len(self.value):,} bytes"
        return f"RainerCommit({self.meta.get('key')!r}, version {self.meta.get('version')}, {size})"


# -- errors: each is both an HTTP answer and the meaning the rest of Rainer uses -------------


class RainerNotFoundError(HttpStatusError, NotFoundError):
    """404: no such key or version (or the URL is not a diary)."""


class RainerBadRequestError(HttpStatusError, BadRequestError):
    """400: the server refused the request; the message is the server's reason."""


class RainerPayloadTooLargeError(HttpStatusError, PayloadTooLargeError):
    """413: the payload is over the server's limit."""


class RainerServerError(HttpStatusError, StorageUnavailableError):
    """5xx: the server failed or its database is unavailable."""


class RainerConflictError(HttpStatusError, CommitOrderingError):
    """409: the version posted is not the key's head plus one; ``expected_version`` is."""

    def __init__(
        self,
        key: str,
        expected_version: int,
        provided_version: int,
        status: int = 409,
        body: bytes = b"",
        url: str = "",
    ) -> None:
        CommitOrderingError.__init__(self, key, expected_version, provided_version)
        self.status = status
        self.body = body
        self.url = url

    def __reduce__(self):
        return (
            type(self),
            (self.key, self.expected_version, self.provided_version, self.status, self.body),
        )


@dataclass(frozen=True)
class Answer:
    """A whole HTTP answer: status, headers and body, and the URL it came from."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes
    url: str

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise HttpStatusError(
                f"not a JSON answer from {self.url}: {_snippet(self.body)}", self.status, self.body
            ) from None


class RainerClient:
    """A client of one Rainer diary, e.g. ``http://host:8080/diary``. Safe to share between
    threads: each thread keeps its own kept-alive connection.

    ``timeout`` is in seconds per request. TLS: ``ca_file`` trusts a private CA, ``cert_file``
    and ``key_file`` present a client certificate, ``verify=False`` turns verification off.
    """

    def __init__(
        self,
        base_uri: str,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        verify: bool = True,
    ) -> None:
        if not base_uri:
            raise ValueError("base_uri is required")
        self.base_uri = base_uri.rstrip("/")
        parts = urlsplit(self.base_uri)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http:// or https:// URL: {base_uri!r}")
        if parts.query or parts.fragment:
            raise ValueError(f"the diary URL cannot have a query or fragment: {base_uri!r}")
        self.timeout = timeout
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path.rstrip("/")
        self._origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
        self._headers = {"User-Agent": "rainer-client", "Accept": "*/*"}
        if parts.username is not None:
            # Credentials in the URL: send them as HTTP Basic, as urllib would have.
            token = f"{parts.username}:{parts.password or ''}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(token).decode()
        self._tls = self._tls_context(ca_file, cert_file, key_file, verify) if self._https else None
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._all_lock = threading.Lock()

    # -- pyrainer's API --------------------------------------------------------------------

    def commit_uri(self, key: str, version: int | None = None) -> str:
        """The URL of ``key``, or of one version of it (key and version percent-encoded)."""
        return self._origin + self._key_path(key, version)

    def list(self, all: bool = False) -> dict[str, dict[str, Any]]:
        """Key → metadata of its newest commit; empty commits only with ``all=True``."""
        return self._get_json(self._prefix or "/", {"all": "yes"} if all else {})

    def list_full(self, all: bool = False) -> dict[str, RainerCommit]:
        """Key → newest commit with its value, in one request."""
        params = {"payload_base64": "yes", **({"all": "yes"} if all else {})}
        found = self._get_json(self._prefix or "/", params)
        return {key: commit_from_json(meta) for key, meta in found.items()}

    def get_commit(self, key: str, version: int | None = None) -> RainerCommit:
        """A commit with its value: the newest, or the one at ``version``."""
        meta = self.get_metadata(key, version)
        # Ask for the value at the version just seen, so a commit in between cannot mix them.
        value = None if meta.get("empty") else self.get_value(key, meta["version"])
        return RainerCommit(meta, value)

    def get_value(self, key: str, version: int | None = None) -> bytes:
        """The payload bytes (empty bytes for an empty commit)."""
        answer = self._request("GET", self._key_path(key, version), key=key, version=version)
        return answer.body

    def get_metadata(self, key: str, version: int | None = None) -> dict[str, Any]:
        """The metadata dict: key, version, author, comment, mtime, empty."""
        path = self._key_path(key, version) + "/meta"
        return self._request("GET", path, key=key, version=version).json()

    def post_commit(
        self, metadata: Mapping[str, Any], value: bytes | str | None, *, mtime: str | None = None
    ) -> dict[str, Any]:
        """Commit ``value`` as ``metadata["version"]`` of ``metadata["key"]``; returns the new
        commit's metadata. ``metadata`` is pyrainer's dict: key, version, author, comment
        (optional) and empty (optional; a true value makes a tombstone and needs no value).
        ``mtime`` (ISO-8601) back-dates the commit; by default the server's clock is used.

        Raises RainerConflictError when the version is not the key's head plus one.
        """
        key = str(metadata["key"])
        version = int(metadata["version"])
        empty = _truthy(metadata.get("empty", False))
        body = value.encode("utf-8") if isinstance(value, str) else (value or b"")
        if empty and body:
            raise BadRequestError("an empty commit (a tombstone) cannot carry a value")
        headers = {
            wire.HEADER_AUTHOR: str(metadata["author"]),
            wire.HEADER_COMMENT: str(metadata.get("comment") or ""),
            wire.HEADER_EMPTY: "yes" if empty else "no",
            "Content-Type": wire.BINARY,
        }
        if mtime is not None:
            headers[wire.HEADER_MTIME] = mtime
        path = self._key_path(key, version)
        return self._request("POST", path, body, headers, key=key, version=version).json()

    # -- beyond pyrainer -------------------------------------------------------------------

    def history(
        self, key: str, limit: int | None = None, before: int | None = None
    ) -> list[RainerCommit]:
        """Commits of ``key`` with their values, newest first; only versions below ``before``
        when it is given, at most ``limit`` of them (every one when None).

        The server answers a page at a time (at most ``HISTORY_PAGE`` commits); this asks for
        pages until it has what was asked for.
        """
        path = self._key_path(key) + "/history"
        found: list[RainerCommit] = []
        while limit is None or len(found) < limit:
            page = HISTORY_PAGE if limit is None else min(HISTORY_PAGE, limit - len(found))
            params = {"payload_base64": "yes", "limit": str(page)}
            if before is not None:
                params["before"] = str(before)
            metas = self._get_json(path, params, key=key)
            found += [commit_from_json(meta) for meta in metas]
            if len(metas) < page or not metas:
                break
            before = found[-1].version
        return found

    def ping(self) -> None:
        """Raise unless the server answers. Uses ``/healthz``; a server without one (the
        original) counts as up when it answers at all."""
        answer = self._request("GET", "/healthz", check=False)
        if answer.status >= 500:
            self._raise(answer, None, None)

    def close(self) -> None:
        """Close every connection this client opened, in every thread."""
        with self._all_lock:
            connections, self._all = self._all, []
        for connection in connections:
            connection.close()

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
        return f"RainerClient({self.base_uri!r})"

    # -- requests --------------------------------------------------------------------------

    def _key_path(self, key: str, version: int | None = None) -> str:
        # Validating here keeps '' or '..' from quietly addressing the list or another path.
        path = f"{self._prefix}/{quote(validate_key(key), safe='')}"
        return path if version is None else f"{path}/{quote(str(version), safe='')}"

    def _get_json(self, path: str, params: Mapping[str, str], key: str | None = None) -> Any:
        if params:
            path += "?" + urlencode(params)
        return self._request("GET", path, key=key).json()

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        key: str | None = None,
        version: int | None = None,
        check: bool = True,
    ) -> Answer:
        """Send one request on this thread's connection and read the whole answer."""
        url = self._origin + path
        # Header values go out as UTF-8 bytes: http.client would encode str as Latin-1 only.
        sent = {
            name: value.encode("utf-8")
            for name, value in {**self._headers, **(headers or {})}.items()
        }
        for name, value in sent.items():
            if b"\r" in value or b"\n" in value:
                raise BadRequestError(f"{name} must be one line: HTTP headers cannot break lines")
        for attempt in (1, 2):
            connection, reused = self._connection()
            try:
                connection.request(method, path, body=body, headers=sent)
            except (ConnectionError, http.client.HTTPException) as exc:
                # The server closed a kept-alive connection: nothing reached it, send again.
                self._discard(connection)
                if reused and attempt == 1:
                    continue
                raise self._unreachable(exc) from None
            except OSError as exc:
                self._discard(connection)
                raise self._unreachable(exc) from None
            try:
                response = connection.getresponse()
                data = response.read()
            except (ConnectionError, http.client.HTTPException) as exc:
                self._discard(connection)
                # A reused connection dropped before any answer: safe to repeat a read. A
                # commit is not repeated, as the server may have saved it.
                if reused and attempt == 1 and method == "GET":
                    continue
                raise self._unreachable(exc, sent=method != "GET") from None
            except OSError as exc:
                self._discard(connection)
                raise self._unreachable(exc, sent=method != "GET") from None
            if response.will_close:
                self._discard(connection)
            answer = Answer(response.status, response.headers, data, url)
            if check and not 200 <= answer.status < 300:
                self._raise(answer, key, version)
            return answer
        raise AssertionError("unreachable")  # the loop always returns or raises

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is not None and connection.sock is not None:
            if not _is_dropped(connection.sock):
                return connection, True
            self._discard(connection)
        if self._https:
            connection = http.client.HTTPSConnection(
                self._host, self._port, timeout=self.timeout, context=self._tls
            )
        else:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        self._local.connection = connection
        with self._all_lock:
            self._all.append(connection)
        return connection, False

    def _discard(self, connection: http.client.HTTPConnection) -> None:
        connection.close()
        if getattr(self._local, "connection", None) is connection:
            self._local.connection = None
        with self._all_lock:
            if connection in self._all:
                self._all.remove(connection)

    def _unreachable(self, exc: BaseException, sent: bool = False) -> UnreachableError:
        """The error for a failed connection; ``sent`` when a commit went out unanswered."""
        if isinstance(exc, TimeoutError | socket.timeout):
            reason = f"no answer within {self.timeout:g} s"
        elif isinstance(exc, ssl.SSLError):
            reason = f"TLS failed: {exc.reason or exc}"
        elif isinstance(exc, socket.gaierror):
            reason = f"cannot resolve {self._host!r}"
        elif isinstance(exc, ConnectionRefusedError):
            reason = "connection refused"
        else:
            reason = str(exc) or type(exc).__name__
        if sent:
            # The server may have saved the commit before the answer was lost: say so.
            return UnreachableError(
                f"no answer from {self._origin}: {reason}; the commit may or may not have been "
                "saved (look at the key's newest version)"
            )
        return UnreachableError(f"cannot reach {self._origin}: {reason}")

    def _raise(self, answer: Answer, key: str | None, version: int | None) -> None:
        status, body, url = answer.status, answer.body, answer.url
        what = (
            "" if key is None else f"{key!r}" + ("" if version is None else f" version {version}")
        )
        if status == 404:
            if key is None:
                message = (
                    f"not found: {url} (is it a diary's base URL, like http://host:8080/diary?)"
                )
            else:
                message = f"not found: {what}"
            raise RainerNotFoundError(message, status, body, url)
        if status == 409:
            try:
                conflict = json.loads(body)["conflict"]
                expected, provided = (
                    int(conflict["expectedVersion"]),
                    int(conflict["providedVersion"]),
                )
                conflict_key = str(conflict.get("key", key))
            except (ValueError, KeyError, TypeError):
                message = f"conflict on {what}: {_snippet(body)}"
                raise HttpStatusError(message, status, body, url) from None
            raise RainerConflictError(conflict_key, expected, provided, status, body, url)
        reason = _snippet(body)
        if status == 400:
            raise RainerBadRequestError(f"refused: {reason}", status, body, url)
        if status == 413:
            raise RainerPayloadTooLargeError(f"refused: {reason}", status, body, url)
        if status >= 500:
            raise RainerServerError(f"server error {status} at {url}: {reason}", status, body, url)
        raise HttpStatusError(f"unexpected answer {status} from {url}: {reason}", status, body, url)

    @staticmethod
    def _tls_context(
        ca_file: str | None, cert_file: str | None, key_file: str | None, verify: bool
    ) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=ca_file)
        if not verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if cert_file:
            context.load_cert_chain(cert_file, key_file)
        return context


def commit_from_json(meta: Mapping[str, Any]) -> RainerCommit:
    """A RainerCommit from metadata carrying ``payload_base64`` (list and history answers)."""
    try:
        fields = {name: value for name, value in meta.items() if not name.startswith("payload_")}
        if fields.get("empty"):
            return RainerCommit(fields, None)
        return RainerCommit(fields, base64.b64decode(meta.get("payload_base64", "")))
    except (AttributeError, TypeError, ValueError) as exc:
        raise RainerError(f"not a Rainer commit in the answer: {exc}") from None


def _is_dropped(sock: socket.socket) -> bool:
    """True when an idle kept-alive socket was closed by the server (it reads as ready)."""
    try:
        poller = select.poll()  # unlike select(), not limited to descriptors below 1024
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


def _truthy(value: object) -> bool:
    # pyrainer sent str(metadata["empty"]): accept True, "True", "yes", 1 and the like.
    if isinstance(value, str):
        parsed = wire.parse_yes_no(value)
        if parsed is None:
            raise BadRequestError(f"'empty' should be yes or no, not {value!r}")
        return parsed
    return bool(value)


def _snippet(body: bytes, limit: int = 200) -> str:
    text = " ".join(body.decode("utf-8", "replace").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
