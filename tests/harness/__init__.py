"""Launchers of the real services the tests run against, each in a temporary folder on a free
loopback port. The benchmarks start theirs with the same launchers (``bench/`` puts ``tests/`` on
its path), and the anchors only the benchmarks need (nginx, etcd) live in ``bench/anchors``.

Every launcher has ``available()`` (None, or why it cannot run here), ``start()``, ``stop()``
(keeps data and port: ``start()`` brings the same server back), ``kill()`` (a crash),
``close()`` (stop and remove the folder) and works as a context manager. Processes left running
are stopped at interpreter exit. ``require(cls)`` skips a test when a service is missing, or
fails it under ``CI=true``.
"""

from harness._service import (
    Service,
    ServiceError,
    ServiceUnavailable,
    find_binary,
    http_request,
    left_nothing_behind,
)
from harness.mariadb import MariaDBServer
from harness.ports import free_port, wait_for_port
from harness.postgres import PostgresServer
from harness.rainer import RainerServer
from harness.skipping import in_ci, require
from harness.zookeeper import ZooKeeperServer

__all__ = [
    "MariaDBServer",
    "PostgresServer",
    "RainerServer",
    "Service",
    "ServiceError",
    "ServiceUnavailable",
    "ZooKeeperServer",
    "find_binary",
    "free_port",
    "http_request",
    "in_ci",
    "left_nothing_behind",
    "require",
    "wait_for_port",
]
