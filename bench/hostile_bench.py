"""``make bench``, hostile part: head reads while clients attack the server, and its memory.

1. Head reads (``GET /diary/KEY``, wrk with bench/http_bench.py's settings) on a server started
   with ``--validate yaml`` and seeded with 100 keys of 100 bytes and a few keys of 8 MiB YAML,
   first with nothing else going on, then while a separate process attacks it: stalled
   connections that send half a request line or nothing, a huge list read slowly and read fast,
   and YAML payloads that take seconds to parse or are alias bombs. A poller asks ``/healthz``
   every 20 ms during every run and keeps the latencies.
2. Memory: VmRSS and VmHWM of servers holding 10,000 keys of 10 KiB after start-up, head
   reads, lists and histories, under the default ``--cache-bytes`` and under 16 MiB, and of one
   holding ten keys of 8 MiB after three lists; next to the RSS of an empty server.

Prints Markdown tables for docs/benchmarks.md. Exit status 1 when any head read measured here
was not a 200 (wrk's count of statuses >= 400 plus socket errors, and our own reads in part 2);
the hostile clients' refusals (400, 408) are what they ask for and do not count.

Run with ``--attack HOST:PORT --kinds ...`` this file is the attacking process itself.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import select
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loads
import targets
from http_bench import _command_output, machine, progress
from loads import Load, Result, Settings, percentile
from targets import harness

from rainer.defaults import CACHE_BYTES, HEAD_TIMEOUT, VALIDATE_INLINE_BYTES

MIB = 1024 * 1024
KIB = 1024
DEFAULT_CACHE_BYTES = CACHE_BYTES  # rainer serve's default --cache-bytes
SMALL_CACHE_BYTES = 16 * MIB
AUTHOR = {"X-Rainer-Author": "bench", "Content-Type": "text/plain"}
HOSTILE_PREFIX = "hostile-"  # keys the attack commits; buried (tombstoned) after each run

# -- the attack's settings ------------------------------------------------------------------
STALLED = 100  # connections held open without a whole request head
HALF_LINE = b"GET /diary/key000 HT"  # half a request line; the other half of them send nothing
WORST_LIST = "/diary?payload_utf8=yes&payload_base64=yes"
SLOW_RCVBUF = 4096  # the slow reader's receive buffer (the kernel doubles it)
SLOW_READ = 4096  # bytes per read of the slow reader ...
SLOW_PAUSE = 0.01  # ... and its pause after each: at most about 400 KB/s
YAML_LINES = 55_000  # "keyN: {a: [1, 2, 3], b: 'text N'}": about 2.3 MB, seconds to build
ALIAS_LEVELS = 12  # an alias bomb: 10 aliases per level, refused beyond 100 aliases
ALIAS_PAUSE = 0.05  # seconds between two alias bombs (small and large in turn)
READY_TIMEOUT = 120.0  # seconds the attack may take until every load is in flight
ATTACK_KINDS = ("stalled", "lists", "yaml")
_READY = "READY"
_TALLY = "TALLY "

# -- the poller -----------------------------------------------------------------------------
POLL_INTERVAL = 0.02


# ===========================================================================================
# Payloads
# ===========================================================================================


def yaml_list(size: int, tag: str) -> bytes:
    """Exactly ``size`` bytes of YAML: a list of 80-byte strings, then a comment to fill up.

    Valid YAML, so a server started with --validate yaml takes it, and made of text, so a list
    with payload_utf8 has to escape every line break."""
    lines = size // 80
    body = b"".join(
        (f"- {tag} item {n:07d} ".encode().ljust(79, b"y") + b"\n") for n in range(lines)
    )
    rest = size - len(body)
    if rest:
        body += (b"#" + b"z" * max(0, rest - 2))[: rest - 1] + b"\n"
    return body


def slow_yaml(lines: int = YAML_LINES) -> bytes:
    """Many small flow mappings: libyaml's parser is fast, but PyYAML's constructor builds every
    mapping and list in Python, which is what takes seconds."""
    return "".join(f"key{n}: {{a: [1, 2, 3], b: 'text {n}'}}\n" for n in range(lines)).encode()


def alias_bomb(padding: int = 0) -> bytes:
    """Nested aliases ("billion laughs"): small as text, enormous when expanded. ``padding``
    bytes of comment in front make it large enough to go to a validation process."""
    lines = [b"#" + b"p" * 78 for _ in range(padding // 80)]
    lines.append(b"l0: &l0 [" + b", ".join([b"lol"] * 10) + b"]")
    for level in range(1, ALIAS_LEVELS + 1):
        refs = b", ".join([b"*l%d" % (level - 1)] * 10)
        lines.append(b"l%d: &l%d [%s]" % (level, level, refs))
    return b"\n".join(lines) + b"\n"


def memory_payload(key: str, size: int) -> bytes:
    """``size`` bytes of text, different for every key."""
    line = f"{key}: the quick brown fox jumps over the lazy dog 0123456789\n".encode()
    return (line * (size // len(line) + 1))[:size]


# ===========================================================================================
# HTTP from the bench process
# ===========================================================================================


class Client:
    """One kept-alive connection; reconnects once when the server had closed it while idle."""

    def __init__(self, server: harness.RainerServer, timeout: float = 120.0) -> None:
        self.host, self.port, self.timeout = server.host, server.port, timeout
        self.connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, bytes]:
        for attempt in (1, 2):
            try:
                self.connection.request(method, path, body=body, headers=headers or {})
                response = self.connection.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.connection.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def stream(self, path: str) -> tuple[int, int]:
        """GET ``path`` and read the body in pieces without keeping it: (status, bytes)."""
        self.connection.request("GET", path)
        response = self.connection.getresponse()
        size = 0
        while piece := response.read(MIB):
            size += len(piece)
        return response.status, size

    def close(self) -> None:
        self.connection.close()


def parallel(
    server: harness.RainerServer,
    jobs: Iterable[tuple[str, str, bytes | None, dict]],
    threads: int = 16,
) -> Counter[int]:
    """Run (method, path, body, headers) requests on ``threads`` kept-alive connections; the
    count of each status. Seeding 10,000 commits this way takes seconds, not minutes: the
    server group-commits what arrives together."""
    local = threading.local()
    clients: list[Client] = []
    lock = threading.Lock()

    def one(job: tuple[str, str, bytes | None, dict]) -> int:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = Client(server)
            with lock:
                clients.append(client)
        return client.request(*job)[0]

    try:
        with ThreadPoolExecutor(threads) as pool:
            return Counter(pool.map(one, jobs))
    finally:
        for client in clients:
            client.close()


def commit_jobs(items: Iterable[tuple[str, bytes]]) -> Iterator[tuple[str, str, bytes, dict]]:
    for key, payload in items:
        yield "POST", f"/diary/{quote(key, safe='')}/1", payload, AUTHOR


def expect_all_200(what: str, statuses: Counter[int]) -> None:
    if set(statuses) != {200}:
        raise RuntimeError(f"{what}: answers {dict(statuses)}, expected only 200")


# ===========================================================================================
# The attack: a process of its own, so its threads share neither the interpreter lock nor the
# CPU accounting with the poller that measures /healthz.
# ===========================================================================================


class Attack:
    """The hostile loads of ``kinds``, each on threads of its own, until ``stop()``."""

    def __init__(self, host: str, port: int, kinds: set[str]) -> None:
        self.host, self.port, self.kinds = host, port, kinds
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.tally: dict[str, Counter[str]] = {}
        self.unexpected: list[str] = []
        self.yaml_seconds: list[float] = []
        self.sockets: set[socket.socket] = set()
        self.ready: list[threading.Event] = []
        self.threads: list[threading.Thread] = []
        self.big_yaml = slow_yaml() if "yaml" in kinds else b""
        # The large one is over the size parsed in a thread, so it goes to a validation process.
        self.bombs = (alias_bomb(), alias_bomb(padding=VALIDATE_INLINE_BYTES + 16 * KIB))
        self.list_head = f"GET {WORST_LIST} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()

    # -- bookkeeping ------------------------------------------------------------------------

    def count(self, load: str, outcome: str, amount: int = 1, expected: bool = True) -> None:
        with self.lock:
            self.tally.setdefault(load, Counter())[outcome] += amount
            if not expected and len(self.unexpected) < 20:
                self.unexpected.append(f"{load}: {outcome}")

    def _thread(self, target: Callable[[threading.Event], None]) -> None:
        ready = threading.Event()
        self.ready.append(ready)
        thread = threading.Thread(target=target, args=(ready,), daemon=True)
        self.threads.append(thread)
        thread.start()

    def _hold(self, sock: socket.socket) -> None:
        with self.lock:
            self.sockets.add(sock)

    def _release(self, sock: socket.socket) -> None:
        with self.lock:
            self.sockets.discard(sock)
        sock.close()

    def start(self) -> None:
        if "stalled" in self.kinds:
            self._thread(self._stalled)
        if "lists" in self.kinds:
            self._thread(self._slow_list)
            self._thread(self._fast_list)
        if "yaml" in self.kinds:
            self._thread(self._yaml)
            self._thread(self._aliases)

    def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        return all(event.wait(max(0.0, deadline - time.monotonic())) for event in self.ready)

    def stop(self) -> dict:
        self.stopping.set()
        # Requests in flight are abandoned, not waited for: a parse may take ten seconds. The
        # bench waits for the server to go quiet instead.
        with self.lock:
            held = list(self.sockets)
        for sock in held:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in self.threads:
            thread.join(30)
        return {
            "tally": {load: dict(counts) for load, counts in self.tally.items()},
            "unexpected": self.unexpected,
            "yaml_seconds": self.yaml_seconds,
        }

    # -- (a) stalled connections ------------------------------------------------------------

    def _stalled(self, ready: threading.Event) -> None:
        """STALLED connections, opened one by one over the server's head timeout, so that once
        they are all open the server closes one (and we reopen it) every so often: a steady
        churn rather than all of them closing at once. Ready at the first closure."""
        chooser = selectors.DefaultSelector()
        spread = HEAD_TIMEOUT / STALLED

        def open_one(half: bool) -> None:
            try:
                sock = socket.create_connection((self.host, self.port), timeout=10)
                if half:
                    sock.sendall(HALF_LINE)
            except OSError as exc:
                self.count("stalled", f"could not connect: {exc!r}", expected=False)
                return
            sock.setblocking(False)
            chooser.register(sock, selectors.EVENT_READ, half)
            self.count("stalled", "opened")

        opened, due = 0, time.monotonic()
        while not self.stopping.is_set():
            while opened < STALLED and time.monotonic() >= due:
                open_one(half=opened % 2 == 1)
                opened, due = opened + 1, due + spread
            wait = 0.2 if opened == STALLED else max(0.0, due - time.monotonic())
            for key, _ in chooser.select(timeout=wait):
                sock, half = key.fileobj, key.data
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(4096)
                except OSError:
                    data = b"reset"
                chooser.unregister(sock)
                sock.close()
                what = "half a request line" if half else "nothing sent"
                if data.startswith(b"HTTP/1.1 408"):
                    self.count("stalled", f"{what}: 408", expected=half)
                elif not data:
                    self.count("stalled", f"{what}: closed without an answer")
                else:
                    self.count("stalled", f"{what}: {data[:40]!r}", expected=False)
                if not self.stopping.is_set():
                    open_one(half)  # always STALLED of them
                    ready.set()
        for key in list(chooser.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        chooser.close()

    # -- (b) the worst-case list, read slowly and read fast ----------------------------------

    def _slow_list(self, ready: threading.Event) -> None:
        while not self.stopping.is_set():
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            # A small receive window: the server's writes block almost at once, so the answer
            # stays parked in the server for as long as this reader takes.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SLOW_RCVBUF)
            sock.settimeout(30)
            self._hold(sock)
            size, tail, finished, data = 0, b"", False, b"-"
            try:
                sock.connect((self.host, self.port))
                sock.sendall(self.list_head)
                while data and not finished and not self.stopping.is_set():
                    data = sock.recv(SLOW_READ)
                    if data and not size:
                        status = data[9:12].decode(errors="replace")
                        self.count(
                            "slow list reader", f"answers {status}", expected=status == "200"
                        )
                        ready.set()
                    size += len(data)
                    tail = (tail + data)[-7:]
                    finished = tail.endswith(b"\r\n0\r\n\r\n")
                    time.sleep(SLOW_PAUSE)
            except OSError as exc:
                if not self.stopping.is_set():
                    self.count("slow list reader", f"error: {exc!r}", expected=False)
            finally:
                self._release(sock)
            self.count("slow list reader", "bytes read", size)
            if finished:
                self.count("slow list reader", "lists read to the end")
            elif self.stopping.is_set():
                self.count("slow list reader", "lists left unfinished at the end of a run")
            elif not data:
                self.count("slow list reader", "closed by the server mid-list", expected=False)

    def _fast_list(self, ready: threading.Event) -> None:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        while not self.stopping.is_set():
            size = 0
            try:
                connection.connect()
                assert connection.sock is not None
                self._hold(connection.sock)
                while not self.stopping.is_set():
                    connection.request("GET", WORST_LIST)
                    response = connection.getresponse()
                    status = response.status
                    self.count("fast list reader", f"answers {status}", expected=status == 200)
                    ready.set()
                    while piece := response.read(MIB):
                        size += len(piece)
                        if self.stopping.is_set():
                            break
                    else:
                        self.count("fast list reader", "lists read to the end")
            except (OSError, http.client.HTTPException) as exc:
                if not self.stopping.is_set():
                    self.count("fast list reader", f"error: {exc!r}", expected=False)
            finally:
                self.count("fast list reader", "bytes read", size)
                if connection.sock is not None:
                    self._release(connection.sock)
                connection.close()

    # -- (c) YAML that takes seconds to parse, and alias bombs -------------------------------

    def _post_loop(
        self,
        ready: threading.Event,
        load: str,
        bodies: Callable[[int], tuple[str, bytes]],
        judge: Callable[[int, bytes], tuple[str, bool]],
        pause: float,
        timings: list[float] | None = None,
    ) -> None:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=120)
        n = 0
        while not self.stopping.is_set():
            key, body = bodies(n)
            n += 1
            try:
                connection.request("POST", f"/diary/{key}/1", body=body, headers=AUTHOR)
                assert connection.sock is not None
                self._hold(connection.sock)
                ready.set()  # the payload is on its way: the parse is in flight
                sent = time.perf_counter()
                response = connection.getresponse()
                answer = response.read()
                if timings is not None:
                    timings.append(time.perf_counter() - sent)
                outcome, expected = judge(response.status, answer)
                self.count(load, outcome, expected=expected)
            except (OSError, http.client.HTTPException) as exc:
                if self.stopping.is_set():
                    self.count(load, "abandoned in flight at the end of a run")
                else:
                    self.count(load, f"error: {exc!r}", expected=False)
                if connection.sock is not None:
                    self._release(connection.sock)
                connection.close()
            if pause:
                self.stopping.wait(pause)
        if connection.sock is not None:
            self._release(connection.sock)
        connection.close()

    def _yaml(self, ready: threading.Event) -> None:
        def body(n: int) -> tuple[str, bytes]:
            return f"{HOSTILE_PREFIX}yaml-{os.getpid()}-{n}", self.big_yaml

        def judge(status: int, answer: bytes) -> tuple[str, bool]:
            if status == 200:
                return "200 (parsed and committed)", True
            reason = answer.decode(errors="replace").strip()
            if status == 400 and "within" in reason:
                return f"400 ({reason})", True  # the worker's time bound: an expected refusal
            return f"{status} ({reason[:80]})", False

        self._post_loop(ready, "YAML of 55,000 mappings", body, judge, 0, self.yaml_seconds)

    def _aliases(self, ready: threading.Event) -> None:
        def body(n: int) -> tuple[str, bytes]:
            return f"{HOSTILE_PREFIX}alias-{os.getpid()}-{n}", self.bombs[n % 2]

        def judge(status: int, answer: bytes) -> tuple[str, bool]:
            reason = answer.decode(errors="replace").strip()
            if status == 400 and "alias" in reason:
                return "400 (too many aliases)", True
            return f"{status} ({reason[:80]})", False

        self._post_loop(ready, "alias bombs (small, then over 64 KiB)", body, judge, ALIAS_PAUSE)


def attack_main(address: str, kinds: str) -> int:
    """The attacking process: start the loads, say READY, run until stdin closes, then print
    what the loads saw as one JSON line."""
    host, port = address.rsplit(":", 1)
    attack = Attack(host, int(port), set(kinds.split(",")))
    attack.start()
    if attack.wait_ready(READY_TIMEOUT):
        print(_READY, flush=True)
    sys.stdin.read()  # until the bench closes our stdin
    print(_TALLY + json.dumps(attack.stop()), flush=True)
    return 0


class Attacker:
    """The bench's handle on an attacking process."""

    def __init__(self, server: harness.RainerServer, kinds: tuple[str, ...]) -> None:
        command = [sys.executable, str(Path(__file__).resolve()), "--attack"]
        command += [f"{server.host}:{server.port}", "--kinds", ",".join(kinds)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], READY_TIMEOUT + 10)
        line = self.process.stdout.readline().strip() if ready else ""
        if line != _READY:
            self.process.kill()
            self.process.wait()
            raise RuntimeError(f"the attack did not get its loads in flight ({line!r})")

    @property
    def pid(self) -> int:
        return self.process.pid

    def finish(self) -> dict:
        """Stop the attack; what its loads saw."""
        try:
            out, _ = self.process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, _ = self.process.communicate()
        for line in out.splitlines():
            if line.startswith(_TALLY):
                return json.loads(line[len(_TALLY) :])
        raise RuntimeError(f"the attack printed no tally (exit {self.process.returncode})")


