"""``make bench``, the web console: server time and weight of its heaviest pages.

A real ``rainer serve`` (uvicorn, SQLite) on a database of 10,000 keys (a JSON payload of about
300 bytes each, under 40 prefixes) and one key with 10,000 versions. Each page is asked for
``--rounds`` times after a warm-up; the server's own time is its ``Server-Timing: app`` header
(from the console receiving the request to the page being ready to send: reads, filtering,
highlighting, diffs and the template), the client's is the whole request on loopback.

Weight is what a browser fetches for the page: the HTML plus the stylesheet, the script and the
icon (each fetched once, then cached for good), and "without the payload" leaves out the
payload's ``<pre>``. Goals (issue 13): under 100 ms at the server and under 100 KB.

Prints a Markdown table. Exit status 1 when any page did not answer 200.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from http_bench import machine, progress
from targets import harness

from rainer.commit import Commit, now
from rainer.storage.sql import SqlStorage

KEYS = 10_000
VERSIONS = 10_000
BIG_KEY = "big.history"
GOAL_MS = 100.0
GOAL_BYTES = 100 * 1024
BATCH = 1_000

PAGES = [
    ("key list, 10,000 keys (first page)", "/ui/"),
    ("key list, filtered as typed", "/ui/?q=service-12"),
    ("key list, page 50, tombstones shown", "/ui/?page=50&all=yes"),
    ("key page, 10,000 versions", f"/ui/keys/{BIG_KEY}"),
    ("key page, 10,000 versions, history at 5,000", f"/ui/keys/{BIG_KEY}?before=5000"),
    ("key page, a 300-byte JSON payload", "/ui/keys/team-07.service-0127.json"),
    ("compare version 1 with 10,000", f"/ui/keys/{BIG_KEY}/compare?from=1&to=10000"),
    ("compare two JSON versions, by path", "/ui/keys/team-00.service-0000.json/compare"),
    ("revert confirmation", f"/ui/keys/{BIG_KEY}/revert?version=1"),
]
STATIC = ["/ui/static/console.css", "/ui/static/console.js", "/ui/static/icon.svg"]


def payload(index: int, version: int) -> bytes:
    value = {
        "service": f"service-{index:04d}",
        "team": f"team-{index % 40:02d}",
        "replicas": 2 + version,
        "image": f"registry.example/service-{index:04d}:{version}.0.{index % 7}",
        "limits": {"cpu": "500m", "memory": "256Mi"},
        "env": {"LOG_LEVEL": "info", "FEATURE_X": index % 2 == 0},
        "ports": [8080, 9090],
    }
    return json.dumps(value).encode()


def seed(database: Path) -> None:
    """10,000 keys of two versions' worth of history (the first key) or one, and one key of
    10,000 versions, written straight into the SQLite file before the server starts."""
    storage = SqlStorage(f"sqlite:///{database}")
    storage.start()
    try:
        mtime = now()
        commits = [
            Commit(f"team-{i % 40:02d}.service-{i:04d}.json", 1, payload(i, 1), "seed", "", mtime)
            for i in range(KEYS)
        ]
        commits.append(Commit("team-00.service-0000.json", 2, payload(0, 2), "seed", "", mtime))
        commits += [
            Commit(BIG_KEY, v, f"value: {v}\n".encode(), f"bot-{v % 5}", f"step {v}", mtime)
            for v in range(1, VERSIONS + 1)
        ]
        for start in range(0, len(commits), BATCH):
            errors = storage.save_batch(commits[start : start + BATCH])
            failed = [error for error in errors if error is not None]
            if failed:
                raise RuntimeError(f"seeding failed: {failed[0]}")
    finally:
        storage.stop()


def fetch(connection: http.client.HTTPConnection, path: str) -> tuple[int, bytes, float, float]:
    """(status, body, server ms from Server-Timing, client ms)."""
    began = time.perf_counter()
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read()
    client = (time.perf_counter() - began) * 1000
    timing = response.getheader("server-timing") or ""
    match = re.search(r"dur=([0-9.]+)", timing)
    return response.status, body, float(match.group(1)) if match else float("nan"), client


def without_payload(html: bytes) -> int:
    """The page's size less the payload it shows (the ``<pre class="payload ...">``)."""
    start = html.find(b'<pre class="payload')
    if start < 0:
        return len(html)
    end = html.find(b"</pre>", start)
    return len(html) - (end + len(b"</pre>") - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30, help="requests per page (30)")
    args = parser.parse_args()
    failures = 0
    with tempfile.TemporaryDirectory(prefix="console-bench.") as folder:
        database = Path(folder) / "rainer.db"
        progress(f"seeding {KEYS:,} keys and {VERSIONS:,} versions of {BIG_KEY}")
        seed(database)
        rows, static, failures = measure(database, args.rounds)
    report(rows, static, args.rounds)
    if failures:
        print(f"\n{failures} answers were not 200", file=sys.stderr)
    return 1 if failures else 0


def measure(database: Path, rounds: int) -> tuple[list[tuple], int, int]:
    failures = 0
    with harness.RainerServer(["--database", f"sqlite:///{database}"]) as server:
        parts = urlsplit(server.url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        static = 0
        for path in STATIC:
            status, body, _, _ = fetch(connection, path)
            failures += status != 200
            static += len(body)
        rows = []
        for label, path in PAGES:
            progress(f"{label}: {path}")
            for _ in range(3):  # warm-up: caches, first template use
                fetch(connection, path)
            server_ms, client_ms = [], []
            html = b""
            for _ in range(rounds):
                status, html, at_server, whole = fetch(connection, path)
                if status != 200:
                    failures += 1
                server_ms.append(at_server)
                client_ms.append(whole)
            rows.append((label, server_ms, client_ms, len(html), without_payload(html)))
        connection.close()
    return rows, static, failures


def report(rows: list[tuple], static: int, rounds: int) -> None:
    print("## Web console (`bench/console_bench.py`)\n")
    print(
        f"{KEYS:,} keys of about {len(payload(1, 1))} bytes under 40 prefixes, and one key of "
        f"{VERSIONS:,} versions, on SQLite; {rounds} requests per page after a warm-up, "
        "one connection. Server time is the console's own (`Server-Timing`), client time the "
        "whole request on loopback. Weight: the HTML, and with the stylesheet, script and "
        f"icon ({static / 1024:.1f} KB, cached by the browser after the first page), without "
        "the payload shown.\n"
    )
    print(
        "| page | server median | server p95 | client median | HTML | "
        "weight without payload | goals |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for label, server_ms, client_ms, size, bare in rows:
        p95 = statistics.quantiles(server_ms, n=20)[-1] if len(server_ms) > 1 else server_ms[0]
        weight = bare + static
        met = "met" if p95 < GOAL_MS and weight < GOAL_BYTES else "MISSED"
        print(
            f"| {label} | {statistics.median(server_ms):.1f} ms | {p95:.1f} ms | "
            f"{statistics.median(client_ms):.1f} ms | {size / 1024:.1f} KB | "
            f"{weight / 1024:.1f} KB | {met} |"
        )
    print()
    date, cpu, memory = machine()[:3]  # not the load tools' versions: none run here
    print(date)
    print(cpu.replace("shared by wrk and the server", "shared by the client and the server"))
    print(memory)


if __name__ == "__main__":
    sys.exit(main())
