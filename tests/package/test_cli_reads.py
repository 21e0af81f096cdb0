"""Reading from scripts and finding one's way, against a real server: ``list PREFIX``, ``show
--format/--field`` and uncommitted keys, ``log --json`` and ``-n``, ``diff --exit-code``, help for
every argument, and shell completion."""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess

import yaml
from cli_helpers import commit, rainer
from client_fixtures import client_fixture, key_fixture, server_fixture  # noqa: F401

from rainer.cli import build_parser


def test_list_takes_a_prefix(server, client, key):
    commit(client, f"{key}.web", "w")
    commit(client, f"{key}.db", "d")
    commit(client, f"{key}.gone", None)
    commit(client, f"other-{key}", "o")
    run = rainer("list", f"{key}.", url=server.diary_url)
    assert run.code == 0, run.stderr
    assert [line.split("\t")[0] for line in run.out.splitlines()] == [f"{key}.db", f"{key}.web"]
    run = rainer("list", f"{key}.", "-A", "--json", url=server.diary_url)
    assert sorted(json.loads(run.out)) == [f"{key}.db", f"{key}.gone", f"{key}.web"]


def test_show_as_json_or_yaml_is_the_metadata_and_the_payload(server, client, key):
    meta = commit(client, key, "port: 8080\nworkers: 4\n", comment="first")
    run = rainer("show", key, "--format", "json", url=server.diary_url)
    assert run.code == 0, run.stderr
    assert json.loads(run.out) == {**meta, "payload_utf8": "port: 8080\nworkers: 4\n"}
    run = rainer("show", key, "1", "--format", "yaml", url=server.diary_url)
    assert yaml.safe_load(run.out) == {**meta, "payload_utf8": "port: 8080\nworkers: 4\n"}
    assert "payload_utf8: |\n  port: 8080\n  workers: 4\n" in run.out  # readable as it is
    commit(client, key, b"\xff\x00")
    run = rainer("show", key, "--format", "json", url=server.diary_url)
    assert json.loads(run.out)["payload_base64"] == "/wA="
    assert rainer("show", key, "--format", "raw", url=server.diary_url).stdout == b"\xff\x00"


def test_show_field_prints_one_field_as_jq_r_would(server, client, key):
    commit(client, key, "x", author="ann", comment="why not")
    for field, expected in [("version", "1"), ("author", "ann"), ("empty", "false")]:
        run = rainer("show", key, "--field", field, url=server.diary_url)
        assert (run.code, run.out) == (0, expected + "\n"), run.stderr
    assert rainer("show", key, "--field", "comment", url=server.diary_url).out == "why not\n"
    wrong = rainer("show", key, "--field", "colour", url=server.diary_url)
    assert wrong.code == 2 and "invalid choice" in wrong.stderr
    both = rainer("show", key, "--field", "version", "--meta", url=server.diary_url)
    assert both.code == 2 and "not allowed with" in both.stderr


def test_show_of_an_uncommitted_key_is_an_error_like_a_missing_one(server, client, key):
    commit(client, key, "x")
    tombstone = commit(client, key, None)
    for fmt in ("raw", "json", "yaml"):
        run = rainer("show", key, "--format", fmt, url=server.diary_url)
        assert (run.code, run.stdout) == (1, b"")
        assert run.stderr == (
            f"rainer show: error: version 2 of {key!r} is an empty commit: the key was "
            f"uncommitted, and has no payload there (see 'rainer log {key}')\n"
        )
    assert rainer("show", key, "1", url=server.diary_url).stdout == b"x"
    # Its metadata is there to see.
    assert json.loads(rainer("show", key, "--meta", url=server.diary_url).out) == tombstone
    assert rainer("show", key, "--field", "empty", url=server.diary_url).out == "true\n"
    assert rainer("show", f"{key}-never", url=server.diary_url).code == 1


