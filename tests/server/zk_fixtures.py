"""ZooKeeper fixtures for the keeper, mirror, auto-publisher and server tests.

Loaded with ``pytest_plugins = ["zk_fixtures"]`` by the modules that need them. A missing
ZooKeeper (no Java, no Debian ``zookeeper`` package) skips those tests, and fails them under
``CI=true`` (``harness.require``).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator

import pytest
from zk_util import new_client

import harness
from harness.zookeeper import ZooKeeperServer

_paths = itertools.count()


@pytest.fixture(scope="session")
def zookeeper() -> Iterator[ZooKeeperServer]:
    """One standalone ZooKeeper for the session; tests keep apart by using their own paths."""
    harness.require(ZooKeeperServer)
    with ZooKeeperServer() as server:
        yield server


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
