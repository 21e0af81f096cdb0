"""``rainer serve --zookeeper`` for real: servers as subprocesses, a real ZooKeeper and, for two
servers on one database, a real PostgreSQL (SQLite cannot be shared between servers)."""

from __future__ import annotations

import json
import socket
import threading
import time
from urllib.parse import quote

import pytest
from http_util import call, post_commit
from zk_util import new_client, tree_heads, wait_until

import harness
from harness.rainer import RainerServer
from harness.zookeeper import ZooKeeperServer
from rainer.commit import Commit
from rainer.defaults import ZK_MAX_NODE_BYTES
from rainer.keeper.keeper import Keeper

pytest_plugins = ["zk_fixtures"]

CACHED = "x-rainer-cached"


def zk_args(hosts: str, path: str, *extra: str) -> list[str]:
    """Short periods and sessions, so that healing and take-over happen within seconds."""
    return [
        "--zookeeper",
        hosts,
        "--zk-path",
        path,
        "--publish-period",
        "1",
        "--zk-session-timeout",
        "3",
        *extra,
    ]


def health(server: RainerServer) -> dict:
    got = call("GET", server.url + "/healthz")
    assert got.status == 200
    return got.json()


def listed(server: RainerServer, **flags) -> tuple[dict, str | None]:
    query = "&".join(f"{k}={v}" for k, v in flags.items())
    got = call("GET", server.diary_url + (f"?{query}" if query else ""))
    assert got.status == 200
    return got.json(), got.header(CACHED)


def database_heads(server: RainerServer) -> dict:
    """Non-empty heads as the database has them (``?all=yes`` is answered from the database)."""
    every, cached = listed(server, all="yes")
    assert cached is None
    return {key: meta for key, meta in every.items() if not meta["empty"]}


def mirror_heads(server: RainerServer) -> dict:
    heads, cached = listed(server)
    assert cached == "Yes"
    return heads


@pytest.fixture
def servers(request):
    """A factory of running servers, all closed after the test."""
    made: list[RainerServer] = []

    def make(args: list[str], **kwargs) -> RainerServer:
        server = RainerServer(args, **kwargs)
        made.append(server)
        return server.start()

    yield make
    for server in made:
        server.close()


@pytest.fixture
def pg_database(request) -> str:
    harness.require(harness.PostgresServer)
    name = "zk_" + "".join(ch if ch.isalnum() else "_" for ch in request.node.name)[:40].lower()
    return request.getfixturevalue("postgres_server").create_database(name)


# -- one server --------------------------------------------------------------------------------


@pytest.fixture
def server(servers, zookeeper, zk_path, tmp_path) -> RainerServer:
    return servers(
        ["--database", f"sqlite:///{tmp_path / 'r.db'}", *zk_args(zookeeper.hosts, zk_path)]
    )


def test_healthz_reports_zookeeper(server):
    found = health(server)
    assert found["status"] == "ok"
    assert found["zookeeper"]["connected"] is True
    assert found["zookeeper"]["state"] == "connected"
    wait_until(lambda: health(server)["zookeeper"]["leader"], what="the only server to lead")


def test_head_reads_come_from_the_mirror_and_the_rest_from_the_database(server):
    diary = server.diary_url
    assert post_commit(diary, "k", 1, b"one", author="a").status == 200
    assert post_commit(diary, "k", 2, b"two", author="b", comment="c").status == 200
    got = call("GET", f"{diary}/k")
    assert (got.status, got.body, got.header(CACHED)) == (200, b"two", "Yes")
    assert got.header("x-rainer-version") == "2" and got.header("x-rainer-comment") == "c"
    meta = call("GET", f"{diary}/k/meta")
    assert meta.header(CACHED) == "Yes" and meta.json()["version"] == 2
    assert mirror_heads(server)["k"] == meta.json()
    for path in ("k/1", "k/2", "k/1/meta", "k/history"):
        got = call("GET", f"{diary}/{path}")
        assert got.status == 200 and got.header(CACHED) is None, path
    assert call("GET", f"{diary}/k/1").body == b"one"
    assert call("GET", f"{diary}/k/3").status == 404


def test_what_the_server_publishes_is_the_stored_form(server, zk_client, zk_path):
    assert post_commit(server.diary_url, "pub", 1, b"payload", author="a").status == 200
    data, _ = zk_client.get(f"{zk_path}/data/pub")
    meta = call("GET", f"{server.diary_url}/pub/meta").json()
    header = json.dumps(meta, separators=(",", ":")).encode()
    assert data == b"%d\n%s\npayload\n" % (len(header), header)


