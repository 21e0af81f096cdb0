"""A hostile client against a real `rainer serve`: every finding of the hardening review, each
answered with a clear 4xx (or a bounded wait) that changes nothing.

Findings are numbered as in the issue that reported them. Tests that need a server of their own
(other options, a restart) start one; the rest share one on SQLite.
"""

from __future__ import annotations

import socket
import sqlite3
import threading
import time

import pytest
from http_util import call, post_commit

from harness.rainer import RainerServer
from rainer import defaults as limits
from rainer.client import RainerClient
from rainer.errors import RainerHeaderTooLargeError


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    database = tmp_path_factory.mktemp("hardening") / "rainer.db"
    with RainerServer(["--database", f"sqlite:///{database}"]) as running:
        yield running


@pytest.fixture
def diary(server):
    return server.diary_url


@pytest.fixture
def key(request):
    return "h-" + "".join(ch if ch.isalnum() else "-" for ch in request.node.name)[:100]


def raw(server: RainerServer, request: bytes, timeout: float = 15.0) -> bytes:
    """Send ``request`` as it is on a new connection; the whole answer until the server closes
    or a response is complete."""
    with socket.create_connection((server.host, server.port), timeout=timeout) as conn:
        conn.sendall(request)
        return read_answer(conn)


def read_answer(conn: socket.socket) -> bytes:
    data = b""
    while True:
        try:
            chunk = conn.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:") and len(body) >= int(line[15:]):
                return data


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def body_of(answer: bytes) -> bytes:
    return answer.partition(b"\r\n\r\n")[2]


# -- 1. mtimes that do not read back; unreadable rows ---------------------------------------


def test_an_early_year_reads_back_and_survives_a_restart(tmp_path):
    database = f"sqlite:///{tmp_path / 'early.db'}"
    server = RainerServer(["--database", database])
    with server:
        reply = post_commit(
            server.diary_url, "early", 1, b"x", author="a", modified_time="0999-01-01T00:00:00Z"
        )
        assert reply.status == 200
        assert reply.json()["mtime"] == "0999-01-01T00:00:00.000Z"
        assert call("GET", f"{server.diary_url}/early/history").status == 200
    with RainerServer(["--database", database]) as again:  # the journal still opens
        got = call("GET", f"{again.diary_url}/early")
        assert got.header("x-rainer-modified-time") == "0999-01-01T00:00:00.000Z"


@pytest.mark.parametrize(
    "mtime",
    [
        "2014-02-11 14:01:28Z",
        "20140211T140128Z",
        "2014-02-11T14:01:28+05:30:15",
        "2014-02-11T14:01:28+24:00",
        "٢٠١٤-02-11T14:01:28Z".encode(),
        "2014-02-11",
    ],
)
def test_mtimes_that_would_not_read_back_are_refused(diary, key, mtime):
    reply = post_commit(diary, key, 1, b"x", author="a", modified_time=mtime)
    assert reply.status == 400, reply.text
    assert reply.text.startswith("Malformed header: X-Rainer-Modified-Time")
    assert call("GET", f"{diary}/{key}").status == 404


def test_an_unreadable_row_is_one_500_and_the_rest_is_served(tmp_path):
    """A row an older server wrote that does not parse: logged once with key and version, 500
    for that commit alone; the server starts, lists and commits around it."""
    path = tmp_path / "poisoned.db"
    with RainerServer(["--database", f"sqlite:///{path}"]) as server:
        post_commit(server.diary_url, "bad", 1, b"one", author="a")
        post_commit(server.diary_url, "bad", 2, b"two", author="a")
        post_commit(server.diary_url, "good", 1, b"fine", author="a")
    with sqlite3.connect(path) as connection:
        header = (
            b'{"key":"bad","version":2,"author":"a","comment":"",'
            b'"mtime":"999-01-01T00:00:00.000Z","empty":false}'
        )
        connection.execute(
            "UPDATE rainer SET payload = ? WHERE name = 'bad' AND version = 2",
            (b"%d\n%s\ntwo\n" % (len(header), header),),
        )
    with RainerServer(["--database", f"sqlite:///{path}"]) as server:
        diary = server.diary_url
        for url in (f"{diary}/bad", f"{diary}/bad/2", f"{diary}/bad/meta"):
            got = call("GET", url)
            assert got.status == 500, url
            assert got.text == "Unreadable commit: key 'bad' version 2 (logged on the server)"
        assert call("GET", f"{diary}/bad/1").body == b"one"
        assert list(call("GET", diary).json()) == ["good"]
        assert [m["version"] for m in call("GET", f"{diary}/bad/history").json()] == [1]
        # The next commit is a readable head again.
        assert post_commit(diary, "bad", 3, b"three", author="a").status == 200
        assert call("GET", f"{diary}/bad").body == b"three"
        assert sorted(call("GET", diary).json()) == ["bad", "good"]
        assert server.log_text().count("key 'bad' version 2") == 1
        assert "Traceback" not in server.log_text()


