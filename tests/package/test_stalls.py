"""Request bodies that stall: 408 after ``body_timeout`` without bytes, through the ASGI app.

One sweep per event loop ends the stalled reads (``rainer.server.stalls``); these tests check
that it ends them, only them, and leaves a request that is cancelled for another reason alone.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from rainer.server.app import RainerApp, ServerConfig
from rainer.storage import MemoryStorage

TIMEOUT = 0.2


def post_scope(key: str) -> dict:
    path = f"/diary/{key}/1"
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"x-rainer-author", b"a")],
    }


@pytest.fixture
def app():
    app = RainerApp(MemoryStorage(), ServerConfig(body_timeout=TIMEOUT))
    app.start()
    yield app
    app.stop()


def run(app: RainerApp, pieces: list[tuple[float, bytes, bool]], key: str = "k"):
    """POST the body ``pieces`` (pause before each, bytes, more to come); the answer's status,
    body and how long it took."""
    sent: list[dict] = []
    queue = list(pieces)

    async def receive():
        if not queue:
            await asyncio.Event().wait()  # a client that sends nothing more
        pause, body, more = queue.pop(0)
        await asyncio.sleep(pause)
        return {"type": "http.request", "body": body, "more_body": more}

    async def send(message):
        sent.append(message)

    async def main():
        began = time.monotonic()
        await app(post_scope(key), receive, send)
        return time.monotonic() - began

    took = asyncio.run(asyncio.wait_for(main(), 5))  # a sweep that never came fails, not hangs
    return sent[0]["status"], sent[1]["body"], took


def test_a_body_that_never_comes_is_408_after_the_timeout(app):
    status, body, took = run(app, [])
    assert status == 408
    assert body == f"Request timeout: no payload bytes for {TIMEOUT:g} s".encode()
    # ended by a sweep: within a quarter of the timeout after it
    assert TIMEOUT <= took < TIMEOUT * 1.25 + 0.1
    assert app.storage.get("k") is None


def test_a_body_that_stops_halfway_is_408(app):
    status, _, _ = run(app, [(0, b"half", True)])
    assert status == 408
    assert app.storage.get("k") is None


def test_each_piece_gets_the_whole_timeout_again(app):
    # Slower in all than the timeout, but no piece waited that long.
    pieces = [
        (TIMEOUT * 0.6, b"a", True),
        (TIMEOUT * 0.6, b"b", True),
        (TIMEOUT * 0.6, b"c", False),
    ]
    status, _, took = run(app, pieces)
    assert status == 200 and took > TIMEOUT
    assert app.storage.get("k").payload == b"abc"


def test_bodies_in_time_are_not_touched_while_others_stall(app):
    async def main():
        async def stalled_receive():
            await asyncio.Event().wait()

        async def quick_receive():
            await asyncio.sleep(TIMEOUT * 0.5)
            return {"type": "http.request", "body": b"x", "more_body": False}

        answers: dict[str, list[dict]] = {"stalled": [], "quick": []}

        def sender(name):
            async def send(message):
                answers[name].append(message)

            return send

        await asyncio.gather(
            app(post_scope("stalled"), stalled_receive, sender("stalled")),
            *(app(post_scope(f"q{i}"), quick_receive, sender("quick")) for i in range(20)),
        )
        return answers

    answers = asyncio.run(asyncio.wait_for(main(), 5))
    assert answers["stalled"][0]["status"] == 408
    assert [m["status"] for m in answers["quick"] if "status" in m] == [200] * 20


def test_a_read_cancelled_for_another_reason_stays_cancelled(app):
    async def main():
        async def receive():
            await asyncio.Event().wait()

        async def send(message):
            raise AssertionError(f"nothing is answered: {message}")

        task = asyncio.ensure_future(app(post_scope("k"), receive, send))
        await asyncio.sleep(TIMEOUT / 10)
        task.cancel()  # as uvicorn does when the client hangs up
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert app.storage.get("k") is None


def test_the_timed_out_request_is_not_left_cancelled(app):
    async def main():
        async def receive():
            await asyncio.Event().wait()

        statuses = []

        async def send(message):
            statuses.append(message.get("status"))
            await asyncio.sleep(0)  # an await after the 408 must not be cancelled

        await app(post_scope("k"), receive, send)
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0
        return statuses

    assert asyncio.run(asyncio.wait_for(main(), 5))[0] == 408
