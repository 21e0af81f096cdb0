"""Launchers of real test services, each in a temporary folder on a free loopback port.

Every launcher has ``available()`` (None, or why it cannot run here), ``start()``, ``stop()``
(keeps data and port: ``start()`` brings the same server back), ``kill()`` (a crash),
``close()`` (stop and remove the folder) and works as a context manager. Processes left running
are stopped at interpreter exit. ``require(cls)`` skips a test when a service is missing, or
fails it under ``CI=true``.
"""

from harness._service import Service, ServiceError, ServiceUnavailable
from harness.etcd import EtcdServer
from harness.mariadb import MariaDBServer
from harness.nginx import NginxServer
from harness.ports import free_port, wait_for_port
from harness.postgres import PostgresServer
from harness.rainer import RainerServer
from harness.skipping import in_ci, require
from harness.zookeeper import ZooKeeperServer

__all__ = [
    "EtcdServer",
    "MariaDBServer",
    "NginxServer",
    "PostgresServer",
    "RainerServer",
    "Service",
    "ServiceError",
    "ServiceUnavailable",
    "ZooKeeperServer",
    "free_port",
    "in_ci",
    "require",
    "wait_for_port",
]
