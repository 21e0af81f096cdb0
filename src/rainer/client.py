"""``RainerClient``: the Python client of the Rainer HTTP API, shaped like pyrainer's.

A pyrainer script runs after changing only its import::

    from rainer.client import RainerClient

    client = RainerClient("http://rainer.example.com:8080/diary")
    commit = client.get_commit("my-config")
    print(commit.version, commit.author, commit.value)

Values are ``bytes`` (pyrainer's Python 2 ``str``). Beyond pyrainer: ``history()``, timeouts,
retries, TLS options, proxies from the environment, kept-alive connections shared by threads,
and typed errors that are both an HTTP answer (``status``, ``body``) and its meaning.

The HTTP work is urllib3's (pooled keep-alive connections, TLS, proxies); docs/cli.md says why,
with the measurements. The collection's ``plugins/module_utils/client.py`` speaks the same
vocabulary on ``ansible.module_utils.urls``: the same error classes, defaults, retry rules and
commit attributes, checked by one test suite (tests/server/test_client_contract.py).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import quote, unquote, urlencode, urlsplit

from rainer import __version__, wire
from rainer.commit import validate_key
from rainer.errors import (
    BadRequestError,
    RainerBadRequestError,
    RainerConflictError,
    RainerError,
    RainerHeaderTooLargeError,
    RainerHTTPError,
    RainerNotFoundError,
    RainerPayloadTooLargeError,
    RainerProtocolError,
    RainerServerError,
    RainerTLSError,
    RainerUnreachableError,
)

if TYPE_CHECKING:
    import urllib3

__all__ = [
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT",
    "RainerBadRequestError",
    "RainerClient",
    "RainerCommit",
    "RainerConflictError",
    "RainerError",
    "RainerHTTPError",
    "RainerHeaderTooLargeError",
    "RainerNotFoundError",
    "RainerPayloadTooLargeError",
    "RainerProtocolError",
    "RainerServerError",
    "RainerTLSError",
    "RainerUnreachableError",
]

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
    verification off. ``headers`` go with every request. Credentials in the URL are sent as
    HTTP Basic. Proxies come from ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY``, unless
    ``NO_PROXY`` names the host.
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
    ) -> None:
        if not url:
            raise ValueError("url is required: the diary's base URL, like http://host:8080/diary")
        self.url = url.rstrip("/")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http:// or https:// URL: {url!r}")
        if parts.query or parts.fragment:
            raise ValueError(f"the diary URL cannot have a query or fragment: {url!r}")
        self.timeout = float(timeout)
        self.retries = max(0, int(retries))
        self.retry_delay = retry_delay
        self.sleep = sleep
        self._host = parts.hostname
        self._prefix = parts.path.rstrip("/")
        self._origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
        self._headers = {"User-Agent": USER_AGENT, "Accept": "*/*", **(headers or {})}
        if parts.username is not None:
            # Credentials in the URL: send them as HTTP Basic, as urllib would have.
            token = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self._headers["Authorization"] = "Basic " + base64.b64encode(token.encode()).decode()
        for name, value in self._headers.items():
            if "\r" in value or "\n" in value:
                raise ValueError(f"header {name} must be one line")
        tls = None
        if parts.scheme == "https":
            tls = _tls_context(ca_path, client_cert, client_key, validate_certs)
        self._pool = _pool_manager(parts.scheme, parts.hostname, self.timeout, tls)
        self._get_retries = _retries_for_reads()

    @property
    def base_uri(self) -> str:
        """pyrainer's name of ``url``."""
        return self.url

    # -- pyrainer's API --------------------------------------------------------------------

    def commit_uri(self, key: str, version: int | None = None) -> str:
        """The URL of ``key``, or of one version of it (key and version percent-encoded)."""
        return self._origin + self._key_path(key, version)

    def list(self, all: bool = False) -> dict[str, dict[str, Any]]:
        """Key → metadata of its newest commit; empty commits only with ``all=True``."""
        return self._read_json(self._prefix or "/", {"all": "yes"} if all else {})

    def list_full(self, all: bool = False) -> dict[str, RainerCommit]:
        """Key → newest commit with its value, in one request."""
        params = {"payload_base64": "yes", **({"all": "yes"} if all else {})}
        found = self._read_json(self._prefix or "/", params)
        if not isinstance(found, dict):
            where = self._origin + (self._prefix or "/")
            raise RainerProtocolError(f"not a list of keys from {where}", url=where)
        return {key: commit_from_json(meta) for key, meta in found.items()}

    def get_commit(self, key: str, version: int | None = None) -> RainerCommit:
        """A commit with its value: the newest, or the one at ``version``."""
        meta = self.get_metadata(key, version)
        # Ask for the value at the version just seen, so a commit in between cannot mix them.
        value = None if meta.get("empty") else self.get_value(key, meta["version"])
        return RainerCommit(meta, value)

    def get_value(self, key: str, version: int | None = None) -> bytes:
        """The payload bytes (empty bytes for an empty commit)."""
        return self._read(self._key_path(key, version), key=key, version=version).body

    def get_metadata(self, key: str, version: int | None = None) -> dict[str, Any]:
        """The metadata dict: key, version, author, comment, mtime, empty."""
        path = self._key_path(key, version) + "/meta"
        return self._read(path, key=key, version=version).json()

    def post_commit(
        self, metadata: Mapping[str, Any], value: bytes | str | None, *, mtime: str | None = None
    ) -> dict[str, Any]:
        """Commit ``value`` as ``metadata["version"]`` of ``metadata["key"]``; returns the new
        commit's metadata. ``metadata`` is pyrainer's dict: key, version, author, comment
        (optional) and empty (optional; a true value makes a tombstone and needs no value).
        ``mtime`` (ISO-8601) back-dates the commit; by default the server's clock is used.

        Raises RainerConflictError when the version is not the key's head plus one. A post
        that got no answer (or a 502/503/504) is never sent again blindly: the version is read
        back, and only when it is not there is the commit posted again.
        """
        key = str(metadata["key"])
        version = int(metadata["version"])
        author = str(metadata["author"])
        empty = _truthy(metadata.get("empty", False))
        body = value.encode("utf-8") if isinstance(value, str) else (value or b"")
        if empty and body:
            raise RainerBadRequestError("an empty commit (a tombstone) cannot carry a value")
        headers = {
            wire.HEADER_AUTHOR: author,
            wire.HEADER_COMMENT: str(metadata.get("comment") or ""),
            wire.HEADER_EMPTY: "yes" if empty else "no",
            "Content-Type": wire.BINARY,
        }
        if mtime is not None:
            headers[wire.HEADER_MTIME] = mtime
        path = self._key_path(key, version)
        attempt = 0
        while True:
            try:
                return self._send("POST", path, body, headers, key=key, version=version).json()
            except RainerConflictError as conflict:
                # After a post that got no answer, a conflict may be that post, landed late.
                if attempt:
                    with contextlib.suppress(RainerError):
                        landed = self._landed(key, version, body, empty, author)
                        if landed:
                            return landed
                raise conflict
            except RainerError as exc:
                if not _retryable(exc):
                    raise
                failure = exc
            try:
                landed = self._landed(key, version, body, empty, author)
            except RainerError as reread:
                raise _unsure(failure, reread) from None
            if landed:
                return landed
            if attempt >= self.retries:
                if landed is False:
                    raise _taken(failure, key, version) from None
                raise failure
            self._pause(attempt)
            attempt += 1

    # -- beyond pyrainer -------------------------------------------------------------------

    def history(
        self, key: str, limit: int | None = None, before: int | None = None
    ) -> list[RainerCommit]:
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

    def _read_json(self, path: str, params: Mapping[str, str]) -> Any:
        return self._read(_with_query(path, params)).json()

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
    ) -> _Answer:
        """One request, its whole answer read. An error status raises (typed); with ``check``
        false only a 5xx does."""
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
        try:
            response = self._pool.urlopen(
                method,
                url,
                body=body,
                headers=sent,  # type: ignore[arg-type]  # http.client sends bytes as they are
                # Redirects of reads are followed (as urllib followed them for pyrainer);
                # every other retry is this client's own, the same as the collection's.
                retries=self._get_retries if method == "GET" else False,
                redirect=method == "GET",
                preload_content=True,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise self._unreachable(exc, method, url) from None
        answer = _Answer(response.status, response.headers, response.data, method, url)
        if not 200 <= answer.status < 300 and (check or answer.status >= 500):
            self._raise(answer, key, version)
        return answer

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
                conflict = json.loads(answer.body)["conflict"]
                expected = int(conflict["expectedVersion"])
                provided = int(conflict["providedVersion"])
                conflict_key = str(conflict.get("key", key))
            except (ValueError, KeyError, TypeError):
                message = f"a 409 without a Rainer conflict from {url}: {_snippet(text)}"
                raise RainerProtocolError(message, *details) from None
            raise RainerConflictError(conflict_key, expected, provided, *details)
        reason = _snippet(text)
        kinds: dict[int, type[RainerHTTPError]] = {
            400: RainerBadRequestError,
            413: RainerPayloadTooLargeError,
            431: RainerHeaderTooLargeError,
        }
        if status in kinds:
            raise kinds[status](f"refused ({status}): {reason}", *details)
        if status >= 500:
            raise RainerServerError(f"server error {status} at {url}: {reason}", *details)
        raise RainerHTTPError(f"unexpected answer {status} from {url}: {reason}", *details)

    def _landed(
        self, key: str, version: int, payload: bytes, empty: bool, author: str
    ) -> dict[str, Any] | bool | None:
        """After a post without a clear answer: the metadata of ``version`` when it holds this
        commit (same author, payload and emptiness), False when it holds another one, None
        when it is not there."""
        try:
            found = self.get_commit(key, version)
        except RainerNotFoundError:
            return None
        same = found.payload == payload or empty
        ours = (found.empty, found.author) == (empty, author) and same
        return {name: found.meta.get(name) for name in METADATA_FIELDS} if ours else False


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
    if not proxy or urllib.request.proxy_bypass_environment(host, proxies):
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


def _taken(failure: RainerError, key: str, version: int) -> RainerError:
    failure.args = (
        f"{failure}; this commit was not saved: version {version} of {key!r} is another commit",
    )
    return failure


def _has_next(headers: Any) -> bool:
    """Whether a ``Link`` header names a next page."""
    return any('rel="next"' in link for link in headers.getlist("Link"))


def _with_query(path: str, params: Mapping[str, str]) -> str:
    return f"{path}?{urlencode(params)}" if params else path


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