def test_a_tombstone_leaves_the_mirror_and_is_read_from_the_database(server, zk_client, zk_path):
    diary = server.diary_url
    post_commit(diary, "t", 1, b"x", author="a")
    assert post_commit(diary, "t", 2, b"", author="a", empty="yes").status == 200
    assert zk_client.exists(f"{zk_path}/data/t") is None
    got = call("GET", f"{diary}/t")
    assert got.status == 200 and got.header("x-rainer-empty") == "Yes"
    assert got.header(CACHED) is None
    assert "t" not in mirror_heads(server)
    assert "t" in listed(server, all="yes")[0]
    assert call("GET", f"{diary}/nothing-here").status == 404


def test_a_node_written_by_an_original_server_is_served(server, zk_client, zk_path):
    header = (
        b'{"key":"legacy","version":4,"author":"jvm","comment":"from Scala",'
        b'"mtime":"2014-02-11T14:01:28.839-08:00","empty":false}'
    )
    raw = b'%d\n%s\n{"a":1}\n' % (len(header), header)
    zk_client.create(f"{zk_path}/data/legacy", raw, makepath=True)
    wait_until(lambda: call("GET", f"{server.diary_url}/legacy").status == 200)
    got = call("GET", f"{server.diary_url}/legacy")
    assert got.body == b'{"a":1}' and got.header(CACHED) == "Yes"
    assert got.header("x-rainer-modified-time") == "2014-02-11T14:01:28.839-08:00"
    assert got.header("x-rainer-author") == "jvm"


def test_a_stored_form_too_big_for_a_node_is_413_and_nothing_is_stored(server):
    diary = server.diary_url
    got = post_commit(diary, "big", 1, b"x" * ZK_MAX_NODE_BYTES, author="a")
    assert got.status == 413 and "ZooKeeper" in got.text
    assert call("GET", f"{diary}/big").status == 404
    assert call("GET", f"{diary}/big/1").status == 404
    fits = ZK_MAX_NODE_BYTES - 200
    assert post_commit(diary, "big", 1, b"x" * fits, author="a").status == 200
    assert len(call("GET", f"{diary}/big").body) == fits


def test_the_node_limit_is_an_option(servers, zookeeper, zk_path, tmp_path):
    args = ["--database", f"sqlite:///{tmp_path / 'r.db'}", *zk_args(zookeeper.hosts, zk_path)]
    small = servers([*args, "--zk-max-node-bytes", "300"])
    assert post_commit(small.diary_url, "s", 1, b"x" * 300, author="a").status == 413
    assert post_commit(small.diary_url, "s", 1, b"x" * 10, author="a").status == 200


def test_a_key_zookeeper_cannot_name_is_400_and_nothing_is_stored(server):
    key = quote("smile-\U0001f600", safe="")
    got = post_commit(server.diary_url, key, 1, b"x", author="a")
    assert got.status == 400 and "ZooKeeper" in got.text
    assert call("GET", f"{server.diary_url}/{key}/1").status == 404


def test_without_zookeeper_nothing_is_cached(servers, tmp_path):
    plain = servers(["--database", f"sqlite:///{tmp_path / 'plain.db'}"])
    post_commit(plain.diary_url, "k", 1, b"x", author="a")
    assert call("GET", f"{plain.diary_url}/k").header(CACHED) is None
    assert "zookeeper" not in health(plain)


def test_an_unreachable_zookeeper_fails_the_start(tmp_path):
    from harness.ports import free_port

    args = ["--database", f"sqlite:///{tmp_path / 'r.db'}"]
    args += zk_args(f"127.0.0.1:{free_port()}", "/nowhere")
    server = RainerServer(args, startup_timeout=40)
    with pytest.raises(harness.ServiceError, match="did not answer"):
        server.start()
    server.close()


# -- two servers, one database, one ZooKeeper --------------------------------------------------


@pytest.fixture
def pair(servers, pg_database, zookeeper, zk_path) -> tuple[RainerServer, RainerServer]:
    args = ["--database", pg_database, *zk_args(zookeeper.hosts, zk_path)]
    return servers(args), servers(args)


def test_a_commit_through_a_is_served_by_bs_mirror(pair):
    a, b = pair
    assert post_commit(a.diary_url, "shared", 1, b"from A", author="a").status == 200
    # B answers a key its mirror has not seen yet from the database (without the header), so
    # wait for the mirror's answer itself.
    wait_until(
        lambda: call("GET", f"{b.diary_url}/shared").header(CACHED) == "Yes", what="B's mirror"
    )
    got = call("GET", f"{b.diary_url}/shared")
    assert got.body == b"from A" and got.header(CACHED) == "Yes"
    # The database settles races: B must name version 2 now.
    assert post_commit(b.diary_url, "shared", 1, b"late", author="b").status == 409
    assert post_commit(b.diary_url, "shared", 2, b"from B", author="b").status == 200
    wait_until(lambda: call("GET", f"{a.diary_url}/shared").body == b"from B", what="A's mirror")
    assert mirror_heads(a) == mirror_heads(b) == database_heads(a)


