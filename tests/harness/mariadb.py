"""MariaDB from Debian's ``mariadb-server`` package, in a temporary folder on a free port.

``--no-defaults`` everywhere: nothing from /etc/mysql applies. As root the server runs with
``--user=root`` (its files in the temporary folder belong to root).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

from harness._service import Service, ServiceError, find_binary
from harness.ports import port_is_open

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def _server_binary() -> str | None:
    return find_binary("mariadbd", "mysqld")


def _install_db_binary() -> str | None:
    return find_binary("mariadb-install-db", "mysql_install_db")


def _client_binary() -> str | None:
    return find_binary("mariadb", "mysql")


class MariaDBServer(Service):
    """A throw-away MariaDB server on 127.0.0.1; ``root`` logs in without a password.

    InnoDB keeps its durable defaults (``innodb_flush_log_at_trx_commit=1``). The character set
    is utf8mb4 with ``utf8mb4_general_ci``, as Debian's own server configuration sets it, so a
    column without an explicit binary collation compares case-insensitively, as in production.
    """

    name = "mariadb"

    def __init__(
        self,
        *,
        port: int | None = None,
        database: str = "rainer",
        options: Sequence[str] = (),
        startup_timeout: float = 60.0,
    ) -> None:
        """``options`` are extra ``mariadbd`` command-line options (they come last and win)."""
        super().__init__(port=port, startup_timeout=startup_timeout)
        _check_identifier(database)
        self.user = "root"
        self.database = database
        self.options = list(options)

    @classmethod
    def available(cls) -> str | None:
        missing = [
            what
            for what, found in (
                ("mariadbd/mysqld", _server_binary()),
                ("mariadb-install-db/mysql_install_db", _install_db_binary()),
                ("the mariadb/mysql client", _client_binary()),
            )
            if found is None
        ]
        if missing:
            return f"{', '.join(missing)} not found; install Debian's mariadb-server package"
        return None

    # ----- connection details ------------------------------------------------------------------

    @property
    def url(self) -> str:
        """SQLAlchemy URL of ``database``: ``mysql+pymysql://root@127.0.0.1:PORT/rainer``."""
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        """SQLAlchemy URL of another database on this server."""
        return f"mysql+pymysql://{self.user}@{self.host}:{self.port}/{database}"

    @property
    def socket_path(self) -> Path:
        """The server's unix socket."""
        return self.tmpdir / "mysqld.sock"

    @property
    def data_dir(self) -> Path:
        """The server's data directory."""
        return self.tmpdir / "data"

    # ----- helpers for tests -------------------------------------------------------------------

    def sql(self, statement: str, database: str | None = None, *, quiet: bool = False) -> str:
        """Run SQL through the command-line client over TCP (batch mode, no column names)."""
        argv = [
            _client_binary() or "mariadb",
            "--no-defaults",
            "--protocol=TCP",
            "-h",
            self.host,
            "-P",
            str(self.port),
            "-u",
            self.user,
            "--batch",
            "--skip-column-names",
            "-e",
            statement,
        ]
        if database:
            argv.append(database)
        return self._run(argv, quiet=quiet)

    def create_database(self, name: str) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        _check_identifier(name)
        self.sql(f"CREATE DATABASE `{name}`")
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop a database; no error when it does not exist."""
        _check_identifier(name)
        self.sql(f"DROP DATABASE IF EXISTS `{name}`")

    # ----- life cycle --------------------------------------------------------------------------

    def _as_root_options(self) -> list[str]:
        return ["--user=root"] if os.geteuid() == 0 else []

    def _environment(self) -> dict[str, str]:
        # MYSQL_* variables (MYSQL_HOST, MYSQL_PWD, ...) would redirect the client.
        return {k: v for k, v in os.environ.items() if not k.startswith("MYSQL")}

    def _prepare(self) -> None:
        installer = _install_db_binary()
        if installer is None:
            raise ServiceError("mariadb-install-db not found")
        self._run(
            [
                installer,
                "--no-defaults",
                f"--datadir={self.data_dir}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
                *self._as_root_options(),
            ],
            timeout=self.startup_timeout,
        )

    def _command(self) -> list[str]:
        return [
            _server_binary() or "mariadbd",
            "--no-defaults",
            f"--datadir={self.data_dir}",
            f"--port={self.port}",
            f"--bind-address={self.host}",
            f"--socket={self.socket_path}",
            f"--pid-file={self.tmpdir / 'mysqld.pid'}",
            "--skip-name-resolve",
            "--port-open-timeout=10",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_general_ci",
            "--innodb-flush-log-at-trx-commit=1",
            "--max-connections=300",
            *self._as_root_options(),
            *self.options,
        ]

    def _wait_ready(self, deadline: float) -> None:
        def ready() -> bool:
            return (
                port_is_open(self.host, self.port)
                and self.sql("SELECT 1", quiet=True).strip() == "1"
            )

        self._poll_until(ready, deadline, "SELECT 1 over TCP")

    def _after_first_start(self) -> None:
        self.create_database(self.database)

    def _shutdown(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        proc.terminate()  # mariadbd shuts down cleanly on SIGTERM


def _check_identifier(name: str) -> None:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
