"""``rainer watch`` as a process, against a real server: a line per new version, a handler run
per version with the payload and the RAINER_* variables, the feed as JSON lines, a server that
restarts underneath, and Ctrl-C or SIGTERM ending it cleanly."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading

from cli_helpers import cli_env, commit, rainer, write_script
from client_fixtures import client_fixture, key_fixture, server_fixture  # noqa: F401
from zk_util import wait_until

from harness.rainer import RainerServer
from rainer.client import RainerClient


class Watch:
    """``rainer watch ARGS`` running in the background (with --debug, so that its first
    exchange shows when it is watching), its output read line by line."""

    def __init__(self, *args: str, url: str, **env: str | None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rainer", "watch", "--debug", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=cli_env(url, **env),
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.lines)),
            threading.Thread(target=self._read, args=(self.process.stderr, self.stderr)),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream, into: list[str]) -> None:
        for raw in stream:
            into.append(raw.decode("utf-8", "replace").rstrip("\n"))

    @property
    def errors(self) -> list[str]:
        """What it said on stderr, but for the --debug lines."""
        return [line for line in self.stderr if not line.startswith("rainer: debug:")]

    def ready(self) -> None:
        """Wait for the first exchange: where a key's watch starts (its newest version), or
        where the feed starts (the list's index); later commits are seen from then on."""
        wait_until(
            lambda: any(" -> 200 in " in line for line in self.stderr), 30, "the first exchange"
        )

    def wait_lines(self, count: int, what: str) -> list[str]:
        wait_until(lambda: len(self.lines) >= count, 30, f"{what}; stderr: {self.stderr}")
        return self.lines

    def stop(self, signum: int = signal.SIGINT) -> int:
        self.process.send_signal(signum)
        code = self.process.wait(15)
        for reader in self._readers:
            reader.join(5)
        return code

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


def test_watch_prints_each_new_version_and_ends_on_ctrl_c(server, client, key):
    commit(client, key, "before")
    with Watch(key, url=server.diary_url) as watching:
        watching.ready()
        commit(client, key, "one", author="ann", comment="first")
        commit(client, key, "two", author="bob")
        commit(client, key, None, author="carol")
        lines = watching.wait_lines(3, "three versions")
        code = watching.stop(signal.SIGINT)
    assert [line.split(" at ")[0] for line in lines] == [
        f"{key}: version 2 by ann",
        f"{key}: version 3 by bob",
        f"{key}: version 4 by carol",
    ]
    assert lines[0].endswith('("first")') and lines[2].endswith("(uncommitted)")
    assert code == 130
    assert watching.errors == ["rainer: interrupted"]


def test_watch_runs_a_command_per_version_like_a_consul_handler(server, client, key, tmp_path):
    out = tmp_path / "handled"
    handler = write_script(
        tmp_path / "handler.sh",
        f'printf "%s|%s|%s|%s|%s|%s|" "$RAINER_KEY" "$RAINER_VERSION" "$RAINER_AUTHOR" '
        f'"$RAINER_COMMENT" "$RAINER_EMPTY" "$RAINER_MTIME" >> {out}\n'
        f"cat >> {out}\necho >> {out}\n"
        '[ "$RAINER_VERSION" != 2 ] || exit 5\n',
    )
    # From version 0 on: nothing committed while it starts is missed, so no need to wait.
    with Watch(key, "--index", "0", "--", handler, url=server.diary_url) as watching:
        commit(client, key, b"payload one", author="ann", comment="why")
        commit(client, key, b"two\x00", author="bob")
        commit(client, key, None, author="carol")
        wait_until(lambda: out.exists() and out.read_bytes().count(b"\n") >= 3, 30, "3 runs")
        code = watching.stop(signal.SIGTERM)
    runs = out.read_bytes().split(b"\n")[:3]
    fields = [run.split(b"|") for run in runs]
    assert [f[:5] for f in fields] == [
        [key.encode(), b"1", b"ann", b"why", b"no"],
        [key.encode(), b"2", b"bob", b"", b"no"],
        [key.encode(), b"3", b"carol", b"", b"yes"],
    ]
    assert [f[6] for f in fields] == [b"payload one", b"two\x00", b""]
    assert fields[0][5].endswith(b"Z")  # the mtime
    assert code == 143 and "Traceback" not in "\n".join(watching.errors)
    assert any("exited with status 5" in line and "version 2" in line for line in watching.errors)


def test_watch_without_a_key_prints_the_feed_as_json_lines(server, client, key):
    with Watch("--prefix", f"{key}.", "--payload", url=server.diary_url) as watching:
        watching.ready()
        commit(client, f"{key}.a", "text")
        commit(client, f"other-{key}", "outside")
        commit(client, f"{key}.b", b"\xff")
        lines = watching.wait_lines(2, "two events")
        watching.stop()
    events = [json.loads(line) for line in lines]
    assert [(e["event"], e["key"], e["version"]) for e in events] == [
        ("commit", f"{key}.a", 1),
        ("commit", f"{key}.b", 1),
    ]
    assert events[0]["payload_utf8"] == "text" and events[1]["payload_base64"] == "/w=="
    assert events[0]["index"] < events[1]["index"]


def test_the_feed_says_reset_and_lists_again_when_it_cannot_resume(server, client, key):
    commit(client, f"{key}.a", "a")
    with Watch("--prefix", f"{key}.", "--last-event-id", "999999999", url=server.diary_url) as w:
        lines = w.wait_lines(2, "a reset and the heads")
        w.stop()
    reset, head = (json.loads(line) for line in lines[:2])
    assert reset["event"] == "reset"
    assert (head["event"], head["key"], head["version"]) == ("head", f"{key}.a", 1)


def test_watch_rides_out_a_server_restart(tmp_path):
    with RainerServer(["--database", f"sqlite:///{tmp_path / 'r.db'}"]) as own:
        client = RainerClient(own.diary_url)
        commit(client, "k", "one")
        with Watch("k", "--json", url=own.diary_url) as watching:
            watching.ready()
            commit(client, "k", "two")
            watching.wait_lines(1, "version 2")
            own.stop()
            wait_until(lambda: watching.errors, 30, "a line saying the server is gone")
            own.start()
            commit(client, "k", "three")
            lines = watching.wait_lines(2, "version 3 after the restart")
            watching.stop()
    assert [json.loads(line)["version"] for line in lines] == [2, 3]
    assert "trying again in" in watching.errors[0]


def test_watch_usage_errors(server, key):
    run = rainer("watch", key, "--prefix", "x", url=server.diary_url)
    assert run.code == 2 and "for the feed" in run.stderr
    run = rainer("watch", "--", "true", url=server.diary_url)
    assert run.code == 2 and "runs for the versions of a KEY" in run.stderr
