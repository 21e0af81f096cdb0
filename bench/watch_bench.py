"""``make bench``, watch part (issue 12): how fast blocking reads wake, and what idle ones cost.

A watcher here is ``GET /diary/KEY?index=N&wait=5m`` on a connection of its own: the server
holds the request until KEY's newest version is above N, then answers with the head. The bench
measures, each part on servers it starts itself on loopback:

1. Wake latency on one server (SQLite): N watchers all on ONE key (so one commit wakes all N),
   N = 1, 100 and 10,000; each round the watchers ask with the current version, the bench waits
   until the server has taken every request in, commits the next version on another connection
   and times each watcher's answer from the commit's 200 (and from sending the commit).
2. The same across servers: two servers on one PostgreSQL with ZooKeeper; the commit goes
   through A, the watchers wait on B, which hears of it through its ZooKeeper mirror.
3. The anchor: etcd 3.4's watch through its gRPC gateway (``POST /v3/watch``, a streamed
   answer per watcher), woken by ``POST /v3/kv/put``, for 1 and 100 watchers.
4. Idle watchers (on a fresh SQLite server): its RSS before and with 10,000 watchers waiting,
   spread over 100 keys that nobody commits to; one watcher woken on another key meanwhile; and
   head-read throughput (wrk, bench/http_bench.py's settings) with those 10,000 attached against
   none, round-robin. Last, 10,000 watchers that hang up without an answer: how many requests
   /healthz counts waiting 2 s later, and what the next commit of their key costs.
5. ``--max-watchers``: a server started with ``--max-connections 1000`` (so at most 900
   requests wait at once), asked by 1,000 watchers of one key: how many are refused at once
   (503) and how many wait; what a head read, /healthz and a commit get meanwhile; and how soon
   the server lets go of the waiting requests once their clients hang up.

Holding 10,000 requests at once takes an asyncio client (bench/watch_client.py, raw sockets)
and more open files than the usual 1,024: the bench raises its own limit to the hard limit.
The servers run with ``--max-connections 12000``, which is the default: room for 10,000
watchers, wrk's connections and the bench's own. 10,000 watchers are exactly the default
``--max-watchers``, so the idle part, which wakes one more watcher while its 10,000 idle ones
wait, starts its server with ``--max-watchers 10001``.

Prints Markdown tables for docs/benchmarks.md; exit status 1 when a watcher was not woken, got
an unexpected answer (a 503 included, except to the watchers beyond ``--max-watchers`` in part
5) or lost its connection, or a commit, a head read or a health check was not a 200 while
requests waited, or (part 5) the server still counted hung-up watchers as waiting 15 s on.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loads
import targets
import watch_client as client
from anchors import EtcdServer
from http_bench import machine, progress
from loads import Load, Settings, percentile
from targets import harness
from watch_client import Answer, EtcdWatch, Failed, HttpConnection

MAX_CONNECTIONS = 12_000  # the servers' --max-connections (the default): 10,000 watchers + wrk
WAIT = "5m"  # every watcher's wait: far longer than any round, so none ends by timing out
PROBE_CONNECTIONS = 1000  # limit_probe's server: --max-connections, so --max-watchers 900
HUNG_UP_SECONDS = 15.0  # how long limit_probe gives the server to let go of hung-up watchers
TOO_MANY_WATCHERS = b"Too many watchers"  # the start of the 503 beyond --max-watchers
WATCHED = "watched"  # the key the woken watchers wait on
IDLE_KEYS = 100  # idle watchers are spread over this many keys
AUTHOR = [("X-Rainer-Author", "bench"), ("Content-Type", "text/plain")]
ANSWER_TIMEOUT = 60.0  # seconds a woken watcher may take before it counts as not woken
ATTACH_TIMEOUT = 180.0  # seconds the server may take to take every watcher's request in


@dataclass(frozen=True)
class Plan:
    """Watcher counts and rounds; ``--quick`` shrinks the rounds to a smoke test."""

    many: int = 10_000
    one_rounds: int = 200
    hundred_rounds: int = 50
    many_rounds: int = 5
    anchor_rounds: tuple[tuple[int, int], ...] = ((1, 200), (100, 50))  # (watchers, rounds)
    lone_rounds: int = 50  # one watcher woken while `many` others idle

    def counts(self) -> list[int]:
        return sorted({1, 100, self.many})

    def rounds_for(self, watchers: int) -> int:
        return {1: self.one_rounds, 100: self.hundred_rounds}.get(watchers, self.many_rounds)


@dataclass
class Series:
    """One wake-latency measurement: ``watchers`` woken by one commit, ``rounds`` times."""

    setup: str
    watchers: int
    rounds: int = 0
    from_commit: list[float] = field(default_factory=list)  # ms after the commit's 200
    from_send: list[float] = field(default_factory=list)  # ms after sending the commit
    commit_ms: list[float] = field(default_factory=list)  # the commit's own latency
    server_ticks: int = 0  # CPU ticks of the server processes over the rounds
    client_seconds: float = 0.0  # CPU of this process while the answers came in
    others: list[float] = field(default_factory=list)  # other processes' CPU share, whole series
    attach_seconds: list[float] = field(default_factory=list)  # until every request was in
    reconnects: int = 0  # watcher connections the server had closed between two rounds

    @property
    def answers(self) -> int:
        return len(self.from_commit)


class Run:
    """What the whole run collects besides the series: failures, the ZooKeeper version, the
    --max-watchers probe."""

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.zookeeper_version = ""
        self.limit: LimitProbe | None = None
        self.cpu_us: dict[str, list[float]] = {}  # server CPU per head read, per wrk load

    def fail(self, what: str) -> None:
        if len(self.failures) < 1000:
            self.failures.append(what)
        progress(f"  FAILED: {what}")


# -- the machine -------------------------------------------------------------------------------


def raise_open_files() -> int:
    """Lift this process's soft open-file limit to its hard limit: 10,000 watchers are 10,000
    sockets. The servers and wrk, started from here, inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = 1 << 20 if hard == resource.RLIM_INFINITY else hard
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process, in KiB."""
    found = {}
    with open(f"/proc/{pid}/status") as file:
        for line in file:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(value.split()[0])
    return found["VmRSS"], found["VmHWM"]


def unread_on_port(port: int) -> int:
    """Bytes waiting in the kernel for the process listening on ``port``: requests it has not
    read yet on its connections, plus connections not yet accepted (a listening socket's
    rx_queue is its accept backlog). From /proc/net/tcp."""
    wanted = f":{port:04X}"
    waiting = 0
    with open("/proc/net/tcp") as file:
        next(file)
        for line in file:
            fields = line.split(None, 5)
            if fields[1].endswith(wanted):
                waiting += int(fields[4].split(":")[1], 16)
    return waiting


class CpuWindow:
    """Share of the machine's CPU used by processes other than ``pids`` (and their children)
    and this process, between ``start()`` and ``stop()``."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids

    def start(self) -> None:
        self.machine = loads._machine_ticks()
        self.servers = loads._tree_ticks(self.pids)
        self.own = _own_ticks()

    def stop(self) -> tuple[float, int]:
        """(others' share, the servers' ticks)."""
        busy, total = loads._machine_ticks()
        servers = loads._tree_ticks(self.pids) - self.servers
        own = _own_ticks() - self.own
        others = (busy - self.machine[0] - servers - own) / max(1, total - self.machine[1])
        return max(0.0, others), servers


