"""Storage over HTTP: another Rainer server used as this process's storage.

What the original's JVM client was. ``rainer serve --database http://other:8080/diary`` runs a
server on top of it, fronting another one. Every call goes through ``RainerClient`` (kept-alive
connections; reads tried again when the server does not answer); reads of single commits use
the history endpoint, whose JSON carries the comment exactly (the ``X-Rainer-*`` headers cannot
hold line breaks).

A comment is sent in a header when saving, so it must be one line: ``save`` refuses one with a
line break (BadRequestError), as the server could never have received it over HTTP anyway.

Credentials and TLS options the caller does not give come from the environment, as the command
line reads them (``RAINER_TOKEN`` or ``RAINER_TOKEN_FILE``, ``RAINER_CA_FILE``,
``RAINER_CLIENT_CERT``, ``RAINER_CLIENT_KEY``, ``RAINER_INSECURE``), so ``rainer serve
--database https://...`` is configured like any other ``rainer`` command. With ``--auth`` on the
server behind, the front's principal must be an admin: it commits on behalf of other authors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rainer.client import (
    DEFAULT_TIMEOUT,
    RainerClient,
    RainerCommit,
    options_from_environment,
    redact_url,
)
from rainer.commit import Commit, CommitInfo, format_mtime, parse_mtime, validate_key
from rainer.errors import (
    BadRequestError,
    ChangeSetConflictError,
    CommitOrderingError,
    NotFoundError,
    RainerError,
)
from rainer.storage.base import OnUnreadable, Storage

_INT_MAX = 2**31 - 1  # the largest version the server accepts in a URL


class HttpStorage(Storage):
    """The storage interface over the Rainer HTTP API of the diary at ``url``."""

    #: Other processes write the remote server too, so its heads must never be cached here.
    single_writer = False

    def __init__(
        self,
        url: str,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        environment: bool = True,
        client: RainerClient | None = None,
        **options: Any,
    ) -> None:
        """``options`` are RainerClient's (token, retries, validate_certs, ca_path,
        client_cert, ...); with ``environment``, those not given come from the environment
        (``options_from_environment``). Or ``client`` is the client to use, made already."""
        self.url = redact_url(url)
        if client is None:
            defaults = options_from_environment(url=url) if environment else {}
            client = RainerClient(url, timeout, **{**defaults, **options})
        self.client = client

    def start(self) -> None:
        # Fail at start, as the SQL storage does when its database is down.
        self.client.ping()

    def stop(self) -> None:
        self.client.close()

    def heads(self) -> dict[str, Commit]:
        return self._heads(every=True)

    def head_infos(
        self, include_empty: bool = True, on_unreadable: OnUnreadable | None = None
    ) -> list[CommitInfo]:
        # The list holds no sizes, so the payloads come too (only tombstones when asked).
        return [commit.info() for commit in self._heads(every=include_empty).values()]

    def _heads(self, every: bool) -> dict[str, Commit]:
        found = self.client.list_full(all=every)
        return {key: to_commit(commit) for key, commit in found.items()}

    def get(self, key: str, version: int | None = None) -> Commit | None:
        if not _valid(key) or (version is not None and not 1 <= version <= _INT_MAX):
            return None
        # The newest commit below version + 1 is that version when it exists.
        before = None if version is None or version == _INT_MAX else version + 1
        found = self.history(key, limit=1, before=before)
        if not found or (version is not None and found[0].version != version):
            return None
        return found[0]

    def history(
        self, key: str, limit: int | None = None, before: int | None = None
    ) -> list[Commit]:
        if not _valid(key) or (limit is not None and limit < 1):
            return []
        if before is not None:
            if before <= 1:
                return []
            before = min(before, _INT_MAX)
        if limit is not None:
            limit = min(limit, _INT_MAX)
        try:
            found = self.client.history(key, limit, before)
        except NotFoundError:
            return []
        return [to_commit(commit) for commit in found]

    def save(self, commit: Commit) -> None:
        meta = {
            "key": commit.key,
            "version": commit.version,
            "author": commit.author,
            "comment": commit.comment,
            "empty": commit.empty,
        }
        try:
            self.client.post_commit(meta, commit.payload, mtime=format_mtime(commit.mtime))
        except CommitOrderingError as exc:
            # The plain storage error, as the SQL storage raises it: no HTTP details attached.
            raise CommitOrderingError(exc.key, exc.expected_version, exc.provided_version) from None

    #: A change set goes to the server behind as one ``POST /diary``, all or nothing there.
    supports_changesets = True

    def save_changeset(self, commits: Sequence[Commit]) -> None:
        # One request carries one author and one time, as every change set the server makes.
        if len({(commit.author, commit.mtime) for commit in commits}) > 1:
            raise BadRequestError("a change set over HTTP has one author and one time")
        changes = [
            {
                "key": commit.key,
                "version": commit.version,
                "payload": commit.payload,
                "empty": commit.empty,
                "comment": commit.comment,
            }
            for commit in commits
        ]
        try:
            self.client.commit_changes(
                changes, author=commits[0].author, mtime=format_mtime(commits[0].mtime)
            )
        except ChangeSetConflictError as exc:
            # The plain storage error, as the SQL storage raises it: no HTTP details attached.
            raise ChangeSetConflictError(exc.conflicts) from None

    def ping(self) -> None:
        self.client.ping()

    def __repr__(self) -> str:
        return f"HttpStorage({self.url!r})"


def to_commit(commit: RainerCommit) -> Commit:
    """The storage's Commit for a client's RainerCommit."""
    try:
        return Commit(
            key=str(commit.key),
            version=int(commit.version),
            payload=None if commit.empty else commit.payload,
            author=str(commit.author),
            comment=str(commit.comment),
            mtime=parse_mtime(str(commit.mtime)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise RainerError(f"malformed commit metadata from the server: {exc}") from None


def _valid(key: str) -> bool:
    try:
        validate_key(key)
    except BadRequestError:
        return False
    return True
