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


class UnreachableError(StorageUnavailableError):
    """A Rainer server could not be reached: refused, unresolvable, timed out, or TLS failed.

    A storage-unavailable error, so a server fronting another one answers 503 when it is down.
    """


class HttpStatusError(RainerError):
    """A Rainer server answered with an error status; ``status`` and ``body`` say what it was.

    The client raises a subclass that is also the matching error above (NotFoundError for 404,
    CommitOrderingError for 409, ...), so callers catch the meaning, not the number.
    """

    def __init__(self, message: str, status: int, body: bytes = b"", url: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.url = url

    @property
    def code(self) -> int:
        """The status, under the name urllib's HTTPError (which pyrainer raised) uses."""
        return self.status
