"""``rainer edit``, prompts and the pager: with $EDITOR scripts, on a pseudo-terminal."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

from cli_helpers import commit, rainer, rainer_in_pty, write_script
from client_fixtures import client_fixture, key_fixture, server_fixture  # noqa: F401

ANSI = "\033["
SAVED = re.compile(r"saved in (\S+\.yaml)")

# Replaces 'old' by 'new' in the file named by the last argument, and sets a comment.
CHANGE = """for last; do :; done
sed -i -e 's/old/new/' -e "s/^comment: ''/comment: changed it/" "$last"
"""


def saved_file(text: str) -> str:
    found = SAVED.search(text)
    assert found, text
    return found.group(1)


def test_edit_changes_shows_the_diff_asks_and_commits(server, client, key, tmp_path):
    commit(client, key, "keep\nold\n")
    editor = write_script(tmp_path / "editor", CHANGE)
    code, out = rainer_in_pty(
        "edit",
        key,
        url=server.diary_url,
        EDITOR=editor,
        TMPDIR=str(tmp_path),
        answers=[(b"(yes/no)? ", b"yes\n")],
    )
    assert code == 0, out
    assert f"Commit to {server.diary_url}/{key} (yes/no)? " in out
    assert "\033[31m-old\033[0m" in out and "\033[32m+new\033[0m" in out  # colour on a tty
    written = json.loads(out.splitlines()[-1])
    assert (written["version"], written["changed"]) == (2, True)
    head = client.get_commit(key)
    assert (head.value, head.comment, head.author) == (b"keep\nnew\n", "changed it", "cli-tester")
    assert not list(tmp_path.glob("*.yaml"))


def test_edit_answered_no_keeps_the_file(server, client, key, tmp_path):
    commit(client, key, "old\n")
    editor = write_script(tmp_path / "editor", CHANGE)
    code, out = rainer_in_pty(
        "edit",
        key,
        url=server.diary_url,
        EDITOR=editor,
        NO_COLOR="1",
        answers=[(b"(yes/no)? ", b"perhaps\n"), (b"'yes' or 'no': ", b"no\n")],
    )
    assert code == 5, out
    assert "rainer edit: not confirmed: the answer was no; nothing was written; your work" in out
    assert ANSI not in out
    path = saved_file(out)
    try:
        assert b"new" in Path(path).read_bytes()
    finally:
        os.unlink(path)
    assert client.get_metadata(key)["version"] == 1


def test_edit_with_a_failing_editor_keeps_the_file(server, client, key, tmp_path):
    commit(client, key, "old\n")
    editor = write_script(tmp_path / "editor", "exit 4\n")
    run = rainer("edit", key, url=server.diary_url, EDITOR=editor)
    assert run.code == 1
    assert "exited with status 4" in run.stderr and run.stderr.count("\n") == 1
    path = saved_file(run.stderr)
    try:
        assert Path(path).read_bytes().endswith(b"---\nold\n")
    finally:
        os.unlink(path)
    missing = rainer("edit", key, url=server.diary_url, EDITOR="/nonexistent/editor")
    assert missing.code == 1 and "cannot run the editor" in missing.stderr
    os.unlink(saved_file(missing.stderr))


def test_edit_without_change_commits_nothing(server, client, key, tmp_path):
    head = commit(client, key, "same\n")
    run = rainer("edit", key, url=server.diary_url, EDITOR="true", TMPDIR=str(tmp_path))
    assert (run.code, json.loads(run.out), run.stderr) == (0, {**head, "changed": False}, "")
    assert client.get_metadata(key)["version"] == 1
    assert not list(tmp_path.glob("*.yaml"))


def test_edit_from_an_older_version_shows_the_change_to_the_newest(server, client, key):
    commit(client, key, "first\n")
    commit(client, key, "second\n")
    # Saved as it was prepared: the first payload again, as version 3 (a revert).
    run = rainer("edit", key, "1", "-y", url=server.diary_url, EDITOR="true")
    assert json.loads(run.out)["version"] == 3, run.stderr
    assert f"--- {key} (current)\n+++ {key} (new)\n@@ -1 +1 @@\n-second\n+first\n" in run.stderr
    assert client.get_value(key) == b"first\n"


def test_edit_of_a_new_key_with_an_editor_taking_arguments(server, client, key, tmp_path):
    script = write_script(
        tmp_path / "editor", 'for last; do :; done\n[ "$1" = --wait ] && echo "a: 1" >> "$last"\n'
    )
    run = rainer("edit", key, "-y", url=server.diary_url, EDITOR=f"sh {script} --wait")
    assert run.code == 0, run.stderr
    assert client.get_commit(key).value == b"a: 1\n"
    assert client.get_metadata(key)["version"] == 1


def test_edit_conflict_names_who_committed_and_says_to_edit_again(server, client, key, tmp_path):
    commit(client, key, "keep\nold\n")
    # The editor lets someone else commit first: a second writer between prepare and commit.
    second = (
        f'{sys.executable} -c "from rainer.client import RainerClient; '
        f"RainerClient('{server.diary_url}').post_commit({{'key': '{key}', 'version': 2, "
        f"'author': 'mallory', 'comment': 'sneaky'}}, 'keep\\nold\\ntheirs\\n')\"\n"
    )
    editor = write_script(tmp_path / "editor", second + CHANGE)
    code, out = rainer_in_pty(
        "edit", key, url=server.diary_url, EDITOR=editor, answers=[(b"(yes/no)? ", b"y\n")]
    )
    assert code == 3, out
    assert f"{key!r} is at version 2: version 2 exists already; the next is 3" in out
    assert "version 2 by mallory" in out and "sneaky" in out
    # Not "set the version and commit the file", which would drop their line.
    assert f"run 'rainer edit {key}' again: it starts from version 2" in out
    assert "rainer commit" not in out
    os.unlink(saved_file(out))
    # Following the advice keeps both changes.
    editor = write_script(tmp_path / "editor", CHANGE)
    run = rainer("edit", key, "-y", url=server.diary_url, EDITOR=editor)
    assert json.loads(run.out)["version"] == 3, run.stderr
    assert client.get_value(key) == b"keep\nnew\ntheirs\n"


def test_edit_with_a_broken_header_keeps_the_file(server, client, key, tmp_path):
    commit(client, key, "old\n")
    editor = write_script(tmp_path / "editor", 'for last; do :; done\necho "oops" > "$last"\n')
    run = rainer("edit", key, url=server.diary_url, EDITOR=editor)
    assert run.code == 1 and "not a prepared commit" in run.stderr
    os.unlink(saved_file(run.stderr))


def test_uncommit_asks_on_the_terminal(server, client, key):
    commit(client, key, "doomed\n")
    code, out = rainer_in_pty(
        "uncommit", key, url=server.diary_url, answers=[(b"(yes/no)? ", b"yes\n")]
    )
    assert code == 0, out
    assert "\033[31m-doomed\033[0m" in out
    assert client.get_metadata(key)["empty"] is True


def test_log_pages_through_the_pager_on_a_terminal(server, client, key, tmp_path):
    commit(client, key, "one\n", comment="first")
    commit(client, key, "two\n", comment="second")
    marker = write_script(tmp_path / "pager", 'echo "[paged]"; cat\n')
    code, out = rainer_in_pty("log", key, url=server.diary_url, PAGER=marker)
    assert code == 0, out
    assert out.startswith("[paged]\n")
    assert "\033[33mcommit 2\033[0m" in out and "\033[32m+two\033[0m" in out
    code, out = rainer_in_pty("log", key, url=server.diary_url, PAGER="cat", NO_COLOR="")
    assert code == 0 and "commit 1" in out and ANSI not in out
    code, out = rainer_in_pty("log", key, url=server.diary_url, PAGER="/nonexistent/pager")
    assert code == 0 and "commit 1" in out
