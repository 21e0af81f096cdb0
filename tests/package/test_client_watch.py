"""RainerClient's watches against real servers: a blocking read of a key, every version of a key
as it comes, and the change feed; each riding out a server that stops and starts again."""

from __future__ import annotations

import contextlib
import http.server
import threading
import time
from typing import ClassVar
from unittest import mock

import pytest
from cli_helpers import commit
from client_fixtures import client_fixture, key_fixture, server_fixture  # noqa: F401
from zk_util import wait_until

from harness.rainer import RainerServer
from rainer.client import FeedEvent, RainerClient, RainerCommit, RainerError


def later(seconds: float, action, *args) -> threading.Thread:
    def run() -> None:
        time.sleep(seconds)
        action(*args)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


class Collected:
    """Runs ``make(on_retry)``'s iterator on a thread, keeping what it yields and the retries
    it reports. After the test it stops at its next retry (a watch never ends by itself)."""

    running: ClassVar[list[Collected]] = []

    def __init__(self, make) -> None:
        self.items: list = []
        self.retries: list[tuple[RainerError, float]] = []
        self.stopped = False
        self.iterator = make(self.on_retry)
        Collected.running.append(self)
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        with contextlib.suppress(_Stop):
            for item in self.iterator:
                if self.stopped:
                    return
                self.items.append(item)

    def on_retry(self, error: RainerError, delay: float) -> None:
        if self.stopped:
            raise _Stop
        self.retries.append((error, delay))


class _Stop(Exception):
    pass


@pytest.fixture(autouse=True)
def _stop_watches():
    yield
    for collected in Collected.running:
        collected.stopped = True
    Collected.running.clear()


# -- one blocking read --------------------------------------------------------------------------


def test_watch_answers_at_once_when_the_key_is_newer(client, key):
    commit(client, key, "one")
    commit(client, key, "two")
    began = time.monotonic()
    found = client.watch(key, index=1, wait=30)
    assert isinstance(found, RainerCommit) and (found.version, found.value) == (2, b"two")
    assert time.monotonic() - began < 10


def test_watch_wakes_on_a_commit_and_a_tombstone(client, key):
    commit(client, key, "one")
    thread = later(0.5, commit, client, key, "two")
    found = client.watch(key, index=1, wait=30)
    thread.join()
    assert (found.version, found.value, found.author) == (2, b"two", "tester")
    thread = later(0.5, commit, client, key, None)
    found = client.watch(key, index=2, wait=30)
    thread.join()
    assert found.version == 3 and found.empty and found.value is None


def test_watch_and_get_commit_bring_value_and_metadata_in_one_request(client, key):
    commit(client, key, "zoë's value")
    sent = []
    send = client._send

    def counting(method, path, *args, **kwargs):
        sent.append((method, path))
        return send(method, path, *args, **kwargs)

    with mock.patch.object(client, "_send", counting):
        watched = client.watch(key, index=0, wait=5)
        read = client.get_commit(key)
    assert len(sent) == 2, sent  # one each: the payload's headers carry the metadata
    for found in (watched, read):
        assert (found.version, found.value, found.author) == (1, "zoë's value".encode(), "tester")
        assert found.mtime and not found.empty
    # Headers are UTF-8 on the wire: a key (and comment) beyond ASCII reads back as it was.
    client.post_commit({"key": key + "-ünï", "version": 1, "author": "Zoë", "comment": "ça"}, b"x")
    found = client.get_commit(key + "-ünï")
    assert (found.key, found.author, found.comment) == (key + "-ünï", "Zoë", "ça")


def test_watch_ends_with_the_current_state_or_none(client, key):
    commit(client, key, "one")
    began = time.monotonic()
    assert client.watch(key, index=1, wait=0.5).version == 1
    assert time.monotonic() - began >= 0.4
    assert client.watch(key + "-never", index=0, wait=0.3) is None
    with pytest.raises(ValueError):
        client.watch(key, index=-1)


# -- every version ------------------------------------------------------------------------------


def test_watch_versions_yields_every_version_once_even_across_a_restart(tmp_path):
    with RainerServer(["--database", f"sqlite:///{tmp_path / 'r.db'}"]) as own:
        writer = RainerClient(own.diary_url)
        commit(writer, "k", "one")
        watcher = RainerClient(own.diary_url, retry_delay=0.1)
        got = Collected(lambda on_retry: watcher.watch_versions("k", 1, on_retry=on_retry))
        # Two commits close together: both come, in order.
        commit(writer, "k", "two")
        commit(writer, "k", "three")
        wait_until(lambda: len(got.items) >= 2, 15, "versions 2 and 3")
        own.stop()
        wait_until(lambda: got.retries, 15, "the watch noticing the server is gone")
        own.start()
        commit(writer, "k", "four")
        commit(writer, "k", None)
        wait_until(lambda: len(got.items) >= 4, 30, "versions 4 and 5 after the restart")
        time.sleep(0.3)
    assert [(c.version, c.value) for c in got.items] == [
        (2, b"two"),
        (3, b"three"),
        (4, b"four"),
        (5, None),
    ]
    assert all(delay <= 10 for _, delay in got.retries)


def test_watch_versions_of_a_new_key_starts_at_version_1(client, key):
    got = Collected(lambda on_retry: client.watch_versions(key, 0, on_retry=on_retry))
    thread = later(0.3, commit, client, key, "born")
    thread.join()
    wait_until(lambda: got.items, 15, "version 1")
    assert got.items[0].version == 1 and got.items[0].value == b"born"


