"""What the Python client costs: CPU per request, and the command line's start-up.

Starts one ``rainer serve`` (SQLite, loopback) and, for each HTTP stack, runs a fresh Python
process that GETs one small key over one kept-alive connection many times and reports the CPU
time *of the client process* per request (``time.process_time``: the server's work is in
another process and not counted). Rounds are interleaved across the stacks and the median is
printed. Then it times ``python -m rainer list`` against the same server (wall clock, median),
for this tree and, with ``--old-src DIR``, for another tree's ``src`` (for example the
http.client implementation, unpacked with ``git archive``), and the import time of each stack.

    .venv/bin/python bench/client_bench.py [--old-src DIR] [--requests N] [--rounds R]

Prints Markdown tables (docs/cli.md, "Why urllib3", quotes them).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
KEY = "bench-small"
PAYLOAD = b'{"workers": 4, "listen": 8080}\n'

# name -> (description, needs a src tree)
STACKS = {
    "http.client": ("stdlib `http.client.HTTPConnection`, bare", False),
    "urllib3-pool": ("urllib3 `HTTPConnectionPool.urlopen`, bare", False),
    "urllib3-manager": ("urllib3 `PoolManager.request`, bare", False),
    "requests": ("requests `Session.get`, bare", False),
    "client": ("`RainerClient.get_value` (this tree)", True),
    "old-client": ("`RainerClient.get_value` (--old-src)", True),
}


def run_one(stack: str, url: str, count: int) -> float:
    """In this process: ``count`` GETs after a warm-up; CPU µs per request."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    path = f"{parts.path}/{KEY}"
    if stack == "http.client":
        import http.client

        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)

        def get() -> bytes:
            connection.request("GET", path)
            return connection.getresponse().read()

    elif stack == "urllib3-pool":
        import urllib3

        pool = urllib3.HTTPConnectionPool(parts.hostname, parts.port, timeout=30, retries=False)

        def get() -> bytes:
            return pool.urlopen("GET", path).data

    elif stack == "urllib3-manager":
        import urllib3

        manager = urllib3.PoolManager(timeout=30, retries=False)

        def get() -> bytes:
            return manager.request("GET", f"{url}/{KEY}").data

    elif stack == "requests":
        import requests

        session = requests.Session()

        def get() -> bytes:
            return session.get(f"{url}/{KEY}", timeout=30).content

    else:
        from rainer.client import RainerClient

        client = RainerClient(url, timeout=30)

        def get() -> bytes:
            return client.get_value(KEY)

    for _ in range(300):
        assert get() == PAYLOAD
    started = time.process_time()
    for _ in range(count):
        get()
    return (time.process_time() - started) / count * 1e6


def child(stack: str, url: str, count: int, src: Path | None) -> float:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    argv = [sys.executable, __file__, "--child", stack, "--url", url, "--requests", str(count)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    return float(done.stdout.strip())


def wall(argv: list[str], env: dict[str, str], rounds: int) -> float:
    """Median wall time of ``argv`` in ms (after one untimed run)."""
    subprocess.run(argv, env=env, capture_output=True, check=True)
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        subprocess.run(argv, env=env, capture_output=True, check=True)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def import_ms(module: str, src: Path, rounds: int) -> float:
    """Median ms ``import module`` adds to a process that has imported the CLI's other parts."""
    code = (
        "import time, argparse, json, getpass, yaml, rainer.errors, rainer.wire;"
        f"t = time.perf_counter(); import {module}; print((time.perf_counter() - t) * 1000)"
    )
    env = dict(os.environ, PYTHONPATH=str(src))
    found = []
    for _ in range(rounds):
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        found.append(float(done.stdout))
    return statistics.median(found)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old-src", type=Path, help="another tree's src folder to compare")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(run_one(args.child, args.url, args.requests))
        return 0

    sys.path.insert(0, str(ROOT / "tests"))
    from harness.rainer import RainerServer

    stacks = {name: STACKS[name] for name in STACKS if name != "old-client" or args.old_src}
    with RainerServer() as server:
        sys.path.insert(0, str(SRC))
        from rainer.client import RainerClient

        with RainerClient(server.diary_url) as client:
            client.post_commit({"key": KEY, "version": 1, "author": "bench"}, PAYLOAD)
        samples: dict[str, list[float]] = {name: [] for name in stacks}
        for _ in range(args.rounds):
            for name in stacks:
                src = args.old_src if name == "old-client" else SRC
                samples[name].append(child(name, server.diary_url, args.requests, src))

        print(f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs; ")
        print(f"{args.requests} GETs of a {len(PAYLOAD)}-byte key per round, {args.rounds} rounds")
        print()
        print("| client | CPU µs per GET (median) | range |")
        print("| --- | ---: | ---: |")
        for name, (label, _) in stacks.items():
            found = samples[name]
            print(
                f"| {label} | {statistics.median(found):.0f} | "
                f"{min(found):.0f} to {max(found):.0f} |"
            )

        print()
        print("| start-up | ms (median of 15) |")
        print("| --- | ---: |")
        base = dict(os.environ, RAINER_URL=server.diary_url)
        print(f"| `python -c pass` | {wall([sys.executable, '-c', 'pass'], base, 15):.0f} |")
        trees = [("this tree", SRC)] + ([("--old-src", args.old_src)] if args.old_src else [])
        for label, src in trees:
            env = dict(base, PYTHONPATH=str(src))
            ms = wall([sys.executable, "-m", "rainer", "list"], env, 15)
            print(f"| `python -m rainer list` ({label}) | {ms:.0f} |")
        for module in ("http.client", "urllib3", "requests"):
            print(f"| `import {module}` after the CLI's other imports | "
                  f"{import_ms(module, SRC, 15):.1f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
