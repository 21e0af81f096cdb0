"""Group commit: concurrent saves share transactions, and each still gets its own answer."""

from __future__ import annotations

import asyncio
import time

import pytest
from storage_contract import make_commit

from rainer.errors import ChangeSetConflictError, CommitOrderingError, StorageUnavailableError
from rainer.server.group_commit import GroupCommitter
from rainer.storage import MemoryStorage
from rainer.storage.sql import SqlStorage


class CountingStorage(SqlStorage):
    """A SQLite storage that remembers the size of each batch it was given."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.batches: list[int] = []

    def save_batch(self, commits):
        self.batches.append(len(commits))
        return super().save_batch(commits)


def outcomes_of(committer: GroupCommitter, *commits) -> list:
    """Save ``commits`` concurrently from coroutines, as the server does; each one's outcome."""

    async def scenario() -> list:
        saves = (committer.save_async(commit) for commit in commits)
        return await asyncio.gather(*saves, return_exceptions=True)

    return asyncio.run(scenario())


def test_concurrent_saves_are_batched_and_all_durable(tmp_path):
    url = f"sqlite:///{tmp_path / 'g.db'}"
    storage = CountingStorage(url)
    storage.start()
    committer = GroupCommitter(storage)
    committer.start()
    writers, per_writer = 32, 10

    async def writer(n: int) -> None:
        for version in range(1, per_writer + 1):
            await committer.save_async(make_commit(f"key{n}", version))

    async def everyone() -> None:
        await asyncio.gather(*(writer(n) for n in range(writers)))

    asyncio.run(everyone())
    committer.stop()
    storage.stop()
    assert sum(storage.batches) == writers * per_writer
    assert len(storage.batches) < writers * per_writer, "no batch held more than one commit"
    reopened = SqlStorage(url)
    reopened.start()
    heads = reopened.heads()
    reopened.stop()
    assert {key: c.version for key, c in heads.items()} == {
        f"key{n}": per_writer for n in range(writers)
    }


def test_each_commit_in_a_batch_gets_its_own_answer():
    committer = GroupCommitter(MemoryStorage())
    committer.start()
    found = outcomes_of(committer, *(make_commit("k", v) for v in (1, 2, 2, 5, 3)))
    committer.stop()
    answers = [
        None if error is None else (error.expected_version, error.provided_version)
        for error in found
    ]
    assert answers == [None, None, (3, 2), (3, 5), None]


def test_stop_finishes_everything_submitted():
    storage = MemoryStorage()
    committer = GroupCommitter(storage)
    committer.start()

    async def submit_then_stop() -> list:
        saves = [
            asyncio.ensure_future(committer.save_async(make_commit(f"k{n}", 1))) for n in range(500)
        ]
        await asyncio.sleep(0)  # every save is queued
        await asyncio.get_running_loop().run_in_executor(None, committer.stop)
        return await asyncio.gather(*saves)

    assert asyncio.run(submit_then_stop()) == [None] * 500
    assert len(storage.heads()) == 500


def test_a_failing_storage_fails_every_commit_of_the_batch():
    class Broken(MemoryStorage):
        def save_batch(self, commits):
            raise StorageUnavailableError("database unavailable: down for the test")

    committer = GroupCommitter(Broken())
    committer.start()
    found = outcomes_of(committer, make_commit("a", 1), make_commit("b", 1))
    committer.stop()
    assert all(isinstance(error, StorageUnavailableError) for error in found)


def test_a_caller_that_gives_up_does_not_stop_the_writer():
    """A client that disconnects cancels its save; the writer thread must carry on."""

    class Slow(MemoryStorage):
        def save_batch(self, commits):
            time.sleep(0.2)
            return super().save_batch(commits)

    storage = Slow()
    committer = GroupCommitter(storage)
    committer.start()

    async def scenario() -> None:
        first = asyncio.ensure_future(committer.save_async(make_commit("k", 1)))
        await asyncio.sleep(0.05)  # the writer is busy with the first batch
        abandoned = asyncio.ensure_future(committer.save_async(make_commit("k", 2)))
        await asyncio.sleep(0)
        abandoned.cancel()
        await committer.save_async(make_commit("k", 2, b"after"))
        assert await first is None

    asyncio.run(scenario())
    committer.stop()
    assert storage.get("k").payload == b"after"


def test_a_change_set_is_written_alone_and_in_order():
    storage = MemoryStorage()
    committer = GroupCommitter(storage)
    committer.start()

    async def scenario() -> list:
        return await asyncio.gather(
            committer.save_async(make_commit("a", 1)),
            committer.save_changeset_async([make_commit("a", 2), make_commit("b", 1)]),
            committer.save_async(make_commit("b", 2)),
            committer.save_changeset_async([make_commit("a", 3), make_commit("b", 9)]),
            return_exceptions=True,
        )

    found = asyncio.run(scenario())
    committer.stop()
    assert found[:3] == [None, None, None]
    assert isinstance(found[3], ChangeSetConflictError)
    assert [c.key for c in found[3].conflicts] == ["b"]
    assert (storage.get("a").version, storage.get("b").version) == (2, 2)
    with pytest.raises(CommitOrderingError):
        raise found[3].conflicts[0]
