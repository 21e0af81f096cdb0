# -*- coding: utf-8 -*-
# Copyright: Rainer for Python and Ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Fixtures for the rainer.rainer unit tests.

Everything a real server can do is tested against a real ``rainer serve``:
scripts/collection-test.sh starts one and writes its URL to
tests/integration/integration_config.yml (``rainer_url``), which these
fixtures read (or the RAINER_TEST_URL environment variable when pytest runs
directly). Only what a real server cannot produce is simulated: a listener
that never answers (timeout), a closed port (unreachable), a plain-text
listener spoken to over HTTPS (TLS failure) and a scripted HTTP stub for
5xx answers and broken bodies.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from ansible_collections.rainer.rainer.plugins.module_utils.client import RainerClient

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = os.path.join(HERE, "..", "..", "integration", "integration_config.yml")


def _configured_url():
    if os.environ.get("RAINER_TEST_URL"):
        return os.environ["RAINER_TEST_URL"]
    if os.path.exists(CONFIG):
        with open(CONFIG) as handle:
            return (yaml.safe_load(handle) or {}).get("rainer_url")
    return None


@pytest.fixture(scope="session")
def rainer_url():
    url = _configured_url()
    if not url:
        pytest.skip("no Rainer server: run scripts/collection-test.sh or set RAINER_TEST_URL")
    return url.rstrip("/")


@pytest.fixture
def client(rainer_url):
    return RainerClient(rainer_url, author="unit-tests", retry_delay=0)


@pytest.fixture
def key():
    """A key no other test uses."""
    return "unit-%s" % uuid.uuid4().hex[:12]


@pytest.fixture
def closed_port_url():
    """A loopback URL where nothing listens."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return "http://127.0.0.1:%d/diary" % port


@pytest.fixture
def silent_listener():
    """(http_url, https_url) of a listener that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    yield "http://127.0.0.1:%d/diary" % port, "https://127.0.0.1:%d/diary" % port
    sock.close()


class StubServer:
    """A scripted HTTP server for answers a real Rainer never gives (5xx, broken bodies).

    ``script`` is a list of (status, headers, body) served in order; the last repeats.
    """

    def __init__(self, script):
        self.script = list(script)
        self.requests = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                stub.requests.append((self.command, self.path, dict(self.headers), body))
                index = min(len(stub.requests) - 1, len(stub.script) - 1)
                status, headers, payload = stub.script[index]
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = _answer
            do_POST = _answer

            def log_message(self, *args):  # keep pytest output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/diary" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub_server():
    servers = []

    def make(script):
        server = StubServer(script)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()
