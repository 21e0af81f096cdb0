"""Standalone ZooKeeper from Debian's ``zookeeper`` package, run with the machine's Java.

Debian ships the server as ``/usr/share/java/zookeeper.jar``, whose manifest ``Class-Path``
names its dependencies; it logs through slf4j, which Debian binds to log4j 1.2
(``slf4j-log4j12.jar`` + ``log4j-1.2.jar``). We add those two jars and a ``log4j.properties``
in the temporary folder that sends everything to stdout, which goes to the log file there.

With ``tls``, the server also listens on a secure client port (TLS through ZooKeeper's Netty
connection factory, with PEM key and trust stores); the plain port stays open, for the
readiness check and for tests that look at the tree without TLS.
"""

from __future__ import annotations

import functools
import os
import shutil
import socket
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness._service import Service, ServiceError
from harness.ports import free_port, port_is_open

JAVA_DIR = Path("/usr/share/java")
MAIN_CLASS = "org.apache.zookeeper.server.ZooKeeperServerMain"  # standalone, no quorum code
NETTY_FACTORY = "org.apache.zookeeper.server.NettyServerCnxnFactory"
#: What ZooKeeper's Netty connection factory needs besides the jars its manifest names
#: (netty-handler's TLS handler is built on netty-codec).
NETTY_JARS = ("netty-codec.jar", "netty-resolver.jar", "netty-transport-native-unix-common.jar")

_LOG4J = """\
log4j.rootLogger=INFO, CONSOLE
log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender
log4j.appender.CONSOLE.Target=System.out
log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout
log4j.appender.CONSOLE.layout.ConversionPattern=%d{ISO8601} %-5p [%t:%C{1}@%L] - %m%n
"""


def _java() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


