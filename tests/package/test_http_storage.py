"""HttpStorage against the storage contract, and ``rainer serve`` fronting another server."""

from __future__ import annotations

import pytest
from storage_contract import StorageContract, make_commit

from harness.rainer import RainerServer
from rainer.client import RainerClient, RainerServerError, RainerUnreachableError
from rainer.errors import CommitOrderingError, StorageUnavailableError
from rainer.storage import open_storage
from rainer.storage.http import HttpStorage


@pytest.fixture
def upstream(tmp_path):
    """A real server on a fresh SQLite file."""
    with RainerServer(["--database", f"sqlite:///{tmp_path / 'upstream.db'}"]) as server:
        yield server


class TestHttpStorage(StorageContract):
    @pytest.fixture
    def storage(self, upstream):
        storage = HttpStorage(upstream.diary_url)
        storage.start()
        yield storage
        storage.stop()


def test_open_storage_gives_http_storage_for_http_urls():
    storage = open_storage("http://127.0.0.1:9/diary")
    assert isinstance(storage, HttpStorage)
    assert not storage.single_writer
    assert isinstance(open_storage("https://example.invalid/diary"), HttpStorage)


def test_conflict_is_the_plain_ordering_error(upstream):
    storage = HttpStorage(upstream.diary_url)
    storage.start()
    storage.save(make_commit("k", 1))
    with pytest.raises(CommitOrderingError) as caught:
        storage.save(make_commit("k", 1))
    assert type(caught.value) is CommitOrderingError
    assert (caught.value.expected_version, caught.value.provided_version) == (2, 1)
    storage.stop()


def test_start_fails_when_the_server_is_down():
    pauses: list[float] = []
    storage = HttpStorage("http://127.0.0.1:9/diary", timeout=2, sleep=pauses.append)
    with pytest.raises(StorageUnavailableError, match="cannot reach") as caught:
        storage.start()
    assert isinstance(caught.value, RainerUnreachableError)
    assert pauses == [0.5, 1.0]  # the client's options pass through: tried three times


def test_serve_fronts_another_server(upstream, tmp_path):
    """Commits through the front land upstream; commits upstream show through the front."""
    with RainerServer(["--database", upstream.diary_url]) as front:
        via_front = RainerClient(front.diary_url, retries=0)
        direct = RainerClient(upstream.diary_url)
        meta = via_front.post_commit(
            {"key": "cfg", "version": 1, "author": "ann", "comment": "one"}, b"a: 1\n"
        )
        assert direct.get_metadata("cfg") == meta
        assert direct.get_value("cfg") == b"a: 1\n"
        direct.post_commit({"key": "cfg", "version": 2, "author": "bob", "comment": "two"}, "b")
        assert via_front.get_commit("cfg").meta == direct.get_metadata("cfg")
        assert via_front.list() == direct.list()
        assert [c.version for c in via_front.history("cfg")] == [2, 1]
        with pytest.raises(CommitOrderingError) as caught:
            via_front.post_commit({"key": "cfg", "version": 2, "author": "c"}, "stale")
        assert caught.value.expected_version == 3
        # The front answers 503 while the server behind it is down, and recovers after.
        upstream.stop()
        with pytest.raises(RainerServerError) as caught:
            via_front.get_metadata("cfg")
        assert (caught.value.status, caught.value.body) == (503, "Database unavailable")
        upstream.start()
        assert via_front.get_value("cfg") == b"b"
