# Copyright: Rainer for Python and Ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""run_commit and run_info, the one implementation behind modules and action plugins."""

from __future__ import annotations

from unittest import mock

import pytest

from ansible_collections.rainer.rainer.plugins.module_utils._client import RainerClient, RainerUnreachableError
from ansible_collections.rainer.rainer.plugins.module_utils._changeset import CHANGESET_ARGUMENT_SPEC
from ansible_collections.rainer.rainer.plugins.module_utils._commit import (
    COMMIT_ARGUMENT_SPEC,
    CONFLICT_RETRIES,
    conflict_retries,
    run_commit,
)
from ansible_collections.rainer.rainer.plugins.module_utils._common import (
    ParseError,
    RainerTaskError,
    client_from_options,
    describe_commit,
    parse,
    serialize,
)
from ansible_collections.rainer.rainer.plugins.module_utils._info import run_info


def params(key, **kwargs):
    base = dict(key=key, content=None, value=None, format="json", state="present", comment="",
                expected_version=None)
    base.update(kwargs)
    return base


def test_create_then_unchanged_costs_one_request(client, key):
    result = run_commit(client, params(key, content="a=1\n", comment="first"))
    assert result["changed"] and result["version"] == 1 and result["previous"] is None
    assert result["commit"]["comment"] == "first" and result["commit"]["author"] == "unit-tests"
    before = client.requests
    again = run_commit(client, params(key, content="a=1\n"))
    assert client.requests == before + 1
    assert not again["changed"] and again["version"] == 1 and again["commit"] == result["commit"]
    assert again["previous"] == result["commit"]


def test_changed_run_costs_two_requests(client, key):
    run_commit(client, params(key, content="a"))
    before = client.requests
    result = run_commit(client, params(key, content="b"))
    assert client.requests == before + 2 and result["version"] == 2 and result["previous"]["version"] == 1


def test_content_is_compared_byte_for_byte(client, key):
    run_commit(client, params(key, content="a\n"))
    assert run_commit(client, params(key, content="a"))["changed"]


def test_value_is_compared_as_data(client, key):
    client.post(key, 1, b'{"b":   2,\n "a": [1, 2]}')
    result = run_commit(client, params(key, value={"a": [1, 2], "b": 2}))
    assert not result["changed"] and result["version"] == 1
    result = run_commit(client, params(key, value={"a": [1, 2], "b": 3}))
    assert result["changed"]
    assert client.get(key).payload == b'{\n  "a": [\n    1,\n    2\n  ],\n  "b": 3\n}\n'


def test_yaml_values(client, key):
    result = run_commit(client, params(key, value={"z": 1, "a": {"n": [1, "x"]}}, format="yaml"))
    assert result["changed"]
    assert client.get(key).payload == b"a:\n  n:\n  - 1\n  - x\nz: 1\n"
    client.post(key, 2, b"{z: 1, a: {n: [1, x]}}")
    assert not run_commit(client, params(key, value={"z": 1, "a": {"n": [1, "x"]}}, format="yaml"))["changed"]


def test_unparsable_head_is_replaced(client, key):
    client.post(key, 1, b"\xff not json")
    assert run_commit(client, params(key, value=[1]))["changed"]


def test_check_mode_writes_nothing(client, key):
    result = run_commit(client, params(key, content="x", comment="c"), check_mode=True)
    assert result["changed"] and result["version"] == 1 and result["commit"]["mtime"] is None
    assert result["commit"]["comment"] == "c" and client.head(key) is None
    client.post(key, 1, b"x")
    assert not run_commit(client, params(key, content="x"), check_mode=True)["changed"]
    result = run_commit(client, params(key, state="absent"), check_mode=True)
    assert result["changed"] and result["version"] == 2 and result["commit"]["empty"]
    assert client.get(key).version == 1


def test_diff_only_when_asked_and_only_for_text(client, key):
    assert "diff" not in run_commit(client, params(key, content="one\n"))
    result = run_commit(client, params(key, content="two\n"), diff=True)
    assert result["diff"]["before"] == "one\n" and result["diff"]["after"] == "two\n"
    assert "version 1" in result["diff"]["before_header"] and "version 2" in result["diff"]["after_header"]
    client.post(key, 3, b"\xff\xfe")
    assert "diff" not in run_commit(client, params(key, content="text"), diff=True)
    assert "diff" not in run_commit(client, params(key, content="text"), diff=True)  # unchanged
    absent = run_commit(client, params(key, state="absent"), diff=True, check_mode=True)
    assert absent["diff"]["after"] == ""