# -- 2. numbers are ASCII digits ------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "limit=%C2%B2",
        "limit=%D9%A3",
        "before=%EF%BC%93",
        "limit=1e3",
        "limit=+5",
        "limit=0",
        "limit=1001",
        "limit=5&limit=6",
    ],
)
def test_history_numbers_are_ascii_digits_in_range(diary, key, query):
    post_commit(diary, key, 1, b"x", author="a")
    reply = call("GET", f"{diary}/{key}/history?{query}")
    assert reply.status == 400, (query, reply.text)
    assert "parameter" in reply.text


@pytest.mark.parametrize("version", ["%D9%A3", "%C2%B2", "1_0", "0x1", "99999999999"])
def test_versions_are_ascii_digits(diary, key, version):
    assert call("GET", f"{diary}/{key}/{version}").status == 400
    assert post_commit(diary, key, version, b"x", author="a").status == 400


# -- 3, 4. validation within bounds, off the loop -------------------------------------------


@pytest.fixture(scope="module")
def yaml_server(tmp_path_factory):
    database = tmp_path_factory.mktemp("validate") / "rainer.db"
    with RainerServer(["--database", f"sqlite:///{database}", "--validate", "yaml"]) as running:
        yield running


@pytest.mark.parametrize("size", [50_000, 2_000, 300])
def test_deep_nesting_is_a_400_without_a_traceback(yaml_server, size):
    payload = b"[" * size + b"]" * size
    reply = post_commit(yaml_server.diary_url, f"deep-{size}", 1, payload, author="a")
    assert reply.status == 400
    assert reply.text.startswith("Malformed input: ")
    assert "Traceback" not in yaml_server.log_text()
    assert call("GET", f"{yaml_server.diary_url}/deep-{size}").status == 404


def test_deep_json_is_a_400_under_validate_json(tmp_path):
    with RainerServer(["--database", f"sqlite:///{tmp_path / 'j.db'}", "--validate", "json"]) as s:
        for size in (50_000, 300):
            reply = post_commit(s.diary_url, "deep", 1, b"[" * size + b"]" * size, author="a")
            assert reply.status == 400 and "nested deeper than" in reply.text
        assert post_commit(s.diary_url, "deep", 1, b"[[[1]]]", author="a").status == 200
        assert "Traceback" not in s.log_text()


def test_yaml_aliases_are_bounded(yaml_server):
    bomb = b"a: &a [x, x, x, x, x, x, x, x, x]\n" + b"".join(
        b"k%d: &k%d [*a, *a, *a, *a, *a, *a, *a, *a]\n" % (i, i) for i in range(40)
    )
    reply = post_commit(yaml_server.diary_url, "bomb", 1, bomb, author="a")
    assert (reply.status, reply.text) == (400, "Malformed input: more than 100 YAML aliases")


def test_a_large_yaml_payload_does_not_stall_other_requests(yaml_server):
    """2.3 MB of YAML takes seconds to parse: it is parsed in a worker process, and the
    server keeps answering while it is."""
    payload = b"".join(b"key%d: {a: [1, 2, 3], b: 'text %d'}\n" % (i, i) for i in range(55_000))
    assert len(payload) > 2_000_000
    done: list[int] = []
    thread = threading.Thread(
        target=lambda: done.append(
            post_commit(yaml_server.diary_url, "big-yaml", 1, payload, author="a").status
        )
    )
    thread.start()
    try:
        answered_during = 0
        while thread.is_alive():
            if call("GET", f"{yaml_server.url}/healthz").status == 200 and thread.is_alive():
                answered_during += 1
            time.sleep(0.05)
    finally:
        thread.join()
    assert done == [200]
    assert answered_during >= 3, "the health check did not answer while the YAML was parsed"


