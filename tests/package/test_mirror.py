"""The live mirror against a real ZooKeeper: complete on start, follows every change, leaves out
what does not parse, never goes back, and rebuilds after an expired session."""

from __future__ import annotations

import logging
import threading

import pytest
from zk_util import expire_session, tree_heads, wait_until

from rainer.commit import Commit, CommitInfo, now
from rainer.keeper.keeper import Keeper
from rainer.keeper.mirror import Mirror

pytest_plugins = ["zk_fixtures"]


def commit(key: str, version: int, payload: bytes | None = b"x") -> Commit:
    return Commit(key, version, payload, "tester", "", now())


def infos(keeper: Keeper) -> dict[str, CommitInfo]:
    """What a mirror of ``keeper``'s tree should hold: the metadata of every node."""
    return {key: c.info() for key, c in tree_heads(keeper).items()}


@pytest.fixture
def writer(zk_clients, zk_path) -> Keeper:
    """A keeper on its own session: the mirror learns of its writes only through ZooKeeper."""
    return Keeper(zk_clients(), zk_path)


@pytest.fixture
def mirrors(zk_clients, zk_path):
    started: list[Mirror] = []

    def make(client=None) -> Mirror:
        mirror = Mirror(Keeper(client or zk_clients(), zk_path))
        mirror.start(timeout=15)
        started.append(mirror)
        return mirror

    yield make
    for mirror in started:
        mirror.close()


def test_complete_before_it_first_answers(writer, mirrors):
    expected = {f"k{i}": commit(f"k{i}", i + 1, b"v%d" % i) for i in range(60)}
    for c in expected.values():
        writer.save(c)
    mirror = mirrors()
    assert mirror.synced
    assert mirror.infos() == {key: c.info() for key, c in expected.items()}
    assert mirror.info("k7") == expected["k7"].info()


def test_starts_on_an_empty_tree(mirrors, writer):
    mirror = mirrors()
    assert mirror.infos() == {}
    assert writer.keys() == []  # the data path exists now, with no children


def test_follows_creates_updates_and_deletes(writer, mirrors):
    mirror = mirrors()
    writer.save(commit("a", 1))
    wait_until(lambda: mirror.info("a") == writer.get("a").info(), what="create")
    writer.save(commit("a", 2, b"two"))
    wait_until(lambda: mirror.info("a").version == 2, what="update")
    assert mirror.info("a").size == 3
    writer.save(commit("a", 3, None))
    wait_until(lambda: mirror.info("a") is None, what="delete")
    writer.save(commit("a", 4, b"back"))
    wait_until(lambda: mirror.info("a") is not None, what="re-create")
    assert mirror.info("a").version == 4
    assert mirror.infos() == infos(writer)


def test_every_commit_read_is_handed_on_whole(writer, mirrors):
    """The mirror keeps metadata only; the commits it reads go to ``on_commit`` (the server's
    cache), payload and all."""
    mirror = mirrors()
    heard: list[Commit] = []
    mirror.on_commit = heard.append
    writer.save(commit("s", 1, b"one"))
    wait_until(lambda: mirror.info("s") is not None)
    first = writer.get("s")
    assert heard == [first] and first.payload == b"one"
    writer.save(commit("s", 2, None))  # a tombstone deletes the node: nothing to hand on
    wait_until(lambda: mirror.info("s") is None)
    assert heard == [first]


def test_corrupt_and_empty_nodes_are_left_out_and_logged(writer, mirrors, caplog):
    client = writer.client
    client.create(writer.znode("bad"), b"\xffnot a commit", makepath=True)
    client.create(writer.znode("tomb"), commit("tomb", 2, None).encode())
    client.create(writer.znode("elsewhere"), commit("other", 1).encode())
    writer.save(commit("good", 1))
    with caplog.at_level(logging.WARNING):
        mirror = mirrors()
    assert mirror.infos() == {"good": writer.get("good").info()}
    assert "corrupt node" in caplog.text and "empty commit" in caplog.text
    # Fixing the node by hand brings it in; corrupting a good one takes it out.
    client.set(writer.znode("bad"), commit("bad", 1).encode())
    wait_until(lambda: mirror.info("bad") is not None, what="repaired node")
    client.set(writer.znode("good"), b"garbage")
    wait_until(lambda: mirror.info("good") is None, what="corrupted node leaves")


