"""The storage interface: every version of every key, journaled.

Implementations: ``memory.MemoryStorage`` (tests, embedding), ``sql.SqlStorage`` (SQLite,
PostgreSQL, MySQL/MariaDB) and ``cached.HeadCachingStorage`` (a wrapper for a storage that only
this process writes).
"""

from __future__ import annotations

from collections.abc import Sequence

from rainer.commit import Commit


class Storage:
    """Journaled commit storage, safe to call from many threads at once.

    Subclasses implement ``heads``, ``get`` and ``save``; the rest has working defaults.
    """

    #: True when no other process writes this storage, so this process may cache its heads.
    single_writer: bool = False

    def start(self) -> None:
        """Acquire resources (connections, tables). Other methods need it to have run."""

    def stop(self) -> None:
        """Release resources."""

    def heads(self) -> dict[str, Commit]:
        """The newest commit of every key, empty ones included."""
        raise NotImplementedError

    def non_empty_heads(self) -> dict[str, Commit]:
        """The newest commit of every key whose newest commit is not empty."""
        return {key: commit for key, commit in self.heads().items() if not commit.empty}

    def get(self, key: str, version: int | None = None) -> Commit | None:
        """The newest commit of ``key``, or its commit at ``version``; None when there is none."""
        raise NotImplementedError

    def save(self, commit: Commit) -> None:
        """Journal ``commit`` durably.

        Raises CommitOrderingError unless ``commit.version`` is the key's head version plus one.
        """
        raise NotImplementedError

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
        """Commits of ``key``, newest first, with versions below ``before`` when it is given."""
        head = self.get(key)
        if head is None:
            return []
        top = head.version if before is None else min(head.version, before - 1)
        found: list[Commit] = []
        for version in range(top, 0, -1):
            if limit is not None and len(found) >= limit:
                break
            commit = head if version == head.version else self.get(key, version)
            if commit is not None:
                found.append(commit)
        return found

    def ping(self) -> None:
        """Raise when the storage does not answer; used by the health check."""
        self.get("\x00healthz")
