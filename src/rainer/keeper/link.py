"""What ``rainer serve --zookeeper`` runs, built in one place as the original's ``Rainers.create``
did: one kazoo client and one keeper, shared by the publishing storage, the mirror and the
auto-publisher, all started and stopped with the storage.

    storage = ZooKeeperLink(database, "zk1:2181,zk2:2181")
    storage.start()          # the database, then ZooKeeper, the mirror and the election
    storage.mirror           # the head view the server reads from

With ``credentials`` the client authenticates (digest) and creates every node with the servers'
ACL; with ``tls`` it speaks TLS to ZooKeeper (see ``security``).
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.serialization import Auth
from kazoo.protocol.states import KeeperState
from kazoo.retry import KazooRetry

from rainer import defaults
from rainer.commit import Commit
from rainer.errors import StorageUnavailableError
from rainer.keeper.autopublisher import AutoPublisher
from rainer.keeper.keeper import Keeper, check_publishable
from rainer.keeper.mirror import Mirror
from rainer.keeper.publishing import PublishingStorage
from rainer.keeper.security import (
    DigestCredentials,
    TlsSettings,
    ZooKeeperSecurityError,
    node_acl,
)
from rainer.storage.base import Storage

log = logging.getLogger(__name__)


class _KazooLog(logging.LoggerAdapter[logging.Logger]):
    """kazoo's own logger (``kazoo.client``), seen through on the way.

    - kazoo logs every request it sends at DEBUG, the authentication included, password and
      all: that one is logged with the password hidden.
    - kazoo retries a failed connection for ever and only logs why it failed (a TLS handshake
      refused, a certificate not trusted, ...). The last failure is kept, so that a start that
      gives up can say why, and a certificate refused by every host ends the start at once.
      (Should a kazoo release log differently, the start still fails at its deadline.)
    """

    def __init__(self) -> None:
        super().__init__(logging.getLogger("kazoo.client"), {})
        #: The last exception kazoo logged a connection failure with.
        self.last_failure: BaseException | None = None
        #: Connection attempts that failed on a certificate since the last other outcome.
        self.certificate_failures = 0

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        args = tuple(_hidden(arg) for arg in args)
        if level >= logging.WARNING:
            failure = next((arg for arg in args if isinstance(arg, BaseException)), None)
            if failure is not None:
                self.last_failure = failure
                if _certificate_problem(failure):
                    self.certificate_failures += 1
                else:
                    self.certificate_failures = 0
        super().log(level, msg, *args, **kwargs)


def _hidden(arg: object) -> object:
    if isinstance(arg, Auth):
        return arg._replace(auth="<hidden>")
    return arg


def _certificate_problem(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it was raised from) is a TLS certificate being refused, by us
    (not trusted, wrong name) or by ZooKeeper (missing, unknown CA): retrying will not help."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        if isinstance(seen, ssl.SSLError):
            reason = seen.reason or ""
            return "CERTIFICATE" in reason or "UNKNOWN_CA" in reason
        seen = seen.__cause__ or seen.__context__
    return False


def _failure_text(exc: BaseException) -> str:
    """The innermost cause of a connection failure in a line, with a hint for TLS failures."""
    seen = exc
    for _ in range(10):  # a chain of causes may loop
        inner = seen.__cause__ or seen.__context__
        if inner is None or inner is seen:
            break
        seen = inner
    text = " ".join((str(seen) or type(seen).__name__).split())
    if isinstance(seen, ssl.SSLCertVerificationError):
        if "mismatch" in (seen.verify_message or "").lower():
            hint = (
                "the certificate does not name the host as the connection string spells it "
                "(--no-zk-tls-check-hostname skips that check)"
            )
        else:
            hint = "is --zk-tls-ca the CA that signed ZooKeeper's certificate?"
    elif _certificate_problem(seen):
        hint = "ZooKeeper refused this server's certificate: see --zk-tls-cert and --zk-tls-key"
    elif isinstance(seen, ssl.SSLError):
        hint = "is that ZooKeeper's secure client port?"
    else:
        return text
    return f"{text}; {hint}"


def make_client(
    hosts: str,
    session_timeout: float = defaults.ZK_SESSION_TIMEOUT,
    *,
    credentials: DigestCredentials | None = None,
    read_access: str = defaults.ZK_ACL_READ,
    tls: TlsSettings | None = None,
) -> KazooClient:
    """A kazoo client that keeps reconnecting for ever, at most a second apart.

    kazoo's default backs off to a minute between attempts, which would keep a server away from a
    restarted ZooKeeper (and its mirror stale) for up to that long.

    With ``credentials`` it authenticates on every connection and creates every node with the
    servers' ACL (``node_acl``); with ``tls`` it connects over TLS.
    """
    options: dict[str, Any] = {}
    if credentials is not None:
        options["auth_data"] = [credentials.auth_data]
        options["default_acl"] = node_acl(credentials, read_access)
    if tls is not None:
        options.update(tls.kazoo_options())
    return KazooClient(
        hosts=hosts,
        timeout=session_timeout,
        connection_retry=KazooRetry(max_tries=-1, delay=0.05, backoff=2, max_delay=1.0),
        command_retry=KazooRetry(max_tries=3, delay=0.05, backoff=2, max_delay=1.0),
        logger=_KazooLog(),
        **options,
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
        *,
        credentials: DigestCredentials | None = None,
        read_access: str = defaults.ZK_ACL_READ,
        tls: TlsSettings | None = None,
    ) -> None:
        """``connect_timeout`` (how long ``start`` waits for ZooKeeper) defaults to one and a
        half session timeouts, at least 5 s. ``credentials``, ``read_access`` and ``tls``: see
        ``make_client``; ``read_access`` needs credentials (without them nothing is protected).
        """
        if read_access != "world" and credentials is None:
            raise ZooKeeperSecurityError(
                f"--zk-acl-read {read_access} needs the servers' credentials (--zk-auth FILE "
                "or RAINER_ZK_AUTH): without them the nodes are open to everyone"
            )
        if tls is not None:
            tls.check()
        client = make_client(
            hosts, session_timeout, credentials=credentials, read_access=read_access, tls=tls
        )
        keeper = Keeper(client, path)
        mirror = Mirror(keeper)
        super().__init__(database, keeper, mirror)
        self.mirror: Mirror = mirror
        self.hosts = hosts
        self.client = client
        self.publish_period = publish_period
        self.max_node_bytes = max_node_bytes
        self.connect_timeout = connect_timeout or max(5.0, 1.5 * session_timeout)
        self.credentials = credentials
        self.tls = tls
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

    def _start_client(self) -> None:
        """Connect, or raise StorageUnavailableError saying why not (kazoo itself would only
        say "Connection time-out"). A certificate refused by every host, or credentials
        ZooKeeper refuses, end the wait at once: retrying would not help."""
        watch: _KazooLog = self.client.logger
        hosts = max(1, len(self.client.hosts))
        connected = self.client.start_async()
        deadline = time.monotonic() + self.connect_timeout
        problem = None
        while not connected.wait(0.05):
            if self.client.client_state == KeeperState.AUTH_FAILED:
                problem = "ZooKeeper refused the credentials"
            elif watch.certificate_failures >= hosts and watch.last_failure is not None:
                problem = f"TLS failed: {_failure_text(watch.last_failure)}"
            elif time.monotonic() >= deadline:
                problem = f"it did not answer within {self.connect_timeout:g} s"
                if watch.last_failure is not None:
                    problem += f" (last error: {_failure_text(watch.last_failure)})"
            if problem:
                self.client.stop()
                self.client.close()
                raise StorageUnavailableError(f"ZooKeeper at {self.hosts}: {problem}")

    def _connect(self) -> None:
        self._start_client()
        try:
            if self.client.chroot and not self.keeper.wait(self.client.exists_async("/")):
                # kazoo's own start() only warns about this too; the mirror then says more.
                log.warning("The chroot of %s does not exist; create it first", self.hosts)
            # Before the mirror: a tree this server may not write must stop the start with
            # the reason, not with a mirror that keeps failing.
            if self.credentials is not None:
                self.keeper.secure_base(self._who())
            else:
                self.keeper.check_open()
            self.mirror.start(timeout=self.connect_timeout)
            self.publisher = AutoPublisher(self.keeper, self.delegate, self.publish_period)
            self.publisher.start()
        except Exception as exc:
            self.mirror.close(0)
            self.client.stop()
            self.client.close()
            if isinstance(exc, TimeoutError):
                raise StorageUnavailableError(str(exc)) from exc
            if isinstance(exc, (KazooException, KazooTimeoutError)):
                # ZooKeeper went away (or would not answer) while the server set itself up.
                raise StorageUnavailableError(
                    f"ZooKeeper at {self.hosts}: {type(exc).__name__} {exc}".rstrip()
                ) from exc
            raise
        self._connected = True
        log.info(
            "ZooKeeper %s%s: mirroring %s, %d heads%s",
            self.hosts,
            " over TLS" if self.tls is not None else "",
            self.keeper.data_path,
            len(self.mirror.infos()),
            f"; nodes writable by {self.credentials} only" if self.credentials else "",
        )

    def _who(self) -> str:
        credentials = self.credentials
        assert credentials is not None
        return f"{credentials} ({credentials.source})" if credentials.source else str(credentials)

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