def _own_ticks() -> float:
    times = os.times()
    return (times.user + times.system + times.children_user + times.children_system) * (
        os.sysconf("SC_CLK_TCK")
    )


async def taken_in(port: int, pids: list[int], run: Run, what: str) -> float:
    """Wait until the server on ``port`` has read every request sent to it and gone idle, so
    that every watcher is registered before the commit. Seconds it took.

    Idle alone could be fooled on a busy machine (a server that gets no CPU looks idle), and
    read alone leaves the last requests a moment to reach their wait; both together do not."""
    began = time.monotonic()
    await asyncio.sleep(0.02)
    before = loads._tree_ticks(pids)
    while time.monotonic() - began < ATTACH_TIMEOUT:
        await asyncio.sleep(0.05)
        now = loads._tree_ticks(pids)
        if unread_on_port(port) == 0 and now - before <= 1:
            return time.monotonic() - began
        before = now
    run.fail(f"{what}: the server had not taken every request in after {ATTACH_TIMEOUT:g} s")
    return time.monotonic() - began


# -- Rainer's watchers -------------------------------------------------------------------------


class Watchers:
    """``count`` connections to one server, each asking ``GET /diary/KEY?index=N&wait=5m``."""

    def __init__(
        self, server: harness.RainerServer, keys: list[str], count: int, wait: str = WAIT
    ) -> None:
        self.host, self.port = server.host, server.port
        self.wait = wait
        self.keys = keys  # watcher i waits on keys[i % len(keys)]
        self.count = count
        self.connections: list[HttpConnection] = []
        self.futures: list[asyncio.Future[Answer]] = []

    async def open(self) -> None:
        self.connections = await client.connect_many(
            self.host, self.port, self.count, HttpConnection
        )

    async def ask(self, index: int | dict[str, int]) -> int:
        """Every watcher asks, on its connection, for its key's version after ``index`` (one
        number, or one per key); a connection the server closed meanwhile (its keep-alive
        timeout) is opened again first. Returns how many were."""
        closed = [i for i, connection in enumerate(self.connections) if connection.closed]
        if closed:
            fresh = await client.connect_many(self.host, self.port, len(closed), HttpConnection)
            for i, connection in zip(closed, fresh, strict=True):
                self.connections[i] = connection
        self.futures = []
        for i, connection in enumerate(self.connections):
            key = self.keys[i % len(self.keys)]
            after = index if isinstance(index, int) else index[key]
            path = f"/diary/{key}?index={after}&wait={self.wait}"
            self.futures.append(connection.request(client.get(self.host, self.port, path)))
        return len(closed)

    def early(self) -> list[Answer | BaseException]:
        """Answers (or errors) that came before anything was committed."""
        found: list[Answer | BaseException] = []
        for future in self.futures:
            if future.done():
                error = future.exception()
                found.append(error if error is not None else future.result())
        return found

    def hang_up(self) -> None:
        """Close every connection without waiting for its answer."""
        for future in self.futures:
            future.cancel()  # nobody will read it: keep asyncio from warning about it
        for connection in self.connections:
            connection.close()
        self.connections, self.futures = [], []


async def commit(server: harness.RainerServer, key: str, version: int) -> tuple[float, Answer]:
    """POST KEY/VERSION on a fresh connection (a kept one would be closed by the server's
    keep-alive timeout between rounds); (when it was sent, the answer)."""
    (connection,) = await client.connect_many(server.host, server.port, 1, HttpConnection)
    try:
        request = client.post(
            server.host, server.port, f"/diary/{key}/{version}", targets.PAYLOAD, AUTHOR
        )
        sent = time.perf_counter()
        answer = await client.bounded(connection.request(request), 30, f"commit {key}/{version}")
    finally:
        connection.close()
    if answer.status != 200:
        raise Failed(f"commit {key}/{version} answered {answer.status}: {answer.body[:200]!r}")
    return sent, answer


async def head_version(server: harness.RainerServer, key: str) -> int | None:
    (connection,) = await client.connect_many(server.host, server.port, 1, HttpConnection)
    try:
        request = client.get(server.host, server.port, f"/diary/{key}")
        answer = await client.bounded(connection.request(request), 30, f"GET {key}")
    finally:
        connection.close()
    version = answer.header("x-rainer-version")
    return int(version) if answer.status == 200 and version else None


async def wait_for_version(server: harness.RainerServer, key: str, version: int) -> None:
    """Until ``server`` answers ``key`` at ``version`` (a mirror catching up)."""
    deadline = time.monotonic() + 30
    while await head_version(server, key) != version:
        if time.monotonic() > deadline:
            raise Failed(f"{server.url} did not serve {key}/{version} within 30 s")
        await asyncio.sleep(0.02)


def judge(answers: list[Answer], problems: list[str], version: int, run: Run, what: str) -> None:
    for problem in sorted(set(problems)):
        run.fail(f"{what}: {problems.count(problem)} watchers: {problem}")
    wrong = [a for a in answers if a.status != 200 or a.header("x-rainer-version") != str(version)]
    if wrong:
        sample = wrong[0]
        run.fail(
            f"{what}: {len(wrong)} answers were not version {version} with 200, e.g. "
            f"{sample.status} version {sample.header('x-rainer-version')}"
        )


