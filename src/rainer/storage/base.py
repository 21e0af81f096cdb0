"""The storage interface: every version of every key, journaled.

Implementations: ``memory.MemoryStorage`` (tests, embedding), ``sql.SqlStorage`` (SQLite,
PostgreSQL, MySQL/MariaDB) and ``http.HttpStorage`` (another Rainer server); wrappers in
``wrapper``, ``cached`` and ``rainer.keeper.publishing`` act after each save.

Reads come in two weights. ``head_infos``, ``get_many_infos`` and ``history_infos`` give metadata
and sizes only (``head_versions`` just the head versions), so listing a store of large payloads
costs memory in proportion to its keys, not its bytes; ``get``, ``get_many`` and ``history`` bring
payloads, and callers fetch them a bounded batch at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from rainer.commit import Commit, CommitInfo
from rainer.errors import CorruptCommitError, NotFoundError

#: Called with each stored commit that cannot be read (the storage has logged it already).
OnUnreadable = Callable[[CorruptCommitError], None]

#: How many payload bytes ``iter_heads`` fetches at once.
BATCH_BYTES = 4 * 1024 * 1024
#: How much of a large payload ``payload_slices`` reads at once.
SLICE_BYTES = 256 * 1024


class Storage:
    """Journaled commit storage, safe to call from many threads at once.

    Subclasses implement ``heads``, ``get`` and ``save``; the rest has working defaults, which
    storages that can do better override.
    """

    #: True when no other process writes this storage, so this process may cache its heads.
    single_writer: bool = False

    def start(self) -> None:
        """Acquire resources (connections, tables). Other methods need it to have run."""

    def stop(self) -> None:
        """Release resources."""

    def heads(self) -> dict[str, Commit]:
        """The newest commit of every key, empty ones included, payloads and all.

        Holds every head payload at once: callers that may meet a large store use
        ``head_infos`` and ``iter_heads`` instead.
        """
        raise NotImplementedError

    def head_infos(
        self, include_empty: bool = True, on_unreadable: OnUnreadable | None = None
    ) -> list[CommitInfo]:
        """The metadata of every key's newest commit (tombstones only with ``include_empty``).

        A head that cannot be read is left out and passed to ``on_unreadable``.
        """
        return [c.info() for c in self.heads().values() if include_empty or not c.empty]

    def head_versions(self) -> dict[str, int]:
        """The version of every key's newest commit, tombstones included: the least a caller
        that keeps what it derives from each (key, version) has to ask for each time."""
        return {info.key: info.version for info in self.head_infos(include_empty=True)}

    def iter_heads(self, include_empty: bool = True) -> Iterator[Commit]:
        """Every head with its payload, fetched about ``BATCH_BYTES`` at a time."""
        infos = self.head_infos(include_empty)
        for batch in batches(infos, BATCH_BYTES):
            found = self.get_many([(info.key, info.version) for info in batch])
            for info in batch:
                commit = found.get((info.key, info.version))
                if commit is not None:
                    yield commit

    def get(self, key: str, version: int | None = None) -> Commit | None:
        """The newest commit of ``key``, or its commit at ``version``; None when there is none.

        Raises CorruptCommitError when the stored commit cannot be read.
        """
        raise NotImplementedError

    def commit_count(self) -> int:
        """How many commits the journal holds (every version of every key)."""
        return sum(info.version for info in self.head_infos())

    def head_version(self, key: str) -> int | None:
        """The version of ``key``'s newest commit, or None when it has none."""
        head = self.get(key)
        return None if head is None else head.version

    def get_many(self, wanted: Sequence[tuple[str, int]]) -> dict[tuple[str, int], Commit]:
        """The commits at each (key, version) of ``wanted`` that exist and can be read."""
        found: dict[tuple[str, int], Commit] = {}
        for key, version in wanted:
            try:
                commit = self.get(key, version)
            except CorruptCommitError:
                continue
            if commit is not None:
                found[key, version] = commit
        return found

    def get_many_infos(
        self, wanted: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], CommitInfo]:
        """``get_many`` without the payloads."""
        return {name: commit.info() for name, commit in self.get_many(wanted).items()}

    def check(self, commit: Commit) -> None:
        """Raise BadRequestError or PayloadTooLargeError for a commit this storage could never
        take whatever its version; called before a commit is queued for saving."""

    def payload_slices(self, key: str, version: int, size: int) -> Iterator[bytes]:
        """The payload of ``key`` at ``version``, ``SLICE_BYTES`` at a time, so that sending a
        large one never holds all of it (``size`` is its length, from its CommitInfo). Raises
        NotFoundError when the commit is gone, CorruptCommitError when it cannot be read."""
        commit = self.get(key, version)
        if commit is None:
            raise NotFoundError(f"no commit {key!r} version {version}")
        payload = commit.payload or b""
        for start in range(0, len(payload), SLICE_BYTES):
            yield payload[start : start + SLICE_BYTES]

    def save(self, commit: Commit) -> None:
        """Journal ``commit`` durably.

        Raises CommitOrderingError unless ``commit.version`` is the key's head version plus one.
        """
        raise NotImplementedError

    #: True when ``save_changeset`` works (it needs a transaction over several keys).
    supports_changesets: bool = False

    def save_changeset(self, commits: Sequence[Commit]) -> None:
        """Save ``commits`` (of distinct keys) all or nothing, durably.

        Raises ChangeSetConflictError naming every commit whose version is not its key's head
        plus one; nothing is saved then.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot save change sets")

    def save_batch(self, commits: Sequence[Commit]) -> list[Exception | None]:
        """Save several commits, in order; the result holds each one's error, or None.

        Storages that can make a whole batch durable with one sync override this; the answer for
        each commit is still exactly what ``save`` would have said in that order.
        """
        results: list[Exception | None] = []
        for commit in commits:
            try:
                self.save(commit)
            except Exception as exc:  # handed back to the caller of this commit
                results.append(exc)
            else:
                results.append(None)
        return results

    def history(
        self, key: str, limit: int | None = None, before: int | None = None
    ) -> list[Commit]:
        """Commits of ``key``, newest first, with versions below ``before`` when it is given.

        Commits that cannot be read are left out (and logged).
        """
        head = self.get(key)
        if head is None:
            return []
        top = head.version if before is None else min(head.version, before - 1)
        found: list[Commit] = []
        for version in range(top, 0, -1):
            if limit is not None and len(found) >= limit:
                break
            try:
                commit = head if version == head.version else self.get(key, version)
            except CorruptCommitError:
                continue
            if commit is not None:
                found.append(commit)
        return found

    def history_infos(
        self, key: str, limit: int | None = None, before: int | None = None
    ) -> list[CommitInfo]:
        """``history`` without the payloads."""
        return [commit.info() for commit in self.history(key, limit, before)]

    def ping(self) -> None:
        """Raise StorageUnavailableError when the storage does not answer (the health check)."""
        self.head_version("healthz")

    def status(self) -> dict[str, object]:
        """What the health check reports beside the database (ZooKeeper, for example)."""
        return {}


def batches(infos: Sequence[CommitInfo], max_bytes: int) -> Iterator[Sequence[CommitInfo]]:
    """``infos`` cut into runs whose payloads add up to at most ``max_bytes`` (at least one
    commit each), so that fetching them one run at a time bounds the memory it takes."""
    start = 0
    total = 0
    for index, info in enumerate(infos):
        if index > start and total + info.size > max_bytes:
            yield infos[start:index]
            start, total = index, 0
        total += info.size
    if start < len(infos):
        yield infos[start:]
