"""Watch against real servers: blocking reads of a key and of a list, the event feed, a stop with
waiters, and with ZooKeeper, a commit through one server waking a watcher on another."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from http_util import call, post_commit
from zk_util import wait_until

from harness.rainer import RainerServer

pytest_plugins = ["zk_fixtures"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    database = tmp_path_factory.mktemp("watch") / "rainer.db"
    with RainerServer(["--database", f"sqlite:///{database}"]) as running:
        yield running


@pytest.fixture
def key(request):
    return "w-" + "".join(ch if ch.isalnum() else "-" for ch in request.node.name)[:80]


def later(seconds: float, action, *args, **kwargs) -> threading.Thread:
    """Run ``action`` in ``seconds``, on a thread of its own."""

    def run() -> None:
        time.sleep(seconds)
        action(*args, **kwargs)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def timed(method: str, url: str) -> tuple[float, object]:
    began = time.monotonic()
    reply = call(method, url)
    return time.monotonic() - began, reply


# -- one key ------------------------------------------------------------------------------------


def test_a_read_newer_than_the_index_answers_at_once(server, key):
    post_commit(server.diary_url, key, 1, b"one", author="a")
    post_commit(server.diary_url, key, 2, b"two", author="a")
    took, got = timed("GET", f"{server.diary_url}/{key}?index=1&wait=30s")
    assert got.body == b"two" and took < 10


@pytest.mark.parametrize("suffix", ["", "/meta"])
def test_a_commit_wakes_a_blocked_read(server, key, suffix):
    post_commit(server.diary_url, key, 1, b"one", author="a")
    thread = later(0.5, post_commit, server.diary_url, key, 2, b"two", author="b")
    took, got = timed("GET", f"{server.diary_url}/{key}{suffix}?index=1&wait=30s")
    thread.join()
    assert got.status == 200 and took < 20
    if suffix:
        assert got.json()["version"] == 2
    else:
        assert (got.body, got.header("x-rainer-version")) == (b"two", "2")


def test_a_tombstone_wakes_and_a_new_key_wakes(server, key):
    post_commit(server.diary_url, key, 1, b"one", author="a")
    thread = later(0.5, post_commit, server.diary_url, key, 2, b"", author="a", empty="yes")
    got = call("GET", f"{server.diary_url}/{key}?index=1&wait=30s")
    thread.join()
    assert got.header("x-rainer-empty") == "Yes" and got.header("x-rainer-version") == "2"
    fresh = key + "-new"
    thread = later(0.5, post_commit, server.diary_url, fresh, 1, b"born", author="a")
    got = call("GET", f"{server.diary_url}/{fresh}?index=0&wait=30s")
    thread.join()
    assert got.body == b"born"


def test_the_wait_ends_with_the_current_state(server, key):
    post_commit(server.diary_url, key, 1, b"one", author="a")
    took, got = timed("GET", f"{server.diary_url}/{key}?index=1&wait=1")
    assert got.body == b"one" and 0.9 < took < 10
    took, missing = timed("GET", f"{server.diary_url}/{key}-nothing?index=0&wait=500ms")
    assert missing.status == 404 and took >= 0.4


@pytest.mark.parametrize("wait", ["forever", "-1", "1h", "10x", "%D9%A3"])
def test_a_malformed_wait_is_a_400(server, key, wait):
    got = call("GET", f"{server.diary_url}/{key}?index=0&wait={wait}")
    assert got.status == 400 and "wait" in got.text


# -- lists --------------------------------------------------------------------------------------


def test_a_blocked_list_wakes_on_a_change_in_its_scope_only(server, key):
    post_commit(server.diary_url, f"{key}.a", 1, b"x", author="a")
    listed = call("GET", f"{server.diary_url}?prefix={key}.")
    index = int(listed.header("x-rainer-index"))
    # Outside the scope: no answer before the wait ends.
    thread = later(0.3, post_commit, server.diary_url, f"other-{key}", 1, b"x", author="a")
    took, got = timed("GET", f"{server.diary_url}?prefix={key}.&index={index}&wait=2")
    thread.join()
    assert took > 1.5 and list(got.json()) == [f"{key}.a"]
    # Inside it: at once after the commit.
    index = int(got.header("x-rainer-index"))
    thread = later(0.3, post_commit, server.diary_url, f"{key}.b", 1, b"x", author="a")
    took, got = timed("GET", f"{server.diary_url}?prefix={key}.&index={index}&wait=30")
    thread.join()
    assert took < 20 and sorted(got.json()) == [f"{key}.a", f"{key}.b"]
    assert int(got.header("x-rainer-index")) > index


def test_a_list_with_an_old_index_answers_at_once(server, key):
    post_commit(server.diary_url, key, 1, b"x", author="a")
    index = int(call("GET", server.diary_url).header("x-rainer-index"))
    post_commit(server.diary_url, key, 2, b"y", author="a")
    took, got = timed("GET", f"{server.diary_url}?key={key}&index={index}&wait=30")
    assert took < 10 and got.json()[key]["version"] == 2


# -- the feed -----------------------------------------------------------------------------------


class Feed:
    """A reader of ``GET /diary?watch=yes`` on a thread, collecting events."""

    def __init__(self, server: RainerServer, query: str = "", last_id: int | None = None) -> None:
        self.events: list[tuple[str, str, dict]] = []
        self.connection = http.client.HTTPConnection(server.host, server.port, timeout=60)
        headers = {} if last_id is None else {"Last-Event-ID": str(last_id)}
        self.connection.request("GET", f"/diary?watch=yes{query}", headers=headers)
        self.response = self.connection.getresponse()
        assert self.response.status == 200
        assert self.response.getheader("content-type").startswith("text/event-stream")
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        fields: dict[str, str] = {}
        try:
            for raw in self.response:
                line = raw.decode().rstrip("\r\n")
                if not line:
                    if "data" in fields:
                        self.events.append(
                            (fields["id"], fields["event"], json.loads(fields["data"]))
                        )
                    fields = {}
                elif not line.startswith(":"):
                    name, _, value = line.partition(": ")
                    fields[name] = value
        except (OSError, ValueError, AttributeError):
            pass  # closed by the test: http.client then reads from a file it has let go of

    def close(self) -> None:
        self.connection.close()


def test_the_feed_sends_every_commit_and_resumes(server, key):
    feed = Feed(server, f"&prefix={key}&payload_utf8=yes")
    try:
        for version, payload in enumerate([b"one", b"two", b"three"], start=1):
            post_commit(server.diary_url, key, version, payload, author="a")
        post_commit(server.diary_url, key, 4, b"", author="a", empty="yes")
        post_commit(server.diary_url, "elsewhere-" + key, 1, b"x", author="a")
        wait_until(lambda: len(feed.events) >= 4, 15, "four events")
    finally:
        feed.close()
    assert [(kind, data["version"], data.get("payload_utf8")) for _, kind, data in feed.events] == [
        ("commit", 1, "one"),
        ("commit", 2, "two"),
        ("commit", 3, "three"),
        ("commit", 4, None),
    ]
    assert feed.events[3][2]["empty"] is True
    ids = [int(event_id) for event_id, _, _ in feed.events]
    assert ids == sorted(ids)
    # Resuming after the second event gives the rest, and nothing twice.
    resumed = Feed(server, f"&prefix={key}", last_id=ids[1])
    try:
        wait_until(lambda: len(resumed.events) >= 2, 15, "the events after the id")
        time.sleep(0.3)
    finally:
        resumed.close()
    assert [data["version"] for _, _, data in resumed.events] == [3, 4]


def test_a_feed_that_cannot_resume_says_to_list_again(server, key):
    current = int(call("GET", server.diary_url).header("x-rainer-index"))
    feed = Feed(server, last_id=current + 1_000_000)
    try:
        wait_until(lambda: feed.events, 15, "the reset event")
    finally:
        feed.close()
    assert feed.events[0][1] == "reset" and "list again" in feed.events[0][2]["reason"]


# -- stopping with waiters ----------------------------------------------------------------------


def test_a_stop_answers_waiters_promptly(tmp_path):
    with RainerServer(["--database", f"sqlite:///{tmp_path / 'r.db'}"]) as server:
        post_commit(server.diary_url, "k", 1, b"x", author="a")
        answers: list[int] = []
        threads = [
            threading.Thread(
                target=lambda: answers.append(
                    call("GET", f"{server.diary_url}/k?index=1&wait=5m").status
                )
            )
            for _ in range(50)
        ]
        for thread in threads:
            thread.start()
        feed = Feed(server)
        time.sleep(1)  # everyone is waiting now
        began = time.monotonic()
        server._proc.send_signal(signal.SIGTERM)
        code = server._proc.wait(30)
        took = time.monotonic() - began
        for thread in threads:
            thread.join(10)
        feed.close()
    assert code == 0 and answers == [200] * 50
    assert took < 8, f"stopping with 50 waiters and a feed took {took:.1f} s"


# -- bounds -------------------------------------------------------------------------------------


def watchers(server: RainerServer) -> dict[str, int]:
    return call("GET", f"{server.url}/healthz").json()["watchers"]


def waiting_request(server: RainerServer, path: str) -> socket.socket:
    """A connection whose request waits on the server (read its answer with ``answer_of``)."""
    sock = socket.create_connection((server.host, server.port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return sock


def answer_of(sock: socket.socket) -> tuple[int, bytes]:
    sock.settimeout(30)
    reply = http.client.HTTPResponse(sock)
    reply.begin()
    return reply.status, reply.read()


def test_a_waiter_whose_client_hangs_up_stops_waiting_at_once(server, key):
    post_commit(server.diary_url, key, 1, b"one", author="a")
    before = watchers(server)["waiting"]
    held = [waiting_request(server, f"/diary/{key}?index=1&wait=5m") for _ in range(20)]
    index = call("GET", f"{server.diary_url}?prefix={key}").header("x-rainer-index")
    held.append(waiting_request(server, f"/diary?prefix={key}&index={index}&wait=5m"))
    wait_until(lambda: watchers(server)["waiting"] == before + 21, 15, "21 requests waiting")
    for sock in held:
        sock.close()
    # Without hearing of the hang-up they would wait their 5 minutes.
    wait_until(lambda: watchers(server)["waiting"] == before, 10, "the waiters to leave")
    assert post_commit(server.diary_url, key, 2, b"two", author="a").status == 200


def test_watchers_beyond_the_limit_get_503_and_the_rest_is_still_served(tmp_path):
    args = ["--database", f"sqlite:///{tmp_path / 'r.db'}", "--max-connections", "20"]
    with RainerServer([*args, "--max-watchers", "3"]) as server:
        post_commit(server.diary_url, "k", 1, b"one", author="a")
        held = [waiting_request(server, "/diary/k?index=1&wait=5m") for _ in range(3)]
        try:
            wait_until(lambda: watchers(server) == {"waiting": 3, "limit": 3}, 15, "3 waiting")
            index = call("GET", server.diary_url).header("x-rainer-index")
            for refused in (
                call("GET", f"{server.diary_url}/k?index=1&wait=5m"),
                call("GET", f"{server.diary_url}?index={index}&wait=5m"),
                call("GET", f"{server.diary_url}?watch=yes"),
            ):
                assert refused.status == 503, refused
                assert refused.text.startswith("Too many watchers: at most 3 requests wait")
                assert refused.header("retry-after") == "1"
                assert refused.header("connection") == "close"
            # Reads that do not wait, commits and the health check keep their room.
            assert call("GET", f"{server.diary_url}/k").body == b"one"
            assert call("GET", f"{server.diary_url}/k?index=0&wait=5m").body == b"one"  # newer
            assert post_commit(server.diary_url, "k", 2, b"two", author="a").status == 200
            assert [answer_of(sock) for sock in held] == [(200, b"two")] * 3
        finally:
            for sock in held:
                sock.close()
        wait_until(lambda: watchers(server)["waiting"] == 0, 10, "no one waiting")
        assert call("GET", f"{server.diary_url}/k?index=1&wait=10ms").status == 200


def test_one_commit_wakes_more_waiters_than_one_slice(tmp_path):
    # The waiters of a commit are woken a slice at a time (watch.WAKE_SLICE, 256): all of them.
    count = 600
    args = ["--database", f"sqlite:///{tmp_path / 'r.db'}"]
    with RainerServer(args) as server:
        post_commit(server.diary_url, "k", 1, b"one", author="a")
        held = [waiting_request(server, "/diary/k?index=1&wait=5m") for _ in range(count)]
        try:
            wait_until(lambda: watchers(server)["waiting"] == count, 30, f"{count} waiting")
            assert post_commit(server.diary_url, "k", 2, b"two", author="a").status == 200
            assert [answer_of(sock) for sock in held] == [(200, b"two")] * count
        finally:
            for sock in held:
                sock.close()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--max-connections", "10", "--max-watchers", "10"], "--max-watchers 10 would leave"),
        (["--max-watchers", "0"], "not a positive whole number: '0'"),
        (["--max-connections", "many"], "not a positive whole number: 'many'"),
    ],
)
def test_max_watchers_must_leave_room_for_other_requests(tmp_path, extra, message):
    database = f"sqlite:///{tmp_path / 'r.db'}"
    done = subprocess.run(
        [sys.executable, "-m", "rainer", "serve", "--database", database, *extra],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done
    assert message in done.stderr and "Traceback" not in done.stderr


# -- a cluster ----------------------------------------------------------------------------------


@pytest.mark.postgresql
@pytest.mark.zookeeper
def test_a_commit_through_one_server_wakes_a_watcher_on_another(
    zookeeper, zk_path, postgres_server, tmp_path
):
    database = postgres_server.create_database("watch_cluster")
    args = ["--database", database, "--zookeeper", zookeeper.hosts, "--zk-path", zk_path]
    with RainerServer(args) as a, RainerServer(args) as b:
        post_commit(a.diary_url, "shared", 1, b"one", author="a")
        wait_until(lambda: call("GET", f"{b.diary_url}/shared").status == 200)
        thread = later(0.5, post_commit, a.diary_url, "shared", 2, b"two", author="a")
        took, got = timed("GET", f"{b.diary_url}/shared?index=1&wait=30s")
        thread.join()
        assert got.body == b"two" and took < 20
        # A list index from A means the same on B: neither a change missed nor one repeated.
        listed = call("GET", a.diary_url)
        index = int(listed.header("x-rainer-index"))
        wait_until(lambda: int(call("GET", b.diary_url).header("x-rainer-index")) >= index)
        thread = later(0.5, post_commit, a.diary_url, "other", 1, b"x", author="a")
        took, got = timed("GET", f"{b.diary_url}?index={index}&wait=30s")
        thread.join()
        assert "other" in got.json() and int(got.header("x-rainer-index")) > index
        again = call("GET", f"{a.diary_url}?index={got.header('x-rainer-index')}&wait=1")
        assert sorted(again.json()) == sorted(got.json())  # nothing new: the wait ran out