async def wake_rounds(
    series: Series,
    watchers: Watchers,
    writer: harness.RainerServer,
    reader: harness.RainerServer,
    pids: list[int],
    rounds: int,
    run: Run,
) -> None:
    """``rounds`` times: every watcher asks for the version after the current one, the server
    (``reader``) takes every request in, one commit through ``writer`` wakes them all."""
    key = watchers.keys[0]
    assert len(watchers.keys) == 1
    version = await head_version(writer, key) or 0
    await wait_for_version(reader, key, version)
    window = CpuWindow(pids)
    # Other processes' share over the whole series: a round of one watcher lasts a few ms,
    # far too short for /proc's 10 ms ticks.
    whole = CpuWindow(pids)
    whole.start()
    for n in range(rounds):
        what = f"{series.setup}, {series.watchers} watchers, round {n + 1}"
        series.reconnects += await watchers.ask(version)
        assert reader.pid is not None
        series.attach_seconds.append(await taken_in(reader.port, [reader.pid], run, what))
        early = watchers.early()
        if early:
            run.fail(f"{what}: {len(early)} watchers answered before the commit: {early[0]!r}")
        window.start()
        own = time.process_time()
        try:
            sent, answer = await commit(writer, key, version + 1)
        except Failed as exc:
            run.fail(f"{what}: {exc}")
            break
        version += 1
        answers, problems = await client.gather_answers(watchers.futures, ANSWER_TIMEOUT)
        series.client_seconds += time.process_time() - own
        series.server_ticks += window.stop()[1]
        judge(answers, problems, version, run, what)
        series.rounds += 1
        series.commit_ms.append((answer.at - sent) * 1000)
        for woken in answers:
            series.from_commit.append((woken.at - answer.at) * 1000)
            series.from_send.append((woken.at - sent) * 1000)
    series.others.append(whole.stop()[0])


async def wake_series(
    setup: str,
    writer: harness.RainerServer,
    reader: harness.RainerServer,
    pids: list[int],
    plan: Plan,
    run: Run,
) -> list[Series]:
    """Wake latency for each count of watchers, all on WATCHED, on ``reader``."""
    found = []
    for count in plan.counts():
        series = Series(setup, count)
        progress(f"{setup}: {count:,} watchers, {plan.rounds_for(count)} rounds")
        watchers = Watchers(reader, [WATCHED], count)
        try:
            await watchers.open()
            await wake_rounds(series, watchers, writer, reader, pids, plan.rounds_for(count), run)
        except Failed as exc:
            run.fail(f"{setup}, {count} watchers: {exc}")
        finally:
            watchers.hang_up()
        found.append(series)
        await asyncio.sleep(0.5)  # let the server close the connections before the next count
    return found


# -- the anchor: etcd ----------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def etcd_series(etcd: EtcdServer, plan: Plan, run: Run) -> list[Series]:
    key = WATCHED.encode()
    etcd.put(WATCHED, targets.PAYLOAD)
    body = json.dumps({"key": _b64(key), "value": _b64(targets.PAYLOAD)}).encode()
    found = []
    assert etcd.pid is not None
    for count, rounds in plan.anchor_rounds:
        series = Series("etcd 3.4, POST /v3/watch via the gRPC gateway", count)
        progress(f"etcd anchor: {count} watchers, {rounds} rounds")
        watches: list[EtcdWatch] = await client.connect_many(etcd.host, etcd.port, count, EtcdWatch)
        window = CpuWindow([etcd.pid])
        whole = CpuWindow([etcd.pid])
        whole.start()
        try:
            for watch in watches:
                watch.start(etcd.host, etcd.port, key)
            await client.bounded(
                asyncio.gather(*(watch.created for watch in watches)), 30, "etcd watch creation"
            )
            for n in range(rounds):
                what = f"etcd, {count} watchers, round {n + 1}"
                await asyncio.sleep(0.02)  # a pause like Rainer's rounds have, for fairness
                window.start()
                own = time.process_time()
                (connection,) = await client.connect_many(etcd.host, etcd.port, 1, HttpConnection)
                request = client.post(
                    etcd.host, etcd.port, "/v3/kv/put", body, [("Content-Type", "application/json")]
                )
                sent = time.perf_counter()
                answer = await client.bounded(connection.request(request), 30, "etcd put")
                connection.close()
                if answer.status != 200:
                    run.fail(f"{what}: put answered {answer.status}")
                    break
                revision = client.etcd_revision(answer)
                stamps = [watch.expect(revision) for watch in watches]
                done, late = await asyncio.wait(stamps, timeout=ANSWER_TIMEOUT)
                series.client_seconds += time.process_time() - own
                series.server_ticks += window.stop()[1]
                for stamp in late:
                    stamp.cancel()
                if late:
                    run.fail(f"{what}: {len(late)} watchers saw no event for revision {revision}")
                series.rounds += 1
                series.commit_ms.append((answer.at - sent) * 1000)
                for stamp in done:
                    if stamp.exception() is not None:
                        run.fail(f"{what}: {stamp.exception()}")
                        continue
                    series.from_commit.append((stamp.result() - answer.at) * 1000)
                    series.from_send.append((stamp.result() - sent) * 1000)
        except Failed as exc:
            run.fail(f"etcd, {count} watchers: {exc}")
        finally:
            for watch in watches:
                watch.close()
        series.others.append(whole.stop()[0])
        found.append(series)
    return found


# -- idle watchers: memory, a lone wake, head reads, hang-ups -----------------------------------


@dataclass
class Memory:
    """RSS (KiB) of the server before and with ``count`` idle watchers, in one round."""

    round: int
    count: int
    before: int
    connected: int  # the connections open, no request sent yet
    waiting: int  # every connection with a request waiting
    hwm: int

    def per_watcher(self) -> float:
        return (self.waiting - self.before) / self.count

    def per_connection(self) -> float:
        return (self.connected - self.before) / self.count


@dataclass
class HangUp:
    """What a commit costs on a key whose watchers have hung up, against a key without any."""

    count: int
    rss_waiting: int
    rss_after_hang_up: int
    waiting_after_hang_up: int | None  # /healthz's watchers.waiting 2 s after (None: no answer)
    plain_commit_ms: float
    plain_cpu_ms: float
    orphan_commit_ms: float
    orphan_cpu_ms: float
    again_commit_ms: float  # the next commit of the same key
    again_cpu_ms: float


async def commit_cost(
    server: harness.RainerServer, key: str, version: int, settle: float
) -> tuple[float, float]:
    """(the commit's latency, the server's CPU ms from the commit until ``settle`` s after)."""
    assert server.pid is not None
    before = loads._tree_ticks([server.pid])
    sent, answer = await commit(server, key, version)
    await asyncio.sleep(settle)
    ticks = loads._tree_ticks([server.pid]) - before
    return (answer.at - sent) * 1000, ticks * 1000 / os.sysconf("SC_CLK_TCK")


async def measured_run(
    load: Load, settings: Settings, run: int, cpu_us: dict[str, list[float]]
) -> None:
    """One wrk run of ``load`` (in a thread: the event loop keeps the watchers), and the server's
    CPU microseconds per request during it, which other jobs on the machine hardly move."""
    before = loads._tree_ticks(load.pids)
    result = await asyncio.to_thread(loads.run_wrk, load, settings, run)
    used = loads._tree_ticks(load.pids) - before
    load.results.append(result)
    load.bad += result.bad + result.socket_errors
    if result.requests:
        per = used / os.sysconf("SC_CLK_TCK") / result.requests * 1e6
        cpu_us.setdefault(load.name, []).append(per)