# ===========================================================================================
# Measuring: /healthz latency, CPU per process group, waiting for the server to go quiet
# ===========================================================================================


class HealthPoller:
    """GET /healthz every POLL_INTERVAL on one kept-alive connection, in a thread of the bench
    process (which only waits for wrk meanwhile); keeps each latency in milliseconds."""

    def __init__(self, server: harness.RainerServer) -> None:
        self.server = server
        self.latencies: list[float] = []
        self.failures: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> HealthPoller:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        connection = http.client.HTTPConnection(self.server.host, self.server.port, timeout=30)
        due = time.perf_counter()
        while not self._stop.is_set():
            began = time.perf_counter()
            try:
                connection.request("GET", "/healthz")
                response = connection.getresponse()
                response.read()
                self.latencies.append((time.perf_counter() - began) * 1000)
                if response.status != 200:
                    self.failures[str(response.status)] += 1
            except (OSError, http.client.HTTPException) as exc:
                self.failures[type(exc).__name__] += 1
                connection.close()
            # Fixed rate; after a slow answer the next request goes at once, not in a burst.
            due = max(due + POLL_INTERVAL, time.perf_counter())
            self._stop.wait(due - time.perf_counter())
        connection.close()


def _process_table() -> dict[int, tuple[int, int, int]]:
    """pid -> (parent pid, CPU ticks of all its threads, ticks of its children it has reaped),
    for every process."""
    table = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as file:
                    fields = file.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # after "pid (comm)": state, ppid, ...; utime, stime, cutime, cstime are 14 to 17
            ticks = int(fields[11]) + int(fields[12])
            table[int(entry.name)] = (int(fields[1]), ticks, int(fields[13]) + int(fields[14]))
    return table


