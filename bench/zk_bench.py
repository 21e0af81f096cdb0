"""``make bench``, ZooKeeper part: mirror head reads, and how fast a commit reaches another server.

In one run, on loopback, each server a process of its own:

- head reads (``GET /diary/KEY``, wrk, the same settings as bench/http_bench.py) answered by
  the ZooKeeper mirror of a server on PostgreSQL, against the same reads answered by a server
  on SQLite (heads in memory) and by one on PostgreSQL (heads read from the database);
- propagation: two servers A and B on one PostgreSQL database and one ZooKeeper; commit after
  commit goes to A, and the clock runs from A's 200 until B answers the new version from its
  mirror (B is polled on a kept-alive connection, each poll a fraction of a millisecond).
  1,000 commits updating one key, then 1,000 commits each creating a new key (a ZooKeeper
  children watch plus a read, the slower path).

Prints Markdown tables for docs/benchmarks.md; exit status 1 when any answer was unexpected.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loads
import targets
from loads import Load, Settings
from targets import harness

COMMITS = 1000


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def zk_server(database_url: str, hosts: str, path: str) -> harness.RainerServer:
    args = ["--database", database_url, "--log-level", "warning"]
    args += ["--zookeeper", hosts, "--zk-path", path]
    return harness.RainerServer(args)


class Connection:
    """One kept-alive HTTP connection to a server; ``request`` returns (status, headers, body)."""

    def __init__(self, server: harness.RainerServer) -> None:
        self.connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
        self.prefix = "/diary"

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, http.client.HTTPResponse, bytes]:
        self.connection.request(method, self.prefix + path, body=body, headers=headers or {})
        response = self.connection.getresponse()
        return response.status, response, response.read()

    def close(self) -> None:
        self.connection.close()


def propagation(a: harness.RainerServer, b: harness.RainerServer, label: str, new_keys: bool):
    """Milliseconds from each commit's 200 on A until B's mirror answers it; and A's commit
    latency. Raises on any unexpected answer."""
    post, poll = Connection(a), Connection(b)
    delays: list[float] = []
    commits: list[float] = []
    try:
        for n in range(1, COMMITS + 1):
            key, version = (f"{label}-{n}", 1) if new_keys else (label, n)
            sent = time.perf_counter()
            status, _, body = post.request(
                "POST",
                f"/{key}/{version}",
                targets.PAYLOAD,
                {"X-Rainer-Author": "bench", "Content-Type": "text/plain"},
            )
            acknowledged = time.perf_counter()
            if status != 200:
                raise RuntimeError(f"commit {key}/{version} answered {status}: {body[:200]!r}")
            commits.append((acknowledged - sent) * 1000)
            deadline = acknowledged + 10
            while True:
                status, response, _ = poll.request("GET", f"/{key}/meta")
                cached = response.getheader("X-Rainer-Cached") == "Yes"
                if status == 200 and cached and _version(response, _) == version:
                    break
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"B did not serve {key}/{version} within 10 s")
            delays.append((time.perf_counter() - acknowledged) * 1000)
    finally:
        post.close()
        poll.close()
    return delays, commits


def _version(_response, body: bytes) -> int:
    # {"key":...,"version":N,...}: cheaper than json.loads in the polling loop
    start = body.index(b'"version":') + 10
    return int(body[start : body.index(b",", start)])


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=4, help="seconds per wrk run (4)")
    parser.add_argument("--runs", type=int, default=3, help="wrk runs per load; the median (3)")
    parser.add_argument("--quick", action="store_true", help="1 run of 2 s: a smoke test")
    args = parser.parse_args(argv)
    settings = Settings(seconds=args.seconds, runs=args.runs)
    if args.quick:
        settings = replace(settings, seconds=2, runs=1, retries=0)
    for reason in (
        loads.wrk_available(),
        harness.ZooKeeperServer.available(),
        harness.PostgresServer.available(),
    ):
        if reason:
            print(f"zk_bench: cannot run: {reason}", file=sys.stderr)
            return 2
    began = time.monotonic()
    with contextlib.ExitStack() as stack:
        progress("starting ZooKeeper, PostgreSQL and four Rainer servers; seeding")
        zookeeper = stack.enter_context(harness.ZooKeeperServer())
        postgres = stack.enter_context(harness.PostgresServer())
        sqlite = stack.enter_context(targets.rainer_server(None))
        plain_pg = stack.enter_context(targets.rainer_server(postgres.create_database("plain")))
        shared = postgres.create_database("shared")
        a = stack.enter_context(zk_server(shared, zookeeper.hosts, "/bench"))
        b = stack.enter_context(zk_server(shared, zookeeper.hosts, "/bench"))
        for server in (sqlite, plain_pg, a):
            targets.seed_rainer(server.diary_url)
        key = targets.READ_KEY
        rows = [
            Load("SQLite, heads in memory", f"{sqlite.diary_url}/{key}", [sqlite.pid]),
            Load(
                "PostgreSQL, heads from the database",
                f"{plain_pg.diary_url}/{key}",
                [plain_pg.pid, postgres.pid],
            ),
            Load(
                "PostgreSQL + ZooKeeper, heads from the mirror",
                f"{b.diary_url}/{key}",
                [b.pid, postgres.pid, zookeeper.pid],
            ),
        ]
        loads.measure_all(rows, settings, progress)
        progress(f"propagation: {COMMITS} updates of one key, A -> B")
        updates, update_commits = propagation(a, b, "hot", new_keys=False)
        progress(f"propagation: {COMMITS} new keys, A -> B")
        creates, create_commits = propagation(a, b, "new", new_keys=True)
        progress("stopping the servers")

    print("## ZooKeeper: mirror head reads and propagation\n")
    print(
        f"- head reads: wrk, {settings.threads} thread, {settings.connections} connections, "
        f"{settings.warmup_seconds} s warm-up, {settings.runs} round(s) of {settings.seconds} s, "
        "round-robin; medians; 100-byte payload"
    )
    print(
        f"- propagation: {COMMITS} sequential commits to server A; from A's 200 until server B "
        "answers the version from its mirror (GET /diary/KEY/meta with X-Rainer-Cached: Yes, "
        "polled on one kept-alive connection); both servers on one PostgreSQL and one ZooKeeper"
    )
    print(f"- whole run {time.monotonic() - began:.0f} s\n")
    print("| head reads: GET /diary/KEY | req/s | p50 ms | p99 ms | non-200 | others' CPU |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for load in rows:
        r = load.result()
        print(
            f"| {load.name} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {load.bad} "
            f"| {r.others:.0%} |"
        )
    print("\n| propagation A -> B | p50 ms | p99 ms | max ms | A's commit p50 / p99 ms |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, delays, commits in (
        (f"{COMMITS} updates of one key", updates, update_commits),
        (f"{COMMITS} new keys", creates, create_commits),
    ):
        print(
            f"| {name} | {statistics.median(delays):.2f} | {percentile(delays, 0.99):.2f} "
            f"| {max(delays):.2f} | {statistics.median(commits):.2f} / "
            f"{percentile(commits, 0.99):.2f} |"
        )

    sqlite_rps, pg_rps, mirror_rps = (load.result().rps for load in rows)
    p99 = max(percentile(updates, 0.99), percentile(creates, 0.99))
    print("\n### Targets (issue 3)\n")
    print("| target | measured | result |")
    print("| --- | --- | --- |")
    for target, measured, ok in (
        ("propagation p99 < 20 ms", f"{p99:.2f} ms (worse of the two)", p99 < 20),
        (
            "mirror head reads >= 1.5x PostgreSQL-backed",
            f"{mirror_rps / pg_rps:.2f}x ({mirror_rps:,.0f} vs {pg_rps:,.0f}/s)",
            mirror_rps >= 1.5 * pg_rps,
        ),
        (
            "mirror head reads >= 1.0x SQLite-backed",
            f"{mirror_rps / sqlite_rps:.2f}x ({mirror_rps:,.0f} vs {sqlite_rps:,.0f}/s)",
            mirror_rps >= sqlite_rps,
        ),
    ):
        print(f"| {target} | {measured} | {'pass' if ok else 'MISS'} |")
    bad = sum(load.bad for load in rows)
    if bad:
        print(f"\nzk_bench: {bad} answers were not 200", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
