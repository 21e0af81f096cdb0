# Copyright: Rainer for Python and Ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""run_changeset, the one implementation behind rainer_changeset's module and action plugin,
and the client's change-set calls, against a real server."""

from __future__ import annotations

from unittest import mock

import pytest

from ansible_collections.rainer.rainer.plugins.module_utils._changeset import run_changeset
from ansible_collections.rainer.rainer.plugins.module_utils._client import (
    RainerChangeSetConflictError,
    RainerClient,
    RainerUnreachableError,
)
from ansible_collections.rainer.rainer.plugins.module_utils._common import RainerTaskError


def change(key, **kwargs):
    base = dict(key=key, content=None, value=None, format="json", state="present", comment=None)
    base.update(kwargs)
    return base


def params(changes, **kwargs):
    base = dict(changes=changes, comment="", expected_versions=None)
    base.update(kwargs)
    return base


@pytest.fixture
def keys(key):
    return [key + ".a", key + ".b", key + ".c"]


def test_plan_apply_rerun(client, keys):
    client.post(keys[2], 1, b"old")
    wanted = params([change(keys[0], content="A\n"), change(keys[1], value={"n": 1}, comment="own"),
                     change(keys[2], state="absent")], comment="release")
    before = client.requests
    plan = run_changeset(client, wanted, check_mode=True, diff=True)
    assert client.requests == before + 1  # one read of just these keys, no write
    assert plan["changed"] and plan["changed_keys"] == keys
    assert [c["action"] for c in plan["changes"]] == ["create", "create", "delete"]
    assert [c["version"] for c in plan["changes"]] == [1, 1, 2]
    assert [m["comment"] for m in plan["commits"]] == ["release", "own", "release"]
    assert all(m["mtime"] is None for m in plan["commits"]) and plan["commits"][2]["empty"]
    assert [d["after"] for d in plan["diff"]] == ["A\n", '{\n  "n": 1\n}\n', ""]
    assert plan["diff"][2]["before"] == "old" and client.head(keys[0]) is None

    before = client.requests
    applied = run_changeset(client, wanted)
    assert client.requests == before + 2  # the read and one POST /diary
    assert [(m["key"], m["version"], m["author"]) for m in applied["commits"]] == [
        (keys[0], 1, "unit-tests"), (keys[1], 1, "unit-tests"), (keys[2], 2, "unit-tests")]
    assert len(set(m["mtime"] for m in applied["commits"])) == 1
    assert applied["changes"][2]["previous"]["version"] == 1 and applied["changes"][2]["commit"]["empty"]
    assert client.get(keys[1]).payload == b'{\n  "n": 1\n}\n' and client.get(keys[1]).comment == "own"

    before = client.requests
    again = run_changeset(client, wanted, diff=True)
    assert client.requests == before + 1 and not again["changed"] and "diff" not in again
    assert again["commits"] == [] and again["changed_keys"] == []
    assert [c["action"] for c in again["changes"]] == ["unchanged"] * 3
    assert again["changes"][0]["commit"] == applied["commits"][0]


def test_values_compare_as_data_and_binary_payloads_travel(client, keys):
    client.post(keys[0], 1, b'{"b": 2,   "a": 1}')
    result = run_changeset(client, params([change(keys[0], value={"a": 1, "b": 2}),
                                           change(keys[1], value={"z": [1]}, format="yaml")]), diff=True)
    assert result["changed_keys"] == [keys[1]] and client.get(keys[1]).payload == b"z:\n- 1\n"
    written = client.commit_changes([dict(key=keys[2], version=1, payload=b"\xff\x00")])
    assert written[0]["version"] == 1 and client.get(keys[2]).payload == b"\xff\x00"
    result = run_changeset(client, params([change(keys[2], content="text now")]), diff=True)
    assert result["changed"] and "diff" not in result  # binary before: no text diff


def test_expected_versions(client, keys):
    client.post(keys[0], 1, b"one")
    client.post(keys[0], 2, b"two")
    with pytest.raises(RainerTaskError) as info:
        run_changeset(client, params([change(keys[0], content="three"), change(keys[1], content="new")],
                                     expected_versions={keys[0]: 1, keys[1]: 0}))
    assert "nothing was written" in info.value.message and "%r is at version 2, not 1" % keys[0] in info.value.message
    assert "(version 2 was committed after it, refusing to overwrite)" in info.value.message
    assert info.value.details["stale"] == [dict(key=keys[0], expected_version=1, current_version=2)]
    assert client.head(keys[1]) is None
    # a key that already holds what is wanted is no change, whatever its expected version
    result = run_changeset(client, params([change(keys[0], content="two"), change(keys[1], content="new")],
                                          expected_versions={keys[0]: 7, keys[1]: "0"}))
    assert result["changed_keys"] == [keys[1]]
    for bad, words in (({"other": 1}, "not a key of changes"), ({keys[0]: -1}, "must be 0"),
                       ({keys[0]: "x"}, "must be 0")):
        with pytest.raises(RainerTaskError) as info:
            run_changeset(client, params([change(keys[0], content="z")], expected_versions=bad))
        assert words in info.value.message