# -- the feed -----------------------------------------------------------------------------------


def test_the_feed_yields_commits_in_its_scope_with_payloads(client, key):
    start = client.list_index(prefix=f"{key}.")  # every commit after this is in the feed
    got = Collected(
        lambda on_retry: client.feed(
            prefix=f"{key}.", last_event_id=start, payloads=True, on_retry=on_retry
        )
    )
    commit(client, f"{key}.a", b"\xff binary")
    commit(client, f"other-{key}", "outside")
    commit(client, f"{key}.a", None)
    wait_until(lambda: len(got.items) >= 2, 15, "two events")
    time.sleep(0.3)
    events = got.items
    assert [(e.kind, e.key, e.version, e.payload) for e in events] == [
        ("commit", f"{key}.a", 1, b"\xff binary"),
        ("commit", f"{key}.a", 2, None),
    ]
    assert events[1].meta["empty"] is True and "payload_base64" not in events[0].meta
    assert events[0].index < events[1].index


def test_the_feed_resumes_after_the_server_restarts_missing_nothing(tmp_path):
    with RainerServer(["--database", f"sqlite:///{tmp_path / 'r.db'}"]) as own:
        writer = RainerClient(own.diary_url)
        reader = RainerClient(own.diary_url, retry_delay=0.1)
        start = reader.list_index(keys=["a", "b"])
        got = Collected(
            lambda on_retry: reader.feed(keys=["a", "b"], last_event_id=start, on_retry=on_retry)
        )
        commit(writer, "a", "1")
        wait_until(lambda: got.items, 15, "the first event")
        own.stop()
        wait_until(lambda: got.retries, 15, "the feed noticing the cut")
        own.start()
        # Committed at once, before the feed is back: given by the server from Last-Event-ID.
        commit(writer, "b", "1")
        commit(writer, "a", "2")
        commit(writer, "c", "outside the scope")
        wait_until(lambda: len(got.items) >= 3, 30, "the events after the restart")
        time.sleep(0.5)
    assert [(e.key, e.version) for e in got.items] == [("a", 1), ("b", 1), ("a", 2)]
    indexes = [e.index for e in got.items]
    assert indexes == sorted(set(indexes))


def test_the_feed_from_an_event_id_and_a_reset_when_the_server_cannot_resume(client, key):
    first = commit(client, f"{key}.a", "1")
    index = client.list_index(prefix=f"{key}.")
    commit(client, f"{key}.a", "2")
    commit(client, f"{key}.b", None)
    resumed = Collected(
        lambda on_retry: client.feed(prefix=f"{key}.", last_event_id=index, on_retry=on_retry)
    )
    wait_until(lambda: len(resumed.items) >= 2, 15, "the two commits after the id")
    assert [(e.key, e.version) for e in resumed.items] == [(f"{key}.a", 2), (f"{key}.b", 1)]
    # An id the server never gave: it says to list again, and the client does.
    reset = Collected(
        lambda on_retry: client.feed(
            prefix=f"{key}.", last_event_id=index + 10**9, payloads=True, on_retry=on_retry
        )
    )
    wait_until(lambda: reset.items, 15, "the reset")
    event = reset.items[0]
    assert isinstance(event, FeedEvent) and event.kind == "reset"
    heads = {head.key: head for head in event.heads}
    assert sorted(heads) == [f"{key}.a", f"{key}.b"]  # tombstones too: the scope's whole state
    assert (heads[f"{key}.a"].version, heads[f"{key}.a"].payload) == (2, b"2")
    assert heads[f"{key}.b"].meta["empty"] is True and first["version"] == 1
    # Then it goes on from the reset's index.
    commit(client, f"{key}.a", "3")
    wait_until(lambda: len(reset.items) >= 2, 15, "a commit after the reset")
    assert (reset.items[1].kind, reset.items[1].version) == ("commit", 3)


def test_a_feed_refused_by_the_server_is_not_retried(client):
    with pytest.raises(ValueError, match="1 to 1000 keys"):
        next(client.feed(keys=[]))
    bad = RainerClient(client.url + "/nothing-here", retry_delay=0)
    with pytest.raises(RainerError):
        next(bad.feed())


def test_a_feed_event_without_an_id_keeps_the_last_id():
    """The server leaves the id off commits it filled in from its database but the last (a
    mirror reported several commits of a key as one change). A real server cannot be made to
    do that on cue, so a stand-in sends such a stream."""
    meta = (
        '{"key": "k", "version": %d, "author": "a", "comment": "", "mtime": "2026-01-01T00:00:00Z"}'
    )
    stream = (
        f"id: 6\nevent: commit\ndata: {meta % 1}\n\n"
        f"event: commit\ndata: {meta % 2}\n\n"
        f"id: 7\nevent: commit\ndata: {meta % 3}\n\n"
    ).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", str(len(stream)))
            self.end_headers()
            self.wfile.write(stream)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = RainerClient(f"http://127.0.0.1:{server.server_port}/diary", retry_delay=0.1)
        got = Collected(lambda on_retry: client.feed(last_event_id=5, on_retry=on_retry))
        wait_until(lambda: len(got.items) >= 3, 15, "three events")
    finally:
        server.shutdown()
        server.server_close()
    assert [(e.version, e.index) for e in got.items[:3]] == [(1, 6), (2, 6), (3, 7)]
