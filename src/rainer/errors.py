"""The errors that cross the boundaries between Rainer's parts.

Each maps onto one HTTP answer, so the server, the client and the command line agree on them.
"""

from __future__ import annotations


class RainerError(Exception):
    """Base class of every error Rainer raises on purpose."""


class BadRequestError(RainerError):
    """Input that can never be accepted as it is (HTTP 400)."""


class NotFoundError(RainerError):
    """No commit at that key or version (HTTP 404)."""


class PayloadTooLargeError(RainerError):
    """A payload over the configured limit (HTTP 413)."""


class CommitOrderingError(RainerError):
    """A commit's version is not the key's head version plus one (HTTP 409).

    ``expected_version`` is the version the storage would have accepted.
    """

    def __init__(self, key: str, expected_version: int, provided_version: int) -> None:
        super().__init__(
            f"Conflict on key {key!r}: expected version {expected_version}, got {provided_version}"
        )
        self.key = key
        self.expected_version = expected_version
        self.provided_version = provided_version


class ChangeSetConflictError(RainerError):
    """A change set some of whose commits are not their key's head plus one (HTTP 409): nothing
    of it was saved. ``conflicts`` holds one CommitOrderingError per stale commit, in order."""

    def __init__(self, conflicts: list[CommitOrderingError]) -> None:
        keys = ", ".join(repr(conflict.key) for conflict in conflicts)
        super().__init__(f"Conflict on {len(conflicts)} key(s) of the change set: {keys}")
        self.conflicts = conflicts


class CorruptCommitError(RainerError, ValueError):
    """Bytes that should hold a stored commit do not parse as one (HTTP 500 for that commit).

    ``key`` and ``version`` name the row or node when they are known.
    """

    def __init__(self, message: str, key: str | None = None, version: int | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.version = version


class StorageUnavailableError(RainerError):
    """The backing store cannot be reached (HTTP 503).

    The message may carry the driver's own words, which can name internal hosts: the server logs
    it and tells clients only that the database is unavailable.
    """


class MissingDependencyError(RainerError):
    """An optional package a feature needs is not installed (``pip install 'rainer-diary[X]'``)."""

    def __init__(self, feature: str, module: str, extra: str) -> None:
        super().__init__(
            f"{feature} needs the Python package {module!r}, which is not installed: "
            f"pip install 'rainer-diary[{extra}]'"
        )
        self.extra = extra


# -- what a client of a Rainer server raises ---------------------------------------------------
#
# rainer.client raises these, and the collection's module_utils/_client.py has classes of the
# same names and attributes (it cannot import this package). Each error of an exchange carries
# ``status`` (None when no answer came), ``body`` (the answer's text, "" when none), ``url`` and
# ``method``. Those that are an HTTP answer are also the meaning above (NotFoundError for 404,
# CommitOrderingError for 409, ...), so callers catch the meaning or the answer, as they like.


class _AnswerError(RainerError):
    """An error about an answer the server gave: its status, body, URL and method."""

    def __init__(
        self,
        message: str,
        status: int | None = None,
        body: str = "",
        url: str = "",
        method: str = "",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.url = url
        self.method = method


class RainerHTTPError(_AnswerError):
    """A Rainer server answered with an error status; the subclasses name the usual ones.

    Raised as it is for the others (401, 403, 405, 408, 421, ...), with the server's reason.
    """

    @property
    def code(self) -> int | None:
        """The status, under the name urllib's HTTPError (which pyrainer raised) uses."""
        return self.status


class RainerBadRequestError(RainerHTTPError, BadRequestError):
    """400: the server refused the request; the message is its reason. Also raised, with no
    status, for a request the client refuses to send (a key that can never exist, a header
    with a line break, a tombstone with a payload)."""


class RainerNotFoundError(RainerHTTPError, NotFoundError):
    """404: no such key or version (or the URL is not a diary)."""


class RainerConflictError(RainerHTTPError, CommitOrderingError):
    """409: the version posted is not the key's head plus one; ``expected_version`` is."""

    def __init__(
        self,
        key: str,
        expected_version: int,
        provided_version: int,
        status: int | None = 409,
        body: str = "",
        url: str = "",
        method: str = "POST",
    ) -> None:
        CommitOrderingError.__init__(self, key, expected_version, provided_version)
        self.status = status
        self.body = body
        self.url = url
        self.method = method


class RainerPayloadTooLargeError(RainerHTTPError, PayloadTooLargeError):
    """413: the payload is over the server's limit."""


class RainerHeaderTooLargeError(RainerHTTPError, BadRequestError):
    """431: the author or comment is over the server's bound, or the headers are too many."""


class RainerChangeSetConflictError(RainerHTTPError, ChangeSetConflictError):
    """409 to a change set: some of its versions are not their key's head plus one, and none
    of it was saved. ``conflicts`` holds a CommitOrderingError per stale key, in order."""

    def __init__(
        self,
        conflicts: list[CommitOrderingError],
        status: int | None = 409,
        body: str = "",
        url: str = "",
        method: str = "POST",
    ) -> None:
        ChangeSetConflictError.__init__(self, conflicts)
        self.status = status
        self.body = body
        self.url = url
        self.method = method


class RainerAccessError(RainerHTTPError):
    """The server's access control (``rainer serve --auth``) refused the request; the message
    carries the server's own reason. The subclasses name the status.

    As the collection's error of the same name: ``principal`` is who the server took the client
    for, ``permission`` what was missing (``read``, ``write`` or ``commit as 'NAME'``) and
    ``key`` the key it was missing for, each None when the server did not say.
    """

    def __init__(
        self,
        message: str,
        status: int | None = None,
        body: str = "",
        url: str = "",
        method: str = "",
        *,
        principal: str | None = None,
        permission: str | None = None,
        key: str | None = None,
    ) -> None:
        super().__init__(message, status, body, url, method)
        self.principal = principal
        self.permission = permission
        self.key = key


class RainerUnauthorizedError(RainerAccessError):
    """401: the credentials prove nothing (``Invalid credentials``), or there were none and
    anonymous may not do this (``Authentication required to read 'k'``)."""


class RainerForbiddenError(RainerAccessError):
    """403: the principal may not do this (``Forbidden: ci-bot may not write 'db.x'``)."""


class RainerRateLimitedError(RainerAccessError):
    """429: this address failed to authenticate too often; ``retry_after`` is the seconds the
    server asked to wait (None when it did not say)."""

    retry_after: float | None = None


class RainerServerError(RainerHTTPError, StorageUnavailableError):
    """5xx: the server failed, or its database is unavailable (503)."""


class RainerUnreachableError(StorageUnavailableError):
    """No answer: connection refused, name not resolved, timed out, reset, or TLS failed.

    A storage-unavailable error, so a server fronting another one answers 503 when it is down.
    """

    def __init__(self, message: str, url: str = "", method: str = "") -> None:
        super().__init__(message)
        self.status: int | None = None
        self.body = ""
        self.url = url
        self.method = method


class RainerTLSError(RainerUnreachableError):
    """The TLS handshake failed (an untrusted or mismatched certificate, not TLS at all).
    Never retried: trying again cannot change the answer."""


class RainerProtocolError(_AnswerError):
    """An answer this client cannot read as Rainer's (not JSON, not a commit, a 409 without
    its conflict): usually a URL that is not a diary, or something in between."""
