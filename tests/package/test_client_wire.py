"""What the clients put on the wire, seen by a recording HTTP server."""

from __future__ import annotations

import http.server
import json
import threading
from typing import ClassVar

import pytest
from client_fixtures import collection_client_module

from rainer.client import USER_AGENT, RainerClient
from rainer.errors import RainerError

META = {"key": "a b", "version": 1, "author": "Zoë", "comment": "", "mtime": "x", "empty": False}


class _Recorder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[tuple[str, str, dict[str, bytes], bytes]]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length) if length else b""
        # Raw header bytes, as http.server decodes them as Latin-1.
        headers = {name.lower(): value.encode("latin-1") for name, value in self.headers.items()}
        self.seen.append((self.command, self.path, headers, body))
        path = self.path.split("?")[0]
        found = {} if path in ("/", "/diary") else [META] if "history" in path else META
        answer = json.dumps(found).encode() + b"\r\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def recorder():
    _Recorder.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Recorder.seen
    server.shutdown()
    server.server_close()


def test_requests_follow_the_wire_contract(recorder):
    base, seen = recorder
    client = RainerClient(base + "/diary")
    client.get_metadata("a b", 3)
    client.list(all=True)
    client.list_full()
    client.history("a b", limit=2, before=5)
    client.post_commit({"key": "a b", "version": 2, "author": "Zoë", "comment": "ünï"}, "x")
    client.post_commit({"key": "a b", "version": 3, "author": "z", "empty": True}, None)
    paths = [(method, path) for method, path, _, _ in seen]
    assert paths == [
        ("GET", "/diary/a%20b/3/meta"),
        ("GET", "/diary?all=yes"),
        ("GET", "/diary?payload_base64=yes"),
        ("GET", "/diary/a%20b/history?payload_base64=yes&limit=2&before=5"),
        ("POST", "/diary/a%20b/2"),
        ("POST", "/diary/a%20b/3"),
    ]
    _, _, headers, body = seen[4]
    assert headers["x-rainer-author"] == "Zoë".encode()  # UTF-8, not Latin-1
    assert headers["x-rainer-comment"] == "ünï".encode()
    assert headers["x-rainer-empty"] == b"no"
    assert body == b"x"
    _, _, headers, body = seen[5]
    assert (headers["x-rainer-empty"], headers["x-rainer-comment"], body) == (b"yes", b"", b"")
    assert headers["content-length"] == b"0"
    assert headers["user-agent"] == USER_AGENT.encode()


def test_the_collections_client_sends_utf8_headers_too(recorder):
    base, seen = recorder
    client = collection_client_module().RainerClient(base + "/diary", author="Zoë")
    client.post("a b", 2, b"x", comment="ünï ☃")
    client.post("a b", 3, empty=True)
    (_, path, headers, body), (_, _, tombstone, _) = seen
    assert path == "/diary/a%20b/2" and body == b"x"
    assert headers["x-rainer-author"] == "Zoë".encode()  # not Latin-1
    assert headers["x-rainer-comment"] == "ünï ☃".encode()
    assert (tombstone["x-rainer-empty"], tombstone["content-length"]) == (b"yes", b"0")


def test_a_diary_at_the_root_and_credentials_in_the_url(recorder):
    base, seen = recorder
    client = RainerClient(base.replace("://", "://ann:secret@"))
    assert client.list() == {}
    method, path, headers, _ = seen[0]
    assert (method, path) == ("GET", "/")
    assert headers["authorization"] == b"Basic YW5uOnNlY3JldA=="
    assert client.commit_uri("k", 1) == base + "/k/1"


def test_an_answer_that_is_not_rainers_is_a_clear_error(recorder):
    base, _ = recorder
    # /other/... answers metadata where a list of keys belongs.
    with pytest.raises(RainerError, match="not a Rainer commit"):
        RainerClient(base + "/other").list_full()
