"""Heads kept in memory, for a storage that only this process writes.

With SQLite exactly one process writes (``SqlStorage`` holds a lock on the file), so the heads it
has saved are the true heads, and head reads can be answered without touching the database. Every
head is updated only after its save is durable, so a reader never sees a commit that could still
be lost. Only metadata is kept (see ``head_view``); payloads stay in the database.
"""

from __future__ import annotations

import threading

from rainer.commit import Commit, CommitInfo
from rainer.errors import CorruptCommitError
from rainer.storage.base import Storage
from rainer.storage.head_view import HeadView
from rainer.storage.wrapper import StorageWrapper


class HeadCache(StorageWrapper, HeadView):
    """A wrapper that keeps the metadata of every head in memory, as the head view of a server
    whose storage no other process writes."""

    single_writer = True
    complete = True

    def __init__(self, delegate: Storage) -> None:
        if not delegate.single_writer:
            raise ValueError("heads can only be cached for a storage that one process writes")
        super().__init__(delegate)
        self._lock = threading.Lock()
        self._infos: dict[str, CommitInfo] = {}
        #: heads that exist but cannot be read, until a new commit replaces them
        self._unreadable: dict[str, CorruptCommitError] = {}
        self._generation = 0
        self._index = 0

    def start(self) -> None:
        self.delegate.start()
        unreadable: dict[str, CorruptCommitError] = {}

        def remember(error: CorruptCommitError) -> None:
            if error.key is not None:
                unreadable[error.key] = error

        infos = self.delegate.head_infos(include_empty=True, on_unreadable=remember)
        count = self.delegate.commit_count()
        with self._lock:
            self._infos = {info.key: info for info in infos}
            self._unreadable = unreadable
            self._generation += 1
            self._index = count

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def index(self) -> int:
        return self._index

    def info(self, key: str) -> CommitInfo | None:
        found = self._infos.get(key)
        if found is None and key in self._unreadable:
            raise self._unreadable[key]
        return found

    def infos(self, include_empty: bool = False) -> dict[str, CommitInfo]:
        with self._lock:
            if include_empty:
                return dict(self._infos)
            return {key: info for key, info in self._infos.items() if not info.empty}

    def head_version(self, key: str) -> int | None:
        try:
            head = self.info(key)
        except CorruptCommitError as exc:
            return exc.version
        return None if head is None else head.version

    def get(self, key: str, version: int | None = None) -> Commit | None:
        newest = self.head_version(key)
        if newest is None or (version is not None and not 1 <= version <= newest):
            return None
        return self.delegate.get(key, newest if version is None else version)

    def history(
        self, key: str, limit: int | None = None, before: int | None = None
    ) -> list[Commit]:
        if key not in self._infos and key not in self._unreadable:
            return []
        return self.delegate.history(key, limit, before)

    def after_save(self, saved: list[Commit]) -> None:
        # Updated under the lock that copies take, so nobody lists a half-applied batch.
        with self._lock:
            for commit in saved:
                info = commit.info()
                self._infos[commit.key] = info
                self._unreadable.pop(commit.key, None)
                self._index += 1  # one per commit: each has an index of its own
                if self.on_change is not None:
                    self.on_change([(commit.key, info)], self._index)
            self._generation += 1
        if self.on_commit is not None:
            for commit in saved:
                self.on_commit(commit)
