"""Faults under load, in the spirit of etcd's robustness tests, scaled to this project.

One PostgreSQL, one ZooKeeper and two ``rainer serve --zookeeper`` on that database, all real
processes. Writers race on a few keys through both servers (read the head, commit head+1, some
tombstones; 409s are part of the game) while readers read heads from both. Meanwhile the servers
are killed with SIGKILL and restarted on their ports, PostgreSQL is restarted (cleanly and by a
crash, in turn) and ZooKeeper is stopped and started again with its data (once with a server
stopped by SIGTERM while it is away). Every request and its answer is recorded; afterwards the
records and the journal, read straight from PostgreSQL, are checked against what the README and
docs/zookeeper.md promise (fault_checks.py says exactly what), and the cluster must converge:
database, ZooKeeper and both mirrors agree on every key.

The summary is printed (``pytest -s`` or ``-rP`` shows it when the test passes) and written, with
every record (``records.jsonl``) and both servers' logs, to the test's temporary folder.
``RAINER_FAULT_SECONDS`` (default 36) sets how long the traffic runs and ``RAINER_FAULT_SEED``
the workload's seed.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_checks import (
    Check,
    Checker,
    Row,
    faults_table,
    final_state_problems,
    heads_of,
    operations_table,
    read_journal,
)
from fault_run import (
    CLEAN_STOP_SECONDS,
    PUBLISH_PERIOD,
    RECOVERY_TIMEOUT,
    SERVER_NAMES,
    SESSION_TIMEOUT,
    TABLE,
    ZK_PATH,
    Cluster,
    FaultInjector,
    Record,
    Workload,
    request,
    wait_for,
)

import harness
from harness.postgres import PostgresServer
from harness.zookeeper import ZooKeeperServer

pytestmark = [pytest.mark.postgresql, pytest.mark.zookeeper]

KEYS = [f"fault-{index}" for index in range(4)]
WRITERS = 6
READERS = 2
SEED = int(os.environ.get("RAINER_FAULT_SEED", "1729"))
TRAFFIC_SECONDS = float(os.environ.get("RAINER_FAULT_SECONDS", "36"))
#: After the traffic: how long the auto-publisher and the mirrors get to agree with the journal.
#: A few periods (each up to 1.2 x PUBLISH_PERIOD) and a lost session's worth of time.
CONVERGE_TIMEOUT = 5 * PUBLISH_PERIOD + 3 * SESSION_TIMEOUT


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    harness.require(PostgresServer)
    harness.require(ZooKeeperServer)
    found = Cluster()
    try:
        found.start()
        yield found
    finally:
        found.close()


def test_faults_lose_nothing_and_never_go_back(cluster: Cluster, tmp_path: Path) -> None:
    origin, wall_origin = time.monotonic(), time.time()
    workload = Workload(cluster, KEYS, SEED, WRITERS, READERS)
    injector = FaultInjector(cluster, deadline=origin + TRAFFIC_SECONDS)
    workload.start()
    try:
        injector.run()
        if not injector.problems:
            # The last fault may end early; the traffic still runs its full time.
            time.sleep(max(0.0, origin + TRAFFIC_SECONDS - time.monotonic()))
    finally:
        workload.stop()
    traffic_end = time.monotonic()

    cluster_check = Check("cluster came back after every fault")
    cluster_check.problems += injector.problems
    if not wait_for(cluster.healthy, RECOVERY_TIMEOUT):
        cluster_check.problem("the cluster was not healthy after the traffic stopped")
    cluster_check.count("faults", len(injector.faults))

    # Nothing writes any more: this is the final truth.
    journal, unreadable = read_journal(cluster.dsn, TABLE)
    records = workload.records
    checker = Checker(records, injector.faults, journal, origin, unreadable)
    checks = [cluster_check, *checker.all()]
    checks.append(converge(cluster, journal))
    checks.append(stop_cleanly(cluster))

    write_records(tmp_path / "records.jsonl", records, origin)
    for name in SERVER_NAMES:  # the cluster's folders go when it closes; keep the logs
        shutil.copy(cluster.servers[name].log_path, tmp_path / f"server-{name}.log")
    summary = "\n".join(
        [
            f"== fault run: seed {SEED}, {traffic_end - origin:.1f} s of traffic from "
            f"{time.strftime('%H:%M:%S', time.localtime(wall_origin))}"
            f".{int(wall_origin * 1000) % 1000:03d} (times below are seconds since then), "
            f"{len(KEYS)} keys, {WRITERS} writers, {READERS} readers, servers "
            + ", ".join(f"{n}={cluster.servers[n].url}" for n in SERVER_NAMES),
            f"operations ({len(records)} requests):",
            operations_table(records),
            "faults:",
            faults_table(injector.faults, origin),
            "checks:",
            *(check.report() for check in checks),
            server_log_notes(cluster),
            f"records and server logs: {tmp_path}",
        ]
    )
    print(summary)
    (tmp_path / "summary.txt").write_text(summary + "\n", encoding="utf-8")
    assert not any(check.problems for check in checks), summary


def converge(cluster: Cluster, journal: dict[str, list[Row]]) -> Check:
    """5 (and the end of 4). Wait until ZooKeeper and both servers' mirrors hold the journal's
    heads; report what still differed when the time ran out."""
    from kazoo.client import KazooClient
    from kazoo.exceptions import KazooException, NoNodeError

    check = Check(f"5 database, ZooKeeper and both mirrors agree (within {CONVERGE_TIMEOUT:g} s)")
    heads = heads_of(journal)
    problems: list[str] = []
    client = KazooClient(hosts=cluster.zk.hosts, timeout=SESSION_TIMEOUT)

    def agreed() -> bool:
        try:
            children = client.get_children(f"{ZK_PATH}/data")
            nodes: dict[str, bytes | None] = {}
            for key in heads:
                try:
                    nodes[key] = client.get(f"{ZK_PATH}/data/{key}")[0]
                except NoNodeError:
                    nodes[key] = None
        except KazooException as exc:
            problems[:] = [f"reading ZooKeeper failed: {exc!r}"]
            return False
        answers = {}
        listings = {}
        for name in SERVER_NAMES:
            diary = cluster.diary(name)
            answers[name] = {key: _get(f"{diary}/{key}") for key in heads}
            status, _headers, body = _get(diary)
            listings[name] = json.loads(body) if status == 200 else None
        problems[:] = final_state_problems(heads, children, nodes, answers, listings)
        return not problems

    began = time.monotonic()
    try:
        client.start(timeout=30)
        if wait_for(agreed, CONVERGE_TIMEOUT, interval=0.2):
            check.count("keys", len(heads))
            check.count("ms to converge", round((time.monotonic() - began) * 1000))
        else:
            check.problems += problems
    except Exception as exc:  # a ZooKeeper that is gone: a finding, not a crash of the test
        check.problem(f"could not compare the final state: {exc!r}")
    finally:
        client.stop()
        client.close()
    return check


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        return request("GET", url, timeout=10)
    except (OSError, http.client.HTTPException) as exc:
        return 0, {}, repr(exc).encode()


def stop_cleanly(cluster: Cluster) -> Check:
    """SIGTERM ends each server with status 0 in time (a hung shutdown is a bug)."""
    check = Check("6 servers stop cleanly on SIGTERM")
    for name, (code, seconds) in cluster.stop_servers().items():
        check.count(f"{name}: ms to stop", round(seconds * 1000))
        if code != 0 or seconds > CLEAN_STOP_SECONDS:
            check.problem(
                f"server {name} exited with {code} after {seconds:.1f} s (SIGKILL after 20 s "
                f"gives -9)\n{cluster.servers[name].log_tail(20)}"
            )
    return check


def server_log_notes(cluster: Cluster) -> str:
    """Tracebacks and errors the servers logged (all their processes): context, not a check."""
    lines = ["server logs (every process of each server):"]
    for name in SERVER_NAMES:
        text = cluster.servers[name].log_text()
        errors = sum(" ERROR " in line for line in text.splitlines())
        lines.append(
            f"  {name}: {text.count('Traceback')} tracebacks, {errors} ERROR lines, "
            f"{text.count('=== ')} starts"
        )
    return "\n".join(lines)


def write_records(path: Path, records: list[Record], origin: float) -> None:
    with path.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record.as_json(origin)) + "\n")
