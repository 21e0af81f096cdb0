"""ZooKeeper fixtures for the keeper, mirror, auto-publisher and server tests.

Loaded with ``pytest_plugins = ["zk_fixtures"]`` by the modules that need them. A missing
ZooKeeper (no Java, no Debian ``zookeeper`` package) skips those tests, and fails them under
``CI=true`` (``harness.require``); so does a ZooKeeper that cannot run TLS (no Netty jars) for
the tests of ``zookeeper_tls``.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
from zk_util import new_client

import harness
from harness.zookeeper import ZooKeeperServer, ZooKeeperTls

if TYPE_CHECKING:  # cryptography is imported only by the tests that make certificates
    from harness.certs import Issued, TestCA

_paths = itertools.count()


@pytest.fixture(scope="session")
def zookeeper() -> Iterator[ZooKeeperServer]:
    """One standalone ZooKeeper for the session; tests keep apart by using their own paths."""
    harness.require(ZooKeeperServer)
    with ZooKeeperServer() as server:
        yield server


class _TlsZooKeeper:
    """What ``harness.require`` asks about a ZooKeeper with a secure client port."""

    name = "zookeeper with TLS"

    @staticmethod
    def available() -> str | None:
        return ZooKeeperServer.available_tls()


@dataclass(frozen=True)
class TlsZooKeeper:
    """A ZooKeeper whose secure port (``server.secure_hosts``) wants a client certificate from
    ``ca``; ``client`` is one. Its plain port (``server.hosts``) stays open for inspection."""

    server: ZooKeeperServer
    ca: TestCA
    client: Issued


@pytest.fixture(scope="session")
def zookeeper_tls(tmp_path_factory) -> Iterator[TlsZooKeeper]:
    """One ZooKeeper for the session with TLS on its secure client port (client certificates
    required, ``ssl.clientAuth=need``)."""
    harness.require(_TlsZooKeeper)
    from harness.certs import TestCA

    ca = TestCA(tmp_path_factory.mktemp("zk-ca"))
    issued = ca.server("zookeeper")
    tls = ZooKeeperTls(issued.cert, issued.key, ca.cert, client_auth="need")
    with ZooKeeperServer(tls=tls) as server:
        yield TlsZooKeeper(server, ca, ca.client("rainer-server"))


@pytest.fixture
def zk_path() -> str:
    """A base path no other test uses."""
    return f"/test-{next(_paths)}-{time.monotonic_ns()}"


@pytest.fixture
def zk_clients(zookeeper) -> Iterator[Callable[..., object]]:
    """A factory of started kazoo clients on the session's ZooKeeper, all closed after."""
    made = []

    def make(**kwargs):
        client = new_client(zookeeper.hosts, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        try:
            client.stop()
            client.close()
        except Exception:  # already stopped by the test
            pass


@pytest.fixture
def zk_client(zk_clients):
    """One started kazoo client."""
    return zk_clients()