def test_never_goes_back_in_time(writer, mirrors):
    """Versions of one key, published as fast as possible, are seen in increasing order."""
    mirror = mirrors()
    seen: list[int] = []
    mirror.on_commit = lambda c: seen.append(c.version) if c.key == "fast" else None
    for version in range(1, 201):
        writer.save(commit("fast", version, b"%d" % version))
    wait_until(lambda: mirror.info("fast") and mirror.info("fast").version == 200)
    assert seen == sorted(set(seen)), "versions seen out of order or twice"
    assert seen[-1] == 200


def test_wait_for(writer, mirrors):
    mirror = mirrors()
    assert not mirror.wait_for(lambda m: m.info("w") is not None, 0.05)
    threading.Timer(0.1, writer.save, [commit("w", 1)]).start()
    assert mirror.wait_for(lambda m: m.info("w") is not None, 15)


def test_generation_moves_with_every_change(writer, mirrors):
    mirror = mirrors()
    before = mirror.generation
    writer.save(commit("g", 1))
    wait_until(lambda: mirror.generation > before)


def test_an_expired_session_rebuilds_and_misses_nothing(zookeeper, zk_clients, writer, mirrors):
    """Watches die with the session. Changes made around the expiry (a create, an update, a
    delete) must all be in the mirror once it has rebuilt, and later changes are followed."""
    client = zk_clients()
    mirror = mirrors(client)
    for key in ("keep", "change", "drop"):
        writer.save(commit(key, 1))
    wait_until(lambda: len(mirror.infos()) == 3)
    rebuilds = mirror.rebuilds

    expire_session(client, zookeeper.hosts)
    writer.save(commit("change", 2, b"changed"))
    writer.save(commit("drop", 2, None))
    writer.save(commit("new", 1))

    wait_until(lambda: mirror.rebuilds > rebuilds, 30, "a rebuild after the expiry")
    wait_until(lambda: mirror.infos() == infos(writer), 15, "the mirror to converge")
    assert sorted(mirror.infos()) == ["change", "keep", "new"]
    assert mirror.info("change").version == 2
    # The new session's watches work.
    writer.save(commit("after", 1))
    wait_until(lambda: mirror.info("after") is not None, what="a change after the rebuild")


def test_changes_while_the_mirror_was_away_are_caught_up(zk_clients, writer, mirrors):
    """Changes made while the mirror's session is gone are found by the full listing, even
    though no watch could report them."""
    client = zk_clients()
    mirror = mirrors(client)
    writer.save(commit("x", 1))
    wait_until(lambda: mirror.info("x") is not None)
    rebuilds = mirror.rebuilds
    # Simulate a dropped connection whose watches are lost: flag the mirror as needing a
    # rebuild, drop our watches by hand, change things, then report reconnection.
    client._data_watchers.clear()
    client._child_watchers.clear()
    mirror._on_state("SUSPENDED")
    writer.save(commit("x", 2, b"two"))
    writer.save(commit("y", 1))
    mirror._on_state("CONNECTED")
    wait_until(lambda: mirror.rebuilds > rebuilds, what="a rebuild on reconnection")
    wait_until(lambda: mirror.infos() == infos(writer), what="the mirror to converge")


def test_close_keeps_the_last_heads_readable(writer, mirrors):
    mirror = mirrors()
    writer.save(commit("c", 1))
    wait_until(lambda: mirror.info("c") is not None)
    mirror.close()
    writer.save(commit("c", 2))
    assert mirror.info("c").version == 1
    mirror.close()  # twice is fine
