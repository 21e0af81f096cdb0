"""What ``rainer serve --zookeeper`` runs, built in one place as the original's ``Rainers.create``
did: one kazoo client and one keeper, shared by the publishing storage, the mirror and the
auto-publisher, all started and stopped with the storage.

    storage = ZooKeeperLink(database, "zk1:2181,zk2:2181")
    storage.start()          # the database, then ZooKeeper, the mirror and the election
    storage.mirror           # the head view the server reads from
"""

from __future__ import annotations

import logging
import threading
import time

from kazoo.client import KazooClient
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.retry import KazooRetry

from rainer import defaults
from rainer.commit import Commit
from rainer.errors import StorageUnavailableError
from rainer.keeper.autopublisher import AutoPublisher
from rainer.keeper.keeper import Keeper, check_publishable
from rainer.keeper.mirror import Mirror
from rainer.keeper.publishing import PublishingStorage
from rainer.storage.base import Storage

log = logging.getLogger(__name__)


def make_client(hosts: str, session_timeout: float = defaults.ZK_SESSION_TIMEOUT) -> KazooClient:
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


class ZooKeeperLink(PublishingStorage):
    """``database``, publishing every durable save to ZooKeeper, with the live ``mirror`` of the
    tree (the server's head view) and an auto-publisher standing for election.

    ``start`` starts the database first (the auto-publisher reads it), then connects; ``stop``
    lets go of ZooKeeper first, then stops the database.
    """

    def __init__(
        self,
        database: Storage,
        hosts: str,
        path: str = defaults.ZK_PATH,
        publish_period: float = defaults.PUBLISH_PERIOD,
        session_timeout: float = defaults.ZK_SESSION_TIMEOUT,
        max_node_bytes: int = defaults.ZK_MAX_NODE_BYTES,
        connect_timeout: float | None = None,
    ) -> None:
        """``connect_timeout`` (how long ``start`` waits for ZooKeeper) defaults to one and a
        half session timeouts, at least 5 s."""
        client = make_client(hosts, session_timeout)
        keeper = Keeper(client, path)
        mirror = Mirror(keeper)
        super().__init__(database, keeper, mirror)
        self.mirror: Mirror = mirror
        self.hosts = hosts
        self.client = client
        self.publish_period = publish_period
        self.max_node_bytes = max_node_bytes
        self.connect_timeout = connect_timeout or max(5.0, 1.5 * session_timeout)
        self.publisher: AutoPublisher | None = None
        self._connected = False

    def check(self, commit: Commit) -> None:
        """Refuse (400/413) a commit that could never be published; see check_publishable."""
        self.delegate.check(commit)
        check_publishable(commit, self.max_node_bytes)

    def start(self) -> None:
        """Start the database, connect, fill the mirror and stand for election. Raises
        StorageUnavailableError when ZooKeeper does not answer: a server must not answer head
        reads from an empty mirror."""
        self.delegate.start()
        try:
            self._connect()
        except BaseException:
            self.delegate.stop()
            raise

    def _connect(self) -> None:
        try:
            self.client.start(timeout=self.connect_timeout)
        except KazooTimeoutError as exc:
            self.client.close()
            raise StorageUnavailableError(
                f"ZooKeeper at {self.hosts} did not answer within {self.connect_timeout:g} s"
            ) from exc
        try:
            self.mirror.start(timeout=self.connect_timeout)
            self.publisher = AutoPublisher(self.keeper, self.delegate, self.publish_period)
            self.publisher.start()
        except Exception as exc:
            self.mirror.close(0)
            self.client.stop()
            self.client.close()
            if isinstance(exc, TimeoutError):
                raise StorageUnavailableError(str(exc)) from exc
            raise
        self._connected = True
        log.info(
            "ZooKeeper %s: mirroring %s, %d heads",
            self.hosts,
            self.keeper.data_path,
            len(self.mirror.infos()),
        )

    def stop(self) -> None:
        if self._connected:
            self._connected = False
            self._disconnect()
        self.delegate.stop()

    def _disconnect(self) -> None:
        """Let go of ZooKeeper within ``defaults.ZK_STOP_WAIT`` seconds, whatever its state.

        Closing the session releases the election lock (an ephemeral node), so another server
        takes over at once. kazoo's ``stop`` waits for its connection thread, which may sit in a
        read from a ZooKeeper that accepted the connection but does not answer (one that is
        restarting) for up to the session timeout: it runs on a thread of its own, and a stop
        that does not finish in time is left behind (the process is ending).
        """
        deadline = time.monotonic() + defaults.ZK_STOP_WAIT
        if self.publisher is not None:
            self.publisher.stop(0)  # only signal: the session's end frees the lock
        self.mirror.close(0)

        def stop_client() -> None:
            self.client.stop()
            self.client.close()

        stopper = threading.Thread(target=stop_client, name="rainer-zk-stop", daemon=True)
        stopper.start()
        stopper.join(max(0.0, deadline - time.monotonic()))
        if stopper.is_alive():
            log.warning(
                "The ZooKeeper client did not stop within %g s; leaving it", defaults.ZK_STOP_WAIT
            )
        if self.publisher is not None:
            self.publisher.stop(max(0.0, deadline - time.monotonic()))
        self.mirror.close(max(0.0, deadline - time.monotonic()))

    def status(self) -> dict[str, object]:
        """What /healthz adds: connection state, leadership, mirror size and rebuilds."""
        publisher = self.publisher
        return {
            "zookeeper": {
                "state": str(self.client.state).lower(),
                "connected": self.client.connected,
                "leader": bool(publisher and publisher.is_leader),
                "heads": len(self.mirror.infos()) if self.mirror.synced else None,
                "rebuilds": self.mirror.rebuilds,
            }
        }
