"""Shared fixtures: real databases, started once per session, and a fresh database per test.

PostgreSQL and MariaDB come from Debian's packages through tests/harness. When one is not
installed its tests skip with the reason, except under CI=true, where they fail: CI must never
pass by skipping.
"""

from __future__ import annotations

import itertools

import pytest

import harness
from harness.mariadb import MariaDBServer
from harness.postgres import PostgresServer
from rainer.storage.sql import SqlStorage

BACKENDS = ["sqlite", "postgresql", "mariadb"]
_names = itertools.count()


@pytest.fixture(scope="session")
def postgres_server():
    harness.require(PostgresServer)
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="session")
def mariadb_server():
    harness.require(MariaDBServer)
    with MariaDBServer() as server:
        yield server


def fresh_database_url(backend: str, request, tmp_path) -> str:
    """An empty database of ``backend``, for one test."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'rainer.db'}"
    name = f"t{next(_names)}_{request.node.name[:20]}".lower()
    name = "".join(ch if ch.isalnum() else "_" for ch in name)
    if backend == "postgresql":
        return request.getfixturevalue("postgres_server").create_database(name)
    return request.getfixturevalue("mariadb_server").create_database(name)


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path) -> str:
    """A fresh empty database on each backend in turn."""
    return fresh_database_url(request.param, request, tmp_path)


@pytest.fixture
def sql_storage(database_url):
    storage = SqlStorage(database_url)
    storage.start()
    yield storage
    storage.stop()
