"""Watch: blocking reads and a change feed, woken by the head view.

The view (head cache or ZooKeeper mirror) reports every change from its own thread; ``Watch``
hands the news to the event loop, where it wakes the requests waiting on those keys (or on a
list) and appends to the feed's ring of recent events, which a feed client resumes from.

Waiting costs one future per request and nothing per key otherwise, so ten thousand idle
watchers are ten thousand futures.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from rainer.commit import CommitInfo
from rainer.errors import BadRequestError

#: Longest and default wait of a blocking read, in seconds (a little jitter is added).
MAX_WAIT = 600.0
DEFAULT_WAIT = 300.0
#: Feed events kept for clients that resume with Last-Event-ID.
FEED_MEMORY = 10_000
#: Seconds between keep-alive comments on an idle feed.
KEEP_ALIVE = 15.0

_WAIT = re.compile(r"([0-9]{1,6})(s|m|ms)?")


def parse_wait(text: str | None) -> float:
    """``10``, ``10s``, ``5m`` or ``500ms``: seconds, at most MAX_WAIT; DEFAULT_WAIT when None."""
    if text is None:
        return DEFAULT_WAIT
    match = _WAIT.fullmatch(text)
    if match is None:
        raise BadRequestError(f"Invalid 'wait' parameter: {text!r} (use 10, 10s, 5m or 500ms)")
    number, unit = int(match.group(1)), match.group(2) or "s"
    seconds = number * {"s": 1.0, "m": 60.0, "ms": 0.001}[unit]
    return min(seconds, MAX_WAIT)


@dataclass(frozen=True, slots=True)
class Change:
    """One key's new head (None: the view no longer holds it), at the view's ``index``."""

    key: str
    info: CommitInfo | None
    index: int


class _Waiter:
    __slots__ = ("future", "matches")

    def __init__(
        self, future: asyncio.Future[Change | None], matches: Callable[[Change], bool]
    ) -> None:
        self.future = future
        self.matches = matches


class Watch:
    """Waiters and the feed, for one server. ``changed`` may be called from any thread."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self._by_key: dict[str, set[_Waiter]] = {}
        self._listers: set[_Waiter] = set()
        self.recent: deque[Change] = deque(maxlen=FEED_MEMORY)
        self._feeds: set[asyncio.Queue[list[Change] | None]] = set()
        self.closing = False

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    # -- news, from the view's thread --------------------------------------------------------

    def changed(self, changes: list[tuple[str, CommitInfo | None]], index: int) -> None:
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        batch = [Change(key, info, index) for key, info in changes]
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(self._wake, batch)

    def _wake(self, batch: list[Change]) -> None:
        for change in batch:
            self.recent.append(change)
            for waiter in list(self._by_key.get(change.key, ())):
                if not waiter.future.done() and waiter.matches(change):
                    waiter.future.set_result(change)
            for waiter in list(self._listers):
                if not waiter.future.done() and waiter.matches(change):
                    waiter.future.set_result(change)
        for queue in self._feeds:
            queue.put_nowait(batch)

    # -- waiting, on the event loop ----------------------------------------------------------

    async def key(self, key: str, matches: Callable[[Change], bool], timeout: float) -> bool:
        """Wait until a change of ``key`` that ``matches``; False when ``timeout`` passed."""
        waiter = _Waiter(asyncio.get_running_loop().create_future(), matches)
        self._by_key.setdefault(key, set()).add(waiter)
        try:
            return await self._wait(waiter, timeout)
        finally:
            waiters = self._by_key.get(key)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._by_key[key]

    async def any(self, matches: Callable[[Change], bool], timeout: float) -> bool:
        """Wait until any change that ``matches``; False when ``timeout`` passed."""
        waiter = _Waiter(asyncio.get_running_loop().create_future(), matches)
        self._listers.add(waiter)
        try:
            return await self._wait(waiter, timeout)
        finally:
            self._listers.discard(waiter)

    async def _wait(self, waiter: _Waiter, timeout: float) -> bool:
        if self.closing:
            return False
        try:
            await asyncio.wait_for(asyncio.shield(waiter.future), timeout)
        except TimeoutError:
            return False
        return waiter.future.result() is not None

    def feed(self) -> asyncio.Queue[list[Change] | None]:
        """A queue that receives every batch of changes from now on (None when the server
        stops); ``unfeed`` it after."""
        queue: asyncio.Queue[list[Change] | None] = asyncio.Queue()
        self._feeds.add(queue)
        return queue

    def unfeed(self, queue: asyncio.Queue[list[Change] | None]) -> None:
        self._feeds.discard(queue)

    def close(self) -> None:
        """Answer every waiter now (with the state as it is) and end the feeds: shutting down."""
        self.closing = True
        for waiter in [*self._listers, *(w for ws in self._by_key.values() for w in ws)]:
            if not waiter.future.done():
                waiter.future.set_result(None)
        for queue in self._feeds:
            queue.put_nowait(None)

    @property
    def waiting(self) -> int:
        """How many requests are waiting (for /healthz and the benchmarks)."""
        return len(self._listers) + sum(len(waiters) for waiters in self._by_key.values())
