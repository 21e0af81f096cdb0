"""The publishing storage and the elected auto-publisher on a real ZooKeeper."""

from __future__ import annotations

import logging
import random

import pytest
from zk_util import expire_session, tree_heads, wait_until

from rainer.commit import Commit, now
from rainer.errors import CommitOrderingError
from rainer.keeper.autopublisher import AutoPublisher, fuzzed
from rainer.keeper.keeper import Keeper
from rainer.keeper.mirror import Mirror
from rainer.keeper.publishing import PublishingStorage
from rainer.storage.memory import MemoryStorage

pytest_plugins = ["zk_fixtures"]


def commit(key: str, version: int, payload: bytes | None = b"x") -> Commit:
    return Commit(key, version, payload, "tester", "", now())


@pytest.fixture
def database() -> MemoryStorage:
    storage = MemoryStorage()
    storage.start()
    return storage


@pytest.fixture
def publishers():
    started: list[AutoPublisher] = []

    def make(keeper: Keeper, storage, period: float = 0.5) -> AutoPublisher:
        publisher = AutoPublisher(keeper, storage, period=period, identifier=f"p{len(started)}")
        # Count the publishing rounds, to wait on them.
        publisher.rounds = 0
        publish_all = publisher.publish_all

        def counted() -> int:
            changed = publish_all()
            publisher.rounds += 1
            return changed

        publisher.publish_all = counted
        publisher.start()
        started.append(publisher)
        return publisher

    yield make
    for publisher in started:
        publisher.stop()


# -- publishing storage ------------------------------------------------------------------------


def test_publishing_storage_saves_then_publishes(zk_client, zk_path, database):
    keeper = Keeper(zk_client, zk_path)
    storage = PublishingStorage(database, keeper)
    storage.save(commit("a", 1))
    assert database.get("a").version == 1
    assert keeper.get("a") == database.get("a")
    storage.save(commit("a", 2, None))
    assert keeper.get("a") is None


def test_publishing_storage_publishes_nothing_the_database_refused(zk_client, zk_path, database):
    keeper = Keeper(zk_client, zk_path)
    storage = PublishingStorage(database, keeper)
    results = storage.save_batch([commit("b", 1), commit("b", 3), commit("c", 2)])
    assert results[0] is None
    assert isinstance(results[1], CommitOrderingError)
    assert isinstance(results[2], CommitOrderingError)
    assert tree_heads(keeper) == {"b": database.get("b")}


def test_publishing_storage_waits_until_its_mirror_shows_the_commit(zk_clients, zk_path, database):
    """Read-your-writes on one server: once save returns, the server's own mirror has it."""
    client = zk_clients()
    keeper = Keeper(client, zk_path)
    mirror = Mirror(keeper)
    mirror.start()
    try:
        storage = PublishingStorage(database, keeper, mirror)
        for version in range(1, 21):
            storage.save(commit("ryw", version, b"%d" % version))
            assert mirror.info("ryw").version == version
        storage.save(commit("ryw", 21, None))
        assert mirror.info("ryw") is None
    finally:
        mirror.close()


def test_zookeeper_failures_are_logged_and_swallowed(zk_clients, zk_path, database, caplog):
    caplog.set_level(logging.INFO, "rainer.keeper")
    client = zk_clients()
    keeper = Keeper(client, zk_path)
    storage = PublishingStorage(database, keeper)
    keeper.save(commit("d", 5))  # ZooKeeper ahead of this database: a concurrent-commit error
    storage.save(commit("d", 1))
    assert database.get("d").version == 1
    assert "Not publishing" in caplog.text
    client.stop()  # not connected: the save still succeeds, and says why nothing was published
    storage.save(commit("e", 1))
    assert database.get("e").version == 1
    assert "journaled but not published" in caplog.text


def test_a_late_publish_does_not_bring_a_deleted_key_back(zk_client, zk_path, database):
    """Server A saved version 1, server B saved and published the tombstone (version 2) before
    A got to publish: A's publish must not create the node again."""
    keeper = Keeper(zk_client, zk_path)
    storage = PublishingStorage(database, keeper)
    first = commit("late", 1)
    database.save(first)
    database.save(commit("late", 2, None))
    assert storage.publish([first]) == []
    assert keeper.get("late") is None


# -- the auto-publisher ------------------------------------------------------------------------


def test_fuzzed_period_stays_within_twenty_percent():
    rng = random.Random(7)
    draws = [fuzzed(90.0, 0.2, rng) for _ in range(2000)]
    assert 72.0 <= min(draws) < 75.0 and 105.0 < max(draws) <= 108.0