def test_log_json_is_a_line_per_version_and_n_limits_it(server, client, key):
    metas = [commit(client, key, f"v{number}\n") for number in range(1, 5)]
    run = rainer("log", key, "--json", url=server.diary_url)
    assert run.code == 0, run.stderr
    assert [json.loads(line) for line in run.out.splitlines()] == metas[::-1]
    run = rainer("log", key, "--json", "-n", "2", "--payload", url=server.diary_url)
    lines = [json.loads(line) for line in run.out.splitlines()]
    assert [(line["version"], line["payload_utf8"]) for line in lines] == [(4, "v4\n"), (3, "v3\n")]
    run = rainer("log", key, "3", "--max-count", "2", url=server.diary_url)
    assert [c.split("\n", 1)[0] for c in run.out.split("commit ")[1:]] == ["3", "2"]
    assert f"--- {key} 1\n+++ {key} 2\n" in run.out  # the oldest shown still has its diff
    assert rainer("log", key, "-n", "0", url=server.diary_url).code == 2


def test_diff_exit_code_says_whether_versions_differ(server, client, key):
    commit(client, key, "a\n")
    commit(client, key, "b\n")
    commit(client, key, "a\n")
    same = rainer("diff", key, "1", "3", "--exit-code", url=server.diary_url)
    assert (same.code, same.out) == (0, "")
    differ = rainer("diff", "--exit-code", key, "1", "2", url=server.diary_url)
    assert differ.code == 1 and "-a\n+b\n" in differ.out
    assert rainer("diff", key, "1", "2", url=server.diary_url).code == 0  # without: always 0
    # With --exit-code an error is 2, so that 1 always means differences.
    missing = rainer("diff", key, "9", "--exit-code", url=server.diary_url)
    assert missing.code == 2 and "not found" in missing.stderr
    assert rainer("diff", key, "9", url=server.diary_url).code == 1


def _positionals(parser: argparse.ArgumentParser, path: str):
    for action in parser._actions:
        if not action.option_strings:
            yield path, action
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _positionals(child, f"{path} {name}")


def test_every_positional_argument_has_help():
    found = list(_positionals(build_parser(), "rainer"))
    assert len(found) > 20
    assert [(path, action.dest) for path, action in found if not action.help] == []


def test_help_groups_the_client_options_as_connection_options():
    run = rainer("--help", url=None)
    assert run.code == 0
    assert "connection options:\n  --url URL" in run.out and "output options:" in run.out
    assert "server options" not in run.out
    run = rainer("show", "--help", url=None)
    assert "positional arguments:\n  KEY  " in run.out and "--token-file FILE" in run.out


def test_bash_completion_is_valid_and_completes_commands_and_options():
    run = rainer("completion", "bash", url=None)
    assert run.code == 0, run.stderr
    checked = subprocess.run(["bash", "-n"], input=run.stdout, capture_output=True, check=False)
    assert checked.returncode == 0, checked.stderr

    def complete(*words: str) -> list[str]:
        # What bash offers for the last word, as on `rainer li<TAB>`.
        script = (
            "source /dev/stdin\n"
            f"COMP_WORDS=(rainer {shlex.join(words)}); COMP_CWORD={len(words)}\n"
            "_shtab_rainer; printf '%s\\n' \"${COMPREPLY[@]}\"\n"
        )
        done = subprocess.run(
            ["bash", "-c", script], input=run.stdout, capture_output=True, check=True
        )
        return done.stdout.decode().split()

    assert complete("li") == ["list"]
    assert complete("com") == ["commit", "commit-value", "completion"]
    assert complete("show", "--fo") == ["--format"]
    assert complete("show", "--format", "") == ["raw", "json", "yaml"]


def test_zsh_completion_is_a_compdef_of_every_command():
    # zsh itself is not among the test machines' packages: the script's shape is checked.
    run = rainer("completion", "zsh", url=None)
    assert run.code == 0 and run.out.startswith("#compdef rainer\n")
    assert "commit-value" in run.out and "--max-count" in run.out


def test_completion_of_another_shell_is_a_usage_error():
    run = rainer("completion", "fish", url=None)
    assert run.code == 2 and "invalid choice" in run.stderr