def test_the_worker_process_is_bounded_in_time_and_replaced():
    from rainer.server import validation

    validator = validation.Validator("yaml")
    slow = b"".join(b"key%d: {a: [1, 2, 3]}\n" % i for i in range(200_000))
    original = validation.TIMEOUT
    validation.TIMEOUT = 0.2
    try:
        assert validator.check(slow) == "not parsed within 0.2 s"
    finally:
        validation.TIMEOUT = original
        # A new worker takes the next payloads.
        assert validator.check(b"- [1\n" * 20_000) is not None
        assert validator.check(b"- 1\n" * 20_000) is None
        validator.close()


# -- 5. header bounds -----------------------------------------------------------------------


def post_raw(server, key: str, headers: list[bytes], body: bytes = b"x") -> bytes:
    lines = [
        f"POST /diary/{key}/1 HTTP/1.1".encode(),
        b"Host: 127.0.0.1",
        *headers,
        b"Content-Length: %d" % len(body),
    ]
    return raw(server, b"\r\n".join(lines) + b"\r\n\r\n" + body)


def test_too_many_headers_are_431(server, key):
    headers = [b"X-Filler-%d: x" % i for i in range(20_000)] + [b"X-Rainer-Author: a"]
    answer = post_raw(server, key, headers)
    assert status_of(answer) == 431
    assert body_of(answer) == b"Too many request headers: at most %d" % limits.MAX_HEADERS
    assert call("GET", f"{server.diary_url}/{key}").status == 404


@pytest.mark.parametrize(
    "header",
    [
        b"X-" + b"n" * 1_000_000 + b": x",
        b"X-Rainer-Author: " + b"a" * 8 * 1024 * 1024,
        b"X-Rainer-Comment: " + b"c" * 8 * 1024 * 1024,
    ],
)
def test_a_huge_header_is_431_at_the_http_layer(server, key, header):
    answer = post_raw(server, key, [b"X-Rainer-Author: a", header])
    assert status_of(answer) == 431
    assert body_of(answer).startswith(b"Request head too large")
    assert call("GET", f"{server.diary_url}/{key}").status == 404


def test_author_and_comment_are_bounded(diary, key):
    reply = post_commit(diary, key, 1, b"x", author="a" * 1025)
    assert (reply.status, reply.text) == (
        431,
        "Header too large: X-Rainer-Author is longer than 1024 bytes",
    )
    reply = post_commit(diary, key, 1, b"x", author="a", comment="c" * (16 * 1024 + 1))
    assert reply.status == 431 and "X-Rainer-Comment" in reply.text
    assert call("GET", f"{diary}/{key}").status == 404
    # At the bounds, the commit reads back through our own client.
    # Bounds count bytes of UTF-8; at the bounds, the commit reads back through our own client.
    longest = "é" * 512 + "c" * (16 * 1024 - 1024)
    with RainerClient(diary) as client:
        with pytest.raises(RainerHeaderTooLargeError) as refused:
            client.post_commit({"key": key, "version": 1, "author": "ü" * 513}, b"x")
        assert refused.value.status == 431
        client.post_commit({"key": key, "version": 1, "author": "ü" * 512, "comment": longest}, "x")
        commit = client.get_commit(key)
    assert (commit.author, commit.comment) == ("ü" * 512, longest)


# -- 6. memory and loop time ----------------------------------------------------------------


@pytest.fixture(scope="module")
def small_cache_server(tmp_path_factory):
    database = tmp_path_factory.mktemp("budget") / "rainer.db"
    args = ["--database", f"sqlite:///{database}", "--cache-bytes", str(4 * 1024 * 1024)]
    with RainerServer(args) as running:
        yield running


