"""The ``rainer`` client commands through pipes, as scripts use them, against a real server."""

from __future__ import annotations

import json
import socket

from cli_helpers import commit, rainer
from client_fixtures import client_fixture, key_fixture, server_fixture  # noqa: F401

ANSI = "\033["


def test_list_prints_key_version_and_url(server, client, key):
    commit(client, key + "-a", "1")
    commit(client, key + "-a", "2")
    commit(client, key + "-gone", None)
    run = rainer("list", url=server.diary_url)
    assert run.code == 0, run.stderr
    lines = [line for line in run.out.splitlines() if line.startswith(key)]
    assert lines == [f"{key}-a\t2\t{server.diary_url}/{key}-a/2"]
    every = rainer("list", "-A", url=server.diary_url)
    assert f"{key}-gone\t1\t" in every.out


def test_list_json_is_the_servers_metadata(server, client, key):
    meta = commit(client, key, "x")
    run = rainer("list", "--json", url=server.diary_url)
    assert run.code == 0
    assert json.loads(run.out)[key] == meta


def test_url_option_wins_over_the_environment(server, client, key):
    commit(client, key, "x")
    run = rainer("list", "--url", server.diary_url, url="http://127.0.0.1:9/diary")
    assert run.code == 0 and key in run.out


def test_url_option_also_goes_before_the_command_as_in_pyrainer(server, client, key):
    commit(client, key, "before")
    run = rainer("--url", server.diary_url, "show", key, url="http://127.0.0.1:9/diary")
    assert (run.code, run.stdout) == (0, b"before")
    run = rainer(
        "--url", "http://127.0.0.1:9/diary", "show", "--url", server.diary_url, key, url=None
    )
    assert (run.code, run.stdout) == (0, b"before")


def test_show_prints_the_payload_byte_for_byte(server, client, key):
    commit(client, key, b"one\n")
    commit(client, key, b"\x00\xff no newline")
    assert rainer("show", key, url=server.diary_url).stdout == b"\x00\xff no newline"
    assert rainer("show", key, "1", url=server.diary_url).stdout == b"one\n"


def test_show_meta_prints_json(server, client, key):
    meta = commit(client, key, "x", comment="why")
    run = rainer("show", "--meta", key, url=server.diary_url)
    assert json.loads(run.out) == meta


def test_show_of_an_empty_commit_is_an_error_as_for_a_missing_key(server, client, key):
    commit(client, key, "x")
    commit(client, key, None)
    run = rainer("show", key, url=server.diary_url)
    assert (run.code, run.stdout) == (1, b"")
    assert "is an empty commit" in run.stderr and run.stderr.count("\n") == 1


def test_not_found_is_one_line_and_exit_1(server, key):
    run = rainer("show", key, url=server.diary_url)
    assert run.code == 1
    assert run.stderr == f"rainer show: error: not found: {key!r}\n"
    assert "Traceback" not in run.stderr


def test_unreachable_server_is_one_line_and_exit_1(key):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/diary"
        run = rainer("show", key, url=url)
    assert run.code == 1
    assert run.stderr.count("\n") == 1
    assert "cannot reach" in run.stderr and "connection refused" in run.stderr


def test_usage_errors_exit_2(server, key):
    assert rainer("show", key, url=None).code == 2
    assert "RAINER_URL" in rainer("show", key, url=None).stderr
    assert rainer("show", key, "zero", url=server.diary_url).code == 2
    assert rainer("commit-value", key, url=server.diary_url).code == 2  # -m is required
    assert rainer("list", url="ftp://nowhere").code == 2


def test_prepare_prints_the_next_version_in_pyrainers_format(server, client, key):
    commit(client, key, "a: 1\n")
    commit(client, key, "a: 2\n")
    run = rainer("prepare", key, url=server.diary_url)
    assert run.out == "author: cli-tester\ncomment: ''\nversion: 3\n---\na: 2\n"
    # From an older version's payload, still as the next version.
    run = rainer("prepare", key, "1", "--author", "ann", url=server.diary_url)
    assert run.out == "author: ann\ncomment: ''\nversion: 3\n---\na: 1\n"


