"""The writing commands in scripts, against a real server: one line of JSON on stdout whatever
happens short of an error, one rule for a write that would repeat the newest payload, conflict
messages that quote only versions the user typed or can see, and a question nobody said yes to
exiting 5."""

from __future__ import annotations

import json

import pytest
from cli_helpers import Run, commit, rainer
from client_fixtures import client_fixture, key_fixture, server_fixture  # noqa: F401

EXIT_CONFLICT = 3
EXIT_DECLINED = 5


def one_json_line(run: Run) -> dict:
    """The one line of JSON a writing command prints, checked to be all of stdout."""
    assert run.code == 0, run.stderr
    assert run.out.endswith("\n") and run.out.count("\n") == 1, run.out
    found = json.loads(run.out)
    assert isinstance(found, dict)
    return found


def prepared(version: int, payload: bytes, empty: bool = False) -> bytes:
    header = f"comment: ''\nversion: {version}\n" + ("empty: true\n" if empty else "")
    return header.encode() + b"---\n" + payload


def test_a_write_prints_the_new_commit_with_changed_true(server, client, key):
    written = one_json_line(
        rainer("commit-value", key, "-m", "m", url=server.diary_url, stdin=b"a")
    )
    assert written == {**client.get_metadata(key), "changed": True}
    assert written["version"] == 1


@pytest.mark.parametrize(
    ("name", "args", "stdin"),
    [
        ("commit-value", ["-m", "again"], b"same\n"),
        ("commit-value with the version it made", ["2", "-m", "again"], b"same\n"),
        ("commit", [], prepared(3, b"same\n")),
        ("revert", ["2"], b""),
        ("edit", [], b""),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_a_write_of_the_newest_payload_writes_nothing_and_prints_the_newest(
    server, client, key, name, args, stdin
):
    commit(client, key, "old\n")
    head = commit(client, key, "same\n", comment="the newest")
    run = rainer(name.split()[0], key, *args, url=server.diary_url, stdin=stdin, EDITOR="true")
    assert one_json_line(run) == {**head, "changed": False}
    assert client.get_metadata(key) == head
    assert run.stderr == ""


def test_force_commits_the_newest_payload_again(server, client, key):
    commit(client, key, "same\n")
    run = rainer(
        "commit-value", key, "--force", "-m", "again", url=server.diary_url, stdin=b"same\n"
    )
    assert one_json_line(run)["changed"] is True
    assert client.get_metadata(key)["version"] == 2
    run = rainer("revert", key, "1", "--force", url=server.diary_url)
    assert one_json_line(run)["version"] == 3
    run = rainer("edit", key, "--force", "-y", url=server.diary_url, EDITOR="true")
    assert one_json_line(run)["version"] == 4
    assert client.get_value(key) == b"same\n"


def test_uncommit_of_an_uncommitted_key_prints_the_tombstone(server, client, key):
    commit(client, key, "x")
    first = one_json_line(rainer("uncommit", key, "-y", url=server.diary_url))
    assert (first["version"], first["empty"], first["changed"]) == (2, True, True)
    # Whatever version the user expected: the key is uncommitted, as asked.
    for args in ([], ["1"], ["2"]):
        again = one_json_line(rainer("uncommit", key, *args, "-y", url=server.diary_url))
        assert again == {**first, "changed": False}
    forced = one_json_line(rainer("uncommit", key, "-y", "--force", url=server.diary_url))
    assert (forced["version"], forced["empty"], forced["changed"]) == (3, True, True)


def test_an_empty_commit_is_not_the_same_as_an_empty_payload(server, client, key):
    commit(client, key, "x")
    commit(client, key, None)
    run = rainer("commit-value", key, "-m", "blank", url=server.diary_url, stdin=b"")
    assert (one_json_line(run)["version"], client.get_metadata(key)["empty"]) == (3, False)
    run = rainer("commit", key, url=server.diary_url, stdin=prepared(4, b"", empty=True))
    assert one_json_line(run)["changed"] is True
    run = rainer("commit", key, url=server.diary_url, stdin=prepared(5, b"", empty=True))
    assert one_json_line(run) == {**client.get_metadata(key), "changed": False}


def test_a_conflict_quotes_only_versions_the_user_typed_or_can_see(server, client, key):
    commit(client, key, "1")
    commit(client, key, "2", author="bob", comment="more workers")
    run = rainer("commit-value", key, "2", "-m", "mine", url=server.diary_url, stdin=b"mine")
    assert run.code == EXIT_CONFLICT and run.out == ""
    assert run.stderr.startswith(
        f"rainer commit-value: conflict: {key!r} is at version 2: version 2 exists already; "
        "the next is 3 (newest first: version 2 by bob at "
    )
    assert "not 1" not in run.stderr and run.stderr.count("\n") == 1
    # A version far behind: the newest few are named, and how many more.
    for number in range(3, 7):
        commit(client, key, str(number))
    run = rainer("commit-value", key, "1", "-m", "mine", url=server.diary_url, stdin=b"mine")
    assert f"{key!r} is at version 6: version 1 exists already; the next is 7" in run.stderr
    assert "version 6 by tester" in run.stderr and "and 3 more" in run.stderr
    run = rainer("commit-value", key, "9", "-m", "mine", url=server.diary_url, stdin=b"mine")
    assert f"{key!r} is at version 6; version 9 would skip ahead" in run.stderr


def test_uncommit_expecting_another_newest_says_so_before_asking(server, client, key):
    commit(client, key, "1")
    commit(client, key, "2", author="bob")
    run = rainer("uncommit", key, "1", url=server.diary_url, stdin=b"yes\n")
    assert run.code == EXIT_CONFLICT
    assert run.stderr.startswith(
        f"rainer uncommit: conflict: {key!r} is at version 2, not 1 (newest first: version 2 "
        "by bob at "
    )
    assert "yes/no" not in run.stderr  # not asked: the answer could not be used
    run = rainer("uncommit", key, "7", "-y", url=server.diary_url)
    assert run.stderr.startswith(f"rainer uncommit: conflict: {key!r} is at version 2, not 7.")
    assert client.get_metadata(key)["empty"] is False


def test_a_question_answered_no_or_unanswered_exits_5_and_writes_nothing(server, client, key):
    commit(client, key, "x")
    run = rainer("uncommit", key, url=server.diary_url, stdin=b"no\n")
    assert (run.code, run.out) == (EXIT_DECLINED, "")
    assert run.stderr.endswith(
        "(yes/no)? rainer uncommit: not confirmed: the answer was no; nothing was written\n"
    )
    assert "-x\n" in run.stderr  # the diff, on stderr: stdout is for the one line of JSON
    # No terminal and nothing on stdin: nobody to answer.
    run = rainer("uncommit", key, url=server.diary_url)
    assert run.code == EXIT_DECLINED
    assert "not confirmed: nobody answered" in run.stderr and "--yes" in run.stderr
    assert client.get_metadata(key)["version"] == 1