def _descendants(root: int, table: dict[int, tuple[int, int, int]]) -> set[int]:
    found = {root}
    grew = True
    while grew:
        grew = False
        for pid, (parent, _, _) in table.items():
            if parent in found and pid not in found:
                found.add(pid)
                grew = True
    return found


@dataclass
class CpuShare:
    """Where the machine's CPU went during one run, each a fraction of all cores."""

    server: float  # the server's own process: event loop and its threads
    workers: float  # its YAML validation processes
    attack: float  # the hostile clients
    bench: float  # wrk and the /healthz poller
    others: float  # everything else on the machine
    idle: float


class CpuMeter:
    """Counts CPU ticks per group of processes between ``__enter__`` and ``__exit__``, process
    by process, so a validation process replaced mid-run is neither lost nor counted twice."""

    def __init__(self, server_pid: int, attack_pid: int | None) -> None:
        self.server_pid, self.attack_pid = server_pid, attack_pid
        self.share: CpuShare | None = None

    def _snapshot(self) -> tuple[dict[int, tuple[int, int, int]], float, tuple[int, int]]:
        times = os.times()
        own = (times.user + times.system + times.children_user + times.children_system) * (
            os.sysconf("SC_CLK_TCK")
        )
        return _process_table(), own, loads._machine_ticks()

    def __enter__(self) -> CpuMeter:
        self.before = self._snapshot()
        return self

    def __exit__(self, *_: object) -> None:
        (table0, own0, (busy0, total0)), (table1, own1, (busy1, total1)) = (
            self.before,
            self._snapshot(),
        )
        total = max(1, total1 - total0)

        def used(pids: set[int]) -> int:
            return sum(table1[p][1] - table0.get(p, (0, 0, 0))[1] for p in pids if p in table1)

        server = self.server_pid
        server_tree = _descendants(server, table1)
        attack = _descendants(self.attack_pid, table1) if self.attack_pid else set()
        # A validation process killed at its time bound is gone from /proc by the end; its
        # ticks went to the server's reaped-children count, which is added here. One alive at
        # the start and reaped since counts in both, so its ticks before the run come off.
        gone = [p for p in _descendants(server, table0) - {server} if p not in table1]
        workers = (
            used(server_tree - {server})
            + (table1[server][2] - table0[server][2])
            - sum(table0[p][1] for p in gone)
        )
        shares = {
            "server": max(0, used({server})) / total,
            "workers": max(0, workers) / total,
            "attack": max(0, used(attack)) / total,
            "bench": max(0.0, own1 - own0) / total,
        }
        busy = (busy1 - busy0) / total
        others = max(0.0, busy - sum(shares.values()))
        self.share = CpuShare(**shares, others=others, idle=max(0.0, 1 - busy))


