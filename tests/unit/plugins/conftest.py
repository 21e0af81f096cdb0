# Copyright: Rainer for Python and Ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Fixtures for the rainer.rainer unit tests.

Everything a real server can do is tested against a real ``rainer serve``:
scripts/collection-test.sh starts one and writes its URL to
tests/integration/integration_config.yml (``rainer_url``), which these
fixtures read (or the RAINER_TEST_URL environment variable when pytest runs
directly); a second one with ``--auth`` serves the credential tests
(``rainer_auth_url`` and ``rainer_auth_tokens``). Only what a real server cannot produce is simulated: a listener
that never answers (timeout), a closed port (unreachable), a plain-text
listener spoken to over HTTPS (TLS failure) and a scripted HTTP stub for
5xx answers, broken bodies, a redirect, and a 429 (which a real server gives
only after ten failed logins, and then to every test from that address for a
minute).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest import mock

import pytest
import yaml

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.rainer.rainer.plugins.module_utils._client import RainerClient

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core < 2.19
    @contextlib.contextmanager
    def patch_module_args(args):
        with mock.patch.object(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args}))):
            yield

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = os.path.join(HERE, "..", "..", "integration", "integration_config.yml")


def _configured(name, variable):
    if os.environ.get(variable):
        return os.environ[variable]
    if os.path.exists(CONFIG):
        with open(CONFIG) as handle:
            return (yaml.safe_load(handle) or {}).get(name)
    return None


def _configured_url():
    return _configured("rainer_url", "RAINER_TEST_URL")


@pytest.fixture(scope="session")
def rainer_url():
    url = _configured_url()
    if not url:
        pytest.skip("no Rainer server: run scripts/collection-test.sh or set RAINER_TEST_URL")
    return url.rstrip("/")


class Secured:
    """A ``rainer serve --auth`` on loopback (plain HTTP, which --auth allows there; the
    integration target rainer_security adds TLS and client certificates).

    Principals: ``ci-bot`` (reads everything, writes ``app.*``), ``viewer`` (reads ``app.*``),
    ``root`` (admin); anonymous may do nothing. ``tokens`` maps each name to its token.
    """

    def __init__(self, url, tokens):
        self.url = url.rstrip("/")
        self.origin = self.url.rpartition("/")[0]
        self.tokens = dict(tokens)


def _die_with_parent():  # pragma: no cover - runs in the child before exec
    """Have Linux stop the server when the process that started it ends, even without teardown
    (pytest-forked ends each test's process without running session finalizers)."""
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # pylint: disable=broad-except
        pass


class SecuredServer(Secured):
    """Starts a server like scripts/collection-test.sh's (see :class:`Secured`) with ``command``."""

    def __init__(self, command):
        self.folder = tempfile.mkdtemp(prefix="rainer-unit-auth-")
        tokens = {name: secrets.token_urlsafe(24) for name in ("ci-bot", "viewer", "root")}
        line = {name: "sha256:" + hashlib.sha256(token.encode()).hexdigest() for name, token in tokens.items()}
        with open(os.path.join(self.folder, "auth.yaml"), "w") as handle:
            handle.write(
                "roles:\n"
                "  deployer: {read: ['*'], write: ['app.*']}\n"
                "  reader: {read: ['app.*']}\n"
                "principals:\n"
                "  ci-bot: {roles: [deployer], tokens: ['%s']}\n"
                "  viewer: {roles: [reader], tokens: ['%s']}\n"
                "  root: {roles: [admin], tokens: ['%s']}\n"
                "anonymous: {roles: []}\n" % (line["ci-bot"], line["viewer"], line["root"]))
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        super().__init__("http://127.0.0.1:%d/diary" % port, tokens)
        self.log = open(os.path.join(self.folder, "server.log"), "wb")
        self.process = subprocess.Popen(
            shlex.split(command) + ["--host", "127.0.0.1", "--port", str(port), "--database",
                                    "sqlite:///%s/rainer.db" % self.folder,
                                    "--auth", os.path.join(self.folder, "auth.yaml")],
            stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(self.origin + "/healthz", timeout=1).read()
                break
            except Exception:  # pylint: disable=broad-except
                if self.process.poll() is not None or time.time() > deadline:
                    self.close()
                    raise RuntimeError("rainer serve --auth did not start; see its log in %s" % self.folder)
                time.sleep(0.2)

    def close(self):
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.log.close()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def secured():
    """A server with --auth: the one scripts/collection-test.sh started (rainer_auth_url and
    rainer_auth_tokens in integration_config.yml, or RAINER_TEST_AUTH_URL and the JSON in
    RAINER_TEST_AUTH_TOKENS), else one started here with rainer_serve (or RAINER_TEST_SERVE)."""
    url = _configured("rainer_auth_url", "RAINER_TEST_AUTH_URL")
    if url:
        tokens = _configured("rainer_auth_tokens", "RAINER_TEST_AUTH_TOKENS")
        yield Secured(url, json.loads(tokens) if isinstance(tokens, str) else tokens)
        return
    command = _configured("rainer_serve", "RAINER_TEST_SERVE")
    if not command:
        pytest.skip("no server with --auth: run scripts/collection-test.sh, or set RAINER_TEST_SERVE")
    server = SecuredServer(command)
    yield server
    server.close()


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


@pytest.fixture
def run_module(capsys):
    """Run a module's main() with ``args`` as AnsiballZ would hand them over: (exit code, result)."""

    def run(module, args):
        with patch_module_args(args):
            with pytest.raises(SystemExit) as info:
                module.main()
        return info.value.code, json.loads(capsys.readouterr().out)

    return run
