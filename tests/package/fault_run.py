"""The moving parts of test_faults.py: a cluster of real services (one PostgreSQL, one ZooKeeper,
two ``rainer serve`` processes), racing writers and readers that record every request and its
answer, and the faults injected while they run. The checks are in fault_checks.py."""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from harness import ServiceError
from harness.postgres import PostgresServer
from harness.rainer import RainerServer
from harness.zookeeper import ZooKeeperServer

SERVER_NAMES = ("a", "b")
ZK_PATH = "/rainer-faults"
DATABASE = "faults"
TABLE = "rainer"
#: Short, so that a lost session, a new leader and a healing round all happen within seconds.
SESSION_TIMEOUT = 3.0
PUBLISH_PERIOD = 2.0
#: A request unanswered for this long means a hung server, not a slow one.
REQUEST_TIMEOUT = 20.0
#: How long recovery may take after a fault before the test calls it a server that did not
#: come back (generous: a busy 2-core machine is slow, not broken).
RECOVERY_TIMEOUT = 60.0
#: SIGTERM must end a server (status 0) within this: it finishes the requests in flight and
#: makes pending commits durable, which takes well under a second here.
CLEAN_STOP_SECONDS = 15.0

READ_OPS = ("meta", "get")  # GET KEY/meta and GET KEY: head reads
COMMIT_OPS = ("commit", "tombstone")


@dataclass
class Record:
    """One request and its answer, as the client saw them. Times are ``time.monotonic()``."""

    worker: str
    server: str
    #: The server process that answered: (server, generation). None when the server was killed
    #: or restarted while the request ran, so which process answered is unknown.
    process: tuple[str, int] | None
    op: str  # "meta", "get", "commit" or "tombstone"
    key: str
    t0: float
    t1: float
    status: int | None = None
    #: Why there is no status: "refused", "reset", "timeout", or an exception's name; or why
    #: an answer could not be understood ("malformed: ...").
    error: str | None = None
    # what a commit sent (unique to the attempt)
    sent_version: int | None = None
    sent_author: str | None = None
    sent_comment: str | None = None
    sent_payload: bytes | None = None  # None for a tombstone
    # what the answer said
    version: int | None = None
    empty: bool | None = None
    author: str | None = None
    comment: str | None = None
    payload: bytes | None = None  # the body of GET KEY
    cached: bool = False

    @property
    def is_read(self) -> bool:
        return self.op in READ_OPS

    @property
    def is_commit(self) -> bool:
        return self.op in COMMIT_OPS

    @property
    def acknowledged(self) -> bool:
        return self.is_commit and self.status == 200 and self.error is None

    @property
    def maybe_written(self) -> bool:
        """A commit whose outcome is unknown: no answer (other than a refused connection,
        which sent nothing) or a 5xx. Never counted as acknowledged."""
        if not self.is_commit or self.acknowledged:
            return False
        if self.status is None:
            return self.error != "refused"
        return self.status >= 500

    @property
    def head(self) -> int | None:
        """The head version a read answered (0 for 404), or None when it answered no head."""
        if not self.is_read or self.error is not None:
            return None
        if self.status == 404:
            return 0
        return self.version if self.status == 200 else None

    @property
    def absent(self) -> bool:
        """A read that answered the key as absent: a tombstone head or 404."""
        return self.head is not None and (self.head == 0 or bool(self.empty))

    def describe(self, origin: float) -> str:
        """One line for failure messages, times relative to ``origin``."""
        what = f"{self.op} {self.key}"
        if self.is_commit:
            what += f" v{self.sent_version} author={self.sent_author}"
        answer = self.error if self.status is None else str(self.status)
        if self.version is not None:
            answer += f" v{self.version}" + (" empty" if self.empty else "")
            answer += f" author={self.author}" + (" cached" if self.cached else "")
        process = f"{self.process[0]}#{self.process[1]}" if self.process else f"{self.server}#?"
        return (
            f"[{self.t0 - origin:7.3f}..{self.t1 - origin:7.3f}] {process} {self.worker}: "
            f"{what} -> {answer}"
        )

    def as_json(self, origin: float) -> dict[str, object]:
        """For the records file written beside the test's output."""
        found = dict(self.__dict__)
        found["t0"], found["t1"] = self.t0 - origin, self.t1 - origin
        for name in ("sent_payload", "payload"):
            value = found[name]
            found[name] = None if value is None else value.decode("utf-8", "backslashreplace")
        return found


