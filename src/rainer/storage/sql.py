"""Journaled storage in a relational database: SQLite, PostgreSQL or MySQL/MariaDB.

One implementation on SQLAlchemy Core. The table is the original Rainer's, so a server can take
over an existing Rainer database::

    name      up to 255 bytes      \\
    version   int                  / primary key: it settles every race between writers
    payload   blob                 the commit's stored byte form (see rainer.commit)
    is_empty  small int            optional: old tables lack it, and still work
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVarTuple

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.sql.compiler import SQLCompiler

from rainer.commit import Commit, CommitInfo, IncompleteHeaderError, decode_info
from rainer.errors import (
    ChangeSetConflictError,
    CommitOrderingError,
    CorruptCommitError,
    MissingDependencyError,
    NotFoundError,
    StorageUnavailableError,
)
from rainer.storage.base import SLICE_BYTES, OnUnreadable, Storage

if TYPE_CHECKING:
    from sqlalchemy.engine.interfaces import DBAPIConnection, DBAPICursor
    from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

log = logging.getLogger(__name__)

#: The columns of a statement, and of the rows it gives.
Ts = TypeVarTuple("Ts")

#: How much of each stored form a metadata read takes: the header, in all but odd cases.
_INFO_PREFIX_BYTES = 2048
#: Rows asked for in one ``get_many`` statement.
_GET_MANY_ROWS = 64
#: Unreadable rows remembered so that each is logged once.
_UNREADABLE_LOGGED_MAX = 10_000

# Short scheme names people type, mapped to the drivers we install.
_DRIVERS = {
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
    "mariadb+pymysql": "mysql+pymysql",
}


def database_url(text: str) -> URL:
    """Parse a database URL, choosing our driver when the URL names none."""
    try:
        url = make_url(text)
    except ArgumentError as exc:
        raise ValueError(f"not a database URL: {text!r}") from exc
    driver = _DRIVERS.get(url.drivername)
    if driver:
        url = url.set(drivername=driver)
    if url.get_backend_name() not in ("sqlite", "postgresql", "mysql"):
        raise ValueError(f"unsupported database {url.drivername!r}: use sqlite, postgresql, mysql")
    return url


class KeyName(sa.types.TypeDecorator[str]):
    """A key: text everywhere, but VARBINARY(255) on MySQL as in the original schema, so keys
    compare byte for byte there too (MySQL's text collations would make "A" equal "a")."""

    impl = sa.String(255)
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "mysql":
            return dialect.type_descriptor(mysql.VARBINARY(255))
        return dialect.type_descriptor(sa.String(255))

    def process_bind_param(self, value: str | None, dialect: sa.Dialect) -> str | bytes | None:
        if dialect.name == "mysql" and isinstance(value, str):
            return value.encode("utf-8")
        return value

    def process_result_value(self, value: str | bytes | None, dialect: sa.Dialect) -> str | None:
        return _text(value) if value is not None else None


def _table(metadata: sa.MetaData, name: str) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("name", KeyName(), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column(
            "payload",
            sa.LargeBinary().with_variant(mysql.MEDIUMBLOB(), "mysql"),
            nullable=False,
        ),
        sa.Column("is_empty", sa.SmallInteger, nullable=False),
    )


class SqlStorage(Storage):
    """Storage in one table of a SQL database."""

    def __init__(self, url: str, table: str = "rainer", pool_size: int = 16) -> None:
        self.url = database_url(url)
        self.table_name = table
        self.pool_size = pool_size
        self.single_writer = self.url.get_backend_name() == "sqlite"
        # With SQLite one process writes (the file lock makes sure) and its threads take turns
        # here rather than in SQLite's busy loop.
        self._write_lock = threading.Lock() if self.single_writer else None
        self._lock_file: int | None = None
        self._engine: Engine | None = None
        self._reader: Engine | None = None
        #: The SQLite writer's connection, kept (see _transaction).
        self._writer: PoolProxiedConnection | None = None
        self._has_is_empty = True
        self._maxes_statements: dict[int, _Compiled] = {}
        self._unreadable_logged: set[tuple[str, int]] = set()

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        if self.single_writer:
            self._lock_sqlite_file()
        try:
            self._engine = self._create_engine()
            self._reader = self._create_reader()
            self._prepare_table()
        except NoSuchModuleError as exc:
            self.stop()
            raise ValueError(f"no driver for {self.url.drivername}: {exc}") from exc
        except ImportError as exc:
            self.stop()
            backend = self.url.get_backend_name()
            extra = "postgresql" if backend == "postgresql" else "mysql"
            name = "PostgreSQL" if backend == "postgresql" else "MySQL/MariaDB"
            raise MissingDependencyError(name, exc.name or str(exc), extra) from None
        except DBAPIError as exc:
            self.stop()
            raise _unavailable(exc) from exc

    def stop(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._reader is not None and self._reader is not self._engine:
            self._reader.dispose()
        self._reader = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        if self._lock_file is not None:
            os.close(self._lock_file)
            self._lock_file = None

    def _create_engine(self) -> Engine:
        if self.single_writer:
            engine = sa.create_engine(self.url, pool_size=self.pool_size, max_overflow=8)

            @sa.event.listens_for(engine, "connect")
            def _durable(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
                # WAL with a full sync: a commit is on disk before the 200 leaves the server.
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=FULL")
                cursor.execute("PRAGMA busy_timeout=10000")
                # A page cache per pooled connection adds up; the operating system caches the
                # file anyway, so each keeps a small one.
                cursor.execute("PRAGMA cache_size=-512")
                cursor.close()

            return engine
        # Writes check a pooled connection before each batch: a connection that died while
        # idle must not be discovered at COMMIT, where nobody could tell whether it landed.
        return sa.create_engine(
            self.url, pool_size=self.pool_size, max_overflow=8, pool_pre_ping=True
        )

    def _create_reader(self) -> Engine:
        """Reads run in autocommit without a pre-ping: one round trip each instead of five
        (ping, BEGIN, SELECT, ROLLBACK on return). A dead connection is retried once instead."""
        assert self._engine is not None
        if self.single_writer:
            return self._engine
        return sa.create_engine(
            self.url,
            pool_size=self.pool_size,
            max_overflow=8,
            isolation_level="AUTOCOMMIT",
        )

    def _lock_sqlite_file(self) -> None:
        path = self.url.database
        if not path or path == ":memory:" or path.startswith("file:"):
            # Each pooled connection would get a database of its own.
            raise ValueError(
                "an in-memory SQLite database cannot be shared by the server's threads; "
                "use 'memory' for an in-memory store, or a file path"
            )
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise ValueError(f"no such directory for the SQLite database: {directory}")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StorageUnavailableError(
                f"another process is serving the SQLite database {path}; with SQLite exactly one "
                "rainer process may write (use PostgreSQL or MySQL to run several)"
            ) from None
        self._lock_file = fd

    def _prepare_table(self) -> None:
        assert self._engine is not None
        inspector = sa.inspect(self._engine)
        metadata = sa.MetaData()
        if inspector.has_table(self.table_name):
            columns = {column["name"] for column in inspector.get_columns(self.table_name)}
            self._has_is_empty = "is_empty" in columns
            if not self._has_is_empty:
                log.warning("table %s has no is_empty column; leaving it out", self.table_name)
            self._table = _table(metadata, self.table_name)
        else:
            log.info("creating table %s", self.table_name)
            self._table = _table(metadata, self.table_name)
            metadata.create_all(self._engine)
        self._build_statements()

    def _build_statements(self) -> None:
        t = self._table
        newest = (
            sa.select(t.c.name, sa.func.max(t.c.version).label("version"))
            .group_by(t.c.name)
            .subquery("newest")
        )
        on_newest = sa.and_(t.c.name == newest.c.name, t.c.version == newest.c.version)
        non_empty = t.c.is_empty != 1 if self._has_is_empty else sa.true()
        self._select_heads = sa.select(t.c.name, t.c.version, t.c.payload).join(newest, on_newest)
        # Metadata without payloads: the first bytes of each stored form hold its header.
        info_columns = (
            t.c.name,
            t.c.version,
            sa.func.substr(t.c.payload, 1, _INFO_PREFIX_BYTES),
            sa.func.length(t.c.payload),
        )
        self._select_head_infos = sa.select(*info_columns).join(newest, on_newest)
        self._select_non_empty_head_infos = self._select_head_infos.where(non_empty)
        self._history_infos = sa.select(*info_columns).order_by(t.c.version.desc())
        self._history = sa.select(t.c.name, t.c.version, t.c.payload).order_by(t.c.version.desc())
        self._select_head = (
            sa.select(t.c.name, t.c.version, t.c.payload)
            .where(t.c.name == sa.bindparam("key"))
            .order_by(t.c.version.desc())
            .limit(1)
        )
        self._select_version = sa.select(t.c.name, t.c.version, t.c.payload).where(
            t.c.name == sa.bindparam("key"), t.c.version == sa.bindparam("version")
        )
        wanted = sa.tuple_(t.c.name, t.c.version).in_(sa.bindparam("wanted", expanding=True))
        self._select_versions = sa.select(t.c.name, t.c.version, t.c.payload).where(wanted)
        self._select_version_infos = sa.select(*info_columns).where(wanted)
        self._select_head_versions = sa.select(t.c.name, sa.func.max(t.c.version)).group_by(
            t.c.name
        )
        self._select_slice = sa.select(
            sa.func.substr(t.c.payload, sa.bindparam("start"), sa.bindparam("length"))
        ).where(t.c.name == sa.bindparam("key"), t.c.version == sa.bindparam("version"))
        self._select_max = sa.select(sa.func.max(t.c.version)).where(
            t.c.name == sa.bindparam("key")
        )
        # The write path's statements, for the driver (see "writes" below). An old table
        # without is_empty gets rows without it.
        assert self._engine is not None
        self._dialect = self._engine.dialect
        self._dialect_name = self._dialect.name
        self._dbapi: Any = self._dialect.loaded_dbapi  # the driver's module: its errors
        columns = ["name", "version", "payload"] + (["is_empty"] if self._has_is_empty else [])
        self._insert_sql = _Compiled(sa.insert(t), self._dialect, columns)
        self._maxes_statements.clear()

    # -- reads -----------------------------------------------------------------------------

    def _engine_or_fail(self) -> Engine:
        if self._engine is None:
            raise StorageUnavailableError("storage is not started")
        return self._engine

    def _rows(self, statement: sa.Select[*Ts], **params: object) -> Sequence[sa.Row[*Ts]]:
        reader = self._reader
        if reader is None:
            raise StorageUnavailableError("storage is not started")
        for attempt in (1, 2):
            try:
                with reader.connect() as connection:
                    return connection.execute(statement, params).all()
            except DBAPIError as exc:
                # A pooled connection the server closed (a restart): the pool is invalidated,
                # and a read is safe to repeat once on a fresh connection.
                if attempt == 1 and exc.connection_invalidated:
                    continue
                raise _unavailable(exc) from exc
        raise AssertionError("unreachable")

    def _decode(self, name: str | bytes, version: int, stored: bytes) -> Commit:
        """The commit in one row; CorruptCommitError (logged once per row) when it is not one."""
        key = _text(name)
        try:
            commit = Commit.decode(bytes(stored))
            if commit.key != key or commit.version != version:
                raise CorruptCommitError(
                    f"the row holds a commit for key {commit.key!r} version {commit.version}"
                )
        except CorruptCommitError as exc:
            raise self._unreadable(key, version, exc) from exc
        return commit

    def _decode_info(self, name: str | bytes, version: int, head: bytes, size: int) -> CommitInfo:
        key = _text(name)
        try:
            try:
                info = decode_info(bytes(head), size)
            except IncompleteHeaderError:
                # A header longer than the prefix read (a very long comment): read the row.
                commit = self.get(key, version)
                if commit is None:
                    raise CorruptCommitError("the row went away while it was read") from None
                return commit.info()
            if info.key != key or info.version != version:
                raise CorruptCommitError(
                    f"the row holds a commit for key {info.key!r} version {info.version}"
                )
        except CorruptCommitError as exc:
            raise self._unreadable(key, version, exc) from exc
        return info

    def _unreadable(self, key: str, version: int, exc: CorruptCommitError) -> CorruptCommitError:
        error = CorruptCommitError(
            f"Unreadable commit: key {key!r} version {version} (logged on the server)",
            key,
            version,
        )
        if (key, version) not in self._unreadable_logged:
            if len(self._unreadable_logged) < _UNREADABLE_LOGGED_MAX:
                self._unreadable_logged.add((key, version))
            log.error(
                "Unreadable row in %s: key %r version %d: %s", self.table_name, key, version, exc
            )
        return error

    def _commits(self, rows: Sequence[sa.Row[*tuple[Any, ...]]]) -> list[Commit]:
        """The commits of many rows; rows that cannot be read are left out (and logged)."""
        found = []
        for name, version, stored in rows:
            with contextlib.suppress(CorruptCommitError):
                found.append(self._decode(name, version, stored))
        return found

    def _infos(
        self, rows: Sequence[sa.Row[*tuple[Any, ...]]], on_unreadable: OnUnreadable | None
    ) -> list[CommitInfo]:
        found = []
        for name, version, head, size in rows:
            try:
                found.append(self._decode_info(name, version, head, size))
            except CorruptCommitError as exc:
                if on_unreadable is not None:
                    on_unreadable(exc)
        return found

    def heads(self) -> dict[str, Commit]:
        return {commit.key: commit for commit in self._commits(self._rows(self._select_heads))}

    def head_infos(
        self, include_empty: bool = True, on_unreadable: OnUnreadable | None = None
    ) -> list[CommitInfo]:
        statement = self._select_head_infos if include_empty else self._select_non_empty_head_infos
        infos = self._infos(self._rows(statement), on_unreadable)
        # is_empty is a hint: old rows may lack it, so filter the decoded metadata too.
        return infos if include_empty else [info for info in infos if not info.empty]

    def get(self, key: str, version: int | None = None) -> Commit | None:
        if version is None:
            rows = self._rows(self._select_head, key=key)
        else:
            rows = self._rows(self._select_version, key=key, version=version)
        return self._decode(*rows[0]) if rows else None

    def payload_slices(self, key: str, version: int, size: int) -> Iterator[bytes]:
        # Each slice is a statement of its own, so no connection stays checked out while a
        # slow client reads; the stored form never changes, so the slices fit together.
        head = self._slice(key, version, 1, 24)
        length_end = head.find(b"\n")
        if length_end < 1 or not head[:length_end].isdigit():
            raise self._unreadable(key, version, CorruptCommitError("no header length"))
        start = length_end + 1 + int(head[:length_end]) + 2  # 1-based, after the header's \n
        for offset in range(0, size, SLICE_BYTES):
            piece = self._slice(key, version, start + offset, min(SLICE_BYTES, size - offset))
            if not piece:
                return
            yield piece

    def _slice(self, key: str, version: int, start: int, length: int) -> bytes:
        rows = self._rows(self._select_slice, key=key, version=version, start=start, length=length)
        if not rows:
            raise NotFoundError(f"no commit {key!r} version {version}")
        return bytes(rows[0][0])

    def commit_count(self) -> int:
        count: int = self._rows(sa.select(sa.func.count()).select_from(self._table))[0][0]
        return count

    def head_version(self, key: str) -> int | None:
        version: int | None = self._rows(self._select_max, key=key)[0][0]
        return version

    def head_versions(self) -> dict[str, int]:
        # No join back to the rows: the primary key's index answers it.
        return {_text(name): version for name, version in self._rows(self._select_head_versions)}

    def get_many(self, wanted: Sequence[tuple[str, int]]) -> dict[tuple[str, int], Commit]:
        found: dict[tuple[str, int], Commit] = {}
        for start in range(0, len(wanted), _GET_MANY_ROWS):
            chunk = list(wanted[start : start + _GET_MANY_ROWS])
            for commit in self._commits(self._rows(self._select_versions, wanted=chunk)):
                found[commit.key, commit.version] = commit
        return found

    def get_many_infos(
        self, wanted: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], CommitInfo]:
        found: dict[tuple[str, int], CommitInfo] = {}
        for start in range(0, len(wanted), _GET_MANY_ROWS):
            chunk = list(wanted[start : start + _GET_MANY_ROWS])
            for info in self._infos(self._rows(self._select_version_infos, wanted=chunk), None):
                found[info.key, info.version] = info
        return found

    def _page(
        self, statement: sa.Select[*Ts], key: str, limit: int | None, before: int | None
    ) -> sa.Select[*Ts]:
        t = self._table
        statement = statement.where(t.c.name == key)
        if before is not None:
            statement = statement.where(t.c.version < before)
        if limit is not None:
            statement = statement.limit(limit)
        return statement

    def history(
        self, key: str, limit: int | None = None, before: int | None = None
    ) -> list[Commit]:
        return self._commits(self._rows(self._page(self._history, key, limit, before)))

    def history_infos(
        self, key: str, limit: int | None = None, before: int | None = None
    ) -> list[CommitInfo]:
        return self._infos(self._rows(self._page(self._history_infos, key, limit, before)), None)

    def ping(self) -> None:
        try:
            with self._engine_or_fail().connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except DBAPIError as exc:
            raise _unavailable(exc) from exc

    # -- writes ----------------------------------------------------------------------------
    #
    # Writes run the Core statements built above, compiled once for the dialect (``_Compiled``),
    # on the driver's cursor, in a transaction of a driver connection from SQLAlchemy's pool.
    # Core's execution layer around each statement (an execution context, parameter processing,
    # a result object, transaction bookkeeping) took more CPU than SQLite needs to run it: about
    # 60 of the 160 µs of a one-commit batch, on the one thread every commit waits for
    # (docs/benchmarks.md). So the statements stay Core's, and one write path serves every
    # database; only the layer that ran them each time is gone. Reads keep it: they run on many
    # threads, and a read's cost is its round trip.

    def _row(self, commit: Commit) -> tuple[object, ...]:
        """The insert's parameters for ``commit``, in its order."""
        row = (self._bind_key(commit.key), commit.version, commit.encode())
        return (*row, 1 if commit.empty else 0) if self._has_is_empty else row

    def _bind_key(self, key: str) -> str | bytes:
        # What KeyName makes of a key for Core: bytes for MySQL's VARBINARY, else the text.
        return key.encode("utf-8") if self._dialect_name == "mysql" else key

    def save(self, commit: Commit) -> None:
        result = self.save_batch([commit])[0]
        if result is not None:
            raise result

    def save_batch(self, commits: Sequence[Commit]) -> list[Exception | None]:
        """Save ``commits`` in one transaction, so one sync makes the whole batch durable.

        When another process wins a race inside the batch, the batch is rolled back and each
        commit is retried in a transaction of its own, which gives every commit its exact answer.
        """
        if not commits:
            return []
        if self._write_lock is not None:
            with self._write_lock:
                return self._save_batch(commits)
        return self._save_batch(commits)

    supports_changesets = True

    def save_changeset(self, commits: Sequence[Commit]) -> None:
        """All ``commits`` in one transaction, or none of them.

        When another process commits one of the keys between our check and our insert, the
        primary key refuses the insert; the check is made again to name the conflicts.
        """
        if self._write_lock is not None:
            with self._write_lock:
                self._save_changeset(commits)
        else:
            self._save_changeset(commits)

    def _save_changeset(self, commits: Sequence[Commit]) -> None:
        for _ in range(3):
            try:
                with self._transaction() as cursor:
                    results, rows = self._check_order(cursor, commits)
                    conflicts = [e for e in results if isinstance(e, CommitOrderingError)]
                    if conflicts:
                        raise ChangeSetConflictError(conflicts)
                    cursor.executemany(self._insert_sql.sql, self._insert_sql.many(rows))
                return
            except self._dbapi.IntegrityError:
                continue  # a race lost to another process: check again, in a new transaction
            except (self._dbapi.Error, DBAPIError) as exc:
                raise _unavailable(exc) from exc
        raise StorageUnavailableError("change set kept racing other writers; try again")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[DBAPICursor]:
        """A cursor in a write transaction, committed when the block ends, rolled back when it
        raises.

        With SQLite, writes are serialized by the write lock, so the writer keeps one connection
        instead of checking one out of the pool (and resetting it) for every batch. Elsewhere
        each transaction checks one out, and the pool's pre-ping makes sure it is alive: a
        connection that died while idle must not be discovered at COMMIT, where nobody could
        tell whether it landed.
        """
        connection = self._writer
        if connection is None:
            if self._engine is None:
                raise StorageUnavailableError("storage is not started")
            connection = self._engine.raw_connection()
            if self.single_writer:
                self._writer = connection
        cursor = connection.cursor()
        try:
            yield cursor
            connection.commit()
        except BaseException as exc:
            with contextlib.suppress(self._dbapi.Error):
                connection.rollback()
            if isinstance(exc, self._dbapi.Error) and self._dialect.is_disconnect(
                exc, connection.dbapi_connection, cursor
            ):
                # Gone: the pool opens a new one next time, as Core does for its statements.
                connection.invalidate(exc)
                self._writer = None
            raise
        finally:
            cursor.close()
            if connection is not self._writer:
                connection.close()  # back to the pool

    def _save_batch(self, commits: Sequence[Commit]) -> list[Exception | None]:
        try:
            with self._transaction() as cursor:
                results, rows = self._check_order(cursor, commits)
                if rows:
                    cursor.executemany(self._insert_sql.sql, self._insert_sql.many(rows))
            return results
        except self._dbapi.IntegrityError:
            # Another process inserted one of these versions first, and the whole transaction
            # was rolled back. Alone, the commit lost; in a batch, each commit is tried in a
            # transaction of its own, so every one gets its exact answer.
            if len(commits) == 1:
                return [self._ordering_error_after_race(commits[0])]
            return [self._save_alone(commit) for commit in commits]
        except (self._dbapi.Error, DBAPIError) as exc:
            error = _unavailable(exc)
            return [error for _ in commits]

    def _maxes(self, count: int) -> _Compiled:
        """One row holding the newest version of each of ``count`` keys.

        A scalar ``max(version)`` per key is answered from the primary key's index; a single
        ``GROUP BY name`` over ``name IN (...)`` would read every version of every key.
        """
        compiled = self._maxes_statements.get(count)
        if compiled is None:
            t = self._table
            names = [f"k{i}" for i in range(count)]
            statement = sa.select(
                *(
                    sa.select(sa.func.max(t.c.version))
                    .where(t.c.name == sa.bindparam(name))
                    .scalar_subquery()
                    for name in names
                )
            )
            compiled = _Compiled(statement, self._dialect, names)
            self._maxes_statements[count] = compiled
        return compiled

    def _check_order(
        self, cursor: DBAPICursor, commits: Sequence[Commit]
    ) -> tuple[list[Exception | None], list[tuple[object, ...]]]:
        keys = list(dict.fromkeys(commit.key for commit in commits))
        maxes = self._maxes(len(keys))
        cursor.execute(maxes.sql, maxes.one(tuple(self._bind_key(key) for key in keys)))
        newest = cursor.fetchone()
        assert newest is not None  # a SELECT without FROM gives one row
        heads = {key: version for key, version in zip(keys, newest, strict=True) if version}
        results: list[Exception | None] = []
        rows: list[tuple[object, ...]] = []
        for commit in commits:
            expected = heads.get(commit.key, 0) + 1
            if commit.version != expected:
                results.append(CommitOrderingError(commit.key, expected, commit.version))
                continue
            heads[commit.key] = commit.version
            rows.append(self._row(commit))
            results.append(None)
        return results, rows

    def _save_alone(self, commit: Commit) -> Exception | None:
        try:
            with self._transaction() as cursor:
                results, rows = self._check_order(cursor, [commit])
                if rows:
                    cursor.executemany(self._insert_sql.sql, self._insert_sql.many(rows))
                return results[0]
        except self._dbapi.IntegrityError:
            return self._ordering_error_after_race(commit)
        except (self._dbapi.Error, DBAPIError) as exc:
            return _unavailable(exc)

    def _ordering_error_after_race(self, commit: Commit) -> Exception:
        """Another writer inserted this version first: report what it left as the head."""
        try:
            newest = self.head_version(commit.key)
        except StorageUnavailableError as exc:
            return exc
        return CommitOrderingError(commit.key, (newest or 0) + 1, commit.version)


class _Compiled:
    """A Core statement compiled once for a dialect: the SQL the driver runs, and its
    parameters in the driver's form (a tuple in the statement's order, or a dict by name)."""

    __slots__ = ("names", "positional", "sql")

    def __init__(
        self, statement: sa.ClauseElement, dialect: sa.Dialect, names: Sequence[str]
    ) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(names))
        assert isinstance(compiled, SQLCompiler)
        self.sql = compiled.string
        self.names = tuple(names)
        self.positional = compiled.positional
        if self.positional and tuple(compiled.positiontup or ()) != self.names:
            raise AssertionError(f"parameters out of order: {compiled.positiontup} {names}")

    def one(self, values: tuple[object, ...]) -> tuple[object, ...] | dict[str, object]:
        """The parameters for ``values``, given in ``names`` order."""
        return values if self.positional else dict(zip(self.names, values, strict=True))

    def many(
        self, rows: list[tuple[object, ...]]
    ) -> list[tuple[object, ...]] | list[dict[str, object]]:
        if self.positional:
            return rows
        return [dict(zip(self.names, row, strict=True)) for row in rows]


def _text(name: str | bytes) -> str:
    # MySQL's VARBINARY name column comes back as bytes.
    return name.decode("utf-8") if isinstance(name, bytes | bytearray) else name


def _unavailable(exc: Exception) -> StorageUnavailableError:
    """The error for a database that did not answer, with the driver's first line (for the log);
    ``exc`` is Core's error or the driver's own."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    reason = (str(orig).strip().splitlines() or [""])[0] if orig else str(exc)
    return StorageUnavailableError(f"database unavailable: {reason}")