#: What the idle part finds: memory rows, the two wrk loads, the lone wake, the hang-ups.
IdleResult = tuple[list[Memory], list[Load], Series | None, HangUp | None]


async def idle_part(
    settings: Settings, plan: Plan, run: Run, cpu_us: dict[str, list[float]]
) -> IdleResult:
    """A fresh SQLite server: RSS and head reads without and with ``plan.many`` idle watchers,
    round-robin; in the first round also one watcher woken on another key meanwhile; at the
    end, watchers that hang up."""
    args = ["--database", "sqlite:///rainer.db", "--log-level", "warning"]
    # plan.many idle watchers and the lone one woken meanwhile: one more than the default
    # --max-watchers (10,000) when plan.many is 10,000.
    args += ["--max-connections", str(MAX_CONNECTIONS), "--max-watchers", str(plan.many + 1)]
    memory: list[Memory] = []
    idle_keys = [f"idle-{n:03d}" for n in range(IDLE_KEYS)]
    lone = Series(f"SQLite, 1 watcher while {plan.many:,} idle on other keys", 1)
    hang_up: HangUp | None = None
    with harness.RainerServer(args) as server:
        assert server.pid is not None
        pids = [server.pid]
        progress(f"idle watchers: seeding {targets.KEYS} keys and {IDLE_KEYS} idle keys")
        targets.seed_rainer(server.diary_url)
        for key in [*idle_keys, WATCHED]:
            await commit(server, key, 1)
        versions = dict.fromkeys(idle_keys, 1)
        url = f"{server.diary_url}/{targets.READ_KEY}"
        rows = [
            Load("head reads, no watchers", url, pids),
            Load(f"head reads, {plan.many:,} idle watchers attached", url, pids),
        ]
        # Warm-up: wrk on both conditions' URL, and a hundred watchers woken once, so that
        # what the first requests of each kind set up is in the "before" figure.
        if settings.warmup_seconds:
            warm = await asyncio.to_thread(
                loads.run_wrk, rows[0], settings, 0, settings.warmup_seconds
            )
            rows[0].bad += warm.bad + warm.socket_errors
        warm_watchers = Watchers(server, idle_keys, 100)
        await warm_watchers.open()
        await warm_watchers.ask(versions)
        await taken_in(server.port, pids, run, "warm-up watchers")
        for key in idle_keys:
            await commit(server, key, versions[key] + 1)
            versions[key] += 1
        answers, problems = await client.gather_answers(warm_watchers.futures, ANSWER_TIMEOUT)
        judge(answers, problems, 2, run, "warm-up watchers")
        warm_watchers.hang_up()

        for n in range(1, settings.runs + 1):
            progress(f"idle watchers: round {n} of {settings.runs}")
            await measured_run(rows[0], settings, n, cpu_us)
            await asyncio.sleep(0.5)
            before = rss_kib(server.pid)[0]
            idle = Watchers(server, idle_keys, plan.many)
            await idle.open()
            await asyncio.sleep(0.5)
            connected = rss_kib(server.pid)[0]
            await idle.ask(versions)
            await taken_in(server.port, pids, run, f"idle watchers, round {n}")
            waiting, hwm = rss_kib(server.pid)
            memory.append(Memory(n, plan.many, before, connected, waiting, hwm))
            if n == 1:
                progress(f"idle watchers: 1 watcher woken {plan.lone_rounds} times meanwhile")
                one = Watchers(server, [WATCHED], 1)
                await one.open()
                await wake_rounds(lone, one, server, server, pids, plan.lone_rounds, run)
                one.hang_up()
            early = idle.early()
            if early:
                run.fail(f"idle watchers, round {n}: {len(early)} answered early: {early[0]!r}")
            await measured_run(rows[1], settings, n, cpu_us)
            early = idle.early()
            if early:
                run.fail(f"idle watchers, round {n}: {len(early)} answered during wrk")
            # Release them the ordinary way (a commit to every idle key) rather than hanging
            # up: that also checks that every one of them still waited, for the new version.
            for key in idle_keys:
                await commit(server, key, versions[key] + 1)
                versions[key] += 1
            answers, problems = await client.gather_answers(idle.futures, ANSWER_TIMEOUT)
            for key in idle_keys[:1]:  # every idle key is at the same version
                judge(answers, problems, versions[key], run, f"releasing idle watchers {n}")
            idle.hang_up()
            # Closing 10,000 connections keeps the server busy for a moment; the next run
            # without watchers must not pay for it.
            await taken_in(server.port, pids, run, f"closing idle watchers, round {n}")

        progress(f"hung-up watchers: {plan.many:,} on one key close their connections")
        orphan_key = "hung-up"
        await commit(server, orphan_key, 1)
        settle = 3.0
        plain_ms, plain_cpu = await commit_cost(server, "no-watchers", 1, settle)
        gone = Watchers(server, [orphan_key], plan.many)
        await gone.open()
        await gone.ask(1)
        await taken_in(server.port, pids, run, "hung-up watchers")
        rss_waiting = rss_kib(server.pid)[0]
        gone.hang_up()
        await asyncio.sleep(2)
        rss_after = rss_kib(server.pid)[0]
        _, health = await healthz(server)
        waiting_after = health["watchers"]["waiting"] if health else None
        orphan_ms, orphan_cpu = await commit_cost(server, orphan_key, 2, settle)
        again_ms, again_cpu = await commit_cost(server, orphan_key, 3, settle)
        hang_up = HangUp(
            plan.many,
            rss_waiting,
            rss_after,
            waiting_after,
            plain_ms,
            plain_cpu,
            orphan_ms,
            orphan_cpu,
            again_ms,
            again_cpu,
        )
        if not server.running:
            run.fail(server.failure_message("the idle-watcher server died"))
    return memory, rows, lone, hang_up


async def ask_once(server: harness.RainerServer, request: bytes, what: str) -> Answer:
    """One request on a fresh connection, closed after its answer."""
    (connection,) = await client.connect_many(server.host, server.port, 1, HttpConnection)
    try:
        return await client.bounded(connection.request(request), 30, what)
    finally:
        connection.close()


async def healthz(server: harness.RainerServer) -> tuple[Answer, dict[str, Any] | None]:
    """GET /healthz: the answer, and its JSON when it is a 200."""
    request = client.get(server.host, server.port, "/healthz")
    answer = await ask_once(server, request, "GET /healthz")
    return answer, json.loads(answer.body) if answer.status == 200 else None


def refused_watcher(answer: Answer) -> bool:
    """A 503 for being beyond --max-watchers (rather than any other 503)."""
    return answer.status == 503 and answer.body.startswith(TOO_MANY_WATCHERS)