def settle(server: harness.RainerServer, limit: float = 60.0) -> float:
    """Wait until the server and its validation processes use (almost) no CPU: an abandoned
    parse or a list whose reader went away may still be running. Seconds waited."""
    assert server.pid is not None
    began = time.monotonic()
    before = loads._tree_ticks([server.pid])
    while time.monotonic() - began < limit:
        time.sleep(0.5)
        now = loads._tree_ticks([server.pid])
        if now - before <= 2:  # at most 2 ticks in 0.5 s: under 4% of one core
            break
        before = now
    return time.monotonic() - began


def bury_hostile_keys(server: harness.RainerServer) -> int:
    """Tombstone the keys the attack committed, so every run lists the same heads."""
    client = Client(server)
    try:
        status, body = client.request("GET", "/diary")
        if status != 200:
            raise RuntimeError(f"GET /diary answered {status}")
        buried = 0
        for key, meta in json.loads(body).items():
            if key.startswith(HOSTILE_PREFIX):
                path = f"/diary/{quote(key, safe='')}/{meta['version'] + 1}"
                status, _ = client.request("POST", path, b"", {**AUTHOR, "X-Rainer-Empty": "yes"})
                if status != 200:
                    raise RuntimeError(f"burying {key} answered {status}")
                buried += 1
        return buried
    finally:
        client.close()


