"""`rainer serve` as a process: options, environment variables, start-up errors and stopping."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import pytest
from http_util import call, post_commit

from harness.rainer import RainerServer


def run_rainer(
    *args: str, env: dict | None = None, timeout: float = 30
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rainer", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_version_and_help():
    assert run_rainer("--version").stdout.startswith("rainer ")
    help_text = run_rainer("serve", "--help").stdout
    for option in ("--host", "--port", "--database", "--table", "--prefix", "--validate"):
        assert option in help_text
    assert "--max-payload-bytes" in help_text and "RAINER_" in help_text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "eighty"], "not a TCP port"),
        (["--port", "70000"], "not a TCP port"),
        (["--validate", "xml"], "invalid choice"),
        (["--max-payload-bytes", "0"], "not a positive number of bytes"),
        (["--prefix", "diary"], "not a URL path prefix"),
    ],
)
def test_bad_options_are_usage_errors(args, message):
    result = run_rainer("serve", *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("database", "message"),
    [
        ("oracle://scott@localhost/db", "unsupported database"),
        ("postgresql://nobody@127.0.0.1:1/none", "database unavailable"),
        ("sqlite:////no/such/directory/r.db", "no such directory"),
        ("sqlite:///:memory:", "use 'memory'"),
    ],
)
def test_bad_databases_fail_with_one_line(database, message):
    result = run_rainer("serve", "--port", "0", "--database", database)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("rainer serve: error: ") and message in lines[-1]
    assert "Traceback" not in result.stderr


def test_options_come_from_the_environment(tmp_path):
    env = {
        "RAINER_DATABASE": f"sqlite:///{tmp_path / 'env.db'}",
        "RAINER_PREFIX": "/from-env",
        "RAINER_VALIDATE": "json",
        "RAINER_MAX_PAYLOAD_BYTES": "16",
    }
    with RainerServer(env=env) as server:
        diary = server.url + "/from-env"
        assert post_commit(diary, "k", 1, b"not json", author="a").status == 400
        assert post_commit(diary, "k", 1, b'["x", "y", "z", "w"]', author="a").status == 413
        assert post_commit(diary, "k", 1, b"[1]", author="a").status == 200
    assert (tmp_path / "env.db").exists()


def test_command_line_beats_the_environment(tmp_path):
    env = {"RAINER_PREFIX": "/from-env"}
    args = ["--database", f"sqlite:///{tmp_path / 'x.db'}"]
    with RainerServer(args, env=env, prefix="/from-args") as server:
        assert call("GET", server.url + "/from-args").status == 200
        assert call("GET", server.url + "/from-env").status == 404


def test_table_option(tmp_path):
    import sqlite3

    database = tmp_path / "t.db"
    with RainerServer(["--database", f"sqlite:///{database}", "--table", "config_diary"]) as s:
        assert post_commit(s.diary_url, "k", 1, b"x", author="a").status == 200
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT count(*) FROM config_diary").fetchone() == (1,)


def test_a_second_server_on_one_sqlite_file_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    with RainerServer(["--database", url]):
        result = run_rainer("serve", "--port", "0", "--database", url)
        assert result.returncode == 1
        assert "another process is serving the SQLite database" in result.stderr


def test_sigterm_finishes_the_request_in_flight(tmp_path):
    server = RainerServer(["--database", f"sqlite:///{tmp_path / 'term.db'}"])
    server.start()
    try:
        with socket.create_connection((server.host, server.port), timeout=10) as conn:
            conn.sendall(
                b"POST /diary/inflight/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Rainer-Author: a\r\n"
                b"Content-Length: 10\r\n\r\nhello"
            )
            time.sleep(0.3)
            server._proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            conn.sendall(b"world")
            answer = conn.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200"), answer
        assert server._proc.wait(timeout=15) == 0
        server.start()
        assert call("GET", server.diary_url + "/inflight").body == b"helloworld"
    finally:
        server.close()


def test_ctrl_c_stops_cleanly(tmp_path):
    server = RainerServer(["--database", f"sqlite:///{tmp_path / 'int.db'}"])
    server.start()
    try:
        assert post_commit(server.diary_url, "k", 1, b"x", author="a").status == 200
        server._proc.send_signal(signal.SIGINT)
        assert server._proc.wait(timeout=15) == 0
        assert "Traceback" not in server.log_text()
    finally:
        server.close()


def test_memory_database_serves_until_the_process_ends():
    with RainerServer(["--database", "memory"]) as server:
        assert post_commit(server.diary_url, "k", 1, b"x", author="a").status == 200
        assert call("GET", server.diary_url + "/k").body == b"x"
        server.stop()
        server.start()
        assert call("GET", server.diary_url + "/k").status == 404
