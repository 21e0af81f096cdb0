"""Heads kept in memory, for a storage that only this process writes.

With SQLite exactly one process writes (``SqlStorage`` holds a lock on the file), so the heads it
has saved are the true heads, and head reads can be answered without touching the database. Every
head is updated only after its save is durable, so a reader never sees a commit that could still
be lost.
"""

from __future__ import annotations

import threading

from rainer.commit import Commit
from rainer.storage.base import Storage
from rainer.storage.wrapper import StorageWrapper


class HeadCachingStorage(StorageWrapper):
    """A wrapper answering head reads from memory; everything else goes to ``delegate``."""

    single_writer = True

    def __init__(self, delegate: Storage) -> None:
        if not delegate.single_writer:
            raise ValueError("heads can only be cached for a storage that one process writes")
        super().__init__(delegate)
        self._lock = threading.Lock()
        self._heads: dict[str, Commit] = {}
        self._non_empty: dict[str, Commit] = {}
        #: Bumped on every change, so callers can cache what they derive from the heads.
        self.generation = 0

    def start(self) -> None:
        self.delegate.start()
        heads = self.delegate.heads()
        with self._lock:
            self._heads = heads
            self._non_empty = {key: c for key, c in heads.items() if not c.empty}
            self.generation += 1

    def heads(self) -> dict[str, Commit]:
        with self._lock:
            return dict(self._heads)

    def non_empty_heads(self) -> dict[str, Commit]:
        with self._lock:
            return dict(self._non_empty)

    def head(self, key: str) -> Commit | None:
        """The newest commit of ``key`` from memory; cheap enough for the event loop."""
        return self._heads.get(key)

    def get(self, key: str, version: int | None = None) -> Commit | None:
        head = self._heads.get(key)
        if version is None or head is None:
            return head
        if version == head.version:
            return head
        if version > head.version or version < 1:
            return None
        return self.delegate.get(key, version)

    def history(
        self, key: str, limit: int | None = None, before: int | None = None
    ) -> list[Commit]:
        if key not in self._heads:
            return []
        return self.delegate.history(key, limit, before)

    def after_save(self, saved: list[Commit]) -> None:
        # Copies are taken under the same lock, so nobody lists a half-applied batch.
        with self._lock:
            for commit in saved:
                self._heads[commit.key] = commit
                if commit.empty:
                    self._non_empty.pop(commit.key, None)
                else:
                    self._non_empty[commit.key] = commit
            self.generation += 1
