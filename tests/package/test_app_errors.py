"""Failures a real server cannot be made to produce on demand, driven through the ASGI app.

An unexpected exception is logged with its traceback and answered with one line and a 500; a
database that stops answering is a 503 with the reason.
"""

from __future__ import annotations

import asyncio
import json
import logging

from rainer.errors import StorageUnavailableError
from rainer.server.app import RainerApp
from rainer.storage import open_storage
from rainer.storage.base import Storage


class BrokenStorage(Storage):
    """Answers every read with ``error``; other processes write it (so nothing is cached)."""

    single_writer = False

    def __init__(self, error: Exception) -> None:
        self.error = error

    def heads(self):
        raise self.error

    def get(self, key, version=None):
        raise self.error

    def save(self, commit):
        raise self.error


def request(app: RainerApp, method: str, path: str, body: bytes = b"", headers=()):
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": list(headers),
    }
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], sent[1]["body"]


def test_an_unexpected_error_is_a_logged_500_with_one_line(caplog):
    app = RainerApp(BrokenStorage(RuntimeError("disk on fire")))
    app.start()
    try:
        with caplog.at_level(logging.ERROR, logger="rainer.server.app"):
            status, body = request(app, "GET", "/diary/k")
    finally:
        app.stop()
    assert status == 500
    assert body == b"Internal server error (logged on the server)"
    record = next(r for r in caplog.records if "GET /diary/k failed" in r.getMessage())
    assert record.exc_info is not None and "disk on fire" in str(record.exc_info[1])


def test_an_unavailable_database_is_503_and_its_details_stay_in_the_log(caplog):
    # The driver's words can name internal hosts: clients get a short reason, the log the rest.
    detail = 'database unavailable: connection to server at "10.1.2.3", port 5432 failed'
    app = RainerApp(BrokenStorage(StorageUnavailableError(detail)))
    app.start()
    try:
        with caplog.at_level(logging.ERROR, logger="rainer.server.app"):
            assert request(app, "GET", "/diary") == (503, b"Database unavailable")
            status, body = request(app, "POST", "/diary/k/1", b"x", [(b"x-rainer-author", b"a")])
            assert (status, body) == (503, b"Database unavailable")
            status, body = request(app, "GET", "/healthz")
    finally:
        app.stop()
    assert status == 503 and b"10.1.2.3" not in body
    assert json.loads(body) == {"status": "unavailable", "database": "unavailable"}
    assert any("10.1.2.3" in record.getMessage() for record in caplog.records)


def test_under_another_server_a_waiter_hears_the_hang_up_through_receive(tmp_path):
    """Our protocol reports a lost connection through a scope extension; under another ASGI
    server (granian, a test client) the app reads ``receive`` for ``http.disconnect``."""
    app = RainerApp(open_storage(f"sqlite:///{tmp_path / 'r.db'}"))
    app.start()
    sent: list[dict] = []

    async def scenario() -> int:
        loop = asyncio.get_running_loop()
        app.watch.bind(loop)
        hung_up = asyncio.Event()
        body_given = False

        async def receive():
            nonlocal body_given
            if not body_given:
                body_given = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await hung_up.wait()
            return {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)

        scope = {
            "type": "http",
            "method": "GET",
            "path": "/diary/k",
            "raw_path": b"/diary/k",
            "query_string": b"index=0&wait=5m",
            "headers": [],
        }
        waiting = asyncio.ensure_future(app(scope, receive, send))
        while app.watch.waiting == 0:
            await asyncio.sleep(0.01)
        hung_up.set()
        await asyncio.wait_for(waiting, 10)  # it would wait 5 minutes without hearing of it
        return app.watch.waiting

    try:
        assert asyncio.run(scenario()) == 0
    finally:
        app.stop()
    assert sent == []  # nobody to answer
