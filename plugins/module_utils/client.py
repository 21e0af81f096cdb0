# -*- coding: utf-8 -*-
# Copyright: Rainer for Python and Ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The rainer.rainer collection's one HTTP client for the Rainer API.

It is built on ``ansible.module_utils.urls`` alone, so neither the controller
nor a managed host needs a pip package to talk to a Rainer server. Every
plugin of the collection (modules, action plugins, lookup) goes through
:class:`RainerClient`.

Wire contract (see the server's documentation): the diary is mounted under a
prefix such as ``/diary``; ``GET /diary`` lists the newest commit of each key,
``GET /diary/KEY[/VERSION]`` answers the payload with ``X-Rainer-*`` metadata
headers, ``GET /diary/KEY[/VERSION]/meta`` answers the metadata as JSON,
``GET /diary/KEY/history`` lists older metadata (newest first) and
``POST /diary/KEY/VERSION`` commits, answering 409 when VERSION is not the
head's version plus one.
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
from urllib.parse import quote, urlencode

from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import Request, SSLValidationError, make_context

METADATA_FIELDS = ("key", "version", "author", "comment", "mtime", "empty")
RETRYABLE_STATUSES = (502, 503, 504)
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


class RainerError(Exception):
    """Base of every error the client raises.

    ``status`` is the HTTP status (``None`` when no answer came), ``body`` the
    answer's text and ``url`` the request's URL.
    """

    def __init__(self, message, status=None, body=None, url=None, method=None):
        super(RainerError, self).__init__(message)
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


class RainerNotFound(RainerError):
    """404: the key (or that version of it) does not exist."""


class RainerBadRequest(RainerError):
    """400: the server refused the request as malformed."""


class RainerConflict(RainerError):
    """409: the posted version was not the head's version plus one."""

    def __init__(self, message, key=None, expected_version=None, provided_version=None, **kwargs):
        super(RainerConflict, self).__init__(message, **kwargs)
        self.key = key
        self.expected_version = expected_version
        self.provided_version = provided_version

    def to_dict(self):
        result = super(RainerConflict, self).to_dict()
        result["conflict"] = {
            "key": self.key,
            "expectedVersion": self.expected_version,
            "providedVersion": self.provided_version,
        }
        return result


class RainerServerError(RainerError):
    """Any other HTTP error status (5xx and unexpected 4xx)."""


class RainerUnreachable(RainerError):
    """No HTTP answer: connection refused, name resolution, timeout, reset, TLS failure."""


class RainerTLSError(RainerUnreachable):
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


class Commit:
    """One commit: its metadata (a dict with METADATA_FIELDS) and, when read, its payload bytes."""

    def __init__(self, meta, payload=None):
        self.meta = meta
        self.payload = payload

    @property
    def key(self):
        return self.meta.get("key")

    @property
    def version(self):
        return int(self.meta.get("version") or 0)

    @property
    def empty(self):
        return bool(self.meta.get("empty"))

    @property
    def text(self):
        return decode_payload(self.payload)

    def __repr__(self):
        return "Commit(%r, payload=%r)" % (self.meta, self.payload)


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


class RainerClient:
    """HTTP client for one Rainer diary.

    :param url: base URL including the mount prefix, e.g. ``http://127.0.0.1:8080/diary``.
    :param retries: extra tries for reads after connection failures, timeouts and 502/503/504.
    :param sleep: the pause function between tries (tests replace it).
    """

    def __init__(self, url, timeout=10, validate_certs=True, ca_path=None, client_cert=None,
                 client_key=None, headers=None, retries=2, author=None, sleep=time.sleep,
                 retry_delay=0.5):
        if not url:
            raise RainerBadRequest("No Rainer URL given: set the url option, RAINER_URL or rainer_url")
        self.url = to_text(url).rstrip("/")
        self.timeout = timeout if timeout is not None else 10
        self.validate_certs = validate_certs if validate_certs is not None else True
        self.ca_path = ca_path
        self.client_cert = client_cert
        self.client_key = client_key
        self.headers = dict(headers or {})
        self.retries = max(0, int(retries or 0))
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

    def _send_once(self, method, url, data=None, headers=None):
        """One HTTP request; returns (status, headers, body bytes) or raises a RainerError."""
        all_headers = dict(self.headers)
        all_headers.update(headers or {})
        self.requests += 1
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
            raise self._http_error(exc.code, body, url, method)
        except SSLValidationError as exc:
            raise RainerTLSError("TLS failure talking to %s: %s" % (url, to_native(exc)), url=url, method=method)
        except ssl.SSLError as exc:
            raise RainerTLSError("TLS failure talking to %s: %s" % (url, to_native(exc)), url=url, method=method)
        except URLError as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, ssl.SSLError):
                raise RainerTLSError("TLS failure talking to %s: %s" % (url, to_native(reason)), url=url, method=method)
            if isinstance(reason, (socket.timeout, TimeoutError)):
                raise RainerUnreachable("Timed out after %ss waiting for %s" % (self.timeout, url), url=url, method=method)
            raise RainerUnreachable("Cannot reach the Rainer server at %s: %s" % (url, to_native(reason)),
                                    url=url, method=method)
        except (socket.timeout, TimeoutError) as exc:
            raise RainerUnreachable("Timed out after %ss waiting for %s" % (self.timeout, url), url=url, method=method)
        except (UrlsConnectionError, HTTPException, socket.error, OSError) as exc:
            raise RainerUnreachable("Cannot reach the Rainer server at %s: %s" % (url, to_native(exc)),
                                    url=url, method=method)

    def _http_error(self, status, body, url, method):
        text = to_text(body, errors="surrogate_or_replace").strip()
        where = "%s %s" % (method, url)
        if status == 404:
            return RainerNotFound("Not found: %s (%s)" % (where, text or "Key not found"),
                                  status=status, body=text, url=url, method=method)
        if status == 400:
            return RainerBadRequest("Bad request: %s: %s" % (where, text), status=status, body=text, url=url, method=method)
        if status == 409:
            conflict = {}
            try:
                conflict = json.loads(text).get("conflict") or {}
            except (ValueError, AttributeError):
                pass
            return RainerConflict(
                "Conflict on key %r: the server expected version %s, the request provided version %s"
                % (conflict.get("key"), conflict.get("expectedVersion"), conflict.get("providedVersion")),
                key=conflict.get("key"),
                expected_version=conflict.get("expectedVersion"),
                provided_version=conflict.get("providedVersion"),
                status=status, body=text, url=url, method=method,
            )
        return RainerServerError("HTTP %s from %s: %s" % (status, where, text), status=status, body=text, url=url, method=method)

    def _retryable(self, error):
        if isinstance(error, RainerTLSError):
            return False
        if isinstance(error, RainerUnreachable):
            return True
        return isinstance(error, RainerServerError) and error.status in RETRYABLE_STATUSES

    def _pause(self, attempt):
        if self.retry_delay:
            self.sleep(min(self.retry_delay * (2 ** attempt), 5.0))

    def _read(self, url):
        """A GET, retried after connection failures, timeouts and 502/503/504."""
        attempt = 0
        while True:
            try:
                return self._send_once("GET", url)
            except RainerError as exc:
                if attempt >= self.retries or not self._retryable(exc):
                    raise
                self._pause(attempt)
                attempt += 1

    def _read_json(self, url):
        status, headers, body = self._read(url)
        try:
            return json.loads(to_text(body, errors="surrogate_or_strict"))
        except ValueError as exc:
            raise RainerProtocolError("The answer of %s is not JSON: %s" % (url, to_native(exc)),
                                      status=status, body=to_text(body, errors="surrogate_or_replace"), url=url)

    # -- reads -------------------------------------------------------------

    def list(self, all=False, payload=True):  # pylint: disable=redefined-builtin
        """Newest commit of every key: a dict key -> :class:`Commit` (one request).

        Empty commits are left out unless ``all``; with ``payload`` the payloads come too.
        """
        query = {"all": _flag(all)}
        if payload:
            query["payload_base64"] = "yes"
        data = self._read_json(self._with_query(self.url, query))
        if not isinstance(data, dict):
            raise RainerProtocolError("The key listing of %s is not a JSON object" % self.url, url=self.url)
        result = {}
        for key, entry in data.items():
            payload_bytes = None
            if payload:
                payload_bytes = base64.b64decode(entry.get("payload_base64") or "")
            result[key] = Commit(metadata_only(entry), payload_bytes)
        return result

    def get(self, key, version=None):
        """The head (or ``version``) of ``key`` with its payload, in one request.

        Raises :class:`RainerNotFound` when it does not exist.
        """
        parts = [str(int(version))] if version is not None else []
        status, headers, body = self._read(self._key_url(key, *parts))
        meta = metadata_from_headers(headers)
        if meta["key"] is None:
            meta["key"] = key
        if meta["version"] is None:
            raise RainerProtocolError("The answer for key %r has no X-Rainer-Version header" % key,
                                      status=status, url=self._key_url(key, *parts))
        return Commit(meta, body)

    def head(self, key):
        """Like :meth:`get` for the newest version, but ``None`` when the key does not exist."""
        try:
            return self.get(key)
        except RainerNotFound:
            return None

    def meta(self, key, version=None):
        """Metadata of the head (or ``version``) of ``key`` as a dict."""
        parts = [str(int(version))] if version is not None else []
        return metadata_only(self._read_json(self._key_url(key, *(parts + ["meta"]))))

    def history(self, key, limit=None, before=None, payload=False):
        """Metadata of the key's commits, newest first, in one request.

        With ``payload`` the entries carry payloads too (as :class:`Commit`).
        """
        query = {"limit": limit, "before": before}
        if payload:
            query["payload_base64"] = "yes"
        data = self._read_json(self._key_url(key, "history", **query))
        if not isinstance(data, list):
            raise RainerProtocolError("The history of %r is not a JSON list" % key, url=self._key_url(key, "history"))
        return [
            Commit(metadata_only(entry), base64.b64decode(entry.get("payload_base64") or "") if payload else None)
            for entry in data
        ]

    # -- writes ------------------------------------------------------------

    def post(self, key, version, payload=b"", comment="", empty=False, author=None):
        """Commit ``payload`` as ``version`` of ``key`` in exactly one request.

        Returns the new commit's metadata. Never retried here: see :meth:`commit_once`.
        """
        headers = {
            "X-Rainer-Author": to_native(author or self.author),
            "X-Rainer-Comment": to_native(comment or ""),
            "Content-Type": "application/octet-stream",
        }
        if empty:
            headers["X-Rainer-Empty"] = "yes"
            payload = b""
        url = self._key_url(key, str(int(version)))
        status, response_headers, body = self._send_once("POST", url, data=to_bytes(payload or b""), headers=headers)
        try:
            return metadata_only(json.loads(to_text(body, errors="surrogate_or_strict")))
        except ValueError as exc:
            raise RainerProtocolError("The answer to the commit is not JSON: %s" % to_native(exc),
                                      status=status, body=to_text(body, errors="surrogate_or_replace"), url=url)

    def commit_once(self, key, version, payload=b"", comment="", empty=False, author=None):
        """Post a commit; after a failure without a clear answer, learn whether it landed.

        A post that failed with no HTTP answer (or with 502/503/504) may still
        have been stored. The key is read again: when its ``version`` is ours
        (same author and payload), the commit landed and its metadata is
        returned. When the head is still older, and ``retries`` allow, the
        commit is posted again; otherwise the original error is raised.
        Errors with a clear answer (409, 400, ...) are raised at once.
        """
        author = author or self.author
        payload = b"" if empty else to_bytes(payload or b"")
        attempt = 0
        while True:
            try:
                return self.post(key, version, payload, comment=comment, empty=empty, author=author)
            except RainerError as exc:
                if not self._retryable(exc):
                    raise
                failure = exc
            try:
                landed = self._landed(key, version, payload, empty, author)
            except RainerError as reread:
                failure.message = "%s; reading the key again to learn whether the commit landed failed too: %s" % (
                    failure.message, reread.message)
                raise failure
            if landed is not None:
                return landed
            if attempt >= self.retries:
                raise failure
            self._pause(attempt)
            attempt += 1

    def _landed(self, key, version, payload, empty, author):
        """Metadata of ``version`` when the key's head shows our commit landed, else ``None``."""
        try:
            current = self.get(key, version)
        except RainerNotFound:
            return None
        same = (current.empty == bool(empty) and current.meta.get("author") == author
                and (empty or current.payload == payload))
        return current.meta if same else None
