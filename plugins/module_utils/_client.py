# Copyright: Rainer for Python and Ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the rainer.rainer collection, as the leading underscore of the file name says (the
# convention of community.hashi_vault and community.general): only this collection's plugins import
# it, and its names may change in any release without notice.

"""The rainer.rainer collection's one HTTP client for the Rainer API.

It is built on ``ansible.module_utils.urls`` alone, so neither the controller
nor a managed host needs a pip package to talk to a Rainer server. Every
plugin of the collection (modules, action plugins, lookup) goes through
:class:`RainerClient`.

It speaks the vocabulary of the ``rainer`` Python package's client
(``rainer.client``), which it cannot import: the same error classes and
attributes, the same defaults (30 s timeout, 2 retries, 0.5 s first pause),
the same retry rules and the same commit attributes. One test suite runs
both against a real server (tests/package/test_client_contract.py in the
repository).

Wire contract (see the server's documentation): the diary is mounted under a
prefix such as ``/diary``; ``GET /diary`` lists the newest commit of each key,
``GET /diary/KEY[/VERSION]`` answers the payload with ``X-Rainer-*`` metadata
headers, ``GET /diary/KEY[/VERSION]/meta`` answers the metadata as JSON,
``GET /diary/KEY/history`` lists older metadata a page at a time (newest
first) and ``POST /diary/KEY/VERSION`` commits, answering 409 when VERSION is
not the head's version plus one. Additions of this rebuild used here:
``GET /diary?key=a&key=b`` and ``?prefix=p`` (just those heads),
``POST /diary`` with ``{"changes": [...]}`` (a change set, all or nothing),
``GET /diary/KEY[/meta]?index=N&wait=W`` (a blocking read that answers once
the key's newest version is above N, or when W has passed), ``GET /whoami``,
and credentials (``Authorization: Bearer TOKEN`` or Basic, TLS client
certificates) answered with 401 or 403 when they do not suffice.
"""

from __future__ import annotations

import base64
import getpass
import inspect
import json
import os
import re
import socket
import ssl
import time

from ansible.module_utils.common.text.converters import to_bytes, to_text
from http.client import HTTPException
from urllib.error import HTTPError, URLError
from urllib.parse import quote, unquote, urlencode, urlsplit, urlunsplit

from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import ProxyError, Request, SSLValidationError, make_context

METADATA_FIELDS = ("key", "version", "author", "comment", "mtime", "empty")
#: Seconds to wait for a connection and for each read of the answer: above every
#: bound the server works within (10 s), so a commit is not given up on while
#: the server is still saving it.
DEFAULT_TIMEOUT = 30
#: Extra tries of a read after no answer or a 502/503/504.
DEFAULT_RETRIES = 2
#: The pause before the first extra try, doubled before each next one, capped.
RETRY_DELAY = 0.5
RETRY_DELAY_MAX = 5.0
RETRYABLE_STATUSES = (502, 503, 504)
#: Commits asked for per history request: the most a server gives in one page.
HISTORY_PAGE = 1000
#: Keys named in one bulk read (``?key=``): the most a server takes in one request.
KEYS_PER_REQUEST = 1000
#: Bytes of percent-encoded keys in one bulk read's URL: well within the server's bound on a
#: request head (64 KiB), so that 1000 long keys become several requests rather than a 431.
KEYS_QUERY_BYTES = 32 * 1024
#: Changes in one change set: the most a server takes in one request.
MAX_CHANGES = 1000
#: The longest a single blocking read asks the server to wait, in seconds. Well below the
#: server's bound (10 minutes) and below the read timeouts proxies commonly use (60 s).
WAIT_SLICE = 50.0
#: The message for a task or lookup that names no server. RainerClient is the one place that checks,
#: so the modules, the action plugins and the lookup all say this: ansible-core's own "missing
#: required arguments: url" would not say that RAINER_URL or rainer_url would do as well.
NO_URL = ("no Rainer server URL: give the url option, or set the RAINER_URL environment variable or the "
          "rainer_url variable, to the diary's base URL, for example http://127.0.0.1:8080/diary")
#: What stands for a secret in messages.
REDACTED = "********"
USER_AGENT = "rainer.rainer-ansible-collection"


_CONTEXTS = {}

try:
    # ansible-core 2.17+ lets a request reuse an SSL context; 2.16 builds one per request
    REQUEST_TAKES_CONTEXT = "context" in inspect.signature(Request.open).parameters
except (TypeError, ValueError):  # pragma: no cover
    REQUEST_TAKES_CONTEXT = False


def _tls_context(ca_path, validate_certs, client_cert, client_key):
    """One SSL context per TLS settings and process.

    ``open_url`` otherwise builds a fresh context for every request, even for
    plain HTTP, and loading the system's CA store costs tens of milliseconds:
    more than the request itself on loopback. Loops in the controller process
    therefore reuse one context.
    """
    settings = (ca_path, bool(validate_certs), client_cert, client_key)
    context = _CONTEXTS.get(settings)
    if context is None:
        context = make_context(cafile=ca_path, validate_certs=validate_certs,
                               client_cert=client_cert, client_key=client_key)
        _CONTEXTS[settings] = context
    return context