# ===========================================================================================
# Part 1: head reads, quiet and under attack
# ===========================================================================================


@dataclass
class Variant:
    """One condition head reads are measured under: the attack's loads (none: quiet)."""

    name: str
    kinds: tuple[str, ...]
    results: list[Result] = field(default_factory=list)
    health: list[float] = field(default_factory=list)
    health_failures: Counter[str] = field(default_factory=Counter)
    cpu: list[CpuShare] = field(default_factory=list)
    settled: list[float] = field(default_factory=list)
    tallies: list[dict] = field(default_factory=list)
    bad: int = 0

    def result(self) -> Result:
        return Result.median(self.results)


@dataclass(frozen=True)
class Plan:
    """What a run measures; ``--quick`` shrinks it to a smoke test."""

    big_keys: int = 10  # 8 MiB YAML keys on the head-read server
    big_bytes: int = 8 * MIB
    singles: bool = True  # also each hostile load on its own
    memory_keys: int = 10_000
    memory_bytes: int = 10 * KIB
    lists_per_kind: int = 5
    histories: int = 100
    issue_keys: int = 10  # the issue's case: keys of big_bytes, then issue_lists lists
    issue_lists: int = 3


def seed_head_server(server: harness.RainerServer, plan: Plan) -> float:
    """100 keys of 100 bytes (bench/targets.py), then the big YAML keys, through the server's
    own validation; seconds the big ones took."""
    targets.seed_rainer(server.diary_url)
    began = time.monotonic()
    big = [(f"big{n}", yaml_list(plan.big_bytes, f"big{n}")) for n in range(plan.big_keys)]
    # Two at a time: the server parses large payloads in two worker processes.
    statuses = parallel(server, commit_jobs(big), threads=2)
    expect_all_200(f"seeding {plan.big_keys} keys of {plan.big_bytes // MIB} MiB", statuses)
    return time.monotonic() - began


def measure_variant(
    server: harness.RainerServer, variant: Variant, load: Load, settings: Settings, run: int
) -> None:
    assert server.pid is not None
    attacker = Attacker(server, variant.kinds) if variant.kinds else None
    try:
        with HealthPoller(server) as poller, CpuMeter(server.pid, attacker and attacker.pid) as cpu:
            result = loads.run_wrk(load, settings, run)
    finally:
        tally = attacker.finish() if attacker else None
    if not server.running:
        raise RuntimeError(server.failure_message(f"the server died during '{variant.name}'"))
    variant.results.append(result)
    variant.bad += result.bad + result.socket_errors
    variant.health += poller.latencies
    variant.health_failures += poller.failures
    assert cpu.share is not None
    variant.cpu.append(cpu.share)
    if tally is not None:
        variant.tallies.append(tally)
    variant.settled.append(settle(server))
    bury_hostile_keys(server)
    worst = max(poller.latencies, default=float("nan"))
    progress(
        f"  {variant.name}: {result.rps:,.0f} req/s, p99 {result.p99_ms:.2f} ms, /healthz worst "
        f"{worst:.1f} ms, others {cpu.share.others:.0%}, settled in {variant.settled[-1]:.1f} s"
    )


def head_reads(settings: Settings, plan: Plan) -> tuple[list[Variant], dict]:
    variants = [Variant("quiet", ()), Variant("hostile: all loads at once", ATTACK_KINDS)]
    if plan.singles:
        variants += [
            Variant("only (a) 100 stalled connections", ("stalled",)),
            Variant("only (b) the worst-case list, slow and fast readers", ("lists",)),
            Variant("only (c) YAML that takes seconds, alias bombs", ("yaml",)),
        ]
    facts: dict = {}
    args = ["--database", "sqlite:///rainer.db", "--log-level", "warning", "--validate", "yaml"]
    with harness.RainerServer(args) as server:
        progress(f"part 1: seeding 100 small keys and {plan.big_keys} of 8 MiB YAML")
        facts["seed_big_seconds"] = seed_head_server(server, plan)
        client = Client(server)
        status, facts["worst_list_bytes"] = client.stream(WORST_LIST)
        client.close()
        if status != 200:
            raise RuntimeError(f"the worst-case list answered {status}")
        # Everything but the process's pid: the attack, wrk and the poller are ours too.
        load = Load("head reads", f"{server.diary_url}/{targets.READ_KEY}", [os.getpid()])
        if settings.warmup_seconds:
            warm = loads.run_wrk(load, settings, 0, seconds=settings.warmup_seconds)
            variants[0].bad += warm.bad + warm.socket_errors
        for run in range(1, settings.runs + 1):
            progress(f"part 1: round {run} of {settings.runs}")
            for variant in variants:  # round-robin, so a busy spell spreads over all of them
                measure_variant(server, variant, load, settings, run)
        log = server.log_text().splitlines()
        facts["server_errors"] = [
            line for line in log if "Traceback" in line or " ERROR " in line or " CRITICAL " in line
        ]
        # uvicorn's warnings (a malformed request, the connection limit): what, how often.
        facts["server_warnings"] = Counter(
            line.split(" WARNING ", 1)[1] for line in log if " WARNING " in line
        )
    return variants, facts


