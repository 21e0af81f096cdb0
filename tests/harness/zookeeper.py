"""Standalone ZooKeeper from Debian's ``zookeeper`` package, run with the machine's Java.

Debian ships the server as ``/usr/share/java/zookeeper.jar``, whose manifest ``Class-Path``
names its dependencies; it logs through slf4j, which Debian binds to log4j 1.2
(``slf4j-log4j12.jar`` + ``log4j-1.2.jar``). We add those two jars and a ``log4j.properties``
in the temporary folder that sends everything to stdout, which goes to the log file there.
"""

from __future__ import annotations

import functools
import os
import shutil
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path

from harness._service import Service, ServiceError

JAVA_DIR = Path("/usr/share/java")
MAIN_CLASS = "org.apache.zookeeper.server.ZooKeeperServerMain"  # standalone, no quorum code

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


def find_classpath() -> list[str] | None:
    """The jars that run Debian's ZooKeeper server with log4j logging, or None."""
    server = JAVA_DIR / "zookeeper.jar"
    if not server.is_file():
        return None
    jars = [server]
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
    ) -> None:
        """``config`` adds or overrides ``zoo.cfg`` lines; ``heap`` is the JVM's ``-Xmx``."""
        super().__init__(port=port, startup_timeout=startup_timeout)
        self.tick_time_ms = tick_time_ms
        self.min_session_timeout_ms = min_session_timeout_ms
        self.max_session_timeout_ms = max_session_timeout_ms
        self.config = dict(config or {})
        self.heap = heap

    @classmethod
    def available(cls) -> str | None:
        java = _java()
        if java is None:
            return "java not found (ZooKeeper needs a Java runtime: default-jre-headless)"
        if find_classpath() is None:
            return f"{JAVA_DIR / 'zookeeper.jar'} not found; install Debian's zookeeper package"
        return _java_works(java)

    @property
    def hosts(self) -> str:
        """Connection string for kazoo: ``127.0.0.1:PORT``."""
        return f"{self.host}:{self.port}"

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
            **self.config,
        }
        lines = [f"{key}={value}" for key, value in settings.items()]
        (self.tmpdir / "zoo.cfg").write_text("\n".join(lines) + "\n", encoding="utf-8")
        (self.tmpdir / "log4j.properties").write_text(_LOG4J, encoding="utf-8")

    def _command(self) -> list[str]:
        java = _java()
        classpath = find_classpath()
        if java is None or classpath is None:
            raise ServiceError(self.available() or "java or zookeeper.jar not found")
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
