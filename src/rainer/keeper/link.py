"""What ``rainer serve --zookeeper`` runs: one kazoo client shared by the keeper, the mirror, the
publishing storage and the auto-publisher, started and stopped together with the server."""

from __future__ import annotations

import logging

from kazoo.client import KazooClient
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.retry import KazooRetry

from rainer.commit import Commit
from rainer.errors import StorageUnavailableError
from rainer.keeper.autopublisher import DEFAULT_PERIOD, AutoPublisher
from rainer.keeper.keeper import DEFAULT_MAX_NODE_BYTES, Keeper, check_publishable
from rainer.keeper.mirror import Mirror
from rainer.keeper.publishing import PublishingStorage
from rainer.storage.base import Storage

log = logging.getLogger(__name__)

DEFAULT_PATH = "/rainer"
DEFAULT_SESSION_TIMEOUT = 10.0


def make_client(hosts: str, session_timeout: float = DEFAULT_SESSION_TIMEOUT) -> KazooClient:
    """A kazoo client that keeps reconnecting for ever, at most a second apart.

    kazoo's default backs off to a minute between attempts, which would keep a server away from a
    restarted ZooKeeper (and its mirror stale) for up to that long.
    """
    return KazooClient(
        hosts=hosts,
        timeout=session_timeout,
        connection_retry=KazooRetry(max_tries=-1, delay=0.05, backoff=2, max_delay=1.0),
        command_retry=KazooRetry(max_tries=3, delay=0.05, backoff=2, max_delay=1.0),
    )


class ZooKeeperLink:
    """The server's ZooKeeper side. ``wrap`` the storage before the server starts it; ``start``
    after it (the auto-publisher reads the database); ``stop`` before it."""

    def __init__(
        self,
        hosts: str,
        path: str = DEFAULT_PATH,
        publish_period: float = DEFAULT_PERIOD,
        session_timeout: float = DEFAULT_SESSION_TIMEOUT,
        max_node_bytes: int = DEFAULT_MAX_NODE_BYTES,
        connect_timeout: float | None = None,
    ) -> None:
        """``connect_timeout`` (how long ``start`` waits for ZooKeeper) defaults to one and a
        half session timeouts, at least 5 s."""
        self.hosts = hosts
        self.publish_period = publish_period
        self.max_node_bytes = max_node_bytes
        self.connect_timeout = connect_timeout or max(5.0, 1.5 * session_timeout)
        self.client = make_client(hosts, session_timeout)
        self.keeper = Keeper(self.client, path)
        self.mirror = Mirror(self.client, path)
        self.publisher: AutoPublisher | None = None
        self._database: Storage | None = None
        self._started = False

    def wrap(self, storage: Storage) -> PublishingStorage:
        """``storage`` publishing every save; the auto-publisher reads ``storage`` itself."""
        self._database = storage
        return PublishingStorage(storage, self.keeper, self.mirror)

    def check(self, commit: Commit) -> None:
        """Refuse (400/413) a commit that could never be published; see check_publishable."""
        check_publishable(commit, self.max_node_bytes)

    def start(self) -> None:
        """Connect, fill the mirror and stand for election. Raises StorageUnavailableError when
        ZooKeeper does not answer: a server must not answer head reads from an empty mirror."""
        if self._started:
            return
        if self._database is None:
            raise RuntimeError("wrap() the storage before starting the ZooKeeper link")
        try:
            self.client.start(timeout=self.connect_timeout)
        except KazooTimeoutError as exc:
            self.client.close()
            raise StorageUnavailableError(
                f"ZooKeeper at {self.hosts} did not answer within {self.connect_timeout:g} s"
            ) from exc
        try:
            self.mirror.start(timeout=self.connect_timeout)
            self.publisher = AutoPublisher(self.keeper, self._database, self.publish_period)
            self.publisher.start()
        except Exception as exc:
            self.mirror.close()
            self.client.stop()
            self.client.close()
            if isinstance(exc, TimeoutError):
                raise StorageUnavailableError(str(exc)) from exc
            raise
        self._started = True
        log.info(
            "ZooKeeper %s: mirroring %s, %d heads",
            self.hosts,
            self.keeper.data_path,
            len(self.mirror.heads()),
        )

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        # With ZooKeeper up, the publisher hands over the lock at once. With ZooKeeper gone its
        # requests wait for a connection that may never come, so only signal the threads, then
        # stop the client (which fails every waiting request) and wait for them after that.
        wait = 5.0 if self.client.connected else 0.0
        if self.publisher is not None:
            self.publisher.stop(wait)
        self.mirror.close(wait)
        self.client.stop()
        self.client.close()
        if self.publisher is not None:
            self.publisher.stop(5.0)
        self.mirror.close(5.0)

    def health(self) -> dict[str, object]:
        """What /healthz reports: connection state, leadership, mirror size and rebuilds."""
        publisher = self.publisher
        return {
            "state": str(self.client.state).lower(),
            "connected": self.client.connected,
            "leader": bool(publisher and publisher.is_leader),
            "heads": len(self.mirror.heads()) if self.mirror.synced else None,
            "rebuilds": self.mirror.rebuilds,
        }