def http_get(server: harness.RainerServer, path: str) -> tuple[int, bytes]:
    client = Client(server)
    try:
        return client.request("GET", path)
    finally:
        client.close()


# ===========================================================================================
# Part 2: memory
# ===========================================================================================


def rss(server: harness.RainerServer) -> tuple[float, float]:
    """(VmRSS, VmHWM) of the server process in MiB."""
    found = {}
    with open(f"/proc/{server.pid}/status") as file:
        for line in file:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(value.split()[0]) / 1024  # kB
    return found["VmRSS"], found["VmHWM"]


@dataclass
class MemoryRow:
    config: str
    budget: int
    step: str
    rss: float
    hwm: float


def serve(database: Path, cache_bytes: int | None = None) -> harness.RainerServer:
    args = ["--database", f"sqlite:///{database}", "--log-level", "warning"]
    if cache_bytes is not None:
        args += ["--cache-bytes", str(cache_bytes)]
    return harness.RainerServer(args)


def memory(plan: Plan, folder: Path) -> tuple[float, list[MemoryRow], dict]:
    """The empty server's RSS, then each configuration's steps."""
    rows: list[MemoryRow] = []
    facts: dict = {}
    bad: Counter[int] = Counter()

    def note(server: harness.RainerServer, config: str, budget: int, step: str) -> None:
        rows.append(MemoryRow(config, budget, step, *rss(server)))

    progress("part 2: the empty server")
    with serve(folder / "empty.db") as server:
        # A few requests first, so the figure includes what the first requests set up.
        for path in ("/healthz", "/diary", "/diary?payload_base64=yes", "/diary/nothing"):
            http_get(server, path)
        fixed = rss(server)[0]

    keys = [f"key{n:05d}" for n in range(plan.memory_keys)]
    database = folder / "keys.db"
    progress(f"part 2: seeding {plan.memory_keys:,} keys of {plan.memory_bytes // KIB} KiB")
    with serve(database) as server:
        began = time.monotonic()
        items = ((key, memory_payload(key, plan.memory_bytes)) for key in keys)
        expect_all_200("seeding", parallel(server, commit_jobs(items)))
        facts["seed_seconds"] = time.monotonic() - began

    for budget, label in ((None, "default"), (SMALL_CACHE_BYTES, "16 MiB")):
        config = f"{plan.memory_keys:,} keys of {plan.memory_bytes // KIB} KiB, budget {label}"
        size = budget or DEFAULT_CACHE_BYTES
        progress(f"part 2: {config}")
        # A fresh process on the existing database: what a restarted server holds.
        with serve(database, budget) as server:
            note(server, config, size, "after start-up (heads loaded from the database)")
            bad += parallel(server, (("GET", f"/diary/{key}", None, {}) for key in keys))
            note(server, config, size, "after reading every head once")
            for flags, what in (
                ("payload_utf8=yes", "with payload_utf8"),
                ("payload_base64=yes", "with payload_base64"),
                ("", "without payloads"),
            ):
                client = Client(server)
                for _ in range(plan.lists_per_kind):
                    status, _size = client.stream(f"/diary?{flags}" if flags else "/diary")
                    bad[status] += 1
                client.close()
                note(server, config, size, f"after {_n(plan.lists_per_kind, 'list')} {what}")
            client = Client(server)
            for key in keys[: plan.histories]:
                status, _size = client.stream(
                    f"/diary/{key}/history?payload_utf8=yes&payload_base64=yes"
                )
                bad[status] += 1
            client.close()
            note(server, config, size, f"after the history of {plan.histories} keys, payloads")

    config = f"{plan.issue_keys} keys of {plan.big_bytes // MIB} MiB, budget default"
    progress(f"part 2: {config}")
    database = folder / "big.db"
    with serve(database) as server:
        big = [(f"big{n}", yaml_list(plan.big_bytes, f"big{n}")) for n in range(plan.issue_keys)]
        expect_all_200("seeding the big keys", parallel(server, commit_jobs(big), threads=4))
    with serve(database) as server:
        note(server, config, DEFAULT_CACHE_BYTES, "after start-up (heads loaded)")
        client = Client(server)
        for n in range(1, plan.issue_lists + 1):
            status, size = client.stream(WORST_LIST)
            bad[status] += 1
            facts["issue_list_bytes"] = size
            note(server, config, DEFAULT_CACHE_BYTES, f"after list {n} (payload_utf8 and _base64)")
        client.close()
    facts["non_200"] = sum(count for status, count in bad.items() if status != 200)
    return fixed, rows, facts


# ===========================================================================================
# Printing
# ===========================================================================================


def _pct(value: float) -> str:
    return f"{value:.0%}"