# -- errors: the names and attributes of rainer.client's ------------------------


class RainerError(Exception):
    """Base of every error the client raises.

    ``status`` is the HTTP status (``None`` when no answer came), ``body`` the
    answer's text, ``url`` and ``method`` the request's.
    """

    def __init__(self, message, status=None, body="", url="", method=""):
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body
        self.url = url
        self.method = method

    def __str__(self):
        return self.message

    def to_dict(self):
        """Details for a failed task's result."""
        return {"status": self.status, "body": self.body, "url": self.url, "error": type(self).__name__}


class RainerHTTPError(RainerError):
    """The server answered an error status; the subclasses name the usual ones."""


class RainerBadRequestError(RainerHTTPError):
    """400: the server refused the request; the message is its reason."""


class RainerNotFoundError(RainerHTTPError):
    """404: the key (or that version of it) does not exist."""


class RainerConflictError(RainerHTTPError):
    """409: the posted version was not the head's version plus one; ``expected_version`` is."""

    def __init__(self, key, expected_version, provided_version, status=409, body="", url="", method="POST"):
        super().__init__("Conflict on key %r: expected version %s, got %s" % (key, expected_version, provided_version),
                         status=status, body=body, url=url, method=method)
        self.key = key
        self.expected_version = expected_version
        self.provided_version = provided_version

    def to_dict(self):
        result = super().to_dict()
        result["conflict"] = {
            "key": self.key,
            "expectedVersion": self.expected_version,
            "providedVersion": self.provided_version,
        }
        return result


class RainerChangeSetConflictError(RainerHTTPError):
    """409 to a change set: some of its versions are not their key's newest plus one, and
    nothing of the set was saved. ``conflicts`` holds a :class:`RainerConflictError` per
    stale change, in order.
    """

    def __init__(self, conflicts, status=409, body="", url="", method="POST"):
        message = "Conflict on %d key(s) of the change set, nothing was saved: %s" % (
            len(conflicts), ", ".join("%r (expected version %s, got %s)" % (
                c.key, c.expected_version, c.provided_version) for c in conflicts))
        super().__init__(message, status=status, body=body, url=url, method=method)
        self.conflicts = list(conflicts)

    def to_dict(self):
        result = super().to_dict()
        result["conflicts"] = [dict(key=c.key, expectedVersion=c.expected_version, providedVersion=c.provided_version)
                               for c in self.conflicts]
        return result


class RainerAccessError(RainerHTTPError):
    """401 or 403: the server did not let this client do that.

    ``principal`` is who the server took the client for (``None`` when unknown),
    ``permission`` what was missing (``read``, ``write`` or ``commit as 'NAME'``)
    and ``key`` the key it was missing for, each when the server said so.
    """

    def __init__(self, message, principal=None, permission=None, key=None, **details):
        super().__init__(message, **details)
        self.principal = principal
        self.permission = permission
        self.key = key

    def to_dict(self):
        result = super().to_dict()
        result.update(principal=self.principal, permission=self.permission)
        return result


class RainerUnauthorizedError(RainerAccessError):
    """401: no credentials where the server wants some, or credentials it does not accept."""


class RainerForbiddenError(RainerAccessError):
    """403: the principal may not read or write that key, or not commit as that author."""


class RainerRateLimitedError(RainerAccessError):
    """429: this address failed to authenticate too often; ``retry_after`` is the seconds the
    server asked to wait (``None`` when it did not say)."""

    retry_after = None


class RainerPayloadTooLargeError(RainerHTTPError):
    """413: the payload is over the server's limit."""


class RainerHeaderTooLargeError(RainerHTTPError):
    """431: the author or comment is over the server's bound, or the headers are too many."""


class RainerServerError(RainerHTTPError):
    """5xx: the server failed, or its database is unavailable (503)."""


class RainerUnreachableError(RainerError):
    """No answer: connection refused, name not resolved, timed out, reset, or TLS failed."""

    def __init__(self, message, url="", method=""):
        super().__init__(message, url=url, method=method)


class RainerTLSError(RainerUnreachableError):
    """The TLS handshake failed, for example on an untrusted certificate. Never retried."""


class RainerProtocolError(RainerError):
    """The server answered something this client cannot read (for example bad JSON)."""


def default_author():
    """``RAINER_AUTHOR`` from the environment, else the login name."""
    author = os.environ.get("RAINER_AUTHOR")
    if author:
        return author
    try:
        return getpass.getuser()
    except Exception:  # pylint: disable=broad-except
        return "ansible"


def decode_payload(payload):
    """Return ``payload`` as text when it is valid UTF-8, else ``None``."""
    if payload is None:
        return None
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _header_text(value):
    """Header values arrive decoded as latin-1; undo that to read UTF-8 bytes."""
    if value is None:
        return None
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def _flag(value):
    return "yes" if value else "no"


def _snippet(text, limit=200):
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