@dataclass
class Fault:
    """One injected fault: from when it began until the cluster was healthy again."""

    kind: str
    t_start: float
    t_end: float | None = None
    note: str = ""


# -- the cluster ---------------------------------------------------------------------------------


class Cluster:
    """PostgreSQL, ZooKeeper and two ``rainer serve --zookeeper`` on that database.

    Each server process gets a generation number, bumped just before a kill and just before a
    start, so a request that saw the same generation when it began and when it ended was
    answered by exactly that process (or by none).
    """

    def __init__(self) -> None:
        self.pg = PostgresServer()
        self.zk = ZooKeeperServer()
        self.servers: dict[str, RainerServer] = {}
        self.generation = dict.fromkeys(SERVER_NAMES, 0)
        self.database_url = ""

    def start(self) -> None:
        self.pg.start()
        self.database_url = self.pg.create_database(DATABASE)
        self.zk.start()
        args = [
            "--database",
            self.database_url,
            "--zookeeper",
            self.zk.hosts,
            "--zk-path",
            ZK_PATH,
            "--publish-period",
            str(PUBLISH_PERIOD),
            "--zk-session-timeout",
            str(SESSION_TIMEOUT),
        ]
        for name in SERVER_NAMES:
            self.servers[name] = RainerServer(args, startup_timeout=RECOVERY_TIMEOUT)
            self.start_server(name)

    @property
    def dsn(self) -> str:
        """libpq URI of the test's database, for reading the journal directly."""
        return self.pg.dsn_for(DATABASE)

    def diary(self, name: str) -> str:
        return self.servers[name].diary_url

    def kill_server(self, name: str) -> None:
        self.generation[name] += 1
        self.servers[name].kill()

    def start_server(self, name: str) -> None:
        self.generation[name] += 1
        self.servers[name].start()

    def stop_server(self, name: str, timeout: float = 20.0) -> tuple[int | None, float]:
        """SIGTERM (SIGKILL after ``timeout``); returns the exit code and the seconds taken."""
        self.generation[name] += 1
        began = time.monotonic()
        code = self.servers[name].stop(timeout=timeout)
        return code, time.monotonic() - began

    def health(self, name: str) -> dict | None:
        """The server's /healthz JSON when it answers 200, else None."""
        try:
            status, _headers, body = request("GET", self.servers[name].url + "/healthz", timeout=5)
        except (OSError, http.client.HTTPException):
            return None
        return json.loads(body) if status == 200 else None

    def healthy(self) -> bool:
        """Every service runs and both servers answer /healthz with ZooKeeper connected."""
        if not (self.pg.running and self.zk.running):
            return False
        for name in SERVER_NAMES:
            found = self.health(name)
            if found is None or not found.get("zookeeper", {}).get("connected"):
                return False
        return True

    def leader(self) -> str | None:
        for name in SERVER_NAMES:
            found = self.health(name)
            if found and found.get("zookeeper", {}).get("leader"):
                return name
        return None

    def stop_servers(self) -> dict[str, tuple[int | None, float]]:
        """SIGTERM each server; return its exit code and how long it took to stop."""
        return {name: self.stop_server(name) for name in SERVER_NAMES}

    def close(self) -> None:
        for server in self.servers.values():
            server.close()
        self.zk.close()
        self.pg.close()