def test_payloads_beyond_the_budget_are_read_back_exactly(small_cache_server):
    diary = small_cache_server.diary_url
    payloads = {f"big{i}": bytes([i]) * (2 * 1024 * 1024 + i) for i in range(6)}
    for key, payload in payloads.items():
        assert post_commit(diary, key, 1, payload, author="a").status == 200
    for _ in range(2):  # twice: the second round meets whatever the first left in memory
        for key, payload in payloads.items():
            assert call("GET", f"{diary}/{key}").body == payload
            assert call("GET", f"{diary}/{key}/1").body == payload
    listed = call("GET", f"{diary}?payload_base64=yes")
    assert listed.header("transfer-encoding") == "chunked"  # larger than the cache may hold
    import base64

    found = listed.json()
    assert {k: base64.b64decode(m["payload_base64"]) for k, m in found.items()} == payloads


def test_history_is_paged_by_default_with_a_link_to_the_next_page(diary, key):
    for version in range(1, 131):
        post_commit(diary, key, version, b"v%d" % version, author="a")
    first = call("GET", f"{diary}/{key}/history")
    assert [m["version"] for m in first.json()] == list(range(130, 30, -1))
    link = first.header("link")
    assert link == f'</diary/{key}/history?before=31&limit=100>; rel="next"'
    second = call("GET", f"{diary.removesuffix('/diary')}{link[1 : link.index('>')]}")
    assert [m["version"] for m in second.json()] == list(range(30, 0, -1))
    assert second.header("link") is None
    page = call("GET", f"{diary}/{key}/history?limit=10&payload_utf8=yes")
    assert page.header("link").endswith('before=121&limit=10&payload_utf8=yes>; rel="next"')
    with RainerClient(diary) as client:  # the client pages through every version
        assert [c.version for c in client.history(key)] == list(range(130, 0, -1))


