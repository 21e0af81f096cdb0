"""Group commit: concurrent saves share transactions, and each still gets its own answer."""

from __future__ import annotations

import threading

import pytest
from storage_contract import make_commit

from rainer.errors import CommitOrderingError, StorageUnavailableError
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


def test_concurrent_saves_are_batched_and_all_durable(tmp_path):
    url = f"sqlite:///{tmp_path / 'g.db'}"
    storage = CountingStorage(url)
    storage.start()
    committer = GroupCommitter(storage)
    committer.start()
    writers, per_writer = 32, 10
    barrier = threading.Barrier(writers)

    def writer(n: int) -> None:
        barrier.wait()
        for version in range(1, per_writer + 1):
            committer.save(make_commit(f"key{n}", version))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
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
    storage = MemoryStorage()
    committer = GroupCommitter(storage)
    committer.start()
    futures = [committer.submit(make_commit("k", v)) for v in (1, 2, 2, 5, 3)]
    committer.stop()
    outcomes = []
    for future in futures:
        error = future.exception()
        outcomes.append(None if error is None else (error.expected_version, error.provided_version))
    assert outcomes == [None, None, (3, 2), (3, 5), None]


def test_stop_finishes_everything_submitted():
    storage = MemoryStorage()
    committer = GroupCommitter(storage)
    committer.start()
    futures = [committer.submit(make_commit(f"k{n}", 1)) for n in range(500)]
    committer.stop()
    assert all(future.done() and future.exception() is None for future in futures)
    assert len(storage.heads()) == 500


def test_a_failing_storage_fails_every_commit_of_the_batch():
    class Broken(MemoryStorage):
        def save_batch(self, commits):
            raise StorageUnavailableError("database unavailable: down for the test")

    committer = GroupCommitter(Broken())
    committer.start()
    future = committer.submit(make_commit("k", 1))
    with pytest.raises(StorageUnavailableError):
        future.result(timeout=10)
    committer.stop()


def test_ordering_errors_pass_through_save():
    committer = GroupCommitter(MemoryStorage())
    committer.start()
    committer.save(make_commit("k", 1))
    with pytest.raises(CommitOrderingError):
        committer.save(make_commit("k", 1))
    committer.stop()


def test_a_caller_that_gives_up_does_not_stop_the_writer():
    """A client that disconnects cancels its future; the writer thread must carry on."""
    import time

    class Slow(MemoryStorage):
        def save_batch(self, commits):
            time.sleep(0.2)
            return super().save_batch(commits)

    storage = Slow()
    committer = GroupCommitter(storage)
    committer.start()
    first = committer.submit(make_commit("k", 1))
    time.sleep(0.05)  # the writer is busy with the first batch
    abandoned = committer.submit(make_commit("k", 2))
    assert abandoned.cancel()
    committer.save(make_commit("k", 2, b"after"))
    committer.stop()
    assert first.result() is None
    assert storage.get("k").payload == b"after"


def test_coroutines_get_their_answers_once_per_batch():
    import asyncio

    storage = MemoryStorage()
    committer = GroupCommitter(storage)
    committer.start()

    async def scenario():
        outcomes = await asyncio.gather(
            *(committer.save_async(make_commit(f"k{n}", 1)) for n in range(50)),
            committer.save_async(make_commit("k0", 5)),
            return_exceptions=True,
        )
        assert outcomes[:50] == [None] * 50
        assert isinstance(outcomes[50], CommitOrderingError)

    asyncio.run(scenario())
    committer.stop()
    assert len(storage.heads()) == 50
