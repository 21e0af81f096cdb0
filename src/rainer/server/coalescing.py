"""One ``send()`` per response: uvicorn writes a response's headers and body separately.

uvicorn's httptools protocol calls ``transport.write`` once for the status line and headers and
once for the body, so every small response costs two system calls and two TCP segments, and the
client wakes up twice. Measured here (docs/benchmarks.md), that was the largest single cost of a
head read. The wrapper below holds the writes made during one event-loop step and sends them
together at the end of the step; large writes go out at once, so a big payload is not copied.
"""

from __future__ import annotations

import asyncio
from typing import Any

_SEND_AT_ONCE_BYTES = 64 * 1024


class CoalescingTransport:
    """A transport whose small writes within one loop step leave in one ``write``."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._pending_bytes = 0

    def write(self, data: bytes) -> None:
        if self._pending_bytes + len(data) > _SEND_AT_ONCE_BYTES:
            self.flush()
            self._transport.write(data)
            return
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)
        self._pending_bytes += len(data)

    def flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            self._pending_bytes = 0
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        # Everything else (is_closing, get_extra_info, pause_reading, ...) is the transport's.
        return getattr(self._transport, name)