def _n(count: int, word: str) -> str:
    """``count`` and ``word``, plural unless one (--quick runs once)."""
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def print_head_reads(variants: list[Variant], settings: Settings) -> None:
    quiet = variants[0].result()
    print("\n### Head reads under hostile load\n")
    print(
        "| load on the server | req/s | range of runs | p50 ms | p99 ms | non-200 | vs quiet "
        "| /healthz p50 ms | p99 ms | worst ms | others' CPU |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for variant in variants:
        r = variant.result()
        rates = [x.rps for x in variant.results]
        health = variant.health or [float("nan")]
        failures = sum(variant.health_failures.values())
        worst = f"{max(health):.1f}" + (f" ({failures} failed)" if failures else "")
        print(
            f"| {variant.name} | {r.rps:,.0f} | {min(rates):,.0f}-{max(rates):,.0f} "
            f"| {r.p50_ms:.2f} | {r.p99_ms:.2f} | {variant.bad} | {r.rps / quiet.rps:.2f}x "
            f"| {percentile(health, 0.5):.1f} | {percentile(health, 0.99):.1f} | {worst} "
            f"| {_pct(statistics.median(share.others for share in variant.cpu))} |"
        )
    print("\n### Where the CPU went (medians of the runs, share of all cores)\n")
    print(
        "| load on the server | server process | its YAML workers | hostile clients "
        "| wrk + poller | others | idle | server busy after the loads stopped |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for variant in variants:
        med = {
            name: statistics.median(getattr(share, name) for share in variant.cpu)
            for name in ("server", "workers", "attack", "bench", "others", "idle")
        }
        print(
            f"| {variant.name} | {_pct(med['server'])} | {_pct(med['workers'])} "
            f"| {_pct(med['attack'])} | {_pct(med['bench'])} | {_pct(med['others'])} "
            f"| {_pct(med['idle'])} | {statistics.median(variant.settled):.1f} s |"
        )


def print_attack(variants: list[Variant]) -> None:
    """What the hostile clients got, over every run of every variant that had them."""
    tally: dict[str, Counter[str]] = {}
    unexpected: list[str] = []
    seconds: list[float] = []
    for variant in variants:
        for report in variant.tallies:
            for load, counts in report["tally"].items():
                tally.setdefault(load, Counter()).update(counts)
            unexpected += report["unexpected"]
            seconds += report["yaml_seconds"]
    print("\n### What the hostile clients got (all runs)\n")
    print("| hostile load | outcome | count |")
    print("| --- | --- | ---: |")
    for load in sorted(tally):
        for outcome, count in sorted(tally[load].items()):
            shown = f"{count / MIB:,.0f} MiB" if outcome == "bytes read" else f"{count:,}"
            print(f"| {load} | {outcome} | {shown} |")
    if seconds:
        print(
            f"\nYAML of {YAML_LINES:,} mappings: answered in {statistics.median(seconds):.1f} s "
            f"(median; {min(seconds):.1f}-{max(seconds):.1f} s, {_n(len(seconds), 'answer')})."
        )
    print(
        "\nUnexpected answers to the hostile clients (5xx, dropped connections, an accepted "
        f"bomb): {len(unexpected)}" + (f": {'; '.join(unexpected[:5])}" if unexpected else "")
    )


def print_goals(variants: list[Variant]) -> None:
    quiet, hostile = variants[0], variants[1]
    ratio = hostile.result().rps / quiet.result().rps
    worst = max(hostile.health) if hostile.health else float("inf")
    p99 = percentile(hostile.health, 0.99) if hostile.health else float("inf")
    bad = sum(v.bad for v in variants)
    print("\n### Goals\n")
    print("| goal | measured | result |")
    print("| --- | --- | --- |")
    print(
        f"| head reads under hostile load >= 0.8x quiet | {ratio:.2f}x "
        f"({hostile.result().rps:,.0f} vs {quiet.result().rps:,.0f}/s) "
        f"| {'pass' if ratio >= 0.8 else 'MISS'} ({ratio / 0.8:.0%} of the target) |"
    )
    print(
        f"| worst /healthz latency under hostile load < 100 ms | {worst:.1f} ms "
        f"(p99 {p99:.1f} ms, {len(hostile.health):,} polls) "
        f"| {'pass' if worst < 100 else 'MISS'} ({worst / 100:.0%} of the limit) |"
    )
    print(f"| every head read a 200 | {bad} not 200 | {'pass' if not bad else 'FAIL'} |")


def print_memory(fixed: float, rows: list[MemoryRow]) -> None:
    print("\n### Memory: RSS of the server process\n")
    print(
        f"Fixed overhead: an empty server (no keys, after its first requests) has VmRSS "
        f'{fixed:.0f} MiB. "Above empty" is VmHWM, the peak so far, minus that.\n'
    )
    print(
        "| keys and budget | after | VmRSS MiB | VmHWM MiB | above empty MiB | --cache-bytes MiB |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(
            f"| {row.config} | {row.step} | {row.rss:.0f} | {row.hwm:.0f} "
            f"| {row.hwm - fixed:.0f} | {row.budget / MIB:.0f} |"
        )


def print_how(settings: Settings, plan: Plan, facts: dict, whole: float) -> None:
    print("\n### How measured\n")
    print(
        f"Part 1: one `rainer serve --validate yaml` on SQLite, seeded with 100 keys of 100 "
        f"bytes and {plan.big_keys} keys of {plan.big_bytes // MIB} MiB (YAML lists of 80-byte "
        f"strings; committing them through the server's validation took "
        f"{facts['seed_big_seconds']:.0f} s), so `GET {WORST_LIST}` is "
        f"{facts['worst_list_bytes'] / MIB:,.0f} MiB of JSON. Head reads: wrk on "
        f"`GET /diary/{targets.READ_KEY}`, {settings.threads} thread, {settings.connections} "
        f"connections, {settings.warmup_seconds} s warm-up, then "
        f"{_n(settings.runs, 'round')} of one {settings.seconds} s run per condition, "
        f"round-robin; medians (p50/p99 from wrk's "
        f"histogram; non-200 is wrk's count of statuses >= 400 plus socket errors). During "
        f"every run a poller in the bench process sends `GET /healthz` every "
        f"{POLL_INTERVAL * 1000:.0f} ms on one kept-alive connection. The hostile loads run in "
        f"a separate process, started before wrk and stopped after it: (a) {STALLED} "
        f"connections, half of them sent `{HALF_LINE.decode()}` and half nothing, opened one "
        f"by one over the server's {HEAD_TIMEOUT:g} s head timeout and each reopened as soon "
        f"as the server closes it (408, or silently), so wrk starts once the first has been "
        f"closed and they churn steadily during the run; (b) "
        f"`GET {WORST_LIST}` read by a slow reader ({SLOW_RCVBUF}-byte receive buffer, "
        f"{SLOW_READ}-byte reads with a {SLOW_PAUSE * 1000:.0f} ms pause after each) and, in a "
        f"loop on a kept-alive connection, by a fast reader; (c) one POST at a time, each to a "
        f"new key, of {YAML_LINES:,} lines `keyN: {{a: [1, 2, 3], b: 'text N'}}` "
        f"({len(slow_yaml()) / 1e6:.1f} MB), plus every {ALIAS_PAUSE * 1000:.0f} ms an alias bomb "
        f"({ALIAS_LEVELS} levels of 10 aliases; alternately {len(alias_bomb())} bytes and over "
        f"64 KiB, which go to a validation process). After each run the bench waits until the "
        f"server's processes are idle (the time is in the CPU table) and tombstones the keys "
        f"the attack committed, so every run lists the same heads. CPU shares come from "
        f"/proc/PID/stat per process group against /proc/stat (others' CPU: processes we did "
        f"not start). Part 2: servers on SQLite without validation, no other load; RSS is "
        f"VmRSS and VmHWM from /proc/PID/status. {plan.memory_keys:,} keys of "
        f"{plan.memory_bytes // KIB} KiB were committed by 16 threads on kept-alive "
        f"connections ({facts['seed_seconds']:.1f} s), then each budget's server was started "
        f"fresh on that database; heads were read by 16 threads, lists and histories (`limit` "
        f"left at its default) by one client reading each body to the end; the big keys' "
        f"lists were {facts['issue_list_bytes'] / MIB:,.0f} MiB each. Whole run "
        f"{whole:.0f} s."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=4, help="seconds per wrk run (4)")
    parser.add_argument("--runs", type=int, default=3, help="runs per condition; the median (3)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up seconds (1)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1 run of 2 s, fewer keys and lists: a smoke test",
    )
    parser.add_argument(
        "--no-singles", action="store_true", help="skip each hostile load on its own"
    )
    parser.add_argument(
        "--src",
        type=Path,
        metavar="DIR",
        help="serve the rainer package from DIR (a patched copy of src/) instead of src/",
    )
    parser.add_argument("--attack", metavar="HOST:PORT", help=argparse.SUPPRESS)
    parser.add_argument("--kinds", default=",".join(ATTACK_KINDS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.attack:
        return attack_main(args.attack, args.kinds)
    if args.src:
        harness.rainer.SRC_DIR = args.src.resolve()
    settings = Settings(seconds=args.seconds, runs=args.runs, warmup_seconds=args.warmup)
    plan = Plan(singles=not args.no_singles)
    if args.quick:
        settings = replace(settings, seconds=2, runs=1)
        plan = replace(
            plan, big_keys=3, memory_keys=2000, lists_per_kind=1, histories=10, issue_keys=3,
            issue_lists=1,
        )  # fmt: skip
    reason = loads.wrk_available()
    if reason:
        print(f"hostile_bench: cannot run: {reason}", file=sys.stderr)
        return 2
    began = time.monotonic()
    load_before = os.getloadavg()
    variants, facts = head_reads(settings, plan)

    # Part 1 is printed as soon as it is measured, so a failure in part 2 does not lose it.
    print("## Rainer under hostile load, and its memory\n")
    print("\n".join(line for line in machine() if line.startswith(("- date", "- CPU", "- mem"))))
    print(f"- {_command_output(['wrk', '--version']).splitlines()[0].split(' Copyright')[0]}")
    if args.src:
        print(f"- rainer served from {args.src} (a copy), not from src/")
    others = statistics.median(share.others for v in variants for share in v.cpu)
    print(
        f"- other processes used a median {others:.0%} of the machine's CPU during the runs of "
        f"part 1; load average {load_before[0]:.1f} at the start"
    )
    print_head_reads(variants, settings)
    print_goals(variants)
    print_attack(variants)
    if facts["server_errors"]:
        print(f"\nServer log: {len(facts['server_errors'])} error lines, the first:")
        print("\n".join(f"    {line}" for line in facts["server_errors"][:5]))
    else:
        print("\nServer log: no errors or tracebacks.")
    warnings = facts["server_warnings"]
    if warnings:
        common = "; ".join(f"{text!r} x{count}" for text, count in warnings.most_common(3))
        print(f"Server log warnings: {sum(warnings.values())}, most often: {common}")
    sys.stdout.flush()

    with tempfile.TemporaryDirectory(prefix="rainer-memory-") as folder:
        fixed, rows, memory_facts = memory(plan, Path(folder))
    facts.update(memory_facts)
    print_memory(fixed, rows)
    print_how(settings, plan, facts, time.monotonic() - began)
    print(f"\nLoad average at the end: {os.getloadavg()[0]:.1f}.")

    bad = sum(v.bad for v in variants) + facts["non_200"]
    if bad:
        print(
            f"\nhostile_bench: {bad} head reads were not 200 (see non-200 above)", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
