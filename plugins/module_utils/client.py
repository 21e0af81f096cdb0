# -*- coding: utf-8 -*-
# Copyright: Rainer for Python and Ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The rainer.rainer collection's one HTTP client for the Rainer API.

It is built on ``ansible.module_utils.urls`` alone, so neither the controller
nor a managed host needs a pip package to talk to a Rainer server. Every
plugin of the collection (modules, action plugins, lookup) goes through
:class:`RainerClient`.

It speaks the vocabulary of the ``rainer`` Python package's client
(``rainer.client``), which it cannot import: the same error classes and
attributes, the same defaults (30 s timeout, 2 retries, 0.5 s first pause),
the same retry rules and the same commit attributes. One test suite runs
both against a real server (tests/server/test_client_contract.py in the
repository).

Wire contract (see the server's documentation): the diary is mounted under a
prefix such as ``/diary``; ``GET /diary`` lists the newest commit of each key,
``GET /diary/KEY[/VERSION]`` answers the payload with ``X-Rainer-*`` metadata
headers, ``GET /diary/KEY[/VERSION]/meta`` answers the metadata as JSON,
``GET /diary/KEY/history`` lists older metadata a page at a time (newest
first) and ``POST /diary/KEY/VERSION`` commits, answering 409 when VERSION is
not the head's version plus one.
"""

from __future__ import annotations

import base64
import getpass
import inspect
import json
import os
import socket
import ssl
import time

from ansible.module_utils.common.text.converters import to_bytes, to_native, to_text
from http.client import HTTPException
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode, urlsplit

from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import Request, SSLValidationError, make_context

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
    return text if len(text) <= limit else text[:limit - 1] + u"\u2026"


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
    return dict((name, meta.get(name)) for name in METADATA_FIELDS)


def _has_next(headers):
    """Whether a ``Link`` header names a next page."""
    links = headers.get_all("Link") if hasattr(headers, "get_all") else [headers.get("Link")]
    return any('rel="next"' in (link or "") for link in links or [])


def _tls_reason(exc):
    """A TLS failure in words: the SSL library's short reason when there is one."""
    return "TLS failed: %s" % (getattr(exc, "reason", None) or to_native(exc))


def _os_reason(exc):
    """An OSError in words, without the ``[Errno N]`` prefix."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if getattr(exc, "strerror", None):
        return exc.strerror[0].lower() + exc.strerror[1:]
    return to_native(exc) or "the connection closed before an answer came"


class RainerClient:
    """HTTP client for one Rainer diary.

    :param url: base URL including the mount prefix, e.g. ``http://127.0.0.1:8080/diary``.
    :param timeout: seconds to wait for a connection and for each read.
    :param retries: extra tries of a read after no answer or a 502/503/504;
        a commit is tried again only after reading the key showed it did not land.
    :param retry_delay: the first pause between tries (doubled each time, at most 5 s).
    :param sleep: the pause function between tries (tests replace it).
    """

    def __init__(self, url, timeout=DEFAULT_TIMEOUT, validate_certs=True, ca_path=None, client_cert=None,
                 client_key=None, headers=None, retries=DEFAULT_RETRIES, author=None, sleep=time.sleep,
                 retry_delay=RETRY_DELAY):
        if not url:
            raise ValueError("url is required: the diary's base URL, like http://host:8080/diary")
        self.url = to_text(url).rstrip("/")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not an http:// or https:// URL: %r" % self.url)
        if parts.query or parts.fragment:
            raise ValueError("the diary URL cannot have a query or fragment: %r" % self.url)
        self.origin = "%s://%s" % (parts.scheme, parts.netloc.rpartition("@")[2])
        self.host = parts.hostname
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

    # -- transport ---------------------------------------------------------

    def _key_url(self, key, *parts, **query):
        path = "/".join([self.url, quote(to_bytes(key), safe="")] + [to_text(p) for p in parts])
        return self._with_query(path, query)

    @staticmethod
    def _with_query(url, query):
        query = dict((k, v) for k, v in query.items() if v is not None)
        if query:
            url = "%s?%s" % (url, urlencode(sorted(query.items())))
        return url

    def _unreachable(self, reason, url, method, tls=False):
        kind = RainerTLSError if tls else RainerUnreachableError
        return kind("cannot reach %s: %s" % (self.origin, reason), url=url, method=method)

    def _send_once(self, method, url, data=None, headers=None, key=None, version=None):
        """One HTTP request; returns (status, headers, body bytes) or raises a RainerError."""
        all_headers = dict(self.headers)
        all_headers.update(headers or {})
        for name, value in all_headers.items():
            if "\r" in to_text(value) or "\n" in to_text(value):
                raise RainerBadRequestError("%s must be one line: HTTP headers cannot break lines" % name,
                                            url=url, method=method)
        # Header values go out as UTF-8 bytes: http.client would encode text as Latin-1.
        all_headers = dict((name, to_bytes(value, encoding="utf-8")) for name, value in all_headers.items())
        self.requests += 1
        timed_out = "no answer within %s s" % ("%g" % self.timeout)
        try:
            extra = {}
            if REQUEST_TAKES_CONTEXT:
                extra["context"] = _tls_context(self.ca_path, self.validate_certs, self.client_cert, self.client_key)
            response = Request().open(
                method,
                url,
                data=data,
                headers=all_headers,
                timeout=self.timeout,
                validate_certs=self.validate_certs,
                ca_path=self.ca_path,
                client_cert=self.client_cert,
                client_key=self.client_key,
                http_agent=USER_AGENT,
                follow_redirects="safe",
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
            raise self._http_error(exc.code, body, url, method, key, version)
        except (SSLValidationError, ssl.SSLError) as exc:
            raise self._unreachable(_tls_reason(exc), url, method, tls=True)
        except URLError as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, ssl.SSLError):
                raise self._unreachable(_tls_reason(reason), url, method, tls=True)
            if isinstance(reason, (socket.timeout, TimeoutError)):
                raise self._unreachable(timed_out, url, method)
            if isinstance(reason, socket.gaierror):
                raise self._unreachable("cannot resolve %r" % self.host, url, method)
            if isinstance(reason, OSError):
                raise self._unreachable(_os_reason(reason), url, method)
            raise self._unreachable(to_native(reason), url, method)
        except (socket.timeout, TimeoutError):
            raise self._unreachable(timed_out, url, method)
        except HTTPException:
            raise self._unreachable("the connection closed before an answer came", url, method)
        except (UrlsConnectionError, OSError) as exc:
            raise self._unreachable(_os_reason(exc), url, method)

    def _http_error(self, status, body, url, method, key=None, version=None):
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
                conflict = json.loads(text)["conflict"]
                expected = int(conflict["expectedVersion"])
                provided = int(conflict["providedVersion"])
                conflict_key = to_text(conflict.get("key", key))
            except (ValueError, KeyError, TypeError):
                return RainerProtocolError("a 409 without a Rainer conflict from %s: %s" % (url, reason), **details)
            return RainerConflictError(conflict_key, expected, provided, **details)
        kinds = {400: RainerBadRequestError, 413: RainerPayloadTooLargeError, 431: RainerHeaderTooLargeError}
        if status in kinds:
            return kinds[status]("refused (%s): %s" % (status, reason), **details)
        if status >= 500:
            return RainerServerError("server error %s at %s: %s" % (status, url, reason), **details)
        return RainerHTTPError("unexpected answer %s from %s: %s" % (status, url, reason), **details)

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

    def _read(self, url, key=None, version=None):
        """A GET, tried again after no answer or a 502/503/504 (``retries`` times)."""
        attempt = 0
        while True:
            try:
                return self._send_once("GET", url, key=key, version=version)
            except RainerError as exc:
                if attempt >= self.retries or not self._retryable(exc):
                    raise
            self._pause(attempt)
            attempt += 1

    def _read_json(self, url, key=None, version=None):
        status, headers, body = self._read(url, key=key, version=version)
        return self._json(status, body, url), headers

    @staticmethod
    def _json(status, body, url, method="GET"):
        try:
            return json.loads(to_text(body, errors="surrogate_or_strict"))
        except ValueError:
            text = to_text(body, errors="surrogate_or_replace")
            raise RainerProtocolError("not a JSON answer from %s: %s" % (url, _snippet(text)),
                                      status=status, body=text, url=url, method=method)

    # -- reads -------------------------------------------------------------

    def list(self, all=False, payload=True):  # pylint: disable=redefined-builtin
        """Newest commit of every key: a dict key -> :class:`RainerCommit` (one request).

        Empty commits are left out unless ``all``; with ``payload`` the payloads come too.
        """
        query = {"all": _flag(all)}
        if payload:
            query["payload_base64"] = "yes"
        data, headers = self._read_json(self._with_query(self.url, query))
        if not isinstance(data, dict):
            raise RainerProtocolError("not a list of keys from %s" % self.url, url=self.url)
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
            raise RainerProtocolError("not a Rainer commit in the answer: %s" % to_native(exc))

    def get(self, key, version=None):
        """The head (or ``version``) of ``key`` with its payload, in one request.

        Raises :class:`RainerNotFoundError` when it does not exist.
        """
        parts = [str(int(version))] if version is not None else []
        url = self._key_url(key, *parts)
        status, headers, body = self._read(url, key=key, version=version)
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

    def post(self, key, version, payload=b"", comment="", empty=False, author=None):
        """Commit ``payload`` as ``version`` of ``key`` in exactly one request.

        Returns the new commit's metadata. Never retried here: see :meth:`commit_once`.
        """
        headers = {
            "X-Rainer-Author": author or self.author,
            "X-Rainer-Comment": comment or "",
            "Content-Type": "application/octet-stream",
        }
        if empty:
            headers["X-Rainer-Empty"] = "yes"
            payload = b""
        url = self._key_url(key, str(int(version)))
        status, response_headers, body = self._send_once("POST", url, data=to_bytes(payload or b""), headers=headers,
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
        author = author or self.author
        payload = b"" if empty else to_bytes(payload or b"")
        attempt = 0
        while True:
            try:
                return self.post(key, version, payload, comment=comment, empty=empty, author=author)
            except RainerConflictError as conflict:
                # After a post that got no answer, a conflict may be that post, landed late.
                if attempt:
                    try:
                        landed = self._landed(key, version, payload, empty, author)
                    except RainerError:
                        landed = None
                    if landed:
                        return landed
                raise conflict
            except RainerError as exc:
                if not self._retryable(exc):
                    raise
                failure = exc
            try:
                landed = self._landed(key, version, payload, empty, author)
            except RainerError as reread:
                failure.message = "%s; the commit may or may not have been saved: reading it back failed too (%s)" % (
                    failure.message, reread.message)
                raise failure
            if landed:
                return landed
            if attempt >= self.retries:
                if landed is False:
                    failure.message = "%s; this commit was not saved: version %s of %r is another commit" % (
                        failure.message, version, key)
                raise failure
            self._pause(attempt)
            attempt += 1

    def _landed(self, key, version, payload, empty, author):
        """The metadata of ``version`` when it holds our commit, False when it holds another, None when absent."""
        try:
            current = self.get(key, version)
        except RainerNotFoundError:
            return None
        same = (current.empty == bool(empty) and current.author == author
                and (empty or current.payload == payload))
        return current.meta if same else False
