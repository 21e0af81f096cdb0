"""Fixtures of the client and command-line tests: a real server on loopback (``server``), a
client of it (``client``) and a fresh key (``key``).

Test modules import the functions; fixtures defined in a module take precedence over any
conftest fixture of the same name, so these stay what these tests expect.
"""

from __future__ import annotations

import uuid

import pytest

from harness.rainer import RainerServer
from rainer.client import RainerClient


@pytest.fixture(scope="module", name="server")
def server_fixture():
    """One server per test module; tests keep apart by using fresh keys."""
    with RainerServer() as running:
        yield running


@pytest.fixture(name="client")
def client_fixture(server):
    with RainerClient(server.diary_url, timeout=10) as made:
        yield made


@pytest.fixture(name="key")
def key_fixture(request) -> str:
    """A key no other test uses."""
    return f"{request.node.name[:40]}-{uuid.uuid4().hex[:8]}".replace("[", "-").replace("]", "")
