"""A storage wrapped around another, with a hook after every durable save.

The original Rainer's ``withPostSaveHook``: heads kept in memory (``cached``) and publishing to
ZooKeeper (``keeper.publishing``) are both "save in the delegate, then act on what was saved".
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from rainer.commit import Commit, CommitInfo
from rainer.storage.base import OnUnreadable, Storage


class StorageWrapper(Storage):
    """Passes every call to ``delegate``; subclasses act on saved commits in ``after_save``."""

    def __init__(self, delegate: Storage) -> None:
        self.delegate = delegate

    def start(self) -> None:
        self.delegate.start()

    def stop(self) -> None:
        self.delegate.stop()

    def heads(self) -> dict[str, Commit]:
        return self.delegate.heads()

    def head_infos(
        self, include_empty: bool = True, on_unreadable: OnUnreadable | None = None
    ) -> list[CommitInfo]:
        return self.delegate.head_infos(include_empty, on_unreadable)

    def head_versions(self) -> dict[str, int]:
        return self.delegate.head_versions()

    def get(self, key: str, version: int | None = None) -> Commit | None:
        return self.delegate.get(key, version)

    def get_many(self, wanted: Sequence[tuple[str, int]]) -> dict[tuple[str, int], Commit]:
        return self.delegate.get_many(wanted)

    def get_many_infos(
        self, wanted: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], CommitInfo]:
        return self.delegate.get_many_infos(wanted)

    def payload_slices(self, key: str, version: int, size: int) -> Iterator[bytes]:
        return self.delegate.payload_slices(key, version, size)

    def history(
        self, key: str, limit: int | None = None, before: int | None = None
    ) -> list[Commit]:
        return self.delegate.history(key, limit, before)

    def history_infos(
        self, key: str, limit: int | None = None, before: int | None = None
    ) -> list[CommitInfo]:
        return self.delegate.history_infos(key, limit, before)

    def head_version(self, key: str) -> int | None:
        return self.delegate.head_version(key)

    def commit_count(self) -> int:
        return self.delegate.commit_count()

    def check(self, commit: Commit) -> None:
        self.delegate.check(commit)

    def ping(self) -> None:
        self.delegate.ping()

    def status(self) -> dict[str, object]:
        return self.delegate.status()

    def save(self, commit: Commit) -> None:
        result = self.save_batch([commit])[0]
        if result is not None:
            raise result

    @property
    def supports_changesets(self) -> bool:  # type: ignore[override]
        return self.delegate.supports_changesets

    def save_changeset(self, commits: Sequence[Commit]) -> None:
        self.delegate.save_changeset(commits)
        self.after_changeset(list(commits))

    def save_batch(self, commits: Sequence[Commit]) -> list[Exception | None]:
        results = self.delegate.save_batch(commits)
        saved = [c for c, error in zip(commits, results, strict=True) if error is None]
        if saved:
            self.after_save(saved)
        return results

    def after_save(self, saved: list[Commit]) -> None:
        """Called with the commits of a batch that are now durable, in order."""

    def after_changeset(self, saved: list[Commit]) -> None:
        """Called with the commits of a change set, now durable together; like ``after_save``
        unless a wrapper must keep them together (publishing them in one transaction)."""
        self.after_save(saved)