def test_prepare_of_a_new_key_starts_at_version_1(server, key):
    run = rainer("prepare", key, url=server.diary_url)
    assert run.out == "author: cli-tester\ncomment: ''\nversion: 1\n---\n"
    assert rainer("prepare", key, "2", url=server.diary_url).code == 1


def test_prepare_then_commit(server, client, key):
    commit(client, key, "old\n")
    prepared = rainer("prepare", key, url=server.diary_url).stdout
    edited = prepared.replace(b"comment: ''", b"comment: tuned").replace(b"old", b"new")
    run = rainer("commit", key, url=server.diary_url, stdin=edited)
    assert run.code == 0, run.stderr
    meta = json.loads(run.out)
    assert (meta["version"], meta["author"], meta["comment"]) == (2, "cli-tester", "tuned")
    assert client.get_value(key) == b"new\n"


def test_commit_conflict_with_a_second_writer_between_prepare_and_commit(server, client, key):
    commit(client, key, "base\n")
    prepared = rainer("prepare", key, url=server.diary_url).stdout
    commit(client, key, "sneaky\n", author="mallory", comment="meanwhile")
    run = rainer("commit", key, url=server.diary_url, stdin=prepared + b"mine\n")
    assert run.code == 3
    assert run.stderr.count("\n") == 1
    assert "version 2 by mallory" in run.stderr and "meanwhile" in run.stderr
    assert f"rainer log {key}" in run.stderr
    assert client.get_value(key) == b"sneaky\n"


def test_commit_rejects_what_is_not_a_prepared_commit(server, key):
    run = rainer("commit", key, url=server.diary_url, stdin=b"just a value\n")
    assert run.code == 1
    assert "not a prepared commit" in run.stderr and "---" in run.stderr


def test_commit_value_posts_the_next_version_from_stdin(server, client, key):
    run = rainer("commit-value", key, "-m", "first", url=server.diary_url, stdin=b"v1")
    assert run.code == 0, run.stderr
    assert json.loads(run.out)["version"] == 1
    run = rainer("commit-value", key, "-m", "second", url=server.diary_url, stdin=b"v2")
    meta = json.loads(run.out)
    assert (meta["version"], meta["comment"], meta["author"]) == (2, "second", "cli-tester")
    assert client.get_value(key) == b"v2"


def test_commit_value_with_a_stale_version_is_a_conflict(server, client, key):
    commit(client, key, "1")
    commit(client, key, "2", author="bob")
    run = rainer("commit-value", key, "2", "-m", "stale", url=server.diary_url, stdin=b"x")
    assert run.code == 3
    assert "version 2 by bob" in run.stderr


def test_author_defaults_to_the_login_name_without_a_terminal(server, key):
    run = rainer(
        "commit-value",
        key,
        "-m",
        "m",
        url=server.diary_url,
        RAINER_AUTHOR=None,
        LOGNAME="login-name",
        USER="user-name",
    )
    assert run.code == 0, run.stderr
    assert json.loads(run.out)["author"] == "login-name"
    run = rainer(
        "commit-value",
        key,
        "-m",
        "m",
        url=server.diary_url,
        RAINER_AUTHOR=None,
        LOGNAME=None,
        USER=None,
        LNAME=None,
        USERNAME=None,
    )
    assert run.code == 0, run.stderr  # from the password database, or uid-N
    assert json.loads(run.out)["author"]


def test_uncommit_with_yes(server, client, key):
    commit(client, key, "x")
    run = rainer("uncommit", key, "-y", url=server.diary_url)
    assert run.code == 0, run.stderr
    meta = json.loads(run.out)
    assert (meta["version"], meta["empty"]) == (2, True)
    again = rainer("uncommit", key, "-y", url=server.diary_url)
    assert again.code == 0 and json.loads(again.out) == {**meta, "changed": False}
    assert client.get_metadata(key)["version"] == 2