class RainerCommit:
    """One commit: its metadata (a dict with METADATA_FIELDS) and its payload.

    ``payload`` is the bytes (``b""`` for an empty commit), or ``None`` when
    the answer did not carry them (a listing or history without payloads);
    ``text`` is the payload as UTF-8 text, ``None`` when it is not UTF-8.
    The attributes are those of ``rainer.client.RainerCommit``.
    """

    def __init__(self, meta, payload=None):
        self.meta = dict(meta)
        self.payload = payload

    @property
    def key(self):
        return self.meta.get("key")

    @property
    def version(self):
        return int(self.meta.get("version") or 0)

    @property
    def author(self):
        return self.meta.get("author")

    @property
    def comment(self):
        return self.meta.get("comment")

    @property
    def mtime(self):
        return self.meta.get("mtime")

    @property
    def empty(self):
        return bool(self.meta.get("empty"))

    @property
    def text(self):
        return decode_payload(self.payload)

    def __repr__(self):
        return "RainerCommit(%r, payload=%r)" % (self.meta, self.payload)


def metadata_from_headers(headers):
    """Build metadata from a payload answer's ``X-Rainer-*`` headers."""
    version = headers.get("X-Rainer-Version")
    return {
        "key": _header_text(headers.get("X-Rainer-Key")),
        "version": int(version) if version not in (None, "") else None,
        "author": _header_text(headers.get("X-Rainer-Author")),
        "comment": _header_text(headers.get("X-Rainer-Comment")) or "",
        "mtime": headers.get("X-Rainer-Modified-Time"),
        "empty": (headers.get("X-Rainer-Empty") or "").strip().lower() in ("yes", "true", "1"),
    }


def metadata_only(meta):
    """The six metadata fields of a metadata (or list entry) dict."""
    return {name: meta.get(name) for name in METADATA_FIELDS}


def _has_next(headers):
    """Whether a ``Link`` header names a next page."""
    links = headers.get_all("Link") if hasattr(headers, "get_all") else [headers.get("Link")]
    return any('rel="next"' in (link or "") for link in links or [])


def redact_url(url):
    """``url`` without the user name and password it may carry (``https://user:secret@host``)."""
    text = to_text(url)
    try:
        parts = urlsplit(text)
    except ValueError:
        return REDACTED
    if "@" not in parts.netloc:
        return text
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def url_secrets(url):
    """The password (and the user name, when it is alone) in ``url``: what a task must hide."""
    try:
        parts = urlsplit(to_text(url or ""))
    except ValueError:
        return []
    if "@" not in parts.netloc:
        return []
    found = [unquote(parts.password or "")] if parts.password else [unquote(parts.username or "")]
    return [secret for secret in found if secret]


def _cause(exc):
    """The error that says why a request got no answer.

    ``URLError`` carries it as ``reason``. ansible.module_utils.urls wraps it in its own
    ``ConnectionError`` (``SSLValidationError``, ``ProxyError``) where it checks an https://
    connection with a handler of its own (ansible-core 2.16 after a redirect, or through an
    https_proxy, or on a Python without SSLContext), and that text reads "Failed to connect to
    HOST at port N: [Errno 111] Connection refused": the error it wrapped is the one to put in words.
    """
    while True:
        if isinstance(exc, URLError) and isinstance(getattr(exc, "reason", None), BaseException):
            exc = exc.reason
        elif isinstance(exc, UrlsConnectionError) and isinstance(exc.__cause__ or exc.__context__, OSError):
            exc = exc.__cause__ or exc.__context__
        else:
            return exc


def _no_answer(exc, timeout, host):
    """Why a request got no answer, in a few words (the ``rainer`` package client's words), and
    whether TLS failed: ``(reason, tls)``."""
    cause = _cause(exc)
    if isinstance(exc, ProxyError):
        inner, tls = (to_text(exc), False) if cause is exc else _no_answer(cause, timeout, host)
        return "the proxy failed: %s" % inner, tls
    if isinstance(cause, (ssl.SSLError, SSLValidationError)):
        # the SSL library's short reason (CERTIFICATE_VERIFY_FAILED), else its words without "[Errno N]"
        words = getattr(cause, "reason", None) or getattr(cause, "strerror", None) or to_text(cause)
        return "TLS failed: %s" % words, True
    if isinstance(cause, (socket.timeout, TimeoutError)):
        return "no answer within %g s" % timeout, False
    if isinstance(cause, socket.gaierror):
        return "cannot resolve %r" % host, False
    if isinstance(cause, OSError):
        return _os_reason(cause), False
    if isinstance(cause, HTTPException):
        return "the connection closed before an answer came", False
    return to_text(cause) or type(cause).__name__, False


