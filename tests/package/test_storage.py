"""Storages against the contract, and what only SQL storage promises."""

from __future__ import annotations

import contextlib

import pytest
import sqlalchemy as sa
from storage_contract import StorageContract, make_commit

from rainer.errors import StorageUnavailableError
from rainer.storage import HeadCache, MemoryStorage, open_storage
from rainer.storage.sql import SqlStorage, database_url


class TestMemoryStorage(StorageContract):
    @pytest.fixture
    def storage(self):
        storage = MemoryStorage()
        storage.start()
        yield storage
        storage.stop()


class TestSqlStorage(StorageContract):
    @pytest.fixture
    def storage(self, sql_storage):
        return sql_storage


class TestHeadCacheOnSqlite(StorageContract):
    @pytest.fixture
    def storage(self, tmp_path):
        storage = HeadCache(SqlStorage(f"sqlite:///{tmp_path / 'cached.db'}"))
        storage.start()
        yield storage
        storage.stop()


def _count_selects(engine, action) -> int:
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    return len(statements)


def test_heads_come_from_one_query(sql_storage):
    for key in ("a", "b", "c", "d"):
        sql_storage.save(make_commit(key, 1))
        sql_storage.save(make_commit(key, 2))
    engine = sql_storage._reader
    assert _count_selects(engine, sql_storage.heads) == 1
    assert _count_selects(engine, sql_storage.head_infos) == 1


def test_stored_rows_have_the_original_form(sql_storage):
    commit = make_commit("k", 1, b"payload")
    sql_storage.save(commit)
    sql_storage.save(make_commit("k", 2, None))
    with sql_storage._engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT name, version, payload, is_empty FROM rainer ORDER BY version")
        ).all()
    names = [row[0].decode() if isinstance(row[0], bytes) else row[0] for row in rows]
    assert names == ["k", "k"]
    assert [(row[1], row[3]) for row in rows] == [(1, 0), (2, 1)]
    assert bytes(rows[0][2]) == commit.encode()


def test_an_existing_table_without_is_empty_still_works(database_url):
    engine = sa.create_engine(database_url_for_driver(database_url))
    name_type = "VARBINARY(255)" if engine.dialect.name == "mysql" else "VARCHAR(255)"
    blob = {"mysql": "MEDIUMBLOB", "postgresql": "BYTEA"}.get(engine.dialect.name, "BLOB")
    old = make_commit("legacy", 1, b"from the JVM")
    tomb = make_commit("legacy", 2, None)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                f"CREATE TABLE old_rainer (name {name_type} NOT NULL, version INT NOT NULL, "
                f"payload {blob} NOT NULL, PRIMARY KEY (name, version))"
            )
        )
        for commit in (old, tomb):
            connection.execute(
                sa.text("INSERT INTO old_rainer (name, version, payload) VALUES (:n, :v, :p)"),
                {"n": commit.key, "v": commit.version, "p": commit.encode()},
            )
    engine.dispose()
    storage = SqlStorage(database_url, table="old_rainer")
    storage.start()
    try:
        assert storage.get("legacy", 1) == old
        assert storage.heads() == {"legacy": tomb}
        assert storage.head_infos(include_empty=False) == []
        storage.save(make_commit("legacy", 3, b"back"))
        assert storage.head_infos(include_empty=False) == [storage.get("legacy").info()]
    finally:
        storage.stop()


def database_url_for_driver(url: str) -> str:
    return database_url(url).render_as_string(hide_password=False)


def test_table_name_is_configurable_and_created_when_missing(database_url):
    storage = SqlStorage(database_url, table="custom_diary")
    storage.start()
    try:
        storage.save(make_commit("k", 1))
        assert sa.inspect(storage._engine).has_table("custom_diary")
    finally:
        storage.stop()


def test_sqlite_is_durable_wal_with_full_sync(tmp_path):
    storage = SqlStorage(f"sqlite:///{tmp_path / 'd.db'}")
    storage.start()
    try:
        with storage._engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    finally:
        storage.stop()


def test_commits_survive_a_restart(database_url):
    first = SqlStorage(database_url)
    first.start()
    first.save(make_commit("k", 1, b"kept"))
    first.stop()
    second = SqlStorage(database_url)
    second.start()
    try:
        assert second.get("k").payload == b"kept"
    finally:
        second.stop()


def test_sqlite_file_is_refused_to_a_second_writer(tmp_path):
    url = f"sqlite:///{tmp_path / 'one.db'}"
    owner = SqlStorage(url)
    owner.start()
    try:
        with pytest.raises(StorageUnavailableError, match="another process"):
            SqlStorage(url).start()
    finally:
        owner.stop()
    again = SqlStorage(url)
    again.start()
    again.stop()


def test_unreachable_database_is_a_clear_error():
    storage = SqlStorage("postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(StorageUnavailableError, match="database unavailable"):
        storage.start()


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg"),
        ("postgres://u@h/db", "postgresql+psycopg"),
        ("mysql://u@h/db", "mysql+pymysql"),
        ("mariadb://u@h/db", "mysql+pymysql"),
        ("sqlite:///x.db", "sqlite"),
    ],
)
def test_database_urls_pick_our_drivers(url, driver):
    assert database_url(url).drivername == driver


@pytest.mark.parametrize("url", ["oracle://u@h/db", "not a url", "redis://h"])
def test_unsupported_database_urls_are_refused(url):
    with pytest.raises(ValueError):
        open_storage(url).start()


def test_reads_survive_a_database_restart(postgres_server, request, tmp_path):
    """Reads run without a pre-ping: a connection the server closed is retried once."""
    from conftest import fresh_database_url

    storage = SqlStorage(fresh_database_url("postgresql", request, tmp_path))
    storage.start()
    try:
        storage.save(make_commit("k", 1, b"before"))
        assert storage.get("k").payload == b"before"
        postgres_server.stop()
        postgres_server.start()
        assert storage.get("k").payload == b"before"
        storage.save(make_commit("k", 2, b"after"))
        assert storage.get("k").payload == b"after"
    finally:
        storage.stop()


def test_ordering_check_reads_the_head_not_the_history(sql_storage, monkeypatch):
    """Long histories must not slow commits: the check asks each key's max by index."""
    sql_storage.save_batch([make_commit("long", v) for v in range(1, 201)])
    statements: list[str] = []

    class Recording:
        """The write path's driver cursor, noting each statement it runs."""

        def __init__(self, cursor):
            self._cursor = cursor

        def execute(self, statement, *args):
            statements.append(statement)
            return self._cursor.execute(statement, *args)

        def executemany(self, statement, *args):
            statements.append(statement)
            return self._cursor.executemany(statement, *args)

        def __getattr__(self, name):
            return getattr(self._cursor, name)

    transaction = sql_storage._transaction

    @contextlib.contextmanager
    def recorded():
        with transaction() as cursor:
            yield Recording(cursor)

    monkeypatch.setattr(sql_storage, "_transaction", recorded)
    assert sql_storage.save_batch([make_commit("long", 201), make_commit("new", 1)]) == [
        None,
        None,
    ]
    check = next(s for s in statements if "max(" in s.lower())
    assert "group by" not in check.lower()
    assert check.lower().count("max(") == 2
