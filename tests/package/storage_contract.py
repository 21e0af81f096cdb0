"""What every Storage must do, as a test class each storage's test module subclasses.

A subclass provides a fixture ``storage``: a started storage holding no commits.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from rainer.commit import Commit
from rainer.errors import CommitOrderingError, NotFoundError

MTIME = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)


def make_commit(key: str, version: int, payload: bytes | None = b"value", **fields) -> Commit:
    """A commit with plausible metadata; ``fields`` overrides author, comment or mtime."""
    return Commit(
        key=key,
        version=version,
        payload=payload,
        author=fields.get("author", "tester"),
        comment=fields.get("comment", f"version {version}"),
        mtime=fields.get("mtime", MTIME),
    )


class StorageContract:
    """The storage interface's promises. Subclass and provide a ``storage`` fixture."""

    def test_empty_storage_has_no_heads(self, storage):
        assert storage.heads() == {}
        assert storage.head_infos(include_empty=False) == []
        assert storage.get("missing") is None
        assert storage.get("missing", 1) is None

    def test_saved_commits_read_back_exactly(self, storage):
        first = make_commit("k", 1, b"one", author="ann", comment="first")
        second = make_commit("k", 2, b"\x00two\xff", author="bob", comment="second")
        storage.save(first)
        storage.save(second)
        assert storage.get("k") == second
        assert storage.get("k", 1) == first
        assert storage.get("k", 2) == second
        assert storage.get("k", 3) is None
        assert storage.get("k", 0) is None

    def test_heads_hold_the_newest_of_each_key_and_infos_may_skip_tombstones(self, storage):
        storage.save(make_commit("a", 1))
        storage.save(make_commit("a", 2, b"newer"))
        storage.save(make_commit("b", 1))
        storage.save(make_commit("b", 2, None))
        storage.save(make_commit("c", 1, None))
        heads = storage.heads()
        assert {key: c.version for key, c in heads.items()} == {"a": 2, "b": 2, "c": 1}
        assert heads["a"].payload == b"newer"
        assert heads["b"].empty and heads["c"].empty
        assert [info.key for info in storage.head_infos(include_empty=False)] == ["a"]
        assert sorted(info.key for info in storage.head_infos()) == ["a", "b", "c"]

    def test_a_key_can_come_back_after_a_tombstone(self, storage):
        storage.save(make_commit("k", 1))
        storage.save(make_commit("k", 2, None))
        storage.save(make_commit("k", 3, b"back"))
        assert [info.version for info in storage.head_infos(include_empty=False)] == [3]
        assert storage.get("k").payload == b"back"

    @pytest.mark.parametrize("version", [0, 2, -1])
    def test_first_version_must_be_one(self, storage, version):
        with pytest.raises(CommitOrderingError) as caught:
            storage.save(make_commit("k", version))
        error = caught.value
        assert (error.key, error.expected_version, error.provided_version) == ("k", 1, version)
        assert storage.get("k") is None

    @pytest.mark.parametrize("version", [1, 2, 4])
    def test_next_version_must_be_head_plus_one(self, storage, version):
        storage.save(make_commit("k", 1))
        storage.save(make_commit("k", 2))
        with pytest.raises(CommitOrderingError) as caught:
            storage.save(make_commit("k", version, b"other"))
        assert caught.value.expected_version == 3
        assert caught.value.provided_version == version
        assert storage.get("k").payload == b"value"

    def test_keys_are_versioned_independently(self, storage):
        storage.save(make_commit("x", 1))
        storage.save(make_commit("y", 1))
        storage.save(make_commit("x", 2))
        assert storage.get("y").version == 1

    def test_save_batch_answers_each_commit_as_save_would_in_order(self, storage):
        storage.save(make_commit("old", 1))
        batch = [
            make_commit("new", 1),
            make_commit("new", 2),
            make_commit("new", 2, b"duplicate"),
            make_commit("old", 1, b"stale"),
            make_commit("old", 2),
        ]
        results = storage.save_batch(batch)
        assert [r is None for r in results] == [True, True, False, False, True]
        assert isinstance(results[2], CommitOrderingError)
        assert (results[2].expected_version, results[2].provided_version) == (3, 2)
        assert (results[3].expected_version, results[3].provided_version) == (2, 1)
        assert storage.get("new").version == 2 and storage.get("new").payload == b"value"
        assert storage.get("old").version == 2

    def test_history_is_newest_first_with_limit_and_before(self, storage):
        for version in range(1, 6):
            storage.save(make_commit("h", version, str(version).encode()))
        assert [c.version for c in storage.history("h")] == [5, 4, 3, 2, 1]
        assert [c.version for c in storage.history("h", limit=2)] == [5, 4]
        assert [c.version for c in storage.history("h", before=3)] == [2, 1]
        assert [c.version for c in storage.history("h", limit=1, before=5)] == [4]
        assert storage.history("h", before=1) == []
        assert storage.history("nothing") == []

    def test_metadata_survives_exactly(self, storage):
        commit = make_commit("ключ", 1, "värde".encode(), author="Zoë", comment="naïve\ttab")
        storage.save(commit)
        assert storage.get("ключ") == commit
        assert storage.heads()["ключ"] == commit

    def test_racing_threads_leave_exactly_one_winner_per_version(self, storage):
        writers, rounds = 8, 10
        outcomes: list[tuple[int, bool]] = []
        lock = threading.Lock()
        start = threading.Barrier(writers)

        def writer(n: int) -> None:
            start.wait()
            for version in range(1, rounds + 1):
                try:
                    storage.save(make_commit("race", version, f"{n}".encode()))
                    won = True
                except CommitOrderingError:
                    won = False
                with lock:
                    outcomes.append((version, won))

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners = sorted(version for version, won in outcomes if won)
        assert winners == list(range(1, rounds + 1))
        assert [c.version for c in storage.history("race")] == list(range(rounds, 0, -1))

    def test_payload_slices_join_into_the_payload(self, storage):
        from rainer.storage.base import SLICE_BYTES

        big = bytes(range(256)) * (3 * SLICE_BYTES // 256) + b"end"  # three slices and a bit
        storage.save(make_commit("big", 1, big, comment="x" * 3000))  # a header over the prefix
        storage.save(make_commit("big", 2, b""))
        slices = list(storage.payload_slices("big", 1, len(big)))
        assert b"".join(slices) == big and len(slices) == 4
        assert all(len(piece) <= SLICE_BYTES for piece in slices)
        assert list(storage.payload_slices("big", 2, 0)) == []
        with pytest.raises(NotFoundError):
            list(storage.payload_slices("big", 3, 10))

    def test_infos_carry_sizes_without_payloads(self, storage):
        storage.save(make_commit("a", 1, b"12345"))
        storage.save(make_commit("a", 2, b"1234567", comment="c" * 5000))
        storage.save(make_commit("t", 1, None))
        infos = {info.key: info for info in storage.head_infos()}
        assert infos["a"] == storage.get("a").info() and infos["a"].size == 7
        assert infos["t"].empty and infos["t"].size == 0
        assert storage.history_infos("a") == [c.info() for c in storage.history("a")]
        assert [i.version for i in storage.history_infos("a", limit=1)] == [2]
        assert [i.version for i in storage.history_infos("a", before=2)] == [1]
        found = storage.get_many([("a", 1), ("a", 2), ("a", 3), ("missing", 1)])
        assert sorted(found) == [("a", 1), ("a", 2)] and found["a", 1].payload == b"12345"
        assert storage.head_version("a") == 2 and storage.head_version("missing") is None
        found_infos = storage.get_many_infos([("a", 1), ("a", 2), ("t", 1), ("missing", 1)])
        assert found_infos == {name: found[name].info() for name in found} | {("t", 1): infos["t"]}
        assert storage.head_versions() == {"a": 2, "t": 1}

    def test_a_change_set_is_saved_whole_or_not_at_all(self, storage):
        from rainer.errors import ChangeSetConflictError

        if not storage.supports_changesets:  # it says so, and saves nothing
            with pytest.raises(NotImplementedError):
                storage.save_changeset([make_commit("a", 1)])
            assert storage.get("a") is None
            return

        storage.save(make_commit("a", 1))
        storage.save_changeset([make_commit("a", 2, b"a2"), make_commit("b", 1, b"b1")])
        assert (storage.get("a").payload, storage.get("b").payload) == (b"a2", b"b1")
        with pytest.raises(ChangeSetConflictError) as conflict:
            storage.save_changeset(
                [make_commit("a", 2), make_commit("c", 1), make_commit("b", 5), make_commit("d", 1)]
            )
        found = [(c.key, c.expected_version, c.provided_version) for c in conflict.value.conflicts]
        assert found == [("a", 3, 2), ("b", 2, 5)]
        assert storage.get("c") is None and storage.get("d") is None  # nothing was written
        storage.save_changeset([make_commit("c", 1), make_commit("a", 3, None)])
        assert storage.get("a").empty and storage.head_version("c") == 1