def test_a_slow_reader_of_a_large_list_does_not_hold_the_server(small_cache_server):
    diary = small_cache_server.diary_url
    with socket.create_connection((small_cache_server.host, small_cache_server.port)) as slow:
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.sendall(b"GET /diary?payload_utf8=yes HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        slow.recv(100)  # the answer has begun; the reader now stalls
        for _ in range(20):
            assert call("GET", f"{small_cache_server.url}/healthz").status == 200
            assert call("GET", f"{diary}/big0/meta").status == 200


# -- 7. connections -------------------------------------------------------------------------


def test_half_requests_are_closed_and_connections_are_capped(tmp_path):
    args = ["--database", f"sqlite:///{tmp_path / 'c.db'}", "--max-connections", "20"]
    with RainerServer(args) as server:
        stalled = []
        for n in range(50):
            conn = socket.create_connection((server.host, server.port), timeout=30)
            if n % 2:
                conn.sendall(b"GET /diary HTT")  # half a request line
            stalled.append(conn)
        # Over the cap, a complete request is answered 503 at once.
        answer = raw(server, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert status_of(answer) == 503
        began = time.monotonic()
        answers = [read_answer(conn) for conn in stalled]
        waited = time.monotonic() - began
        for conn in stalled:
            conn.close()
        # Half-sent heads get 408; connections that sent nothing are just closed.
        assert [status_of(a) for a in answers[1::2]] == [408] * 25
        assert answers[0::2] == [b""] * 25
        assert waited < limits.HEAD_TIMEOUT + 10, waited
        assert call("GET", f"{server.url}/healthz").status == 200


def test_the_head_timeout_counts_from_the_last_answer_and_spares_requests_in_hand(server, key):
    """Each head has HEAD_TIMEOUT from the end of the previous answer on its connection; a
    request being answered (here, one waiting longer than that for a change) is not cut off."""
    assert post_commit(server.diary_url, key, 1, b"x", author="a").status == 200
    head = f"GET /diary/{key} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    wait = limits.HEAD_TIMEOUT + 2
    watch = f"GET /diary/{key}/meta?index=1&wait={wait:g}s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    timeout = limits.HEAD_TIMEOUT + 10
    with (
        socket.create_connection((server.host, server.port), timeout=timeout) as half,
        socket.create_connection((server.host, server.port), timeout=timeout) as waiting,
    ):
        for conn in (half, waiting):
            conn.sendall(head)
            assert status_of(read_answer(conn)) == 200
        began = time.monotonic()
        half.sendall(b"GET /diary HT")  # after an answer: half of the next head
        waiting.sendall(watch.encode())  # a request in hand for longer than HEAD_TIMEOUT
        assert status_of(read_answer(half)) == 408
        timed_out = time.monotonic() - began
        answer = read_answer(waiting)
        answered = time.monotonic() - began
    assert limits.HEAD_TIMEOUT - 1 < timed_out < limits.HEAD_TIMEOUT + 3, timed_out
    assert status_of(answer) == 200 and b'"version":1' in body_of(answer), answer
    assert answered >= wait - 1, answered


# -- 8, 9, 10. keys, escapes and authors ----------------------------------------------------


@pytest.mark.parametrize("path", ["a%zz", "a%2", "%", "a%C3", "%FF%FE"])
def test_malformed_percent_escapes_are_400(diary, path):
    reply = post_commit(diary, path, 1, b"x", author="a")
    assert reply.status == 400 and reply.text.startswith("Invalid path"), reply.text
    assert call("GET", f"{diary}/{path}").status == 400
    assert call("GET", f"{diary}?all=%zz").status == 400
    assert not [k for k in call("GET", f"{diary}?all=yes").json() if "%" in k]


def test_authors_are_present_single_and_utf8(server, key):
    assert post_commit(server.diary_url, key, 1, b"x", author="").status == 400
    assert post_commit(server.diary_url, key, 1, b"x", author="   ").status == 400
    answer = post_raw(server, key, [b"X-Rainer-Author: alice", b"X-Rainer-Author: mallory"])
    assert status_of(answer) == 400
    assert body_of(answer) == b"Repeated header: X-Rainer-Author may be sent once"
    answer = post_raw(server, key, [b"X-Rainer-Author: Andr\xe9"])  # Latin-1, not UTF-8
    assert (status_of(answer), body_of(answer)) == (
        400,
        b"Malformed header: X-Rainer-Author is not UTF-8",
    )
    answer = post_raw(server, key, [b"X-Rainer-Author: a\x1b[31mred"])  # the parser refuses
    assert status_of(answer) == 400
    answer = post_raw(server, key, ["X-Rainer-Author: a\x85b".encode()])  # a C1 control
    assert status_of(answer) == 400 and b"control character U+0085" in body_of(answer)
    assert call("GET", f"{server.diary_url}/{key}").status == 404
    answer = post_raw(server, key, ["X-Rainer-Author: André".encode()])
    assert status_of(answer) == 200
    assert call("GET", f"{server.diary_url}/{key}/meta").json()["author"] == "André"


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("evil\u202etxt.exe", "format character U+202E"),
        ("zero\u200bwidth", "U+200B"),
        ("line\u2028sep", "line separator U+2028"),
        ("bom\ufeff", "U+FEFF"),
    ],
)
def test_keys_with_invisible_characters_are_refused(diary, key, reason):
    from urllib.parse import quote

    reply = post_commit(diary, quote(key), 1, b"x", author="a")
    assert reply.status == 400 and reason in reply.text, reply.text
    assert key not in call("GET", f"{diary}?all=yes").json()


# -- 11. what a 503 says --------------------------------------------------------------------


@pytest.mark.postgresql
def test_a_database_outage_is_a_short_503_and_the_details_go_to_the_log(postgres_server):
    url = postgres_server.create_database("outage")
    with RainerServer(["--database", url]) as server:
        post_commit(server.diary_url, "k", 1, b"x", author="a")
        postgres_server.stop()
        try:
            got = call("GET", f"{server.diary_url}/k")
            assert (got.status, got.text) == (503, "Database unavailable")
            health = call("GET", f"{server.url}/healthz")
            assert health.status == 503
            assert health.json() == {"status": "unavailable", "database": "unavailable"}
            assert "127.0.0.1" in server.log_text() or "connect" in server.log_text()
        finally:
            postgres_server.start()
        assert call("GET", f"{server.diary_url}/k").body == b"x"


