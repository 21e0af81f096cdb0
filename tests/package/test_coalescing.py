"""The coalescing transport: small writes of one event-loop step leave together."""

from __future__ import annotations

import asyncio

from rainer.server.coalescing import CoalescingTransport


class RecordingTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str):
        return f"extra {name}"


def test_writes_of_one_step_leave_in_one_write():
    async def scenario():
        inner = RecordingTransport()
        transport = CoalescingTransport(inner, asyncio.get_running_loop())
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        transport.write(b"body")
        assert inner.writes == []
        await asyncio.sleep(0)
        assert inner.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
        transport.write(b"next")
        await asyncio.sleep(0)
        assert inner.writes[-1] == b"next"

    asyncio.run(scenario())


def test_large_writes_and_close_do_not_wait():
    async def scenario():
        inner = RecordingTransport()
        transport = CoalescingTransport(inner, asyncio.get_running_loop())
        transport.write(b"headers")
        big = b"x" * 100_000
        transport.write(big)
        assert inner.writes == [b"headers", big]
        transport.write(b"last")
        transport.close()
        assert inner.writes[-1] == b"last" and inner.closed
        assert transport.get_extra_info("peername") == "extra peername"

    asyncio.run(scenario())