def _os_reason(exc):
    """An OSError in words, without the ``[Errno N]`` prefix."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if getattr(exc, "strerror", None):
        return exc.strerror[0].lower() + exc.strerror[1:]
    return to_text(exc) or "the connection closed before an answer came"


#: Origins (scheme://host:port) whose server wanted an X-Rainer-Author even though the client
#: proved who it is (a server without --auth): later clients in this process send one at once.
_AUTHOR_WANTED = set()

_FORBIDDEN = re.compile(r"^Forbidden: (?P<principal>.+?) may not (?P<what>.+)$")
_PERMISSION = re.compile(r"^(?P<permission>read|write) (?P<key>.+)$")
_AUTH_REQUIRED = re.compile(r"^Authentication required to (?P<permission>\w+) (?P<key>.+)$")
_MISSING_AUTHOR = "Missing header: X-Rainer-Author"


def _key_chunks(names):
    """``names`` in runs that fit one bulk read: at most KEYS_PER_REQUEST keys and
    KEYS_QUERY_BYTES of encoded ``key=`` parameters each."""
    chunk, size = [], 0
    for name in names:
        cost = len(quote(to_bytes(name, encoding="utf-8"), safe="")) + 5  # "&key="
        if chunk and (len(chunk) >= KEYS_PER_REQUEST or size + cost > KEYS_QUERY_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(name)
        size += cost
    if chunk:
        yield chunk


def _quoted_key(text):
    """A key as the server quotes it in a message (``'db.x'``), unquoted when it can be."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