# -- 12. missing optional packages ----------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "args", "extra"),
    [
        ("kazoo", ["--zookeeper", "127.0.0.1:1"], "zookeeper"),
        ("psycopg", ["--database", "postgresql://u:p@127.0.0.1:1/db"], "postgresql"),
        ("pymysql", ["--database", "mysql://u:p@127.0.0.1:1/db"], "mysql"),
    ],
)
def test_a_missing_optional_package_is_one_line_naming_the_extra(tmp_path, module, args, extra):
    # A package that fails to import as if it were not installed: the error path a machine
    # with every extra installed cannot otherwise show.
    shadow = tmp_path / "shadow" / module
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        f"raise ModuleNotFoundError(\"No module named '{module}'\", name={module!r})\n"
    )
    import os
    import subprocess
    import sys

    from harness.rainer import SRC_DIR

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path / "shadow"), str(SRC_DIR)]))
    result = subprocess.run(
        [sys.executable, "-m", "rainer", "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"pip install 'rainer-diary[{extra}]'" in lines[0]


# -- 14. Host -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    ["evil.example", "evil.example:8080", "127.0.0.1.evil.example", "localhost.evil.example"],
)
def test_a_loopback_server_refuses_other_host_names(server, host):
    answer = raw(server, f"GET /diary HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    assert status_of(answer) == 421
    assert body_of(answer) == b"Host not allowed: start the server with --allowed-hosts"


@pytest.mark.parametrize(
    "host", ["localhost", "LOCALHOST:99", "127.0.0.1", "[::1]:8080", "app.localhost", "127.0.0.2"]
)
def test_a_loopback_server_answers_loopback_names(server, host):
    answer = raw(server, f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    assert status_of(answer) == 200


def test_allowed_hosts_widens_the_names(tmp_path):
    args = [
        "--database",
        f"sqlite:///{tmp_path / 'h.db'}",
        "--allowed-hosts",
        "config.example,*.corp",
    ]
    with RainerServer(args) as server:
        for host, status in [
            ("config.example", 200),
            ("a.b.corp", 200),
            ("corp", 421),
            ("other.example", 421),
            ("localhost", 200),
        ]:
            answer = raw(server, f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            assert status_of(answer) == status, host


def test_max_connections_counts_exactly(tmp_path):
    """``--max-connections N`` serves N connections at once; the next one is told to wait."""
    args = ["--database", f"sqlite:///{tmp_path / 'one.db'}", "--max-connections", "1"]
    with RainerServer(args) as server:  # ready: one connection at a time is served
        assert call("GET", f"{server.url}/healthz").status == 200
        with socket.create_connection((server.host, server.port), timeout=10):
            answer = raw(server, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert status_of(answer) == 503
        assert body_of(answer) == b"Too many connections: at most 1 are served at once; try again"
        assert b"retry-after: 1" in answer.lower()


def _peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_abandoned_large_lists_cost_little_memory(tmp_path):
    """Twenty clients ask for a list of 20 MB of payloads (about 47 MB as JSON) and hang up after
    its first bytes: streamed in slices and stopped when the client goes, it never piles up."""
    with RainerServer(["--database", f"sqlite:///{tmp_path / 'big.db'}"]) as server:
        for i in range(10):
            payload = bytes([65 + i]) * (2 * 1024 * 1024)
            assert post_commit(server.diary_url, f"big{i}", 1, payload, author="a").status == 200
        before = _peak_rss_mib(server.pid)
        request = (
            b"GET /diary?payload_utf8=yes&payload_base64=yes HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        )
        clients = [socket.create_connection((server.host, server.port), 10) for _ in range(20)]
        for conn in clients:
            conn.sendall(request)
        for conn in clients:
            assert conn.recv(65536).startswith(b"HTTP/1.1 200")
            conn.close()
        # The server is still answering, and a whole list still reads back right.
        listed = call("GET", f"{server.diary_url}?payload_base64=yes").json()
        assert sorted(listed) == [f"big{i}" for i in range(10)]
        grown = _peak_rss_mib(server.pid) - before
    assert grown < 200, f"the server's peak memory grew by {grown:.0f} MiB"