def test_exactly_one_of_two_servers_leads(pair):
    a, b = pair
    wait_until(
        lambda: [health(s)["zookeeper"]["leader"] for s in pair].count(True) == 1,
        what="one leader",
    )
    leader, other = (a, b) if health(a)["zookeeper"]["leader"] else (b, a)
    leader.stop()
    wait_until(lambda: health(other)["zookeeper"]["leader"], what="the other to take over")


# -- ZooKeeper down and back -------------------------------------------------------------------


@pytest.fixture
def own_zookeeper():
    """A ZooKeeper this test may stop and start."""
    harness.require(ZooKeeperServer)
    with ZooKeeperServer() as server:
        yield server


def test_zookeeper_down_loses_nothing_and_heals_when_back(servers, pg_database, own_zookeeper):
    args = ["--database", pg_database, *zk_args(own_zookeeper.hosts, "/rainer")]
    a, b = servers(args), servers(args)
    assert post_commit(a.diary_url, "k1", 1, b"before", author="a").status == 200
    assert post_commit(a.diary_url, "gone", 1, b"soon gone", author="a").status == 200
    wait_until(lambda: "k1" in mirror_heads(b) and "gone" in mirror_heads(b))

    own_zookeeper.stop()
    wait_until(lambda: not health(a)["zookeeper"]["connected"], what="A to see ZooKeeper go")
    # Commits still answer 200 and are in the database.
    assert post_commit(a.diary_url, "k1", 2, b"during", author="a").status == 200
    assert post_commit(b.diary_url, "k2", 1, b"new", author="b").status == 200
    assert post_commit(b.diary_url, "gone", 2, b"", author="b", empty="yes").status == 200
    assert call("GET", f"{b.diary_url}/k1/2").body == b"during"
    assert call("GET", f"{a.diary_url}/k2/1").body == b"new"
    assert database_heads(a).keys() == {"k1", "k2"}

    own_zookeeper.start()
    truth = database_heads(a)
    for server in (a, b):
        wait_until(
            lambda server=server: mirror_heads(server) == truth, 30, f"{server.url}'s mirror"
        )
        assert health(server)["zookeeper"]["connected"]
    client = new_client(own_zookeeper.hosts)
    try:
        in_zookeeper = tree_heads(Keeper(client, "/rainer"))
        assert {k: c.meta() for k, c in in_zookeeper.items()} == truth
        assert isinstance(in_zookeeper["k1"], Commit)
    finally:
        client.stop()
        client.close()


# -- stopping, whatever ZooKeeper is doing -----------------------------------------------------


class _Unresponsive:
    """A listener on ZooKeeper's port that accepts connections and never answers: a ZooKeeper
    that is restarting or hung, the worst case for a client that is stopping."""

    def __init__(self, port: int) -> None:
        self.socket = socket.create_server(("127.0.0.1", port), reuse_port=False)
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.accepted.append(self.socket.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        for conn in [*self.accepted, self.socket]:
            conn.close()


@pytest.mark.parametrize("state", ["up", "down", "restarting", "unresponsive"])
def test_a_stop_is_bounded_whatever_zookeepers_state(own_zookeeper, tmp_path, state):
    args = ["--database", f"sqlite:///{tmp_path / 'r.db'}"]
    server = RainerServer(
        [*args, *zk_args(own_zookeeper.hosts, "/rainer", "--zk-session-timeout", "10")]
    )
    server.start()
    blocker = None
    starter = None
    try:
        assert post_commit(server.diary_url, "k", 1, b"x", author="a").status == 200
        if state != "up":
            own_zookeeper.stop()
            wait_until(lambda: not health(server)["zookeeper"]["connected"])
        if state == "restarting":
            starter = threading.Thread(target=own_zookeeper.start)
            starter.start()
        elif state == "unresponsive":
            blocker = _Unresponsive(own_zookeeper.port)
            wait_until(lambda: blocker.accepted, what="the server to reconnect to the port")
        began = time.monotonic()
        code = server.stop(timeout=60)
        took = time.monotonic() - began
    finally:
        if blocker is not None:
            blocker.close()
        if starter is not None:
            starter.join()
        server.close()
    assert code == 0
    # Bounded: the ZooKeeper client gets a few seconds to let go, then is left behind.
    assert took < 8, f"stopping took {took:.1f} s with ZooKeeper {state}"
