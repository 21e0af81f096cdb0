"""In-memory storage: for tests and for embedding Rainer in another program."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from rainer.commit import Commit
from rainer.errors import ChangeSetConflictError, CommitOrderingError
from rainer.storage.base import Storage


class MemoryStorage(Storage):
    """Every version of every key in a dict of lists; nothing survives the process."""

    single_writer = True

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._commits: dict[str, list[Commit]] = {}

    def heads(self) -> dict[str, Commit]:
        with self._lock:
            return {key: versions[-1] for key, versions in self._commits.items()}

    def get(self, key: str, version: int | None = None) -> Commit | None:
        with self._lock:
            versions = self._commits.get(key)
            if not versions:
                return None
            if version is None:
                return versions[-1]
            return versions[version - 1] if 1 <= version <= len(versions) else None

    def save(self, commit: Commit) -> None:
        with self._lock:
            versions = self._commits.setdefault(commit.key, [])
            if commit.version != len(versions) + 1:
                if not versions:
                    del self._commits[commit.key]
                raise CommitOrderingError(commit.key, len(versions) + 1, commit.version)
            versions.append(commit)

    supports_changesets = True

    def save_changeset(self, commits: Sequence[Commit]) -> None:
        with self._lock:
            conflicts = [
                CommitOrderingError(c.key, len(self._commits.get(c.key, [])) + 1, c.version)
                for c in commits
                if c.version != len(self._commits.get(c.key, [])) + 1
            ]
            if conflicts:
                raise ChangeSetConflictError(conflicts)
            for commit in commits:
                self._commits.setdefault(commit.key, []).append(commit)

    def history(
        self, key: str, limit: int | None = None, before: int | None = None
    ) -> list[Commit]:
        with self._lock:
            versions = self._commits.get(key, [])
            top = len(versions) if before is None else max(0, min(len(versions), before - 1))
            newest_first = versions[:top][::-1]
            return newest_first if limit is None else newest_first[:limit]

    def stop(self) -> None:
        with self._lock:
            self._commits.clear()
