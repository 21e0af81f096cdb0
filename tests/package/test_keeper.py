"""The keeper against a real ZooKeeper: the original's byte form and every save rule."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
from kazoo.exceptions import NoNodeError
from zk_util import tree_heads

from rainer.commit import Commit, CorruptCommitError
from rainer.errors import BadRequestError, PayloadTooLargeError
from rainer.keeper.keeper import (
    ConcurrentCommitError,
    Keeper,
    check_publishable,
    zookeeper_name_problem,
)

pytest_plugins = ["zk_fixtures"]

EPOCH_PLUS_1MS = datetime(1970, 1, 1, 0, 0, 0, 1000, tzinfo=UTC)


def commit(version: int, payload: bytes | None = b"xxx", key: str = "what", **fields) -> Commit:
    return Commit(
        key,
        version,
        payload,
        fields.get("author", "nobody"),
        fields.get("comment", "nothing"),
        fields.get("mtime", EPOCH_PLUS_1MS),
    )


@pytest.fixture
def keeper(zk_client, zk_path) -> Keeper:
    return Keeper(zk_client, zk_path)


def node(keeper: Keeper, key: str = "what") -> tuple[bytes, int]:
    data, stat = keeper.client.get(keeper.znode(key))
    return data, stat.version


# -- the original's byte form ------------------------------------------------------------------


def original_bytes(key: str, version: int, payload: bytes, mtime: str, empty: bool = False):
    """A node as the original's Jackson wrote it, spelled out by hand."""
    flag = "true" if empty else "false"
    header = (
        f'{{"key":"{key}","version":{version},"author":"nobody","comment":"nothing",'
        f'"mtime":"{mtime}","empty":{flag}}}'
    ).encode()
    return b"%d\n" % len(header) + header + b"\n" + payload + b"\n"


def test_layout_is_path_data_key_and_path_election(zk_client):
    keeper = Keeper(zk_client, "/diary-local/")
    assert keeper.znode("what") == "/diary-local/data/what"
    assert keeper.election_path == "/diary-local/election"


def test_a_node_written_by_hand_in_the_original_form_is_read(keeper):
    raw = original_bytes("what", 3, b'{"hey":"there"}', "2014-02-11T14:01:28.839-08:00")
    keeper.client.create(keeper.znode("what"), raw, makepath=True)
    found = keeper.get("what")
    assert found == Commit(
        "what",
        3,
        b'{"hey":"there"}',
        "nobody",
        "nothing",
        datetime(2014, 2, 11, 14, 1, 28, 839000, tzinfo=timezone(timedelta(hours=-8))),
    )
    assert tree_heads(keeper) == {"what": found}
    assert keeper.keys() == ["what"]


def test_what_we_write_is_the_original_form_and_decodes_to_the_same_commit(keeper):
    ours = commit(1, b"payload\nwith lines\n")
    assert keeper.save(ours) == "created"
    data, _ = node(keeper)
    assert data == original_bytes("what", 1, b"payload\nwith lines\n", "1970-01-01T00:00:00.001Z")
    assert Commit.decode(data) == ours
    assert keeper.get("what") == ours


def test_unicode_keys_and_fields_round_trip(keeper):
    ours = commit(1, "grüße ☃".encode(), key="clé-ü", author="Zoë", comment="naïve ☃")
    keeper.save(ours)
    assert keeper.get("clé-ü") == ours


# -- reads -------------------------------------------------------------------------------------


def test_nothing_there(keeper):
    assert keeper.get("what") is None
    assert keeper.keys() == []
    assert tree_heads(keeper) == {}


def test_get_raises_on_a_corrupt_node(keeper):
    keeper.client.create(keeper.znode("bad"), b"not a commit", makepath=True)
    keeper.save(commit(1, key="good"))
    with pytest.raises(CorruptCommitError):
        keeper.get("bad")
    assert keeper.get("good") == commit(1, key="good")
    assert keeper.keys() == ["bad", "good"]


def test_a_node_holding_another_keys_commit_is_corrupt(keeper):
    keeper.client.create(keeper.znode("this"), commit(1, key="that").encode(), makepath=True)
    with pytest.raises(CorruptCommitError):
        keeper.get("this")


# -- the save rules ----------------------------------------------------------------------------


def test_create_for_a_new_non_empty_commit(keeper):
    assert keeper.save(commit(1)) == "created"
    assert keeper.get("what") == commit(1)


def test_an_empty_commit_for_a_key_without_node_creates_nothing(keeper):
    assert keeper.save(commit(4, None)) == "absent"
    assert keeper.get("what") is None