def request(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = REQUEST_TIMEOUT,
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection (so a refused connection means nothing was sent);
    returns status, lower-cased headers and body, and raises what the transport raises."""
    rest = url.split("://", 1)[1]
    where, _, path = rest.partition("/")
    host, _, port = where.partition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        connection.request(method, "/" + path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        connection.close()


def transport_error(exc: BaseException) -> str:
    """A short name for why a request got no answer."""
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, TimeoutError):
        return "timeout"
    lost = (ConnectionError, http.client.RemoteDisconnected, http.client.IncompleteRead)
    if isinstance(exc, lost):
        return "reset"
    return type(exc).__name__


def wait_for(check: Callable[[], object], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``check`` until it returns something true; False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


# -- the workload --------------------------------------------------------------------------------


class Workload:
    """Racing writers and readers on a few keys through both servers, every request recorded.

    A writer reads a key's head from one server and commits head+1 there, with a payload, author
    and comment unique to the attempt (some attempts are tombstones), so writers conflict all the
    time; a reader reads heads (payload or metadata) from either server.
    """

    def __init__(
        self,
        cluster: Cluster,
        keys: list[str],
        seed: int,
        writers: int,
        readers: int,
        tombstone_share: float = 0.2,
    ) -> None:
        self.cluster = cluster
        self.keys = keys
        self.seed = seed
        self.tombstone_share = tombstone_share
        self._stop = threading.Event()
        self._logs: dict[str, list[Record]] = {}
        self._threads: list[threading.Thread] = []
        for index in range(writers):
            self._add(f"w{index}", self._write_loop)
        for index in range(readers):
            self._add(f"r{index}", self._read_loop)

    def _add(self, worker: str, loop: Callable[[str, random.Random], None]) -> None:
        self._logs[worker] = []
        # One generator per worker, seeded from the run's seed: the same choices each run.
        rng = random.Random(f"{self.seed}/{worker}")
        thread = threading.Thread(target=loop, args=(worker, rng), name=f"fault-{worker}")
        thread.daemon = True
        self._threads.append(thread)

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(REQUEST_TIMEOUT + 10)
            if thread.is_alive():
                raise RuntimeError(f"worker {thread.name} did not stop")

    @property
    def records(self) -> list[Record]:
        """Every record of every worker, in the order the requests began."""
        found = [record for log in self._logs.values() for record in log]
        return sorted(found, key=lambda record: record.t0)

    # -- workers ---------------------------------------------------------------------------

    def _pause_after(self, record: Record) -> None:
        # A server that is down refuses at once; do not spin on it.
        if record.status not in (200, 404, 409):
            self._stop.wait(0.05)

    def _read_loop(self, worker: str, rng: random.Random) -> None:
        while not self._stop.is_set():
            server = rng.choice(SERVER_NAMES)
            record = self.read(worker, server, rng.choice(self.keys), rng.choice(READ_OPS))
            self._pause_after(record)

    def _write_loop(self, worker: str, rng: random.Random) -> None:
        attempt = 0
        while not self._stop.is_set():
            server = rng.choice(SERVER_NAMES)
            key = rng.choice(self.keys)
            head = self.read(worker, server, key, "meta").head
            if head is None:
                self._pause_after(self._logs[worker][-1])
                continue
            attempt += 1
            name = f"{worker}-{attempt}"
            payload = None if rng.random() < self.tombstone_share else _payload(name, rng)
            record = self.commit(worker, server, key, head + 1, name, payload)
            self._pause_after(record)

    # -- requests --------------------------------------------------------------------------

    def _begin(self, worker: str, server: str, op: str, key: str) -> Record:
        generation = self.cluster.generation[server]
        record = Record(worker, server, (server, generation), op, key, time.monotonic(), 0.0)
        self._logs[worker].append(record)
        return record

    def _end(self, record: Record) -> None:
        record.t1 = time.monotonic()
        if record.process != (record.server, self.cluster.generation[record.server]):
            record.process = None

    def read(self, worker: str, server: str, key: str, op: str) -> Record:
        record = self._begin(worker, server, op, key)
        url = f"{self.cluster.diary(server)}/{key}" + ("/meta" if op == "meta" else "")
        try:
            status, headers, body = request("GET", url)
        except (OSError, http.client.HTTPException) as exc:
            record.error = transport_error(exc)
        else:
            record.status = status
            record.cached = headers.get("x-rainer-cached") == "Yes"
            if status == 200:
                try:
                    if op == "meta":
                        _take_meta(record, body)
                    else:
                        record.version = int(headers["x-rainer-version"])
                        record.empty = headers["x-rainer-empty"] == "Yes"
                        record.author = headers["x-rainer-author"]
                        record.comment = headers["x-rainer-comment"]
                        record.payload = body
                except (KeyError, ValueError) as exc:
                    record.error = f"malformed: {exc!r}"
        self._end(record)
        return record

    def commit(
        self, worker: str, server: str, key: str, version: int, name: str, payload: bytes | None
    ) -> Record:
        record = self._begin(worker, server, "tombstone" if payload is None else "commit", key)
        record.sent_version = version
        record.sent_author = f"author-{name}"
        record.sent_comment = f"attempt {name} via {server} at v{version}"
        record.sent_payload = payload
        headers = {"X-Rainer-Author": record.sent_author, "X-Rainer-Comment": record.sent_comment}
        if payload is None:
            headers["X-Rainer-Empty"] = "yes"
        url = f"{self.cluster.diary(server)}/{key}/{version}"
        try:
            status, _headers, body = request("POST", url, payload or b"", headers)
        except (OSError, http.client.HTTPException) as exc:
            record.error = transport_error(exc)
        else:
            record.status = status
            if status == 200:
                try:
                    _take_meta(record, body)
                except (KeyError, ValueError) as exc:
                    record.error = f"malformed: {exc!r}"
        self._end(record)
        return record


def _take_meta(record: Record, body: bytes) -> None:
    meta = json.loads(body)
    record.version = int(meta["version"])
    record.empty = bool(meta["empty"])
    record.author = str(meta["author"])
    record.comment = str(meta["comment"])


def _payload(name: str, rng: random.Random) -> bytes:
    """Mostly text; sometimes bytes that are not UTF-8, sometimes zero bytes (not a tombstone)."""
    roll = rng.random()
    if roll < 0.05:
        return b""
    if roll < 0.2:
        return name.encode() + b"\xff\x00" + rng.randbytes(16)
    return f'{{"attempt": "{name}", "nonce": "{rng.getrandbits(48):012x}"}}'.encode()


# -- the faults ----------------------------------------------------------------------------------


@dataclass
class FaultInjector:
    """Injects faults in a fixed cycle until ``deadline``: kill -9 of a server and its restart
    on the same port (the leader, then the other, alternately); a PostgreSQL restart (clean,
    then a crash, alternately); a ZooKeeper restart (stop, an outage, start, keeping data; in
    even cycles a server is also stopped with SIGTERM during the outage). After each fault it
    waits until every service is back and both servers answer with ZooKeeper connected, then
    lets the workload run undisturbed for ``calm`` seconds before the next fault."""

    cluster: Cluster
    deadline: float
    calm: float = 1.5
    outage: float = 1.0
    faults: list[Fault] = field(default_factory=list)
    #: What went wrong with the cluster itself (a server that did not come back, ...).
    problems: list[str] = field(default_factory=list)

    def run(self) -> None:
        cycle = 0
        steps = (self._kill_server, self._restart_postgres, self._restart_zookeeper)
        while not self.problems:
            cycle += 1
            for step in steps:
                # Every fault needs a few seconds; start one only when it can finish in time.
                if time.monotonic() + 3.0 > self.deadline or self.problems:
                    return
                self._calm()
                step(cycle)

    def _calm(self) -> None:
        time.sleep(self.calm)  # traffic without faults between two faults, by design

    def _begin(self, kind: str, note: str = "") -> Fault:
        fault = Fault(kind, time.monotonic(), note=note)
        self.faults.append(fault)
        return fault

    def _recovered(self, fault: Fault) -> None:
        if wait_for(self.cluster.healthy, RECOVERY_TIMEOUT):
            fault.t_end = time.monotonic()
            return
        states = {name: self.cluster.health(name) for name in SERVER_NAMES}
        self.problems.append(
            f"the cluster was not healthy {RECOVERY_TIMEOUT:g} s after {fault.kind}: "
            f"postgresql running={self.cluster.pg.running}, "
            f"zookeeper running={self.cluster.zk.running}, /healthz: {states}"
        )

    def _kill_server(self, cycle: int) -> None:
        # Odd cycles kill the auto-publishers' leader, even cycles the other server.
        leader = self.cluster.leader()
        if leader is None:
            target, role = SERVER_NAMES[cycle % 2], "no leader elected at that moment"
        elif cycle % 2:
            target, role = leader, "the leader"
        else:
            target, role = next(n for n in SERVER_NAMES if n != leader), "not the leader"
        port = self.cluster.servers[target].port
        fault = self._begin(f"kill -9 of server {target}", f"{role}; restarted on port {port}")
        self.cluster.kill_server(target)
        try:
            self.cluster.start_server(target)
        except ServiceError as exc:
            self.problems.append(f"server {target} did not come back after kill -9: {exc}")
            return
        self._recovered(fault)

    def _restart_postgres(self, cycle: int) -> None:
        crash = cycle % 2 == 0
        how = "crash (immediate shutdown)" if crash else "clean (fast shutdown)"
        fault = self._begin("postgresql restart", f"{how}, down {self.outage:g} s")
        if crash:
            self.cluster.pg.kill()
        else:
            self.cluster.pg.stop()
        time.sleep(self.outage)  # an outage of a chosen length, while the workload runs
        try:
            self.cluster.pg.start()
        except ServiceError as exc:
            self.problems.append(f"postgresql did not come back: {exc}")
            return
        self._recovered(fault)

    def _restart_zookeeper(self, cycle: int) -> None:
        # Even cycles also stop a server cleanly while ZooKeeper is away (the shutdown path
        # that must not wait for a connection that is not coming); it starts again once
        # ZooKeeper is back, since a server refuses to start without it.
        stopping = None if cycle % 2 else (self.cluster.leader() or SERVER_NAMES[0])
        fault = self._begin("zookeeper restart", "")
        self.cluster.zk.stop()
        stopped = time.monotonic()

        def both_noticed() -> bool:
            found = [self.cluster.health(name) for name in SERVER_NAMES]
            return all(h is not None and not h["zookeeper"]["connected"] for h in found)

        noticed = wait_for(both_noticed, 3 * SESSION_TIMEOUT)
        seen = time.monotonic()
        notes = [
            f"stopped in {stopped - fault.t_start:.2f} s",
            f"both servers saw it in {seen - stopped:.2f} s" if noticed else "not both saw it",
        ]
        if stopping is not None:
            code, took = self.cluster.stop_server(stopping)
            notes.append(f"SIGTERM to server {stopping}: exit {code} in {took:.2f} s")
            if code != 0 or took > CLEAN_STOP_SECONDS:
                self.problems.append(
                    f"server {stopping} did not stop cleanly while ZooKeeper was away: exit "
                    f"status {code} after {took:.1f} s\n{self.cluster.servers[stopping].log_tail()}"
                )
        time.sleep(self.outage)  # commits land while ZooKeeper is away; the publisher heals them
        try:
            self.cluster.zk.start()
            back = time.monotonic()
            notes.append(f"down {back - stopped:.2f} s")
            if stopping is not None:
                self.cluster.start_server(stopping)
        except ServiceError as exc:
            self.problems.append(f"zookeeper or server {stopping} did not come back: {exc}")
            return
        finally:
            fault.note = ", ".join(notes)
        self._recovered(fault)
        if fault.t_end is not None:
            fault.note += f", all healthy {fault.t_end - back:.2f} s after ZooKeeper's start"