def test_absent(client, key):
    assert not run_commit(client, params(key, state="absent"))["changed"]  # missing key
    assert client.head(key) is None
    run_commit(client, params(key, content="x"))
    result = run_commit(client, params(key, state="absent", comment="gone"))
    assert result["changed"] and result["commit"]["empty"] and result["version"] == 2
    assert not run_commit(client, params(key, state="absent"))["changed"]
    # present again after a tombstone
    result = run_commit(client, params(key, content="back"))
    assert result["changed"] and result["version"] == 3 and result["previous"]["empty"]


def test_expected_version(client, key):
    result = run_commit(client, params(key, content="v1", expected_version=0))
    assert result["version"] == 1
    with pytest.raises(RainerTaskError) as info:
        run_commit(client, params(key, content="v2", expected_version=0))
    assert "expected_version is 0" in str(info.value) and "newest version is 1" in str(info.value)
    assert "version 1 was committed after it" in str(info.value)
    assert info.value.details["current_version"] == 1
    assert run_commit(client, params(key, content="v2", expected_version=1))["version"] == 2
    # already as wanted: no change, whatever the expected version (re-runs stay green)
    assert not run_commit(client, params(key, content="v2", expected_version=1))["changed"]
    with pytest.raises(RainerTaskError) as info:
        run_commit(client, params(key, content="v3", expected_version=7))
    # Ahead of the key: nobody committed in between; the version asked for does not exist yet.
    assert "newest version is 2; the key has no version 7 yet" in str(info.value)
    assert client.get(key).version == 2
    with pytest.raises(RainerTaskError):
        run_commit(client, params(key, content="v3", expected_version=-1))


def _second_writer_before_post(client, key, payloads):
    """Make a real second writer commit between our read and our post (once per payload)."""
    other = RainerClient(client.url, author="second-writer")
    real_head = client.head
    queue = list(payloads)

    def head_then_other_writes(name):
        commit = real_head(name)
        if queue:
            other.post(key, (commit.version if commit else 0) + 1, queue.pop(0))
        return commit

    return mock.patch.object(client, "head", side_effect=head_then_other_writes)


def test_conflict_is_retried_and_decided_again(client, key):
    with _second_writer_before_post(client, key, [b"theirs"]):
        result = run_commit(client, params(key, content="mine"))
    assert result["changed"] and result["version"] == 2 and result["previous"]["author"] == "second-writer"
    assert client.get(key).payload == b"mine"


def test_conflict_where_the_other_writer_wrote_the_same(client, key):
    with _second_writer_before_post(client, key, [b"same"]):
        result = run_commit(client, params(key, content="same"))
    assert not result["changed"] and result["version"] == 1


def test_conflict_retries_run_out(client, key):
    with _second_writer_before_post(client, key, [b"a", b"b", b"c"]):
        with pytest.raises(RainerTaskError) as info:
            run_commit(client, params(key, content="mine", conflict_retries=2))
    assert "gave up after 3 conflicts" in str(info.value)
    assert info.value.details["status"] == 409 and info.value.details["conflict"]["key"] == key


def test_conflict_with_expected_version_fails(client, key):
    with _second_writer_before_post(client, key, [b"theirs"]):
        with pytest.raises(RainerTaskError) as info:
            run_commit(client, params(key, content="mine", expected_version=0))
    assert "another writer committed version 1" in str(info.value)
    assert client.get(key).payload == b"theirs"


def test_errors_become_task_errors(closed_port_url, key):
    client = RainerClient(closed_port_url, retries=0)
    with pytest.raises(RainerTaskError) as info:
        run_commit(client, params(key, content="x"))
    assert info.value.details["status"] is None and info.value.details["error"] == "RainerUnreachableError"
    with pytest.raises(RainerTaskError):
        run_info(client, dict(key=key))
    with pytest.raises(RainerTaskError):
        run_commit(client, params(key))  # present without content or value


