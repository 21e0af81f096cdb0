"""RainerClient's bulk reads (``list(keys=…, prefix=…)``) and change sets (``commit_changes``)
against a real server, and HttpStorage passing change sets on to the server behind it."""

from __future__ import annotations

import pytest
from cli_helpers import commit
from client_fixtures import client_fixture, key_fixture, server_fixture  # noqa: F401
from client_servers import Relay

from harness.rainer import RainerServer
from rainer.client import (
    RainerBadRequestError,
    RainerChangeSetConflictError,
    RainerClient,
    RainerNotFoundError,
)
from rainer.errors import ChangeSetConflictError


def test_list_reads_just_the_keys_asked_for(server, client, key):
    odd = [f"{key} with space", f"{key},comma", f"{key}+plus&amp", f"{key}.ünï"]
    for name in odd:
        commit(client, name, name.encode())
    commit(client, f"{key}.gone", None)
    with Relay(server.url) as relay:
        counted = RainerClient(relay.url + "/diary")
        found = counted.list(keys=[*odd, f"{key}.absent", f"{key}.gone", odd[0]])
        assert sorted(found) == sorted(odd)
        assert len(relay.seen) == 1  # one request, each key named once
        assert counted.list(keys=[]) == {}
        assert len(relay.seen) == 1  # no keys, no request (none would mean every key)
    full = client.list_full(all=True, keys=[odd[1], f"{key}.gone"])
    assert full[odd[1]].payload == odd[1].encode() and full[f"{key}.gone"].empty
    with pytest.raises(RainerBadRequestError, match="Invalid key"):
        client.list(keys=["a/b"])


def test_list_by_prefix(client, key):
    commit(client, f"{key}.a", "a")
    commit(client, f"{key}.b", "b")
    commit(client, f"{key}-other", "o")
    assert sorted(client.list(prefix=f"{key}.")) == [f"{key}.a", f"{key}.b"]
    assert client.list_full(prefix=f"{key}.")[f"{key}.b"].value == b"b"


def test_many_keys_are_read_a_thousand_at_a_time(server, client, key):
    names = [f"m{key[-8:]}.{n}" for n in range(1500)]  # short: a thousand fit in one query
    for start in (0, 1000):
        batch = names[start : start + 1000]
        client.commit_changes([{"key": n, "version": 1, "payload": "x"} for n in batch], "ann")
    with Relay(server.url) as relay:
        found = RainerClient(relay.url + "/diary").list(keys=names)
        assert sorted(found) == sorted(names)
        assert len(relay.seen) == 2


def test_commit_changes_commits_every_change_in_order(client, key):
    commit(client, f"{key}.a", "old")
    metas = client.commit_changes(
        [
            {"key": f"{key}.a", "version": 2, "payload": "new"},
            {"key": f"{key}.b", "version": 1, "payload": b"\x00\xff", "comment": "its own"},
            {"key": f"{key}.c", "version": 1, "payload": "añ"},
        ],
        author="ann",
        comment="release 7",
    )
    assert [(m["key"], m["version"], m["comment"]) for m in metas] == [
        (f"{key}.a", 2, "release 7"),
        (f"{key}.b", 1, "its own"),
        (f"{key}.c", 1, "release 7"),
    ]
    assert {m["author"] for m in metas} == {"ann"} and len({m["mtime"] for m in metas}) == 1
    assert client.get_value(f"{key}.b") == b"\x00\xff"
    assert client.get_value(f"{key}.c") == "añ".encode()
    gone = client.commit_changes([{"key": f"{key}.a", "version": 3, "empty": True}], author="a")
    assert gone[0]["empty"] is True


def test_a_stale_change_set_names_every_stale_key_and_writes_nothing(client, key):
    commit(client, f"{key}.a", "1")
    commit(client, f"{key}.b", "1")
    with pytest.raises(RainerChangeSetConflictError) as caught:
        client.commit_changes(
            [
                {"key": f"{key}.a", "version": 1, "payload": "late"},
                {"key": f"{key}.new", "version": 1, "payload": "would be new"},
                {"key": f"{key}.b", "version": 7, "payload": "far"},
            ],
            author="ann",
        )
    error = caught.value
    assert isinstance(error, ChangeSetConflictError) and error.status == 409
    assert [(c.key, c.expected_version, c.provided_version) for c in error.conflicts] == [
        (f"{key}.a", 2, 1),
        (f"{key}.b", 2, 7),
    ]
    with pytest.raises(RainerNotFoundError):
        client.get_metadata(f"{key}.new")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ([], "at least one change"),
        ([{"key": "x", "version": 1}], "a payload or empty"),
        ([{"key": "x", "version": 1, "payload": "a", "empty": True}], "cannot carry"),
        ([{"key": "x", "version": 1, "payload": "a", "autor": "typo"}], "no field 'autor'"),
        ([{"key": "a/b", "version": 1, "payload": "a"}], "Invalid key"),
        ([{"key": f"k{n}", "version": 1, "payload": "a"} for n in range(1001)], "at most 1000"),
    ],
)
def test_a_change_set_the_server_would_refuse_is_refused_before_sending(client, changes, reason):
    with pytest.raises(RainerBadRequestError, match=reason) as caught:
        client.commit_changes(changes, author="ann")
    assert caught.value.status is None  # never sent


def test_a_change_set_whose_answer_was_lost_is_read_back_not_sent_twice(server, key):
    with Relay(server.url, drop_answers=1) as relay:
        made = RainerClient(relay.url + "/diary", retry_delay=0)
        metas = made.commit_changes(
            [
                {"key": f"{key}.a", "version": 1, "payload": "a"},
                {"key": f"{key}.b", "version": 1, "payload": "b"},
            ],
            author="ann",
        )
        assert [m["key"] for m in metas] == [f"{key}.a", f"{key}.b"]
        assert [m for m in relay.seen if m[0] == "POST"] == [("POST", "/diary")]


def test_a_change_set_refused_before_it_reached_the_server_is_sent_again(server, key):
    with Relay(server.url, refuse_posts=1) as relay:
        made = RainerClient(relay.url + "/diary", retry_delay=0)
        metas = made.commit_changes([{"key": key, "version": 1, "payload": "a"}], author="ann")
        assert metas[0]["version"] == 1
        assert [m for m in relay.seen if m[0] == "POST"] == [("POST", "/diary")] * 2


def test_a_server_fronting_another_passes_change_sets_on(tmp_path):
    with (
        RainerServer(["--database", f"sqlite:///{tmp_path / 'up.db'}"]) as upstream,
        RainerServer(["--database", upstream.diary_url]) as front,
    ):
        via_front = RainerClient(front.diary_url)
        metas = via_front.commit_changes(
            [{"key": "a", "version": 1, "payload": "1"}, {"key": "b", "version": 1, "empty": True}],
            author="ann",
            comment="both",
        )
        direct = RainerClient(upstream.diary_url)
        assert direct.list(all=True) == {m["key"]: m for m in metas}
        with pytest.raises(RainerChangeSetConflictError) as caught:
            via_front.commit_changes(
                [
                    {"key": "a", "version": 1, "payload": "x"},
                    {"key": "c", "version": 1, "payload": "c"},
                ],
                author="ann",
            )
        assert [c.key for c in caught.value.conflicts] == ["a"]
        assert "c" not in direct.list(all=True)
