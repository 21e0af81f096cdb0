"""Group commit: concurrent saves made durable together, one transaction and one sync per batch.

The way etcd batches its log writes: a single writer thread takes every commit that is waiting,
saves them with ``Storage.save_batch`` and only then answers each one. No commit is answered before
the batch holding it is durable, and each gets exactly the answer ``save`` would have given in that
order.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import queue
import threading
from collections.abc import Sequence
from typing import Final, TypeAlias

from rainer.commit import Commit
from rainer.storage.base import Storage

log = logging.getLogger(__name__)


class _Stop(enum.Enum):
    """The item that tells the writer thread to stop (an enum member, so checks narrow on it)."""

    STOP = enum.auto()


_STOP: Final = _Stop.STOP


class GroupCommitter:
    """Feeds saves from the server's coroutines to one writer thread, in batches."""

    def __init__(self, storage: Storage, max_batch: int = 256) -> None:
        self.storage = storage
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="rainer-group-commit", daemon=True)
        self._started = False

    def start(self) -> None:
        if not self._started:
            self._thread.start()
            self._started = True

    def stop(self) -> None:
        """Finish every save already submitted, then stop the writer thread."""
        if self._started:
            self._queue.put(_STOP)
            self._thread.join()
            self._started = False

    async def save_async(self, commit: Commit) -> None:
        """Save ``commit`` from a coroutine; returns once it is durable, or raises its error.

        Answers reach each event loop once per batch rather than once per commit.
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put((commit, future))
        await future

    async def save_changeset_async(self, commits: Sequence[Commit]) -> None:
        """Save ``commits`` all or nothing (``Storage.save_changeset``), in its own transaction on
        the writer thread, in order with the single commits around it."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put((_ChangeSet(commits), future))
        await future

    def _run(self) -> None:
        stopping = False
        # A change set met while gathering a batch: written right after it.
        held: _Item | None = None
        while not stopping:
            item = held if held is not None else self._queue.get()
            held = None
            if item is _STOP:
                break
            if isinstance(item[0], _ChangeSet):
                self._write_changeset(item)
                continue
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not _STOP and isinstance(item[0], _ChangeSet):
                    held = item
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            self._write(batch)

    def _write_changeset(self, item: tuple[_ChangeSet, asyncio.Future[None]]) -> None:
        changeset, future = item
        if not _still_wanted(future):
            return
        error: Exception | None = None
        try:
            self.storage.save_changeset(changeset.commits)
        except Exception as exc:  # handed to the caller: a conflict, an unavailable database
            error = exc
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            future.get_loop().call_soon_threadsafe(_answer, [(future, error)])

    def _write(self, batch: list[tuple[Commit, asyncio.Future[None]]]) -> None:
        # A save whose caller gave up before it started (a client that went away) is dropped:
        # nobody was told it succeeded. Once running, it is saved and answered regardless.
        batch = [(commit, future) for commit, future in batch if _still_wanted(future)]
        if not batch:
            return
        try:
            results = self.storage.save_batch([commit for commit, _ in batch])
        except Exception as exc:  # every commit in the batch gets the error
            log.exception("saving a batch of %d commits failed", len(batch))
            results = [exc] * len(batch)
        by_loop: dict[
            asyncio.AbstractEventLoop, list[tuple[asyncio.Future[None], Exception | None]]
        ]
        by_loop = {}
        for (_, future), error in zip(batch, results, strict=True):
            by_loop.setdefault(future.get_loop(), []).append((future, error))
        for loop, answers in by_loop.items():
            # A closed loop raises RuntimeError: nobody is waiting there any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_answer, answers)


class _ChangeSet:
    """Commits to save all or nothing, queued as one item."""

    __slots__ = ("commits",)

    def __init__(self, commits: Sequence[Commit]) -> None:
        self.commits = list(commits)


def _still_wanted(future: asyncio.Future[None]) -> bool:
    # Read from another thread: at worst a save whose caller just left is made anyway, like one
    # whose answer was lost on the network.
    return not future.cancelled()


def _answer(answers: list[tuple[asyncio.Future[None], Exception | None]]) -> None:
    """On the event loop: complete the futures of one batch."""
    for future, error in answers:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


#: What the writer thread's queue holds: a commit or a change set with the future its caller
#: awaits, or the order to stop.
_Item: TypeAlias = (
    "tuple[Commit, asyncio.Future[None]] | tuple[_ChangeSet, asyncio.Future[None]] | _Stop"
)