def test_a_node_is_not_created_for_a_commit_the_database_has_moved_past(keeper):
    """A missing node may mean a newer empty commit deleted it: the caller's check decides."""
    asked = []

    def newest(c: Commit) -> bool:
        asked.append(c.version)
        return c.version >= 6

    with pytest.raises(ConcurrentCommitError, match="database holds a newer commit"):
        keeper.save(commit(5), newest)
    assert keeper.get("what") is None
    assert keeper.save(commit(6), newest) == "created"
    assert keeper.save(commit(7), newest) == "updated"  # only creating asks: before and after
    assert asked == [5, 6, 6]


def test_a_commit_overtaken_while_its_node_is_created_takes_the_node_back(keeper):
    """The database moved on (a tombstone, say) between the check and the create: the node must
    not stay, or the key would come back from the dead until the next publishing round."""
    answers = iter([True, False])
    with pytest.raises(ConcurrentCommitError, match="Took back"):
        keeper.save(commit(5), lambda _c: next(answers))
    assert keeper.get("what") is None


def test_the_same_commit_again_leaves_the_node_alone(keeper):
    keeper.save(commit(1))
    _, before = node(keeper)
    assert keeper.save(commit(1)) == "unchanged"
    assert node(keeper)[1] == before


def test_the_same_instant_in_another_zone_is_the_same_commit(keeper):
    keeper.save(commit(1))
    shifted = EPOCH_PLUS_1MS.astimezone(timezone(timedelta(hours=-8)))
    assert keeper.save(commit(1, mtime=shifted)) == "unchanged"


def test_a_newer_commit_replaces_the_node(keeper):
    keeper.save(commit(1))
    assert keeper.save(commit(2, b"yyy")) == "updated"
    assert keeper.get("what") == commit(2, b"yyy")


def test_a_newer_commit_may_skip_versions(keeper):
    keeper.save(commit(1))
    assert keeper.save(commit(7, b"zzz")) == "updated"
    assert keeper.get("what").version == 7


def test_a_newer_empty_commit_deletes_the_node(keeper):
    keeper.save(commit(1))
    assert keeper.save(commit(2, None)) == "deleted"
    assert keeper.get("what") is None
    assert keeper.keys() == []


def test_an_older_commit_is_refused_and_changes_nothing(keeper):
    keeper.save(commit(1))
    keeper.save(commit(2, b"yyy"))
    before = node(keeper)
    with pytest.raises(ConcurrentCommitError, match="from version 2 to 1"):
        keeper.save(commit(1))
    assert node(keeper) == before


def test_an_older_empty_commit_is_refused_and_does_not_delete(keeper):
    keeper.save(commit(2))
    with pytest.raises(ConcurrentCommitError):
        keeper.save(commit(1, None))
    assert keeper.get("what") == commit(2)


@pytest.mark.parametrize(
    "other",
    [commit(2, b"yyy2"), commit(2, b"yyy", author="nobody2"), commit(2, None)],
    ids=["payload", "author", "empty"],
)
def test_the_same_version_with_other_contents_is_refused(keeper, other):
    keeper.save(commit(1))
    keeper.save(commit(2, b"yyy"))
    before = node(keeper)
    with pytest.raises(ConcurrentCommitError, match="same version"):
        keeper.save(other)
    assert node(keeper) == before
    assert keeper.get("what") == commit(2, b"yyy")


@pytest.mark.parametrize(
    "raw",
    [b"garbage", b"5\n{}\n", b"", commit(9, key="another").encode()],
    ids=["garbage", "bad-header", "empty-node", "wrong-key"],
)
def test_a_corrupt_node_is_replaced_even_by_an_older_version(keeper, raw):
    keeper.client.create(keeper.znode("what"), raw, makepath=True)
    assert keeper.save(commit(1)) == "replaced-corrupt"
    assert keeper.get("what") == commit(1)


def test_an_empty_commit_deletes_a_corrupt_node(keeper):
    keeper.client.create(keeper.znode("what"), b"garbage", makepath=True)
    assert keeper.save(commit(3, None)) == "replaced-corrupt"
    assert keeper.get("what") is None


def read_then(real_get_async, other: Keeper, theirs: Commit):
    """A ``get_async`` that completes the read, then lets ``other`` publish ``theirs``."""

    def get_async(path, *args, **kwargs):
        result = real_get_async(path, *args, **kwargs)
        result.wait(5)
        other.save(theirs)
        return result

    return get_async


def test_a_writer_between_our_read_and_our_write_is_not_overwritten(keeper, zk_clients, zk_path):
    """The compare-and-set: keeper A reads version 1, keeper B moves the node to version 3, and
    A's write of version 2 must fail rather than move the node back."""
    other = Keeper(zk_clients(), zk_path)
    keeper.save(commit(1))
    keeper.client.get_async = read_then(keeper.client.get_async, other, commit(3, b"from B"))
    try:
        with pytest.raises(ConcurrentCommitError, match="from version 3 to 2"):
            keeper.save(commit(2, b"from A"))
    finally:
        del keeper.client.get_async
    assert keeper.get("what") == commit(3, b"from B")