class RainerClient:
    """HTTP client for one Rainer diary.

    :param url: base URL including the mount prefix, e.g. ``http://127.0.0.1:8080/diary``.
        ``https://PRINCIPAL:TOKEN@host/diary`` sends HTTP Basic credentials; they are taken
        out of the URL, so no message, error or result of this client ever shows them.
    :param timeout: seconds to wait for a connection and for each read.
    :param retries: extra tries of a read after no answer or a 502/503/504;
        a commit is tried again only after reading the key showed it did not land.
    :param token: a token from ``rainer auth token``, sent as ``Authorization: Bearer``.
    :param author: the author to record. When it is not given and the client proves who it
        is (a token, credentials in the URL, an ``Authorization`` header or a client
        certificate), no ``X-Rainer-Author`` is sent, so a server with ``--auth`` records the
        proven principal; a server without ``--auth`` asks for one, and the default author
        (``RAINER_AUTHOR``, else the login name) is sent then.
    :param retry_delay: the first pause between tries (doubled each time, at most 5 s).
    :param sleep: the pause function between tries (tests replace it).
    """

    def __init__(self, url, timeout=DEFAULT_TIMEOUT, validate_certs=True, ca_path=None, client_cert=None,
                 client_key=None, headers=None, retries=DEFAULT_RETRIES, author=None, sleep=time.sleep,
                 retry_delay=RETRY_DELAY, token=None):
        if not url:
            raise ValueError(NO_URL)
        text = to_text(url).strip().rstrip("/")
        try:
            parts = urlsplit(text)
            hostname = parts.hostname
            parts.port  # pylint: disable=pointless-statement  # raises ValueError on a bad port
        except ValueError as exc:
            raise ValueError("not a usable URL: %s (%s)" % (redact_url(text), to_text(exc)))
        self.url = redact_url(text)
        if parts.scheme not in ("http", "https") or not hostname:
            raise ValueError("not an http:// or https:// URL: %r" % self.url)
        if parts.query or parts.fragment:
            raise ValueError("the diary URL cannot have a query or fragment: %r" % self.url)
        self.origin = "%s://%s" % (parts.scheme, parts.netloc.rpartition("@")[2])
        self.host = hostname
        self.timeout = timeout if timeout is not None else DEFAULT_TIMEOUT
        self.validate_certs = validate_certs if validate_certs is not None else True
        self.ca_path = ca_path
        self.client_cert = client_cert
        self.client_key = client_key
        self.headers = dict(headers or {})
        self.retries = max(0, int(retries if retries is not None else DEFAULT_RETRIES))
        self.author = author or default_author()
        self.sleep = sleep
        self.retry_delay = retry_delay
        self.requests = 0

        #: how the client proves who it is, in words for messages (never the secret itself)
        self.credentials = None
        #: the principal the credentials name, when they name one (HTTP Basic's user)
        self.claimed_principal = None
        token = to_text(token) if token else None
        has_header = any(name.lower() == "authorization" for name in self.headers)
        if "@" in parts.netloc:
            if token or has_header:
                raise ValueError("credentials are given twice: in url (user:token@) and in the token option "
                                 "or an Authorization header; give them once")
            if not parts.password:
                raise ValueError("url carries a user name without a password: write https://PRINCIPAL:TOKEN@host/..., "
                                 "or use the token option")
            user, password = unquote(parts.username or ""), unquote(parts.password)
            pair = to_bytes("%s:%s" % (user, password), encoding="utf-8")
            self.headers["Authorization"] = "Basic " + to_text(base64.b64encode(pair))
            self.credentials = "the credentials of user %r in url" % user
            self.claimed_principal = user
        elif token:
            if has_header:
                raise ValueError("credentials are given twice: the token option and an Authorization header; give one")
            if "\r" in token or "\n" in token:
                raise ValueError("the token cannot hold a line break")
            self.headers["Authorization"] = "Bearer " + token
            self.credentials = "the token"
        elif has_header:
            self.credentials = "the Authorization header"
        elif client_cert:
            self.credentials = "the client certificate"
        # A token or password never follows a redirect, which could lead to another host.
        self._redirects = "safe" if self.credentials in (None, "the client certificate") else "none"
        explicit = bool(author or os.environ.get("RAINER_AUTHOR"))
        self._send_author = explicit or self.credentials is None or self.origin in _AUTHOR_WANTED
        self._whoami = None

    # -- transport ---------------------------------------------------------

    def _key_url(self, key, *parts, **query):
        path = "/".join([self.url, quote(to_bytes(key), safe="")] + [to_text(p) for p in parts])
        return self._with_query(path, query)

    @staticmethod
    def _with_query(url, query):
        """``url`` with ``query`` (names to values or lists of values; None is left out)."""
        pairs = []
        for name in sorted(query):
            value = query[name]
            if value is None:
                continue
            for item in value if isinstance(value, (list, tuple)) else [value]:
                pairs.append((name, to_bytes(item, encoding="utf-8")))
        if pairs:
            url = "%s?%s" % (url, urlencode(pairs))
        return url

    def _unreachable(self, reason, url, method, tls=False):
        kind = RainerTLSError if tls else RainerUnreachableError
        return kind("cannot reach %s: %s" % (self.origin, reason), url=url, method=method)

    def _send_once(self, method, url, data=None, headers=None, key=None, version=None, timeout=None):
        """One HTTP request; returns (status, headers, body bytes) or raises a RainerError."""
        all_headers = dict(self.headers)
        all_headers.update(headers or {})
        for name, value in all_headers.items():
            if "\r" in to_text(value) or "\n" in to_text(value):
                raise RainerBadRequestError("%s must be one line: HTTP headers cannot break lines" % name,
                                            url=url, method=method)
        # Header values go out as UTF-8 bytes: http.client would encode text as Latin-1.
        all_headers = {name: to_bytes(value, encoding="utf-8") for name, value in all_headers.items()}
        self.requests += 1
        timeout = timeout if timeout is not None else self.timeout
        try:
            extra = {}
            if REQUEST_TAKES_CONTEXT:
                extra["context"] = _tls_context(self.ca_path, self.validate_certs, self.client_cert, self.client_key)
            response = Request().open(
                method,
                url,
                data=data,
                headers=all_headers,
                timeout=timeout,
                validate_certs=self.validate_certs,
                ca_path=self.ca_path,
                client_cert=self.client_cert,
                client_key=self.client_key,
                http_agent=USER_AGENT,
                follow_redirects=self._redirects,
                use_proxy=True,
                **extra
            )
            try:
                body = response.read()
            finally:
                response.close()
            return response.getcode(), response.headers, body
        except HTTPError as exc:
            body = b""
            try:
                body = exc.read() or b""
            except Exception:  # pylint: disable=broad-except
                pass
            raise self._http_error(exc.code, body, url, method, key, version, getattr(exc, "headers", None))
        except (URLError, UrlsConnectionError, HTTPException, OSError) as exc:
            reason, tls = _no_answer(exc, timeout, self.host)
            if not tls and isinstance(_cause(exc), HTTPException) and self.client_cert and url.startswith("https:"):
                reason += " (a server that does not trust the client certificate answers like that)"
            raise self._unreachable(reason, url, method, tls=tls)

    def _http_error(self, status, body, url, method, key=None, version=None, headers=None):
        text = to_text(body, errors="surrogate_or_replace")
        details = dict(status=status, body=text, url=url, method=method)
        reason = _snippet(text)
        if status == 404:
            if key is None:
                return RainerNotFoundError("not found: %s (is it a diary's base URL, like http://host/diary?)" % url,
                                           **details)
            what = "%r" % key if version is None else "%r version %s" % (key, version)
            return RainerNotFoundError("not found: %s" % what, **details)
        if status == 409:
            try:
                answer = json.loads(text)
                if "conflicts" in answer:
                    conflicts = [RainerConflictError(to_text(c["key"]), int(c["expectedVersion"]),
                                                     int(c["providedVersion"]), **details)
                                 for c in answer["conflicts"]]
                    if conflicts:
                        return RainerChangeSetConflictError(conflicts, **details)
                conflict = answer["conflict"]
                expected = int(conflict["expectedVersion"])
                provided = int(conflict["providedVersion"])
                conflict_key = to_text(conflict.get("key", key))
            except (ValueError, KeyError, TypeError, AttributeError):
                return RainerProtocolError("a 409 without a Rainer conflict from %s: %s" % (url, reason), **details)
            return RainerConflictError(conflict_key, expected, provided, **details)
        if status == 401:
            return self._unauthorized(reason, key, details)
        if status == 403:
            return self._forbidden(reason, key, details)
        if status == 429:
            wait = (headers.get("Retry-After") or "").strip() if headers is not None else ""
            later = "; the server says to try again in %s s" % wait if wait else ""
            error = RainerRateLimitedError("refused (429): too many failed authentications from this address%s (%s)"
                                           % (later, reason), **details)
            error.retry_after = float(wait) if wait.isdigit() else None
            return error
        if 300 <= status < 400:
            where = headers.get("Location") if headers is not None else None
            return RainerHTTPError(
                "the server redirected (%s) to %s; a Rainer API does not redirect, so put the final address in url "
                "(redirects are not followed when the request carries a token or password)"
                % (status, redact_url(where) if where else "another address"), **details)
        kinds = {400: RainerBadRequestError, 413: RainerPayloadTooLargeError, 431: RainerHeaderTooLargeError}
        if status in kinds:
            return kinds[status]("refused (%s): %s" % (status, reason), **details)
        if status >= 500:
            return RainerServerError("server error %s at %s: %s" % (status, url, reason), **details)
        return RainerHTTPError("unexpected answer %s from %s: %s" % (status, url, reason), **details)

    def _unauthorized(self, reason, key, details):
        """A 401 in words: which credentials failed, or what anonymous may not do."""
        required = _AUTH_REQUIRED.match(reason)
        if required:
            permission, named = required.group("permission"), _quoted_key(required.group("key"))
            what = "every key" if named == "*" else "key %r" % named
            if self.credentials == "the client certificate":
                who = "the client certificate names no principal the server knows, and anonymous"
            elif self.credentials:
                who = "%s did not name a principal, and anonymous" % self.credentials
            else:
                who = "no credentials were given, and anonymous"
            message = ("authentication required (401): %s may not %s %s; give a token (the token option, "
                       "RAINER_TOKEN or rainer_token) or a client certificate" % (who, permission, what))
            return RainerUnauthorizedError(message, principal="anonymous", permission=permission,
                                           key=None if named == "*" else named, **details)
        refused = self.credentials or "the credentials"
        message = "authentication failed (401): the server did not accept %s (%s)" % (refused, reason)
        return RainerUnauthorizedError(message, principal=self.claimed_principal, key=key, **details)

    def _forbidden(self, reason, key, details):
        """A 403 in words: the principal, the permission and the key the server named."""
        found = _FORBIDDEN.match(reason)
        if not found:
            return RainerForbiddenError("permission denied (403): %s" % reason, key=key, **details)
        principal, what = found.group("principal"), found.group("what")
        permission = _PERMISSION.match(what)
        if permission:
            named = _quoted_key(permission.group("key"))
            message = "permission denied (403): principal %r may not %s key %r" % (
                principal, permission.group("permission"), named)
            return RainerForbiddenError(message, principal=principal, permission=permission.group("permission"),
                                        key=named, **details)
        message = ("permission denied (403): principal %r may not %s (only an admin may record another author: "
                   "leave author out, and the server records %r)" % (principal, what, principal))
        return RainerForbiddenError(message, principal=principal, permission=what, key=key, **details)

    @staticmethod
    def _retryable(error):
        """No answer (but not a TLS failure, which trying again cannot change), or 502/503/504."""
        if isinstance(error, RainerTLSError):
            return False
        if isinstance(error, RainerUnreachableError):
            return True
        return isinstance(error, RainerServerError) and error.status in RETRYABLE_STATUSES

    def _pause(self, attempt):
        if self.retry_delay:
            self.sleep(min(self.retry_delay * (2 ** attempt), RETRY_DELAY_MAX))

    def _read(self, url, key=None, version=None, timeout=None):
        """A GET, tried again after no answer or a 502/503/504 (``retries`` times)."""
        attempt = 0
        while True:
            try:
                return self._send_once("GET", url, key=key, version=version, timeout=timeout)
            except RainerError as exc:
                if attempt >= self.retries or not self._retryable(exc):
                    raise
            self._pause(attempt)
            attempt += 1

    def _read_json(self, url, key=None, version=None, timeout=None):
        status, headers, body = self._read(url, key=key, version=version, timeout=timeout)
        return self._json(status, body, url), headers

    @staticmethod
    def _json(status, body, url, method="GET"):
        try:
            return json.loads(to_text(body, errors="surrogate_or_strict"))
        except ValueError:
            text = to_text(body, errors="surrogate_or_replace")
            raise RainerProtocolError("not a JSON answer from %s: %s" % (url, _snippet(text)),
                                      status=status, body=text, url=url, method=method)

    # -- who am I ----------------------------------------------------------

    def whoami(self):
        """What ``GET /whoami`` says of this client's principal (a dict), ``None`` on a server
        without ``--auth``. Asked once per client."""
        if self._whoami is None:
            try:
                data, headers = self._read_json(self.origin + "/whoami")
            except RainerNotFoundError:
                data = {}
            self._whoami = data if isinstance(data, dict) else {}
        return self._whoami or None

    def commit_author(self):
        """The author the server will record for this client's commits."""
        if self._send_author:
            return self.author
        who = self.whoami()
        return who.get("principal") if who and who.get("principal") else self.author

    # -- reads -------------------------------------------------------------

    def list(self, all=False, payload=True, keys=None, prefix=None):  # pylint: disable=redefined-builtin
        """Newest commit of every key: a dict key -> :class:`RainerCommit`.

        Empty commits are left out unless ``all``; with ``payload`` the payloads come too.
        ``keys`` asks for just those keys (one request per 1000 of them; absent keys are left
        out), ``prefix`` for the keys that start with it. Otherwise it is one request.
        """
        query = {"all": _flag(all), "prefix": prefix}
        if payload:
            query["payload_base64"] = "yes"
        if keys is None:
            return self._list_once(query, payload)
        names = list(dict.fromkeys(to_text(key) for key in keys))
        result = {}
        for chunk in _key_chunks(names):
            found = self._list_once(dict(query, key=chunk), payload)
            # a server that does not know ?key= answers every key: keep the ones asked for
            result.update((name, found[name]) for name in chunk if name in found)
        return result

    def _list_once(self, query, payload):
        url = self._with_query(self.url, query)
        data, headers = self._read_json(url)
        if not isinstance(data, dict):
            raise RainerProtocolError("not a list of keys from %s" % self.url, url=url)
        result = {}
        for key, entry in data.items():
            result[key] = self._commit(entry, payload)
        return result

    @staticmethod
    def _commit(entry, payload):
        """A commit from a list or history entry (with ``payload_base64`` when ``payload``)."""
        try:
            data = base64.b64decode(entry.get("payload_base64") or "") if payload else None
            return RainerCommit(metadata_only(entry), data)
        except (AttributeError, TypeError, ValueError) as exc:
            raise RainerProtocolError("not a Rainer commit in the answer: %s" % to_text(exc))

    def get(self, key, version=None):
        """The head (or ``version``) of ``key`` with its payload, in one request.

        Raises :class:`RainerNotFoundError` when it does not exist.
        """
        parts = [str(int(version))] if version is not None else []
        url = self._key_url(key, *parts)
        status, headers, body = self._read(url, key=key, version=version)
        return self._payload_answer(key, url, status, headers, body)

    @staticmethod
    def _payload_answer(key, url, status, headers, body):
        meta = metadata_from_headers(headers)
        if meta["key"] is None:
            meta["key"] = key
        if meta["version"] is None:
            raise RainerProtocolError("The answer for key %r has no X-Rainer-Version header" % key,
                                      status=status, url=url, method="GET")
        return RainerCommit(meta, body)

    def head(self, key):
        """Like :meth:`get` for the newest version, but ``None`` when the key does not exist."""
        try:
            return self.get(key)
        except RainerNotFoundError:
            return None

    def meta(self, key, version=None):
        """Metadata of the head (or ``version``) of ``key`` as a dict."""
        parts = [str(int(version))] if version is not None else []
        data, headers = self._read_json(self._key_url(key, *(parts + ["meta"])), key=key, version=version)
        return metadata_only(data)

    def watch(self, key, index, seconds, payload=True):
        """A blocking read: the key's head once its version is above ``index``, or when
        ``seconds`` have passed (then whatever the head is), ``None`` while the key does not exist.

        With ``payload`` the commit carries its payload (``GET /diary/KEY?index=&wait=``),
        else only its metadata (``.../meta``). The answer may take ``seconds`` and a little
        jitter, so the request waits that long plus ``timeout`` for it.
        """
        seconds = max(0.0, float(seconds))
        query = {"index": int(index), "wait": "%dms" % int(seconds * 1000)}
        url = self._key_url(key, *([] if payload else ["meta"]), **query)
        try:
            if payload:
                status, headers, body = self._read(url, key=key, timeout=seconds + self.timeout)
                return self._payload_answer(key, url, status, headers, body)
            data, headers = self._read_json(url, key=key, timeout=seconds + self.timeout)
            return RainerCommit(metadata_only(data), None)
        except RainerNotFoundError:
            return None

    def history(self, key, limit=None, before=None, payload=False):
        """The key's commits, newest first: only versions below ``before`` when it is
        given, at most ``limit`` of them (every one when ``None``).

        The server answers a page at a time; this asks for page after page, each
        below the oldest version of the one before. With ``payload`` the
        commits carry their payloads too.
        """
        found = []
        while limit is None or len(found) < limit:
            page = HISTORY_PAGE if limit is None else min(HISTORY_PAGE, limit - len(found))
            query = {"limit": page, "before": before}
            if payload:
                query["payload_base64"] = "yes"
            url = self._key_url(key, "history", **query)
            data, headers = self._read_json(url, key=key)
            if not isinstance(data, list):
                raise RainerProtocolError("not a history from %s" % url, url=url)
            found.extend(self._commit(entry, payload) for entry in data)
            if not data or (len(data) < page and not _has_next(headers)):
                break
            before = found[-1].version
        return found

    # -- writes ------------------------------------------------------------

    def _author_header(self, author):
        """The X-Rainer-Author to send, or None to let the server record the proven principal."""
        if author:
            return author
        return self.author if self._send_author else None

    def _post_with_author(self, url, data, headers, author, key=None, version=None):
        """POST with the right author header; once more with the default author when a server
        without ``--auth`` wants one that was left out."""
        sent = self._author_header(author)
        if sent is not None:
            headers["X-Rainer-Author"] = sent
        try:
            return self._send_once("POST", url, data=data, headers=headers, key=key, version=version)
        except RainerBadRequestError as exc:
            if sent is not None or _MISSING_AUTHOR not in (exc.body or ""):
                raise
        _AUTHOR_WANTED.add(self.origin)
        self._send_author = True
        headers["X-Rainer-Author"] = self.author
        return self._send_once("POST", url, data=data, headers=headers, key=key, version=version)

    def post(self, key, version, payload=b"", comment="", empty=False, author=None):
        """Commit ``payload`` as ``version`` of ``key`` in exactly one request.

        Returns the new commit's metadata. Never retried here: see :meth:`commit_once`.
        """
        headers = {
            "X-Rainer-Comment": comment or "",
            "Content-Type": "application/octet-stream",
        }
        if empty:
            headers["X-Rainer-Empty"] = "yes"
            payload = b""
        url = self._key_url(key, str(int(version)))
        status, response_headers, body = self._post_with_author(url, to_bytes(payload or b""), headers, author,
                                                                key=key, version=version)
        return metadata_only(self._json(status, body, url, "POST"))

    def commit_once(self, key, version, payload=b"", comment="", empty=False, author=None):
        """Post a commit; after a failure without a clear answer, learn whether it landed.

        A post that failed with no HTTP answer (or with 502/503/504) may still
        have been stored. That version of the key is read back: when it is our
        commit (same author, payload and emptiness), the commit landed and its
        metadata is returned. When it is not there, and ``retries`` allow, the
        commit is posted again; otherwise the failure is raised. Errors with a
        clear answer (409, 400, ...) are raised at once, except a 409 after a
        post that got no answer, which may be that post landed late.
        """
        payload = b"" if empty else to_bytes(payload or b"")
        change = dict(key=key, version=version, payload=payload, empty=empty)

        def landed():
            return self._landed(change, author)

        def post():
            return self.post(key, version, payload, comment=comment, empty=empty, author=author)

        return self._commit_safely(post, landed, "this commit was not saved: version %s of %r is another commit"
                                   % (version, key))

    def post_changes(self, changes, comment="", author=None):
        """Commit a change set in one request: all of it, or nothing (409 names every stale key).

        ``changes`` is a list of dicts: ``key``, ``version`` (the key's newest plus one),
        ``payload`` (bytes) or ``empty: True``, and optionally ``comment``, which overrides
        ``comment`` for that key. Returns the new commits' metadata, in order.
        """
        body = []
        for change in changes:
            entry = {"key": to_text(change["key"]), "version": int(change["version"])}
            if change.get("empty"):
                entry["empty"] = True
            else:
                payload = to_bytes(change.get("payload") or b"")
                text = decode_payload(payload)
                if text is not None:
                    entry["payload_utf8"] = text
                else:
                    entry["payload_base64"] = to_text(base64.b64encode(payload))
            if change.get("comment") is not None:
                entry["comment"] = to_text(change["comment"])
            body.append(entry)
        data = to_bytes(json.dumps({"changes": body}, ensure_ascii=False), encoding="utf-8")
        headers = {"X-Rainer-Comment": comment or "", "Content-Type": "application/json"}
        status, response_headers, answer = self._post_with_author(self.url, data, headers, author)
        metas = self._json(status, answer, self.url, "POST")
        if not isinstance(metas, list) or len(metas) != len(changes):
            raise RainerProtocolError("not the answer to a change set from %s" % self.url, status=status,
                                      url=self.url, method="POST")
        return [metadata_only(meta) for meta in metas]

    def commit_changes(self, changes, comment="", author=None):
        """:meth:`post_changes`, with :meth:`commit_once`'s care after a post that got no answer.

        A change set is saved whole or not at all, so reading back its first change tells
        whether it landed.
        """
        changes = [dict(change, payload=b"" if change.get("empty") else to_bytes(change.get("payload") or b""))
                   for change in changes]

        def landed():
            first = self._landed(changes[0], author)
            if not first:
                return first
            return [first] + [self.meta(change["key"], change["version"]) for change in changes[1:]]

        def post():
            return self.post_changes(changes, comment=comment, author=author)

        first = changes[0]
        return self._commit_safely(post, landed, "this change set was not saved: version %s of %r is another commit"
                                   % (first["version"], first["key"]))

    def _commit_safely(self, post, landed, taken):
        """Run ``post``; when it gets no clear answer, ask ``landed`` (the result when it did,
        False when another commit is in its place, None when nothing is) and post again only
        when nothing landed and ``retries`` allow."""
        attempt = 0
        while True:
            try:
                return post()
            except (RainerConflictError, RainerChangeSetConflictError) as conflict:
                # After a post that got no answer, a conflict may be that post, landed late.
                if attempt:
                    try:
                        found = landed()
                    except RainerError:
                        found = None
                    if found:
                        return found
                raise conflict
            except RainerError as exc:
                if not self._retryable(exc):
                    raise
                failure = exc
            try:
                found = landed()
            except RainerError as reread:
                failure.message = "%s; the commit may or may not have been saved: reading it back failed too (%s)" % (
                    failure.message, reread.message)
                raise failure
            if found:
                return found
            if attempt >= self.retries:
                if found is False:
                    failure.message = "%s; %s" % (failure.message, taken)
                raise failure
            self._pause(attempt)
            attempt += 1

    def _landed(self, change, author):
        """The metadata of ``change["version"]`` of its key when it holds our commit, False when
        it holds another, None when it is absent."""
        try:
            current = self.get(change["key"], change["version"])
        except RainerNotFoundError:
            return None
        expected_author = author or self.commit_author()
        empty = bool(change.get("empty"))
        same = (current.empty == empty and current.author == expected_author
                and (empty or current.payload == change.get("payload")))
        return current.meta if same else False
