"""Fixtures of the client and command-line tests (load with ``pytest_plugins``): a real
server on loopback, a client of it, and fresh keys."""

from __future__ import annotations

import uuid

import pytest

from harness.rainer import RainerServer
from rainer.client import RainerClient


@pytest.fixture(scope="session")
def server():
    """One server for the session; tests keep apart by using fresh keys."""
    with RainerServer() as running:
        yield running


@pytest.fixture
def client(server):
    with RainerClient(server.diary_url, timeout=10) as made:
        yield made


@pytest.fixture
def key(request) -> str:
    """A key no other test uses."""
    return f"{request.node.name[:40]}-{uuid.uuid4().hex[:8]}".replace("[", "-").replace("]", "")