def test_a_newer_commit_that_loses_the_race_is_published_anyway(keeper, zk_clients, zk_path):
    """Keeper A reads version 1 to publish version 3; B moves the node to version 2 in between.
    A's conditional write fails, so it reads again: its commit is still the newer one, and the
    node must end at version 3 rather than wait for the next publishing round."""
    other = Keeper(zk_clients(), zk_path)
    keeper.save(commit(1))
    keeper.client.get_async = read_then(keeper.client.get_async, other, commit(2, b"from B"))
    try:
        assert keeper.save(commit(3, b"from A")) == "updated"
    finally:
        del keeper.client.get_async
    assert keeper.get("what") == commit(3, b"from A")


def test_a_create_racing_a_create_is_refused(keeper, zk_clients, zk_path):
    other = Keeper(zk_clients(), zk_path)
    keeper.client.get_async = read_then(keeper.client.get_async, other, commit(2, b"from B"))
    try:
        with pytest.raises(ConcurrentCommitError):
            keeper.save(commit(1, b"from A"))
    finally:
        del keeper.client.get_async
    assert keeper.get("what") == commit(2, b"from B")


def test_two_keepers_racing_never_move_a_node_back(zk_clients, zk_path):
    """Two clients publish versions 2k and 2k+1 of one key at the same moment, round after round.
    Each save succeeds or raises ConcurrentCommitError; the node never goes back, and it ends
    each round at the newest version that succeeded."""
    keepers = [Keeper(zk_clients(), zk_path), Keeper(zk_clients(), zk_path)]
    watcher = Keeper(zk_clients(), zk_path)
    seen: list[int] = []

    def watch(data, _stat, _event=None):
        if data:
            seen.append(Commit.decode(data).version)

    keepers[0].save(commit(1))
    watcher.client.DataWatch(watcher.znode("what"), watch)
    for round_ in range(1, 41):
        versions = [2 * round_, 2 * round_ + 1]
        outcomes: list[object] = [None, None]
        barrier = threading.Barrier(2)

        def publish(i: int, versions=versions, outcomes=outcomes, barrier=barrier) -> None:
            barrier.wait()
            try:
                outcomes[i] = keepers[i].save(commit(versions[i], b"v%d" % versions[i]))
            except ConcurrentCommitError as exc:
                outcomes[i] = exc

        threads = [threading.Thread(target=publish, args=(i,)) for i in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        succeeded = [v for v, o in zip(versions, outcomes, strict=True) if o == "updated"]
        assert succeeded, outcomes  # one of them always wins the compare-and-set
        assert all(o == "updated" or isinstance(o, ConcurrentCommitError) for o in outcomes)
        assert watcher.get("what").version == max(succeeded)
    final = watcher.get("what").version
    assert final >= 80
    # Everything the watch saw moved forward (a watch may skip versions, never reorder them).
    assert seen == sorted(seen)


# -- what can be published ---------------------------------------------------------------------


def test_check_publishable_refuses_a_stored_form_over_the_limit():
    small = commit(1, b"x" * 100)
    size = len(small.encode())
    check_publishable(small, size)
    with pytest.raises(PayloadTooLargeError, match="too large for ZooKeeper"):
        check_publishable(small, size - 1)
    check_publishable(commit(2, None), 10)  # a tombstone deletes the node: always fits


@pytest.mark.parametrize("char", ["\ue000", "\uf8ff", "\ufff0", "\U0001f600", "\x85"])
def test_check_publishable_refuses_keys_zookeeper_cannot_name(char):
    assert zookeeper_name_problem(f"a{char}b")
    with pytest.raises(BadRequestError, match="Invalid key for ZooKeeper"):
        check_publishable(commit(1, key=f"a{char}b"))


def test_the_default_limit_fits_a_real_zookeeper_node(keeper):
    """A stored commit at the default limit is accepted by a ZooKeeper with the default
    jute.maxbuffer, with a long key."""
    from rainer.defaults import ZK_MAX_NODE_BYTES

    key = "k" * 255
    base = len(commit(1, b"", key=key).encode())
    biggest = commit(1, b"x" * (ZK_MAX_NODE_BYTES - base), key=key)
    check_publishable(biggest)
    assert len(biggest.encode()) == ZK_MAX_NODE_BYTES
    keeper.save(biggest)
    assert keeper.get(key) == biggest


def test_unicode_keys_zookeeper_accepts(keeper):
    for key in ["naïve", "日本語", "a b", "\u00a0x"]:
        assert zookeeper_name_problem(key) is None
        keeper.save(commit(1, key=key))
    assert sorted(tree_heads(keeper)) == sorted(["naïve", "日本語", "a b", "\u00a0x"])


def test_missing_data_path_is_created_on_first_save(keeper):
    with pytest.raises(NoNodeError):
        keeper.client.get(keeper.data_path)
    keeper.save(commit(1))
    assert keeper.keys() == ["what"]
