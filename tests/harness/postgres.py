"""PostgreSQL from Debian's ``postgresql`` package, in a temporary folder on a free port.

As root, every server-side command runs as the ``postgres`` system user through ``runuser``
(PostgreSQL refuses to run as root), and the temporary folder belongs to that user.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from harness._service import Service, ServiceError, find_binary

PG_ROOT = Path("/usr/lib/postgresql")
SYSTEM_USER = "postgres"
_TOOLS = ("initdb", "postgres", "pg_ctl", "pg_isready", "psql")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def find_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` with all the tools we need (Debian keeps
    them off PATH), else the folder of an ``initdb`` on PATH."""
    candidates: list[Path] = []
    if PG_ROOT.is_dir():
        versions = [d for d in PG_ROOT.iterdir() if re.fullmatch(r"\d+(\.\d+)?", d.name)]
        versions.sort(key=lambda d: [int(part) for part in d.name.split(".")], reverse=True)
        candidates += [d / "bin" for d in versions]
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for folder in candidates:
        if all((folder / tool).is_file() for tool in _TOOLS):
            return folder
    return None


def _clean_env() -> dict[str, str]:
    """The environment without libpq's PG* variables, which would redirect our clients."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


class PostgresServer(Service):
    """A throw-away PostgreSQL server on 127.0.0.1 with trust authentication.

    ``initdb`` creates a cluster whose superuser is ``user``; ``start()`` creates ``database``.
    ``fsync`` and ``synchronous_commit`` stay on: benchmarks measure durable commits.
    """

    name = "postgres"

    def __init__(
        self,
        *,
        port: int | None = None,
        user: str = "rainer",
        database: str = "rainer",
        settings: Mapping[str, str | int] | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        """``settings`` are extra ``-c name=value`` server settings (they win over ours)."""
        super().__init__(port=port, startup_timeout=startup_timeout)
        for identifier in (user, database):
            _check_identifier(identifier)
        self.user = user
        self.database = database
        self.settings: dict[str, str | int] = {
            "fsync": "on",
            "synchronous_commit": "on",
            "max_connections": 200,
            **(settings or {}),
        }
        self._bindir = find_bindir()

    @classmethod
    def available(cls) -> str | None:
        if find_bindir() is None:
            return (
                "PostgreSQL server binaries (initdb, postgres, pg_ctl, pg_isready, psql) not "
                f"found under {PG_ROOT}/*/bin or on PATH; install Debian's postgresql package"
            )
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(SYSTEM_USER)
            except KeyError:
                return f"running as root needs the system user {SYSTEM_USER!r} (postgresql)"
            if find_binary("runuser") is None:
                return "running as root needs runuser (util-linux) to drop to the postgres user"
        return None

    # ----- connection details ------------------------------------------------------------------

    @property
    def url(self) -> str:
        """SQLAlchemy URL of ``database``: ``postgresql+psycopg://USER@127.0.0.1:PORT/rainer``."""
        return self.url_for(self.database)

    @property
    def dsn(self) -> str:
        """libpq URI of ``database`` (for ``psycopg.connect``)."""
        return self.dsn_for(self.database)

    def url_for(self, database: str) -> str:
        """SQLAlchemy URL of another database on this server."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{database}"

    def dsn_for(self, database: str) -> str:
        """libpq URI of another database on this server."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory."""
        return self.tmpdir / "data"

    # ----- helpers for tests -------------------------------------------------------------------

    def psql(self, sql: str, database: str | None = None) -> str:
        """Run SQL through ``psql`` (unaligned, tuples only); returns its output."""
        argv = [
            *self._tool("psql"),
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-U",
            self.user,
            "-d",
            database or self.database,
            "-c",
            sql,
        ]
        return self._run(argv, env=_clean_env())

    def create_database(self, name: str) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        _check_identifier(name)
        self.psql(f'CREATE DATABASE "{name}"', database="postgres")
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting its clients; no error when it does not exist."""
        _check_identifier(name)
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', database="postgres")

    # ----- life cycle --------------------------------------------------------------------------

    def _tool(self, tool: str) -> list[str]:
        if self._bindir is None:
            raise ServiceError("PostgreSQL binaries not found")
        return [str(self._bindir / tool)]

    def _as_owner(self, argv: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return argv
        return [find_binary("runuser") or "runuser", "-u", SYSTEM_USER, "--", *argv]

    def _environment(self) -> dict[str, str]:
        return _clean_env()

    def _prepare(self) -> None:
        if os.geteuid() == 0:
            owner = pwd.getpwnam(SYSTEM_USER)
            os.chown(self.tmpdir, owner.pw_uid, owner.pw_gid)
        # --no-sync only skips initdb's final flush of the new cluster; the server runs with
        # fsync on, so every commit the tests and benchmarks make is durable.
        self._run(
            self._as_owner(
                [
                    *self._tool("initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    self.user,
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-locale",
                    "--no-sync",
                ]
            ),
            timeout=self.startup_timeout,
        )

    def _command(self) -> list[str]:
        settings: dict[str, str | int] = {
            "listen_addresses": self.host,
            "port": self.port,
            "unix_socket_directories": str(self.tmpdir),
            "logging_collector": "off",
            **self.settings,
        }
        argv = [*self._tool("postgres"), "-D", str(self.data_dir)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        return self._as_owner(argv)

    def _wait_ready(self, deadline: float) -> None:
        argv = [
            *self._tool("pg_isready"),
            "-q",
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-U",
            self.user,
            "-d",
            "postgres",
            "-t",
            "1",
        ]

        def ready() -> bool:
            done = subprocess.run(argv, env=_clean_env(), capture_output=True, check=False)
            return done.returncode == 0

        self._poll_until(ready, deadline, "pg_isready")

    def _after_first_start(self) -> None:
        self.create_database(self.database)

    def _pg_ctl_stop(self, mode: str, timeout: float) -> None:
        argv = [
            *self._tool("pg_ctl"),
            "stop",
            "-D",
            str(self.data_dir),
            "-m",
            mode,
            "-w",
            "-t",
            str(max(1, int(timeout))),
        ]
        self._run(self._as_owner(argv), timeout=timeout + 5)

    def _shutdown(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        self._pg_ctl_stop("fast", timeout)

    def _crash(self, proc: subprocess.Popen[bytes]) -> None:
        # Immediate mode: the postmaster and every backend quit at once, nothing is flushed;
        # the next start runs crash recovery. (A bare SIGKILL of the postmaster could leave
        # backends holding shared memory for a moment, which blocks the restart.)
        try:
            self._pg_ctl_stop("immediate", 10)
        except ServiceError:
            super()._crash(proc)


def _check_identifier(name: str) -> None:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