def test_publish_all_heals_zookeeper_from_the_database(zk_client, zk_path, database):
    keeper = Keeper(zk_client, zk_path)
    for c in [commit("missing", 1), commit("stale", 1), commit("stale", 2, b"new")]:
        database.save(c)
    for c in [commit("tomb", 1), commit("tomb", 2, None)]:
        database.save(c)
    keeper.save(commit("stale", 1))
    keeper.save(database.get("tomb", 1))
    zk_client.create(keeper.znode("corrupt"), b"garbage", makepath=True)
    database.save(commit("corrupt", 1))
    ahead = commit("ahead", 9)  # ZooKeeper newer than this database: left alone, not rolled back
    database.save(commit("ahead", 1))
    keeper.save(ahead)

    publisher = AutoPublisher(keeper, database, period=60)
    real_heads = database.heads

    def heads_then_a_tombstone():  # the round's heads go stale while it runs
        found = real_heads()
        database.save(commit("missing", 2, None))
        return found

    database.heads = heads_then_a_tombstone
    assert publisher.publish_all() == 3  # "missing" is not created: it was deleted meanwhile
    del database.heads
    assert keeper.get("missing") is None
    database.save(commit("missing", 3))
    assert publisher.publish_all() == 1
    assert tree_heads(keeper) == {
        "missing": database.get("missing"),
        "stale": database.get("stale"),
        "corrupt": database.get("corrupt"),
        "ahead": ahead,
    }
    assert publisher.publish_all() == 0  # nothing left to do


def test_exactly_one_leads_and_the_other_takes_over_when_it_stops(
    zk_clients, zk_path, database, publishers
):
    database.save(commit("k", 1))
    first = publishers(Keeper(zk_clients(), zk_path), database)
    second = publishers(Keeper(zk_clients(), zk_path), database)
    wait_until(lambda: first.is_leader or second.is_leader, what="a leader")
    leader, other = (first, second) if first.is_leader else (second, first)
    wait_until(lambda: leader.rounds >= 3, what="three publishing rounds")
    assert not other.is_leader and other.rounds == 0
    assert Keeper(zk_clients(), zk_path).get("k") == database.get("k")
    assert len(leader.election.contenders()) == 2

    leader.stop()
    wait_until(lambda: other.is_leader, what="the other to take over")
    database.save(commit("k", 2, b"two"))
    wait_until(lambda: other.keeper.get("k") == database.get("k"), what="the new leader to publish")
    assert not leader.is_leader


def test_leadership_moves_when_the_leader_loses_its_session(
    zookeeper, zk_clients, zk_path, database, publishers
):
    clients = [zk_clients(), zk_clients()]
    first = publishers(Keeper(clients[0], zk_path), database)
    second = publishers(Keeper(clients[1], zk_path), database)
    wait_until(lambda: first.is_leader or second.is_leader, what="a leader")
    leader, other = (first, second) if first.is_leader else (second, first)
    expire_session(leader.client, zookeeper.hosts)
    wait_until(lambda: other.is_leader, 30, "the other to take over")
    # The old leader stands again on its new session, and does not lead while the other does.
    wait_until(lambda: len(other.election.contenders()) == 2, 30, "the old leader to stand again")
    assert not leader.is_leader


def test_a_new_leader_publishes_at_once(zk_clients, zk_path, database, publishers):
    database.save(commit("now", 1))
    publisher = publishers(Keeper(zk_clients(), zk_path), database, period=3600)
    wait_until(lambda: publisher.rounds == 1, what="the first round")
    assert publisher.keeper.get("now") == database.get("now")


def test_a_leader_whose_lock_node_vanished_steps_down(zk_clients, zk_path, database, publishers):
    """Leadership is the lock node of the current session; when it is gone (an expired session
    the client has not noticed yet, an operator's mistake), the leader stops within a period."""
    first = publishers(Keeper(zk_clients(), zk_path), database, period=0.3)
    second = publishers(Keeper(zk_clients(), zk_path), database, period=0.3)
    wait_until(lambda: first.is_leader or second.is_leader, what="a leader")
    leader, other = (first, second) if first.is_leader else (second, first)
    lock = leader.election.lock
    leader.client.delete(f"{lock.path}/{lock.node}")
    wait_until(lambda: other.is_leader, what="the other to take over")
    wait_until(lambda: not leader.is_leader, what="the old leader to step down")
    wait_until(lambda: len(other.election.contenders()) == 2, what="the old leader to stand again")
    assert [first.is_leader, second.is_leader].count(True) == 1
