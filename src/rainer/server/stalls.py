"""Body reads that stall: a request whose body gets no bytes for ``timeout`` seconds ends.

A timer per ``receive()`` (``asyncio.wait_for``, or ``asyncio.timeout``) costs 4-5 µs: a
tenth of what the event loop spends on a whole commit. Instead, every read in progress is noted
with its deadline, and one timer per event loop sweeps them a few times per timeout, cancelling
the reads that are overdue. A stalled read thus ends up to a sweep (a quarter of the timeout, at
most a second) after its deadline; a read that is not overdue costs a dictionary entry.
"""

from __future__ import annotations

import asyncio

from rainer.server.asgi_types import Message, Receive
from rainer.server.responses import Refused

#: The longest time between two sweeps, in seconds.
SWEEP_MAX = 1.0


class _Read:
    __slots__ = ("deadline", "expired", "task")

    def __init__(self, task: asyncio.Task[object], deadline: float) -> None:
        self.task = task
        self.deadline = deadline
        self.expired = False


class Stalls:
    """The body reads in progress, and the sweep that ends stalled ones."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._period = min(SWEEP_MAX, timeout / 4)
        self._reads: set[_Read] = set()
        self._sweeping: asyncio.AbstractEventLoop | None = None

    async def receive(self, receive: Receive) -> Message:
        """``await receive()``, or Refused (408) when it brings nothing for ``timeout``."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        read = _Read(task, loop.time() + self.timeout)
        self._reads.add(read)
        if self._sweeping is not loop:
            self._sweeping = loop
            loop.call_later(self._period, self._sweep, loop)
        try:
            return await receive()
        except asyncio.CancelledError:
            if not read.expired:
                raise
            # Our cancellation, taken back: the request ends with a 408 instead.
            task.uncancel()
            raise Refused(
                408, f"Request timeout: no payload bytes for {self.timeout:g} s"
            ) from None
        finally:
            self._reads.discard(read)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        # A read is in _reads only while its task waits in receive(), so a cancellation made
        # here is delivered there (Task.cancel on a waiting task), never at a later await.
        now = loop.time()
        for read in self._reads:
            if read.deadline <= now and not read.expired and read.task.get_loop() is loop:
                read.expired = True
                read.task.cancel()
        if self._reads and not loop.is_closed():
            loop.call_later(self._period, self._sweep, loop)
        elif self._sweeping is loop:
            self._sweeping = None