def test_uncommit_expecting_an_old_version_is_a_conflict(server, client, key):
    commit(client, key, "x")
    commit(client, key, "y")
    run = rainer("uncommit", key, "1", "-y", url=server.diary_url)
    assert run.code == 3
    assert client.get_commit(key).value == b"y"


def test_uncommit_without_a_terminal_reads_the_answer_from_stdin(server, client, key):
    commit(client, key, "x")
    run = rainer("uncommit", key, url=server.diary_url, stdin=b"maybe\nno\n")
    assert run.code == 5 and "the answer was no" in run.stderr
    assert "Please type 'yes' or 'no'" in run.stderr
    assert client.get_metadata(key)["empty"] is False
    run = rainer("uncommit", key, url=server.diary_url, stdin=b"yes\n")
    assert run.code == 0 and client.get_metadata(key)["empty"] is True


def test_revert_commits_an_old_payload_as_the_next_version(server, client, key):
    commit(client, key, "good\n")
    commit(client, key, "bad\n")
    run = rainer("revert", key, "1", url=server.diary_url)
    assert run.code == 0, run.stderr
    meta = json.loads(run.out)
    assert (meta["version"], meta["comment"]) == (3, "Revert to version 1")
    assert client.get_value(key) == b"good\n"
    again = rainer("revert", key, "1", url=server.diary_url)
    assert again.code == 0 and json.loads(again.out) == {**meta, "changed": False}
    assert client.get_metadata(key)["version"] == 3


def test_revert_to_an_empty_version_uncommits(server, client, key):
    commit(client, key, "a")
    commit(client, key, None)
    commit(client, key, "b")
    run = rainer("revert", key, "2", "-m", "gone again", url=server.diary_url)
    assert run.code == 0, run.stderr
    assert client.get_metadata(key)["empty"] is True


def test_diff_between_versions(server, client, key):
    commit(client, key, "a\nb\n")
    commit(client, key, "a\nc\n")
    commit(client, key, "a\nd")
    run = rainer("diff", key, "1", url=server.diary_url)
    assert run.code == 0
    assert ANSI not in run.out
    assert f"--- {key} 1\n+++ {key} 3\n" in run.out
    assert "-b\n+d\n\\ No newline at end of file\n" in run.out
    run = rainer("diff", key, "1", "2", "--color", "always", url=server.diary_url)
    assert "\033[31m-b\033[0m" in run.out and "\033[32m+c\033[0m" in run.out


def test_log_without_a_terminal_prints_plainly(server, client, key):
    commit(client, key, "one\n", comment="first")
    commit(client, key, "two\n", author="bob", comment="second")
    commit(client, key, None)
    run = rainer("log", key, url=server.diary_url, PAGER="false")  # no pager without a tty
    assert run.code == 0, run.stderr
    assert ANSI not in run.out
    commits = run.out.split("commit ")[1:]
    assert [c.split("\n", 1)[0] for c in commits] == ["3", "2", "1"]
    assert "Author: bob" in commits[1] and "    second\n" in commits[1]
    assert "-two\n" in commits[0] and "Empty:  yes" in commits[0]
    assert f"--- {key} 1\n+++ {key} 2\n" in commits[1] and "-one\n+two\n" in commits[1]
    assert f"--- {key} 0\n+++ {key} 1\n" in commits[2]
    older = rainer("log", key, "2", url=server.diary_url)
    assert [c.split("\n", 1)[0] for c in older.out.split("commit ")[1:]] == ["2", "1"]


def test_log_of_a_missing_key_or_version(server, client, key):
    assert rainer("log", key, url=server.diary_url).code == 1
    commit(client, key, "x")
    run = rainer("log", key, "5", url=server.diary_url)
    assert run.code == 1 and "no version 5" in run.stderr
