"""The prepared-commit format and the diffs, without a server."""

from __future__ import annotations

import pytest

from rainer.cli.diffs import PATH_DIFF_MAX_LINES, path_diff, structured, unified_diff
from rainer.cli.prepared import PreparedCommit, PreparedCommitError, parse, render


def test_render_is_pyrainers_layout():
    text = render(PreparedCommit(4, "alice", "", b"a: 1\n"))
    assert text == b"author: alice\ncomment: ''\nversion: 4\n---\na: 1\n"
    assert render(PreparedCommit(2, "Zoë", "naïve", b"", empty=True)) == (
        "author: Zoë\ncomment: naïve\nempty: true\nversion: 2\n---\n".encode()
    )


@pytest.mark.parametrize(
    "commit",
    [
        PreparedCommit(1, "a", "", b""),
        PreparedCommit(7, "b", "a: comment # with: yaml", b"\x00\xff\n---\nmore\n"),
        PreparedCommit(3, "c", "'quoted'", b"no newline"),
        PreparedCommit(9, "d", "", b"", empty=True),
    ],
)
def test_parse_reads_back_what_render_wrote(commit):
    assert parse(render(commit), "k", "default") == commit


def test_parse_fills_in_the_author_and_tolerates_a_dropped_newline():
    assert parse(b"version: 2\n---", "k", "me") == PreparedCommit(2, "me", "", b"")
    assert parse(b"version: 2\nkey: k\n---\nx", "k", "me").payload == b"x"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (b"just a payload\n", "no '---' line"),
        (b"version: [1\n---\n", "not YAML"),
        (b"- a list\n---\n", "YAML fields"),
        (b"version: 1\ncolour: red\n---\n", "unknown header field(s): colour"),
        (b"version: 1\nkey: other\n---\n", "not 'k'"),
        (b"comment: x\n---\n", "positive integer"),
        (b"version: 0\n---\n", "positive integer"),
        (b"version: yes\n---\n", "positive integer"),
        (b'version: 1\ncomment: "two\\nlines"\n---\n', "one line"),
        (b"version: 1\nempty: true\n---\ndata", "cannot have a payload"),
        (b"version: 1\nempty: maybe\n---\n", "true or false"),
    ],
)
def test_parse_says_what_is_wrong(text, reason):
    with pytest.raises(PreparedCommitError) as caught:
        parse(text, "k", "me")
    assert reason in str(caught.value)


def test_diff_of_text():
    assert unified_diff(b"same", b"same", "a", "b") == ""
    assert unified_diff(b"a\n", b"b\n", "k 1", "k 2") == "--- k 1\n+++ k 2\n@@ -1 +1 @@\n-a\n+b\n"
    assert unified_diff(None, b"new\n", "k 0", "k 1").endswith("+new\n")
    assert unified_diff(b"x", b"y", "a", "b").endswith(
        "-x\n\\ No newline at end of file\n+y\n\\ No newline at end of file\n"
    )


def test_diff_colours_and_binary():
    coloured = unified_diff(b"a\n", b"b\n", "k 1", "k 2", color=True)
    assert "\033[1m--- k 1\033[0m\n" in coloured
    assert "\033[36m@@ -1 +1 @@\033[0m\n" in coloured
    assert "\033[31m-a\033[0m\n\033[32m+b\033[0m\n" in coloured
    assert (
        unified_diff(b"\x00a", b"\x00b", "a", "b")
        == "Binary payloads differ (2 bytes -> 2 bytes)\n"
    )
    assert "Binary" in unified_diff(b"text", b"\xff\xfe", "a", "b")


def test_a_diff_by_path_of_json_and_yaml():
    old = structured(b'{"spec": {"replicas": 3, "ports": [80, 443]}, "labels": {"app.kind": "w"}}')
    new = structured(b"spec:\n  replicas: 5\n  ports: [80]\nlabels: {app.kind: web}\nnew: true\n")
    assert path_diff(old, new) == [
        "spec.replicas: 3 → 5",
        "spec.ports[1]: 443 → (none)",
        'labels["app.kind"]: "w" → "web"',
        "new: (none) → true",
    ]
    assert structured(b"just text") is None and structured(b"\xff\x00") is None
    assert structured(b"- a\n- b\n") == ["a", "b"]


def test_a_diff_by_path_stays_small_whatever_the_document():
    # Aliases make a few hundred bytes of YAML a tree of 9**6 leaves: the comparison stops.
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for name, previous in zip("bcdef", "abcde", strict=True):
        lines.append(f"{name}: &{name} [{', '.join(['*' + previous] * 9)}]")
    text = "\n".join(lines)
    bomb, other = structured(text.encode()), structured(text.replace("x", "y").encode())
    shown = path_diff(bomb, other)
    assert len(shown) == PATH_DIFF_MAX_LINES + 2
    assert shown[-1] == "… (the documents are too large to compare in full)"
    many = path_diff({str(n): n for n in range(200)}, {})
    assert many[-1] == f"… and {200 - PATH_DIFF_MAX_LINES} more"