@dataclass(frozen=True)
class Probed:
    """What a head read, /healthz and a commit of another key got in one situation."""

    situation: str
    read: Answer
    health: Answer
    commit: Answer
    waiting: int | None  # /healthz's watchers.waiting (None: it did not answer 200)

    def answers(self) -> tuple[tuple[str, Answer], ...]:
        return (("head read", self.read), ("/healthz", self.health), ("commit", self.commit))


@dataclass
class LimitProbe:
    """limit_probe's findings."""

    max_connections: int
    asked: int  # watchers that asked at once
    limit: int | None = None  # /healthz's watchers.limit
    refused: int = 0  # answered 503 "Too many watchers" at once
    waiting: int | None = None  # /healthz's watchers.waiting once the refused ones had gone
    refused_closed_s: float | None = None  # from the last 503 until the server closed them all
    drained_s: float | None = None  # from the hang-up until /healthz counted 0 waiting
    rows: list[Probed] = field(default_factory=list)


async def limit_probe(run: Run) -> LimitProbe:
    """Does --max-watchers keep waiting requests from taking every connection, and does the
    server let go of them when their clients hang up? A server with --max-connections 1000
    (so the default --max-watchers 900), asked by 1,000 watchers of one key: how many are
    refused at once and how many wait; the status of a head read, of /healthz and of a commit
    of another key while the refused ones' connections are still open, once they are closed,
    and after every watcher hung up; and how soon /healthz counts nobody waiting. The limit is
    small so that this takes seconds; the server's checks are the same at any size."""
    count = PROBE_CONNECTIONS
    probe = LimitProbe(PROBE_CONNECTIONS, count)
    args = ["--database", "sqlite:///rainer.db", "--log-level", "warning"]
    with harness.RainerServer([*args, "--max-connections", str(PROBE_CONNECTIONS)]) as server:
        assert server.pid is not None
        head = f"/diary/{targets.READ_KEY}"
        version = 0

        async def note(situation: str, must_pass: bool) -> Probed:
            """The three statuses now; a failure unless all are 200 when ``must_pass``."""
            nonlocal version
            read = await ask_once(server, client.get(server.host, server.port, head), head)
            health, facts = await healthz(server)
            path = f"/diary/probe/{version + 1}"
            request = client.post(server.host, server.port, path, targets.PAYLOAD, AUTHOR)
            posted = await ask_once(server, request, f"POST {path}")
            version += posted.status == 200
            waiting = facts["watchers"]["waiting"] if facts else None
            row = Probed(situation, read, health, posted, waiting)
            probe.rows.append(row)
            for name, answer in row.answers():
                if must_pass and answer.status != 200:
                    run.fail(
                        f"limit probe, {situation}: the {name} answered {answer.status}: "
                        f"{answer.body[:100]!r}"
                    )
            return row

        watchers = Watchers(server, [WATCHED], count)
        try:
            await commit(server, targets.READ_KEY, 1)
            await commit(server, WATCHED, 1)
            _, facts = await healthz(server)
            probe.limit = facts["watchers"]["limit"] if facts else None
            await note("no watchers", must_pass=True)
            await watchers.open()
            await watchers.ask(1)
            await taken_in(server.port, [server.pid], run, "limit probe")
            # Those beyond the limit are answered at once; any other answer before a commit
            # of their key, a 503 of another kind included, is a failure.
            early = watchers.early()
            refused = [
                (watchers.connections[i], future.result().at)
                for i, future in enumerate(watchers.futures)
                if future.done() and future.exception() is None and refused_watcher(future.result())
            ]
            probe.refused = len(refused)
            last_refusal = max((at for _, at in refused), default=time.perf_counter())
            others = [a for a in early if not (isinstance(a, Answer) and refused_watcher(a))]
            if others:
                run.fail(f"limit probe: {len(others)} watchers answered early: {others[0]!r}")

            # The server closes a refused watcher's connection with its 503, so the connections
            # the watchers may not have stay free for everything else.
            still_open = sum(not connection.closed for connection, _ in refused)
            await note(
                f"{count:,} watchers asked; {probe.refused} refused, {still_open} of their "
                "connections still open",
                must_pass=True,
            )
            closer = "the server"
            while any(not connection.closed for connection, _ in refused):
                if time.perf_counter() - last_refusal > HUNG_UP_SECONDS:
                    closer = f"the bench, {HUNG_UP_SECONDS:g} s after the last 503"
                    for connection, _ in refused:
                        connection.close()
                    break
                await asyncio.sleep(0.05)
            else:
                probe.refused_closed_s = time.perf_counter() - last_refusal
            row = await note(
                f"the refused watchers' connections closed (by {closer}), the others waiting",
                must_pass=True,
            )
            probe.waiting = row.waiting
            if row.waiting is not None and row.waiting + probe.refused != count:
                run.fail(
                    f"limit probe: of {count:,} watchers {probe.refused} were refused and "
                    f"{row.waiting} wait: {count - probe.refused - row.waiting} unaccounted for"
                )

            watchers.hang_up()
            began = time.monotonic()
            waiting: int | None = None
            while time.monotonic() - began <= HUNG_UP_SECONDS:
                _, facts = await healthz(server)
                waiting = facts["watchers"]["waiting"] if facts else None
                if waiting == 0:
                    probe.drained_s = time.monotonic() - began
                    break
                await asyncio.sleep(0.05)
            else:
                run.fail(
                    f"limit probe: /healthz still counted {waiting} watchers waiting "
                    f"{HUNG_UP_SECONDS:g} s after they hung up"
                )
            await note("every watcher hung up", must_pass=True)
        except Failed as exc:
            run.fail(f"limit probe: {exc}")
        finally:
            watchers.hang_up()
        if not server.running:
            run.fail(server.failure_message("the limit-probe server died"))
    return probe


# -- printing ----------------------------------------------------------------------------------


def _ms(values: list[float], fraction: float) -> str:
    return f"{percentile(values, fraction):.2f}" if values else "-"


def print_wakes(all_series: list[Series]) -> None:
    print("\n### Wake latency: one commit wakes N watchers of one key\n")
    print(
        "| setup | watchers | rounds | answers | first ms after the commit's 200 | p50 ms "
        "| p99 ms | max ms "
        "| p50 / p99 ms from sending the commit | commit's 200 ms, median "
        "| answers before the 200 | server CPU ms per round | others' CPU |"
    )
    print("| --- |" + " ---: |" * 12)
    ticks = os.sysconf("SC_CLK_TCK")
    for s in all_series:
        before = sum(1 for value in s.from_commit if value < 0)
        share = f"{before / s.answers:.0%}" if s.answers else "-"
        cpu = f"{s.server_ticks * 1000 / ticks / s.rounds:.1f}" if s.rounds else "-"
        others = f"{statistics.median(s.others):.0%}" if s.others else "-"
        print(
            f"| {s.setup} | {s.watchers:,} | {s.rounds} | {s.answers:,} "
            f"| {min(s.from_commit, default=float('nan')):.2f} "
            f"| {_ms(s.from_commit, 0.5)} | {_ms(s.from_commit, 0.99)} "
            f"| {max(s.from_commit, default=float('nan')):.2f} "
            f"| {_ms(s.from_send, 0.5)} / {_ms(s.from_send, 0.99)} "
            f"| {_ms(s.commit_ms, 0.5)} | {share} | {cpu} | {others} |"
        )