def test_bad_change_sets_are_refused_before_any_request(client, keys):
    cases = [
        (params([]), "changes is empty"),
        (params([change(keys[0], content="a"), change(keys[0], content="b")]), "named twice"),
        (params([change(keys[0])]), "needs content or value"),
        (params([change("k%d" % i, content="x") for i in range(1001)]), "at most 1000"),
    ]
    for wanted, words in cases:
        before = client.requests
        with pytest.raises(RainerTaskError) as info:
            run_changeset(client, wanted)
        assert words in info.value.message and client.requests == before


def _second_writer_before_post(client, key, payloads):
    """A real second writer commits ``key`` between our read and our post, once per payload."""
    other = RainerClient(client.url, author="second-writer")
    real_list = client.list
    queue = list(payloads)

    def list_then_other_writes(*args, **kwargs):
        heads = real_list(*args, **kwargs)
        if queue:
            head = heads.get(key)
            other.post(key, (head.version if head else 0) + 1, queue.pop(0))
        return heads

    return mock.patch.object(client, "list", side_effect=list_then_other_writes)


def test_a_conflict_is_planned_again(client, keys):
    with _second_writer_before_post(client, keys[0], [b"theirs"]):
        result = run_changeset(client, params([change(keys[0], content="mine"), change(keys[1], content="b")]))
    assert [m["version"] for m in result["commits"]] == [2, 1]
    assert result["changes"][0]["previous"]["author"] == "second-writer"


def test_conflicts_run_out_and_nothing_is_written(client, keys):
    with _second_writer_before_post(client, keys[0], [b"a", b"b"]):
        with pytest.raises(RainerTaskError) as info:
            run_changeset(client, params([change(keys[0], content="mine"), change(keys[1], content="b")],
                                         conflict_retries=1))
    assert "Gave up after 2 conflicts" in info.value.message
    assert info.value.details["error"] == "RainerChangeSetConflictError"
    assert info.value.details["conflicts"] == [dict(key=keys[0], expectedVersion=3, providedVersion=2)]
    assert client.head(keys[1]) is None


def test_a_conflict_with_expected_versions_fails_naming_the_key(client, keys):
    with _second_writer_before_post(client, keys[0], [b"theirs"]):
        with pytest.raises(RainerTaskError) as info:
            run_changeset(client, params([change(keys[0], content="mine")], expected_versions={keys[0]: 0}))
    assert "%r is at version 1, not 0" % keys[0] in info.value.message


def test_the_server_names_every_stale_change(client, keys):
    client.post(keys[0], 1, b"x")
    client.post(keys[1], 1, b"x")
    with pytest.raises(RainerChangeSetConflictError) as info:
        client.post_changes([dict(key=keys[0], version=1, payload=b"a"), dict(key=keys[2], version=1, payload=b"c"),
                             dict(key=keys[1], version=5, empty=True)])
    error = info.value
    assert [(c.key, c.expected_version, c.provided_version) for c in error.conflicts] == [(keys[0], 2, 1),
                                                                                          (keys[1], 2, 5)]
    assert error.to_dict()["conflicts"] == [dict(key=keys[0], expectedVersion=2, providedVersion=1),
                                            dict(key=keys[1], expectedVersion=2, providedVersion=5)]
    assert error.status == 409 and "2 key(s)" in str(error) and client.head(keys[2]) is None


def test_a_lost_answer_is_read_back_not_posted_again(client, keys):
    real = client.post_changes

    def post_then_lose_answer(*args, **kwargs):
        real(*args, **kwargs)
        raise RainerUnreachableError("connection reset")

    with mock.patch.object(client, "post_changes", side_effect=post_then_lose_answer) as post:
        metas = client.commit_changes([dict(key=keys[0], version=1, payload=b"a"),
                                       dict(key=keys[1], version=1, payload=b"b")], comment="c")
    assert post.call_count == 1 and [m["key"] for m in metas] == keys[:2]


def test_a_post_that_did_not_land_is_posted_again(client, keys):
    real = client.post_changes
    calls = []

    def fail_first(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RainerUnreachableError("connection refused")
        return real(*args, **kwargs)

    with mock.patch.object(client, "post_changes", side_effect=fail_first):
        metas = client.commit_changes([dict(key=keys[0], version=1, payload=b"a")])
    assert len(calls) == 2 and metas[0]["version"] == 1


def test_refused_by_the_server(client, keys):
    with pytest.raises(RainerTaskError) as info:
        run_changeset(client, params([change(keys[0], content="a"), change("bad/key", content="b")]))
    assert info.value.details["status"] == 400 and client.head(keys[0]) is None
