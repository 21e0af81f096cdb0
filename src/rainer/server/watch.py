"""Watch: blocking reads and a change feed, woken by the head view.

The view (head cache or ZooKeeper mirror) reports every change from its own thread; ``Watch``
hands the news to the event loop, where it wakes the requests waiting on those keys (or on a
list) and appends to the feed's ring of recent events, which a feed client resumes from.

Waiting costs one future and one timer per request and nothing per key otherwise, so ten
thousand idle watchers are ten thousand futures. Three things bound them: at most ``limit``
requests wait at once (``--max-watchers``; more get ``503``), so watchers cannot take every
connection from reads, commits and health checks; a waiter whose client hangs up leaves at
once (the protocol reports the lost connection); and a commit wakes its waiters a slice at a
time, so the first answers leave while the rest are being made and the commit's own answer
does not wait behind ten thousand others.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import re
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from rainer.commit import CommitInfo
from rainer.defaults import MAX_WATCHERS
from rainer.errors import BadRequestError
from rainer.server.asgi_types import HangUps
from rainer.server.responses import Refused

#: Longest and default wait of a blocking read, in seconds (a little jitter is added).
MAX_WAIT = 600.0
DEFAULT_WAIT = 300.0
#: Feed events kept for clients that resume with Last-Event-ID.
FEED_MEMORY = 10_000
#: Seconds between keep-alive comments on an idle feed.
KEEP_ALIVE = 15.0
#: Waiters woken per event-loop step: their answers leave at the end of the step.
WAKE_SLICE = 256

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


class HungUp(Exception):
    """The client of a waiting request went away: there is nobody to answer."""


class _End(enum.Enum):
    """How a wait ended without a change (None: the server is stopping)."""

    TIMED_OUT = enum.auto()
    HUNG_UP = enum.auto()


class _Waiter:
    __slots__ = ("future", "matches")

    def __init__(
        self, future: asyncio.Future[Change | _End | None], matches: Callable[[Change], bool]
    ) -> None:
        self.future = future
        self.matches = matches


def _settle(future: asyncio.Future[Change | _End | None], outcome: Change | _End | None) -> None:
    if not future.done():
        future.set_result(outcome)


class Watch:
    """Waiters and the feed, for one server. ``changed`` may be called from any thread."""

    def __init__(self, limit: int = MAX_WATCHERS) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.limit = limit
        self._by_key: dict[str, set[_Waiter]] = {}
        self._listers: set[_Waiter] = set()
        self.recent: deque[Change] = deque(maxlen=FEED_MEMORY)
        #: Batches of changes reported from other threads, not yet handed to the event loop.
        self._pending: list[list[Change]] = []
        self._pending_lock = threading.Lock()
        self._feeds: set[asyncio.Queue[list[Change] | None]] = set()
        self.closing = False
        #: How many requests are waiting or following the feed.
        self.waiting = 0

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    # -- news, from the view's thread --------------------------------------------------------

    def changed(self, changes: list[tuple[str, CommitInfo | None]], index: int) -> None:
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        batch = [Change(key, info, index) for key, info in changes]
        # A head cache reports each commit of a batch on its own; they reach the event loop
        # together, with one wake-up (a system call and a loop step each) for all of them.
        with self._pending_lock:
            self._pending.append(batch)
            if len(self._pending) > 1:
                return  # a hand-over is on its way, and takes this batch with it
        try:
            loop.call_soon_threadsafe(self._hand_over)
        except RuntimeError:  # the loop closed meanwhile: nobody is waiting there any more
            with self._pending_lock:
                self._pending.clear()

    def _hand_over(self) -> None:
        with self._pending_lock:
            batches, self._pending = self._pending, []
        for batch in batches:
            self._wake(batch)

    def _wake(self, batch: list[Change]) -> None:
        due: list[tuple[_Waiter, Change]] = []
        for change in batch:
            self.recent.append(change)
            if self._by_key:
                for waiter in self._by_key.get(change.key, ()):
                    if waiter.matches(change):
                        due.append((waiter, change))
            for waiter in self._listers:
                if waiter.matches(change):
                    due.append((waiter, change))
        for queue in self._feeds:
            queue.put_nowait(batch)
        if due:
            self._wake_slice(due, 0)

    def _wake_slice(self, due: list[tuple[_Waiter, Change]], start: int) -> None:
        end = min(start + WAKE_SLICE, len(due))
        for position in range(start, end):
            waiter, change = due[position]
            _settle(waiter.future, change)
        if end < len(due) and self.loop is not None:
            # The rest in the next step, after the answers of these (and the commit's) left.
            self.loop.call_soon(self._wake_slice, due, end)

    # -- waiting, on the event loop ----------------------------------------------------------

    async def key(
        self,
        key: str,
        matches: Callable[[Change], bool],
        timeout: float,
        hang_ups: HangUps | None = None,
    ) -> bool:
        """Wait until a change of ``key`` that ``matches``; False when ``timeout`` passed or
        the server is stopping. HungUp when the client went away (``hang_ups``: where to hear
        of it); Refused (503) when ``limit`` requests wait already."""
        waiter = self._waiter(matches)
        self._by_key.setdefault(key, set()).add(waiter)
        try:
            return await self._wait(waiter, timeout, hang_ups)
        finally:
            waiters = self._by_key.get(key)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._by_key[key]

    async def any(
        self, matches: Callable[[Change], bool], timeout: float, hang_ups: HangUps | None = None
    ) -> bool:
        """Wait until any change that ``matches``; as ``key`` otherwise."""
        waiter = self._waiter(matches)
        self._listers.add(waiter)
        try:
            return await self._wait(waiter, timeout, hang_ups)
        finally:
            self._listers.discard(waiter)

    def _waiter(self, matches: Callable[[Change], bool]) -> _Waiter:
        self._admit()
        return _Waiter(asyncio.get_running_loop().create_future(), matches)

    def _admit(self) -> None:
        if self.waiting >= self.limit:
            raise Refused(
                503,
                f"Too many watchers: at most {self.limit} requests wait at once; try again",
                # Closed, so a refused watcher does not keep a connection meant for the others.
                [("Retry-After", "1"), ("Connection", "close")],
            )
        self.waiting += 1

    async def _wait(self, waiter: _Waiter, timeout: float, hang_ups: HangUps | None) -> bool:
        future = waiter.future
        try:
            if self.closing:
                return False
            timer = future.get_loop().call_later(timeout, _settle, future, _End.TIMED_OUT)
            on_hang_up = functools.partial(_settle, future, _End.HUNG_UP)
            if hang_ups is not None:
                hang_ups.add(on_hang_up)
            try:
                outcome = await future
            finally:
                timer.cancel()
                if hang_ups is not None:
                    hang_ups.discard(on_hang_up)
        finally:
            self.waiting -= 1
        if outcome is _End.HUNG_UP:
            raise HungUp
        return isinstance(outcome, Change)

    def feed(self) -> asyncio.Queue[list[Change] | None]:
        """A queue that receives every batch of changes from now on (None when the server
        stops); ``unfeed`` it after. Refused (503) when ``limit`` requests wait already."""
        self._admit()
        queue: asyncio.Queue[list[Change] | None] = asyncio.Queue()
        self._feeds.add(queue)
        return queue

    def unfeed(self, queue: asyncio.Queue[list[Change] | None]) -> None:
        if queue in self._feeds:
            self._feeds.discard(queue)
            self.waiting -= 1

    def close(self) -> None:
        """Answer every waiter now (with the state as it is) and end the feeds: shutting down."""
        self.closing = True
        for waiter in [*self._listers, *(w for ws in self._by_key.values() for w in ws)]:
            _settle(waiter.future, None)
        for queue in self._feeds:
            queue.put_nowait(None)