def test_post_failure_after_landing_reports_the_commit(client, key):
    real_post = client.post

    def lose_answer(*args, **kwargs):
        real_post(*args, **kwargs)
        raise RainerUnreachableError("reset")

    with mock.patch.object(client, "post", side_effect=lose_answer):
        result = run_commit(client, params(key, content="x"))
    assert result["changed"] and result["commit"]["version"] == 1


def test_info(client, key):
    assert run_info(client, dict(key=key)) == dict(changed=False, key=key, exists=False, commit=None)
    client.post(key, 1, b'{"a": 1}')
    client.post(key, 2, b'{"a": 2}', comment="second")
    result = run_info(client, dict(key=key, format="json", history=True))
    assert result["exists"] and result["version"] == 2 and result["value"] == {"a": 2}
    assert result["payload"] == '{"a": 2}' and result["payload_base64"] == "eyJhIjogMn0="
    assert result["commit"]["comment"] == "second" and set(result["commit"]) == {
        "key", "version", "author", "comment", "mtime", "empty"}
    assert [h["version"] for h in result["history"]] == [2, 1]
    old = run_info(client, dict(key=key, version=1, format="yaml", history=True, history_limit=1))
    assert old["value"] == {"a": 1} and len(old["history"]) == 1
    assert not run_info(client, dict(key=key, version=9))["exists"]
    assert run_info(client, dict(key=key + "-none", history=True))["history"] == []
    with pytest.raises(RainerTaskError) as info:
        run_info(client, dict(key=key, history=True, history_limit=0))
    assert "history_limit must be 1 or more" in str(info.value)
    client.post(key, 3, b"", empty=True)
    deleted = run_info(client, dict(key=key, format="json"))
    assert deleted["exists"] and deleted["commit"]["empty"] and deleted["value"] is None


def test_info_listing(client, key):
    client.post(key, 1, b"[1]")
    client.post(key + "-gone", 1, b"", empty=True)
    client.post(key + "-text", 1, b"not json")
    listing = run_info(client, dict(format="json"))
    assert listing["commits"][key]["value"] == [1] and key in listing["key_names"]
    assert key + "-gone" not in listing["commits"]
    assert "value" not in listing["commits"][key + "-text"] and listing["commits"][key + "-text"]["parse_error"]
    assert key + "-gone" in run_info(client, dict(all=True))["commits"]
    with pytest.raises(RainerTaskError):
        run_info(client, dict(history=True))


def test_info_unparsable_payload_fails(client, key):
    client.post(key, 1, b"{not json")
    with pytest.raises(RainerTaskError) as info:
        run_info(client, dict(key=key, format="json"))
    assert "not valid JSON" in str(info.value)


def test_serialize_and_parse():
    assert serialize({"b": 1, "a": "\u00fc"}, "json") == '{\n  "a": "\u00fc",\n  "b": 1\n}\n'.encode("utf-8")
    assert serialize([1], "yaml") == b"- 1\n"
    assert parse(b"a: 1", "yaml") == {"a": 1}
    with pytest.raises(ParseError):
        parse(b"\xff", "json")
    with pytest.raises(ParseError):
        parse(b"[", "yaml")


def test_describe_and_options(client):
    with pytest.raises(RainerTaskError):
        client_from_options({"url": None})
    made = client_from_options({"url": client.url, "timeout": 3, "retries": 1, "author": "x", "headers": {"A": "b"}})
    assert (made.timeout, made.retries, made.author, made.headers) == (3, 1, "x", {"A": "b"})
    assert "value" not in describe_commit(mock.Mock(meta={"key": "k"}, payload=None), "json")


def test_conflict_retries_has_one_default():
    """Both modules that commit take conflict_retries with the one default, which also stands in
    when a caller leaves it out."""
    assert COMMIT_ARGUMENT_SPEC["conflict_retries"]["default"] == CONFLICT_RETRIES
    assert CHANGESET_ARGUMENT_SPEC["conflict_retries"]["default"] == CONFLICT_RETRIES
    assert conflict_retries({}) == conflict_retries({"conflict_retries": None}) == CONFLICT_RETRIES
    assert conflict_retries({"conflict_retries": -2}) == 0 and conflict_retries({"conflict_retries": 7}) == 7
