"""Group commit: concurrent saves made durable together, one transaction and one sync per batch.

The way etcd batches its log writes: a single writer thread takes every commit that is waiting,
saves them with ``Storage.save_batch`` and only then answers each one. No commit is answered before
the batch holding it is durable, and each gets exactly the answer ``save`` would have given in that
order.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future

from rainer.commit import Commit
from rainer.storage.base import Storage

log = logging.getLogger(__name__)

_STOP = object()


class GroupCommitter:
    """Feeds saves from many threads or tasks to one writer thread, in batches."""

    def __init__(self, storage: Storage, max_batch: int = 256) -> None:
        self.storage = storage
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
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

    def submit(self, commit: Commit) -> Future:
        """Queue ``commit``; the future completes once it is durable, or with its error."""
        future: Future = Future()
        self._queue.put((commit, future))
        return future

    def save(self, commit: Commit) -> None:
        """Save ``commit`` through the batcher, waiting for its answer."""
        self.submit(commit).result()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            if item is _STOP:
                break
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            self._write(batch)

    def _write(self, batch: list[tuple[Commit, Future]]) -> None:
        # A save whose caller gave up before it started (a client that went away) is dropped:
        # nobody was told it succeeded. Once running, it is saved and answered regardless.
        batch = [
            (commit, future) for commit, future in batch if future.set_running_or_notify_cancel()
        ]
        if not batch:
            return
        try:
            results = self.storage.save_batch([commit for commit, _ in batch])
        except Exception as exc:  # every commit in the batch gets the error
            log.exception("saving a batch of %d commits failed", len(batch))
            results = [exc] * len(batch)
        for (_, future), error in zip(batch, results, strict=True):
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)