@functools.cache
def _java_works(java: str) -> str | None:
    """None when ``java -version`` runs, else why not (cached: a JVM start costs ~50 ms)."""
    try:
        done = subprocess.run([java, "-version"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{java} -version failed: {exc}"
    if done.returncode != 0:
        return f"{java} -version exited with {done.returncode}: {done.stderr.decode()[-300:]}"
    return None


@dataclass(frozen=True)
class ZooKeeperTls:
    """TLS on the secure client port: the server's certificate and key (PEM files, as
    ``harness.certs.TestCA.server()`` makes them) and the CA file whose certificates it trusts.

    ``client_auth`` is ZooKeeper's ``ssl.clientAuth``: ``need`` refuses clients without a
    certificate from ``ca``, ``want`` asks for one, ``none`` does not.
    """

    cert: Path
    key: Path
    ca: Path
    client_auth: Literal["need", "want", "none"] = "need"


def find_classpath(netty: bool = False) -> list[str] | None:
    """The jars that run Debian's ZooKeeper server with log4j logging, or None; with ``netty``,
    also the jars of the Netty connection factory (None when one is missing)."""
    server = JAVA_DIR / "zookeeper.jar"
    if not server.is_file():
        return None
    jars = [server]
    if netty:
        extra = [JAVA_DIR / name for name in NETTY_JARS]
        if not all(jar.is_file() for jar in extra):
            return None
        jars += extra
    binding = [JAVA_DIR / "slf4j-log4j12.jar", JAVA_DIR / "log4j-1.2.jar"]
    if all(jar.is_file() for jar in binding):
        jars += binding
    elif (JAVA_DIR / "slf4j-simple.jar").is_file():  # logs to stderr, also captured
        jars.append(JAVA_DIR / "slf4j-simple.jar")
    return [str(jar) for jar in jars]


class ZooKeeperServer(Service):
    """A standalone ZooKeeper on 127.0.0.1 with a short tick, so tests can use 2-4 s sessions.

    The admin server (Jetty, port 8080) is off; every four-letter word is allowed. ``stop()``
    and ``start()`` bring the same server back on the same port with the same data.

    ``tls`` adds a secure client port (``secure_port``, ``secure_hosts``). Digest ACLs need no
    setup: ZooKeeper enforces them out of the box.
    """

    name = "zookeeper"

    def __init__(
        self,
        *,
        port: int | None = None,
        tick_time_ms: int = 500,
        min_session_timeout_ms: int = 1000,
        max_session_timeout_ms: int = 60000,
        config: Mapping[str, str | int] | None = None,
        heap: str = "256m",
        startup_timeout: float = 60.0,
        tls: ZooKeeperTls | None = None,
    ) -> None:
        """``config`` adds or overrides ``zoo.cfg`` lines; ``heap`` is the JVM's ``-Xmx``."""
        super().__init__(port=port, startup_timeout=startup_timeout)
        self.tick_time_ms = tick_time_ms
        self.min_session_timeout_ms = min_session_timeout_ms
        self.max_session_timeout_ms = max_session_timeout_ms
        self.config = dict(config or {})
        self.heap = heap
        self.tls = tls
        self._secure_port: int | None = None

    @classmethod
    def available(cls) -> str | None:
        java = _java()
        if java is None:
            return "java not found (ZooKeeper needs a Java runtime: default-jre-headless)"
        if find_classpath() is None:
            return f"{JAVA_DIR / 'zookeeper.jar'} not found; install Debian's zookeeper package"
        return _java_works(java)

    @classmethod
    def available_tls(cls) -> str | None:
        """None when a ZooKeeper with a secure client port can run here, else why not."""
        reason = cls.available()
        if reason is None and find_classpath(netty=True) is None:
            missing = [name for name in NETTY_JARS if not (JAVA_DIR / name).is_file()]
            reason = f"ZooKeeper's TLS needs Netty: {', '.join(missing)} not in {JAVA_DIR}"
        return reason

    @property
    def hosts(self) -> str:
        """Connection string for kazoo: ``127.0.0.1:PORT``."""
        return f"{self.host}:{self.port}"

    @property
    def secure_port(self) -> int:
        """The TLS client port (only with ``tls``)."""
        if self._secure_port is None:
            raise ServiceError(f"{self.name} has no secure client port (give tls=...)")
        return self._secure_port

    @property
    def secure_hosts(self) -> str:
        """Connection string of the TLS port: ``127.0.0.1:SECURE_PORT``."""
        return f"{self.host}:{self.secure_port}"

    @property
    def data_dir(self) -> Path:
        """Snapshots and transaction logs."""
        return self.tmpdir / "data"

    def four_letter_word(self, word: str, timeout: float = 2.0) -> str:
        """Send a four-letter command (``ruok``, ``srvr``, ``mntr``, ...) and return the answer."""
        with socket.create_connection((self.host, self.port), timeout=timeout) as sock:
            sock.sendall(word.encode("ascii"))
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode("utf-8", errors="replace")

    # ----- life cycle --------------------------------------------------------------------------

    def _allocate_ports(self) -> None:
        super()._allocate_ports()
        if self.tls is not None:
            self._secure_port = free_port()

    def _ports(self) -> list[int]:
        return [self.port] + ([self.secure_port] if self.tls is not None else [])

    def _tls_settings(self) -> dict[str, str | int]:
        tls = self.tls
        if tls is None:
            return {}
        # ZooKeeper's PEM key store is one file holding the key and the certificate chain.
        keystore = self.tmpdir / "zk-keystore.pem"
        keystore.write_bytes(Path(tls.key).read_bytes() + Path(tls.cert).read_bytes())
        keystore.chmod(0o600)
        return {
            "serverCnxnFactory": NETTY_FACTORY,
            "secureClientPort": self.secure_port,
            "secureClientPortAddress": self.host,
            "ssl.keyStore.location": str(keystore),
            "ssl.keyStore.type": "PEM",
            "ssl.trustStore.location": str(tls.ca),
            "ssl.trustStore.type": "PEM",
            "ssl.clientAuth": tls.client_auth,
            # Our test client certificates name a principal, not the client's address.
            "ssl.clientHostnameVerification": "false",
        }

    def _prepare(self) -> None:
        self.data_dir.mkdir()
        settings: dict[str, str | int] = {
            "tickTime": self.tick_time_ms,
            "dataDir": str(self.data_dir),
            "clientPort": self.port,
            "clientPortAddress": self.host,
            "minSessionTimeout": self.min_session_timeout_ms,
            "maxSessionTimeout": self.max_session_timeout_ms,
            "maxClientCnxns": 0,  # no per-address limit: every test client comes from 127.0.0.1
            "admin.enableServer": "false",
            "4lw.commands.whitelist": "*",
            "autopurge.purgeInterval": 0,
            **self._tls_settings(),
            **self.config,
        }
        lines = [f"{key}={value}" for key, value in settings.items()]
        (self.tmpdir / "zoo.cfg").write_text("\n".join(lines) + "\n", encoding="utf-8")
        (self.tmpdir / "log4j.properties").write_text(_LOG4J, encoding="utf-8")

    def _command(self) -> list[str]:
        java = _java()
        classpath = find_classpath(netty=self.tls is not None)
        if java is None or classpath is None:
            reason = self.available_tls() if self.tls is not None else self.available()
            raise ServiceError(reason or "java or zookeeper.jar not found")
        return [
            java,
            f"-Xmx{self.heap}",
            "-Djava.net.preferIPv4Stack=true",
            f"-Dlog4j.configuration=file:{self.tmpdir / 'log4j.properties'}",
            "-Dzookeeper.jmx.log4j.disable=true",
            "-Dzookeeper.admin.enableServer=false",
            "-cp",
            os.pathsep.join(classpath),
            MAIN_CLASS,
            str(self.tmpdir / "zoo.cfg"),
        ]

    def _wait_ready(self, deadline: float) -> None:
        # "ruok" answers "imok" as soon as the socket is up; "srvr" reports a mode only once
        # the server really serves requests.
        self._poll_until(
            lambda: "Mode:" in self.four_letter_word("srvr", timeout=1.0), deadline, "srvr"
        )
        if self.tls is not None:
            self._poll_until(
                lambda: port_is_open(self.host, self.secure_port), deadline, "the secure port"
            )
