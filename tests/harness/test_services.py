"""Self-check of the test service launchers (tests/harness): each real service starts on
loopback, does one real operation and stops without leaving anything behind. (The benchmarks'
anchors, nginx and etcd, are checked beside their launchers in bench/anchors.)"""

from __future__ import annotations

import shutil

import pytest

from harness import (
    MariaDBServer,
    PostgresServer,
    RainerServer,
    ZooKeeperServer,
    free_port,
    http_request,
    left_nothing_behind,
    require,
    wait_for_port,
)
from harness.ports import port_is_open


def test_ports() -> None:
    port = free_port()
    assert 0 < port < 65536
    assert not port_is_open("127.0.0.1", port)
    with pytest.raises(TimeoutError):
        wait_for_port("127.0.0.1", port, timeout=0.1)


@pytest.mark.postgresql
def test_postgres() -> None:
    require(PostgresServer)
    psycopg = pytest.importorskip("psycopg")
    with PostgresServer() as pg:
        assert pg.url == f"postgresql+psycopg://rainer@127.0.0.1:{pg.port}/rainer"
        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            assert conn.execute("SHOW fsync").fetchone() == ("on",)
            conn.execute("CREATE TABLE t (k text PRIMARY KEY, v int)")
            conn.execute("INSERT INTO t VALUES ('a', 1)")
            assert conn.execute("SELECT v FROM t WHERE k = 'a'").fetchone() == (1,)
        other = pg.create_database("fresh")
        assert other.endswith(f":{pg.port}/fresh")
        with psycopg.connect(pg.dsn_for("fresh")) as conn:
            assert conn.execute("SELECT count(*) FROM pg_tables WHERE tablename = 't'").fetchone()
        pid, folder = pg.pid, pg.tmpdir
    assert left_nothing_behind(pid, folder)


@pytest.mark.mariadb
def test_mariadb() -> None:
    require(MariaDBServer)
    pymysql = pytest.importorskip("pymysql")
    with MariaDBServer() as db:
        assert db.url == f"mysql+pymysql://root@127.0.0.1:{db.port}/rainer"
        conn = pymysql.connect(host=db.host, port=db.port, user="root", database="rainer")
        try:
            with conn.cursor() as cur:
                cur.execute("CREATE TABLE t (k VARCHAR(10) PRIMARY KEY, v INT) ENGINE=InnoDB")
                cur.execute("INSERT INTO t VALUES ('a', 1)")
                conn.commit()
                cur.execute("SELECT v FROM t WHERE k = 'a'")
                assert cur.fetchone() == (1,)
                cur.execute("SELECT @@innodb_flush_log_at_trx_commit")
                assert cur.fetchone() == (1,)
        finally:
            conn.close()
        assert db.create_database("fresh").endswith(f":{db.port}/fresh")
        pid, folder = db.pid, db.tmpdir
    assert left_nothing_behind(pid, folder)


@pytest.mark.zookeeper
def test_zookeeper_survives_stop_and_start() -> None:
    require(ZooKeeperServer)
    kazoo_client = pytest.importorskip("kazoo.client")
    with ZooKeeperServer() as zk:
        port = zk.port
        client = kazoo_client.KazooClient(hosts=zk.hosts, timeout=2.0)
        client.start(timeout=10)
        try:
            client.create("/harness/node", b"hello", makepath=True)
            assert client.get("/harness/node")[0] == b"hello"
        finally:
            client.stop()
            client.close()

        zk.stop()
        assert not port_is_open(zk.host, port)
        zk.start()
        assert zk.port == port
        assert zk.four_letter_word("ruok") == "imok"

        client = kazoo_client.KazooClient(hosts=zk.hosts, timeout=2.0)
        client.start(timeout=10)
        try:
            assert client.get("/harness/node")[0] == b"hello"  # same data dir
        finally:
            client.stop()
            client.close()
        pid, folder = zk.pid, zk.tmpdir
    assert left_nothing_behind(pid, folder)


def test_rainer_server_restarts_on_its_data() -> None:
    require(RainerServer)
    with RainerServer() as server:
        assert server.diary_url == server.url + "/diary"
        status, _ = http_request(
            server.diary_url + "/harness/1", b"hello", headers={"X-Rainer-Author": "harness"}
        )
        assert status == 200
        server.restart()  # same port, same SQLite file in the temporary folder
        assert http_request(server.diary_url + "/harness") == (200, b"hello")
        assert isinstance(server.stop(), int)
        assert "Traceback" not in server.log_text()
        pid, folder = server.pid, server.tmpdir
        assert pid is None
    assert not folder.exists()


def test_failed_start_keeps_the_log() -> None:
    taken = RainerServer()
    with taken:
        clash = RainerServer(port=taken.port)
        with pytest.raises(Exception, match="temporary folder kept") as failure:
            clash.start()
        assert "already in use" in str(failure.value)
        kept = clash.tmpdir
        clash.close()
        assert kept.is_dir()  # kept for a post-mortem
        shutil.rmtree(kept)