def print_memory(memory: list[Memory]) -> None:
    if not memory:
        return
    print("\n### Memory per idle watcher: VmRSS of the server\n")
    print(
        "| round | watchers | before MiB | connections open MiB | requests waiting MiB "
        "| per watcher KiB | of which the connection KiB | VmHWM MiB |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for m in memory:
        print(
            f"| {m.round} | {m.count:,} | {m.before / 1024:.1f} | {m.connected / 1024:.1f} "
            f"| {m.waiting / 1024:.1f} | {m.per_watcher():.1f} | {m.per_connection():.1f} "
            f"| {m.hwm / 1024:.1f} |"
        )
    print(
        "\nRound 1 is the figure: a fresh server's heap grows for them. In later rounds the "
        "server reuses memory freed by the previous round's watchers, so less is added."
    )


def print_throughput(rows: list[Load], cpu_us: dict[str, list[float]]) -> None:
    if not rows:
        return
    print("\n### Head reads with idle watchers attached (wrk, GET /diary/KEY)\n")
    print(
        "| load | req/s | range of runs | p50 ms | p99 ms | non-200 | vs none "
        "| server CPU µs/request | others' CPU |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    if not all(row.results for row in rows):
        print("| (not measured) | | | | | | | | |")
        return
    base = rows[0].result()
    for row in rows:
        r = row.result()
        rates = [x.rps for x in row.results]
        cpu = statistics.median(cpu_us[row.name]) if cpu_us.get(row.name) else float("nan")
        print(
            f"| {row.name} | {r.rps:,.0f} | {min(rates):,.0f}-{max(rates):,.0f} "
            f"| {r.p50_ms:.2f} | {r.p99_ms:.2f} | {row.bad} | {r.rps / base.rps:.2f}x "
            f"| {cpu:.1f} | {r.others:.0%} |"
        )


def print_hang_up(hang_up: HangUp | None) -> None:
    if hang_up is None:
        return
    h = hang_up
    waiting = "no answer" if h.waiting_after_hang_up is None else f"{h.waiting_after_hang_up:,}"
    print("\n### Watchers that hang up\n")
    print(
        f"{h.count:,} watchers wait on one key, then close their connections without an "
        f"answer. Server RSS: {h.rss_waiting / 1024:.1f} MiB while they waited, "
        f"{h.rss_after_hang_up / 1024:.1f} MiB 2 s after they hung up; requests waiting "
        f"(/healthz watchers.waiting) 2 s after they hung up: {waiting}.\n"
    )
    print("| commit | commit's 200 ms | server CPU ms, commit + 3 s after |")
    print("| --- | ---: | ---: |")
    print(
        f"| a key nobody watches | {h.plain_commit_ms:.2f} | {h.plain_cpu_ms:.0f} |\n"
        f"| the key the {h.count:,} hung-up watchers waited on | {h.orphan_commit_ms:.2f} "
        f"| {h.orphan_cpu_ms:.0f} |\n"
        f"| the same key once more | {h.again_commit_ms:.2f} | {h.again_cpu_ms:.0f} |"
    )
    # /proc counts CPU in ticks (10 ms at 100 Hz): within three of them is "about the same".
    tick = 1000 / os.sysconf("SC_CLK_TCK")
    margin = 3 * tick
    extra = h.orphan_cpu_ms - h.plain_cpu_ms
    if extra <= margin and h.waiting_after_hang_up == 0:
        print(
            "\nThe server let go of the hung-up watchers: 2 s after they hung up /healthz "
            "counted nobody waiting, and the next commit of their key cost about as much CPU "
            f"as a commit of a key nobody watches ({extra:+.0f} ms, within three of /proc's "
            f"{tick:.0f} ms ticks)."
        )
    else:
        counted = (
            "did not answer 200"
            if h.waiting_after_hang_up is None
            else f"counted {waiting} requests waiting"
        )
        if extra <= margin:
            print(
                "\nThe next commit of their key cost about as much CPU as a commit of a key "
                f"nobody watches ({extra:+.0f} ms), but /healthz {counted} 2 s after they hung "
                "up."
            )
        else:
            print(
                f"\nThe next commit of their key cost {extra:.0f} ms more CPU than a commit of a "
                "key nobody watches. A commit that costs CPU in proportion to watchers who are "
                "gone means the server still held their waiting requests: it woke them and "
                f"rendered answers nobody reads (/healthz {counted} 2 s after they hung up)."
            )


def _status(answer: Answer) -> str:
    """A status, with the first words of its reason when it is not a 200."""
    if answer.status == 200:
        return "200"
    reason = answer.body.split(b":")[0][:40].decode("utf-8", "replace").strip()
    return f"{answer.status} ({reason})" if reason else str(answer.status)


def print_limit(probe: LimitProbe | None) -> None:
    if probe is None:
        return
    p = probe
    limit = "?" if p.limit is None else f"{p.limit:,}"
    waiting = "?" if p.waiting is None else f"{p.waiting:,}"
    print(
        "\n### Waiting requests and --max-watchers (a server started with "
        f"--max-connections {p.max_connections:,}: --max-watchers {limit} by default)\n"
    )
    print(
        f"{p.asked:,} watchers of one key asked at once: {p.refused:,} were answered 503 "
        f'"Too many watchers" at once, {waiting} waited (/healthz watchers.waiting, once the '
        "refused ones' connections had closed).\n"
    )
    print(
        "| situation | requests waiting (/healthz) | GET /diary/KEY | GET /healthz "
        "| POST /diary/probe/N |"
    )
    print("| --- | ---: | --- | --- | --- |")
    for row in p.rows:
        counted = "-" if row.waiting is None else f"{row.waiting:,}"
        print(
            f"| {row.situation} | {counted} | {_status(row.read)} | {_status(row.health)} "
            f"| {_status(row.commit)} |"
        )
    said = []
    if p.limit is not None and p.waiting == p.limit and p.refused == p.asked - p.limit:
        said.append(
            f"At most {p.limit:,} requests waited; the {p.refused:,} beyond were answered 503 "
            "at once instead of being held."
        )
    if len(p.rows) == 4:
        _, held, freed, after = p.rows
        if all(answer.status == 200 for _, answer in held.answers()):
            said.append(
                "While the refused watchers' connections were still open, the head read, "
                "/healthz and the commit were answered 200."
            )
        elif all(
            answer.status == 200 or answer.body.startswith(b"Too many connections")
            for _, answer in held.answers()
        ):
            closed = (
                f"the server had closed them all {p.refused_closed_s:.1f} s after the last 503"
                if p.refused_closed_s is not None
                else f"the server had not closed them {HUNG_UP_SECONDS:g} s after the last 503"
            )
            said.append(
                "A refused watcher's connection stays open after its 503, so until those "
                f"closed, the {p.asked:,} watchers held all {p.max_connections:,} connections "
                "and requests on a further one got --max-connections' 503 \"Too many "
                f'connections" ({closed}).'
            )
        if all(answer.status == 200 for _, answer in freed.answers()):
            said.append(
                f"With {waiting} requests waiting and the other connections free, the head "
                "read, /healthz and the commit were answered 200."
            )
        if p.drained_s is not None:
            again = all(answer.status == 200 for _, answer in after.answers())
            said.append(
                "Once the waiting watchers hung up, /healthz counted nobody waiting after "
                f"{p.drained_s * 1000:.0f} ms (polled every 50 ms)"
                + (", and all three were answered 200 again." if again else ".")
            )
        else:
            said.append(
                f"/healthz still counted requests waiting {HUNG_UP_SECONDS:g} s after their "
                "clients hung up."
            )
    if said:
        print("\n" + " ".join(said))


def print_goals(
    sqlite: list[Series],
    cluster: list[Series],
    memory: list[Memory],
    rows: list[Load],
    many: int,
    run: Run,
) -> None:
    print("\n### Goals (issue 12)\n")
    print("| goal | measured | result |")
    print("| --- | --- | --- |")

    def line(goal: str, measured: str, ok: bool, margin: str) -> None:
        print(f"| {goal} | {measured} | {'pass' if ok else 'MISS'} ({margin}) |")

    for label, found in (
        ("SQLite, one server", sqlite),
        ("PostgreSQL + ZooKeeper, A -> B", cluster),
    ):
        for count, limit in ((100, 10.0), (many, 250.0)):
            series = next((s for s in found if s.watchers == count and s.answers), None)
            if series is None:
                continue
            p99 = percentile(series.from_commit, 0.99)
            line(
                f"{label}: p99 wake < {limit:g} ms for {count:,} watchers",
                f"{p99:.2f} ms from the commit's 200 "
                f"({percentile(series.from_send, 0.99):.2f} ms from sending it)",
                p99 < limit,
                f"{p99 / limit:.0%} of the limit",
            )
    if memory:
        per = memory[0].per_watcher()
        line(
            "memory per idle watcher < 20 KB",
            f"{per:.1f} KiB ({per * 1.024:.1f} kB; {memory[0].count:,} watchers, round 1)",
            per * 1.024 < 20,
            f"{per * 1.024 / 20:.0%} of the limit",
        )
    if len(rows) == 2 and all(row.results for row in rows):
        ratio = rows[1].result().rps / rows[0].result().rps
        line(
            f"head reads with {many:,} idle watchers >= 0.8x without",
            f"{ratio:.2f}x ({rows[1].result().rps:,.0f} vs {rows[0].result().rps:,.0f}/s)",
            ratio >= 0.8,
            f"{ratio / 0.8:.0%} of the target",
        )
        cpu = [run.cpu_us.get(row.name) for row in rows]
        if cpu[0] and cpu[1]:
            # Requests per second move with the neighbours' load; CPU per request hardly does.
            without, with_ = statistics.median(cpu[0]), statistics.median(cpu[1])
            ratio = without / with_
            line(
                "(same, as server CPU per head read: without / with)",
                f"{ratio:.2f}x ({with_:.1f} vs {without:.1f} µs)",
                ratio >= 0.8,
                f"{ratio / 0.8:.0%} of the target",
            )
    failed = len(run.failures) + sum(row.bad for row in rows)
    print(
        f"| every watcher woken with the new version, every commit and head read a 200 "
        f"| {failed} failures | {'pass' if not failed else 'FAIL'} |"
    )


def print_how(
    settings: Settings,
    plan: Plan,
    every: list[Series],
    began: float,
    load_before: float,
    open_files: int,
) -> None:
    ours = [s for s in every if "etcd" not in s.setup]
    client_us = sum(s.client_seconds for s in ours) / max(1, sum(s.answers for s in ours)) * 1e6
    attach = [t for s in ours for t in s.attach_seconds if s.watchers == plan.many]
    rounds = ", ".join(f"{plan.rounds_for(c)} for {c:,}" for c in plan.counts())
    anchor = ", ".join(f"{r} for {c}" for c, r in plan.anchor_rounds)
    taken = f" ({min(attach):.1f}-{max(attach):.1f} s for {plan.many:,})" if attach else ""
    reconnects = sum(s.reconnects for s in ours)
    print("\n### How measured\n")
    for line in (
        f"Watchers: `GET /diary/{WATCHED}?index=N&wait={WAIT}`, one per connection, all on one "
        "key, from one asyncio client in the bench process (bench/watch_client.py, raw sockets "
        f"on uvloop; open-file limit raised to {open_files:,}). It used {client_us:.1f} µs of "
        "CPU per answer, on the same two cores as the servers.",
        "A round: every watcher asks with the current version N; the bench waits until the "
        "server has read every request (nothing unread on its port in /proc/net/tcp) and its "
        f"CPU time stands still{taken}, checks that nobody was answered yet, commits N+1 on a "
        "fresh connection and waits for every answer, which must be a 200 with version N+1. "
        f"Rounds: {rounds} watchers; etcd {anchor}. Watcher connections the server had "
        f"closed between rounds (keep-alive timeout) and the bench reopened: {reconnects}.",
        "Latency: arrivals are stamped with perf_counter in data_received, before any parsing; "
        "counted from the arrival of the commit's 200 (negative: the watcher heard first), "
        "and from sending the commit. Server CPU per round: utime + stime of the server "
        "processes (across servers: A, B, PostgreSQL, ZooKeeper) from the commit to the last "
        "answer.",
        f"Servers: `--max-connections {MAX_CONNECTIONS}` (the default; 10,000 watchers are "
        "exactly the default `--max-watchers`, and the idle part's server, which wakes one "
        f"watcher more, runs with `--max-watchers {plan.many + 1}`), SQLite in WAL mode with "
        "synchronous=FULL; across servers, A and B on one PostgreSQL database (fsync on) and "
        "one ZooKeeper, commits to A, watchers on B. etcd: each watcher a streamed "
        "`POST /v3/watch` on one key, kept across rounds, woken by `POST /v3/kv/put` "
        "(100 bytes); latency until the event with the put's revision arrives.",
        f"Idle watchers: {plan.many:,} over {IDLE_KEYS} keys nobody commits to meanwhile, on a "
        f"fresh SQLite server with {targets.KEYS} seeded keys; VmRSS from /proc/PID/status "
        "before, with the connections open, and with every request waiting. Head reads: wrk, "
        f"{settings.threads} thread, {settings.connections} connections, "
        f"{settings.warmup_seconds} s warm-up, {settings.runs} round(s) of one "
        f"{settings.seconds} s run without and one with the watchers, round-robin; medians. "
        "Each round's idle watchers are released by a commit of every idle key.",
        f"Load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end; "
        f"whole run {time.monotonic() - began:.0f} s.",
    ):
        print(f"- {line}")


# -- main --------------------------------------------------------------------------------------


async def measure_all(
    settings: Settings, plan: Plan, run: Run, parts: set[str]
) -> tuple[list[Series], list[Series], list[Series], IdleResult]:
    sqlite: list[Series] = []
    cluster: list[Series] = []
    anchor: list[Series] = []
    idle: IdleResult = ([], [], None, None)
    args = ["--log-level", "warning", "--max-connections", str(MAX_CONNECTIONS)]
    if "sqlite" in parts:
        progress("wake latency: one SQLite server")
        with harness.RainerServer(["--database", "sqlite:///rainer.db", *args]) as server:
            assert server.pid is not None
            await commit(server, WATCHED, 1)
            sqlite = await wake_series(
                "SQLite, one server", server, server, [server.pid], plan, run
            )
            if not server.running:
                run.fail(server.failure_message("the SQLite server died"))
    if "cluster" in parts:
        progress("wake latency: PostgreSQL + ZooKeeper, A -> B")
        with contextlib.ExitStack() as stack:
            zookeeper = stack.enter_context(harness.ZooKeeperServer())
            postgres = stack.enter_context(harness.PostgresServer())
            shared = postgres.create_database("watch")
            cluster_args = ["--database", shared, "--zookeeper", zookeeper.hosts, *args]
            cluster_args += ["--zk-path", "/bench-watch"]
            with contextlib.suppress(OSError):
                first = zookeeper.four_letter_word("srvr").splitlines()[0]
                run.zookeeper_version = first.split(",")[0]
            a = stack.enter_context(harness.RainerServer(cluster_args))
            b = stack.enter_context(harness.RainerServer(cluster_args))
            await commit(a, WATCHED, 1)
            pids = [p for p in (a.pid, b.pid, postgres.pid, zookeeper.pid) if p is not None]
            cluster = await wake_series("PostgreSQL + ZooKeeper, A -> B", a, b, pids, plan, run)
            for server in (a, b):
                if not server.running:
                    run.fail(server.failure_message("a cluster server died"))
    if "etcd" in parts:
        progress("anchor: etcd's watch")
        with EtcdServer() as etcd:
            anchor = await etcd_series(etcd, plan, run)
    if "idle" in parts:
        idle = await idle_part(settings, plan, run, run.cpu_us)
    if "limit" in parts:
        progress("waiting requests and --max-watchers")
        run.limit = await limit_probe(run)
    return sqlite, cluster, anchor, idle


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=4, help="seconds per wrk run (4)")
    parser.add_argument("--runs", type=int, default=5, help="wrk runs per condition (5)")
    parser.add_argument("--warmup", type=int, default=1, help="wrk warm-up seconds (1)")
    parser.add_argument(
        "--watchers", type=int, default=10_000, help="the large count of watchers (10000)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="few rounds, 1 wrk run of 2 s: a smoke test"
    )
    parser.add_argument(
        "--only",
        default="sqlite,cluster,etcd,idle,limit",
        help="parts to run, comma-separated: sqlite, cluster, etcd, idle, limit (all)",
    )
    parser.add_argument(
        "--src",
        type=Path,
        metavar="DIR",
        help="serve the rainer package from DIR (a patched copy of src/) instead of src/",
    )
    args = parser.parse_args(argv)
    if args.src:
        harness.rainer.SRC_DIR = args.src.resolve()
    settings = Settings(seconds=args.seconds, runs=args.runs, warmup_seconds=args.warmup)
    plan = Plan(many=args.watchers)
    if args.quick:
        settings = replace(settings, seconds=2, runs=1)
        plan = replace(
            plan,
            one_rounds=10,
            hundred_rounds=3,
            many_rounds=1,
            anchor_rounds=((1, 10), (100, 3)),
            lone_rounds=5,
        )
    parts = set(args.only.split(","))
    missing = []
    for part, reason in (
        ("idle", loads.wrk_available()),
        ("cluster", harness.PostgresServer.available() or harness.ZooKeeperServer.available()),
        ("etcd", EtcdServer.available()),
    ):
        if part in parts and reason:
            missing.append(f"{part}: {reason}")
            parts.discard(part)
    open_files = raise_open_files()
    if open_files < plan.many + 1000:
        print(
            f"watch_bench: at most {open_files} open files: not enough for {plan.many:,} "
            "watchers (raise the hard limit: ulimit -Hn)",
            file=sys.stderr,
        )
        return 2
    began = time.monotonic()
    load_before = os.getloadavg()[0]
    run = Run()
    try:
        import uvloop

        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:  # plain asyncio works too, a little slower at 10,000 answers
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        sqlite, cluster, anchor, idle = runner.run(measure_all(settings, plan, run, parts))
    memory, rows, lone, hang_up = idle

    print("## Watch: blocking reads woken by commits, and idle watchers (issue 12)\n")
    print("\n".join(machine()))
    if run.zookeeper_version:
        print(f"- {run.zookeeper_version}")
    if args.src:
        print(f"- rainer served from {args.src} (a patched copy), not from src/")
    every = [*sqlite, *([lone] if lone else []), *cluster, *anchor]
    others = [share for s in every for share in s.others]
    others += [r.others for row in rows for r in row.results]
    if others:
        print(
            f"- other processes used a median {statistics.median(others):.0%} of the machine's "
            'CPU during the measurements (column "others\' CPU"); load average '
            f"{load_before:.1f} at the start"
        )
    for reason in missing:
        print(f"- not measured: {reason}")
    print_wakes(every)
    print_memory(memory)
    print_throughput(rows, run.cpu_us)
    print_hang_up(hang_up)
    print_limit(run.limit)
    print_goals(sqlite, cluster, memory, rows, plan.many, run)
    print_how(settings, plan, every, began, load_before, open_files)
    if run.failures:
        print(f"\n### Failures ({len(run.failures)})\n")
        print("\n".join(f"- {failure}" for failure in run.failures[:30]))
    bad = len(run.failures) + sum(row.bad for row in rows)
    if bad:
        print(f"\nwatch_bench: {bad} failures (see above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
