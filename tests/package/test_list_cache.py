"""Lists are made from what never changes: the entry of each (key, version), and, without a head
view, the whole list kept for the heads' versions. Through the ASGI app, counting what the
storage is asked.

Without a view (servers sharing PostgreSQL or MySQL) another server may commit at any time, so
every list asks the database for the heads' versions, and must show what it finds.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections import Counter

import pytest

from rainer.commit import Commit, now
from rainer.server.app import RainerApp, ServerConfig
from rainer.storage import MemoryStorage


class CountingStorage(MemoryStorage):
    """Memory storage that counts the reads of a list; ``shared``: as if other processes wrote
    it too, so that the server keeps no view of it."""

    def __init__(self, shared: bool) -> None:
        super().__init__()
        self.single_writer = not shared
        self.asked: Counter[str] = Counter()
        self.fetched: list[tuple[str, int]] = []

    def head_versions(self):
        self.asked["head_versions"] += 1
        return {key: head.version for key, head in self.heads().items()}

    def head_infos(self, include_empty=True, on_unreadable=None):
        self.asked["head_infos"] += 1
        return super().head_infos(include_empty, on_unreadable)

    def get_many(self, wanted):
        self.asked["get_many"] += 1
        self.fetched += wanted
        return super().get_many(wanted)

    def get_many_infos(self, wanted):
        self.asked["get_many_infos"] += 1
        self.fetched += wanted
        return super().get_many_infos(wanted)


def commit(key: str, version: int, payload: bytes | None = b"x") -> Commit:
    return Commit(key, version, payload, "a", "", now())


def get_list(app: RainerApp, query: bytes = b"payload_base64=yes") -> dict:
    sent: list[dict] = []
    asked = []

    async def receive():
        if asked:  # as a server does once the request is read: wait for a hang-up
            await asyncio.Event().wait()
        asked.append(True)
        return {"type": "http.request"}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/diary",
        "raw_path": b"/diary",
        "query_string": query,
        "headers": [],
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 200, sent
    return json.loads(b"".join(message.get("body", b"") for message in sent[1:]))


def payloads(listed: dict) -> dict[str, bytes]:
    return {key: base64.b64decode(meta["payload_base64"]) for key, meta in listed.items()}


@pytest.fixture
def shared():
    storage = CountingStorage(shared=True)
    app = RainerApp(storage)
    app.start()
    assert app.view is None
    for i in range(10):
        storage.save(commit(f"k{i}", 1, b"first %d" % i))
    yield app, storage
    app.stop()


def test_without_a_view_each_list_asks_only_for_the_head_versions(shared):
    app, storage = shared
    first = get_list(app)
    assert payloads(first) == {f"k{i}": b"first %d" % i for i in range(10)}
    storage.asked.clear()
    assert get_list(app) == first
    assert storage.asked == {"head_versions": 1}


def test_without_a_view_a_list_shows_what_other_servers_committed(shared):
    app, storage = shared
    get_list(app)
    storage.asked.clear()
    storage.fetched.clear()
    storage.save(commit("k3", 2, b"second"))  # through another server
    storage.save(commit("k4", 2, None))  # a tombstone
    storage.save(commit("new", 1, b"new"))
    listed = get_list(app)
    assert payloads(listed) == {
        **{f"k{i}": b"first %d" % i for i in range(10) if i not in (3, 4)},
        "k3": b"second",
        "new": b"new",
    }
    assert listed["k3"]["version"] == 2
    # Only what was new was read: the others' entries were kept.
    assert sorted(set(storage.fetched)) == [("k3", 2), ("k4", 2), ("new", 1)]
    everything = get_list(app, b"all=yes")
    assert everything["k4"] == {**everything["k4"], "version": 2, "empty": True}
    assert set(everything) == {*(f"k{i}" for i in range(10)), "new"}


def test_without_a_view_prefix_and_keys_still_narrow_the_list(shared):
    app, storage = shared
    storage.save(commit("other", 1))
    assert set(get_list(app, b"prefix=k")) == {f"k{i}" for i in range(10)}
    assert set(get_list(app, b"prefix=o&payload_utf8=yes")) == {"other"}
    assert set(get_list(app)) == {*(f"k{i}" for i in range(10)), "other"}


def test_with_a_view_a_commit_renders_only_its_own_entry_again():
    storage = CountingStorage(shared=False)
    for i in range(10):
        storage.save(commit(f"k{i}", 1, b"first %d" % i))
    app = RainerApp(storage)
    app.start()
    try:
        assert payloads(get_list(app))["k0"] == b"first 0"
        storage.fetched.clear()

        async def save() -> None:
            await app.committer.save_async(commit("k0", 2, b"second"))

        asyncio.run(save())
        assert payloads(get_list(app))["k0"] == b"second"
        # The new commit's payload came with its save; the others were rendered already.
        assert storage.fetched == []
    finally:
        app.stop()


def test_kept_entries_stay_within_the_memory_budget():
    storage = CountingStorage(shared=True)
    budget = 64 * 1024
    app = RainerApp(storage, ServerConfig(cache_bytes=budget))
    app.start()
    try:
        for i in range(200):
            storage.save(commit(f"k{i:03d}", 1, bytes([i % 256]) * 2000))
        for query in (b"payload_base64=yes", b"payload_utf8=yes", b""):
            assert len(get_list(app, query)) == 200
            assert app.cache.used_bytes <= budget
        listed = payloads(get_list(app))
        assert listed["k199"] == bytes([199]) * 2000
    finally:
        app.stop()
