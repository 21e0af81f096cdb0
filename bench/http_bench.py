"""``make bench``: our HTTP API on SQLite and PostgreSQL against etcd 3.4 and nginx, with wrk.

Every load runs with the same wrk settings (1 thread, 16 connections unless the load says
otherwise, a warm-up, then the median of several runs). Each server is started here on loopback
on a fresh database and stopped afterwards. The tables print as Markdown, for
docs/benchmarks.md. Exit status 1 when any answer was not a 200 (a benchmark that gets 409s
measures the wrong thing).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loads
import targets
from loads import Result, Settings
from targets import harness

WRITERS = 16


@dataclass
class Row:
    name: str
    result: Result
    anchor: str | None = None  # which etcd figure it compares to


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _command_output(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (done.stdout + done.stderr).strip()


def machine() -> list[str]:
    model = "?"
    for line in _command_output(["lscpu"]).splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    memory = "?"
    for line in _command_output(["free", "-h"]).splitlines():
        if line.startswith("Mem:"):
            memory = line.split()[1]
    postgres = harness.postgres.find_bindir()
    return [
        f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        f"- CPU: {model}, {_command_output(['nproc'])} cores (shared by wrk and the server)",
        f"- memory: {memory}; kernel {platform.release()}; Python {platform.python_version()}",
        f"- {_command_output(['wrk', '--version']).splitlines()[0].split(' Copyright')[0]}; "
        f"{_command_output(['etcd', '--version']).splitlines()[0]}; "
        f"{_command_output(['nginx', '-v'])}; "
        + (_command_output([str(postgres / "postgres"), "--version"]) if postgres else ""),
    ]


def measure_rainer(
    database_url: str | None, settings: Settings, label: str, stack: str = "uvicorn"
) -> list[Row]:
    """Start a server on a fresh database, seed it, run every load; stop it."""
    with targets.rainer_server(database_url, stack) as server:
        targets.seed_rainer(server.diary_url)
        diary = server.diary_url
        rows = []

        def load(name: str, url: str, anchor: str | None, **kwargs) -> None:
            progress(f"{label}: {name}")
            rows.append(Row(name, loads.measure(url, settings, **kwargs), anchor))

        read_key = targets.READ_KEY
        load("head reads: GET /diary/KEY", f"{diary}/{read_key}", "etcd range")
        if stack != "uvicorn":
            return rows
        load("versioned reads: GET /diary/KEY/1", f"{diary}/{read_key}/1", "etcd range")
        load(
            f"list, {targets.KEYS} keys: GET /diary?payload_base64=yes",
            f"{diary}?payload_base64=yes",
            "etcd range",
        )
        payload = targets.PAYLOAD.decode()
        load(
            "commits, 1 writer",
            server.url,
            "etcd put, 1 connection",
            script="commits.lua",
            connections=1,
            fresh_args=lambda run: (f"one{run}", payload),
        )
        load(
            f"commits, {WRITERS} writers on distinct keys",
            server.url,
            "etcd put",
            script="commits.lua",
            connections=WRITERS,
            fresh_args=lambda run: (f"many{run}", payload),
        )
        return rows


def measure_anchors(settings: Settings) -> dict[str, Result]:
    anchors = {}
    with harness.NginxServer() as nginx:
        progress("nginx: 100-byte static file")
        anchors["nginx"] = loads.measure(nginx.static_url, settings)
    range_body, put_body = targets.etcd_bodies()
    with harness.EtcdServer() as etcd:
        targets.seed_etcd(etcd)
        for name, path, body, connections in (
            ("etcd range", "/v3/kv/range", range_body, None),
            ("etcd put", "/v3/kv/put", put_body, None),
            ("etcd put, 1 connection", "/v3/kv/put", put_body, 1),
        ):
            progress(name)
            anchors[name] = loads.measure(
                etcd.client_url + path,
                settings,
                "post.lua",
                ("application/json", body),
                connections=connections,
            )
    return anchors


def _ms(value: float) -> str:
    return f"{value:.2f}"


def _ratio(ours: Result, theirs: Result | None) -> str:
    return f"{ours.rps / theirs.rps:.2f}x" if theirs and theirs.rps else "-"


def print_table(title: str, rows: list[Row], anchors: dict[str, Result]) -> None:
    print(f"\n### {title}\n")
    print("| load | req/s | p50 ms | p99 ms | non-200 | vs etcd | vs nginx |")
    print("| --- | ---: | ---: | ---: | ---: | --- | ---: |")
    for row in rows:
        r = row.result
        bad = r.bad + r.socket_errors
        vs_etcd = f"{_ratio(r, anchors.get(row.anchor))} {row.anchor}" if row.anchor else "-"
        print(
            f"| {row.name} | {r.rps:,.0f} | {_ms(r.p50_ms)} | {_ms(r.p99_ms)} | {bad} "
            f"| {vs_etcd} | {_ratio(r, anchors.get('nginx'))} |"
        )


def print_anchors(anchors: dict[str, Result]) -> None:
    print("\n### Anchors\n")
    print("| load | req/s | p50 ms | p99 ms | non-200 |")
    print("| --- | ---: | ---: | ---: | ---: |")
    names = {
        "nginx": "nginx, 100-byte static file",
        "etcd range": "etcd range: POST /v3/kv/range",
        "etcd put": "etcd put: POST /v3/kv/put",
        "etcd put, 1 connection": "etcd put, 1 connection",
    }
    for key, r in anchors.items():
        print(
            f"| {names[key]} | {r.rps:,.0f} | {_ms(r.p50_ms)} | {_ms(r.p99_ms)} "
            f"| {r.bad + r.socket_errors} |"
        )


def print_targets(backends: dict[str, list[Row]], anchors: dict[str, Result]) -> None:
    print("\n### Targets (issue 2)\n")
    print("| target | measured | result |")
    print("| --- | --- | --- |")

    def line(target: str, measured: str, ok: bool, margin: str) -> None:
        print(f"| {target} | {measured} | {'pass' if ok else 'MISS'} ({margin}) |")

    for backend, rows in backends.items():
        head = rows[0].result
        etcd_range = anchors["etcd range"].rps
        nginx = anchors["nginx"].rps
        ratio = head.rps / etcd_range
        line(
            f"{backend} head reads ≥ 3x etcd range",
            f"{ratio:.2f}x ({head.rps:,.0f} vs {etcd_range:,.0f}/s)",
            ratio >= 3,
            f"{ratio / 3:.0%} of target",
        )
        ratio = head.rps / nginx
        line(
            f"{backend} head reads ≥ 0.3x nginx",
            f"{ratio:.2f}x ({head.rps:,.0f} vs {nginx:,.0f}/s)",
            ratio >= 0.3,
            f"{ratio / 0.3:.0%} of target",
        )
        line(
            f"{backend} head-read p99 < 2 ms at 16 connections",
            f"{head.p99_ms:.2f} ms",
            head.p99_ms < 2,
            f"{head.p99_ms / 2:.0%} of the limit",
        )
        if backend == "SQLite":
            commits = rows[-1].result
            put = anchors["etcd put"].rps
            ratio = commits.rps / put
            line(
                f"SQLite {WRITERS}-writer commits ≥ 1.0x etcd put",
                f"{ratio:.2f}x ({commits.rps:,.0f} vs {put:,.0f}/s)",
                ratio >= 1,
                f"{ratio:.0%} of target",
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=4, help="seconds per run (4)")
    parser.add_argument("--runs", type=int, default=3, help="runs per load; the median (3)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up seconds per load (1)")
    parser.add_argument("--quick", action="store_true", help="1 run of 2 s: a smoke test")
    parser.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--no-granian", action="store_true", help="skip the granian comparison")
    args = parser.parse_args(argv)
    settings = Settings(seconds=args.seconds, runs=args.runs, warmup_seconds=args.warmup)
    if args.quick:
        settings = replace(settings, seconds=2, runs=1, warmup_seconds=1)
    for reason in (
        loads.wrk_available(),
        harness.EtcdServer.available(),
        harness.NginxServer.available(),
    ):
        if reason:
            print(f"bench: cannot run: {reason}", file=sys.stderr)
            return 2
    postgres_missing = harness.PostgresServer.available()
    began = time.monotonic()

    anchors = measure_anchors(settings)
    backends = {"SQLite": measure_rainer(None, settings, "SQLite")}
    if args.no_postgres:
        postgres_missing = "skipped (--no-postgres)"
    if not postgres_missing:
        with harness.PostgresServer() as postgres:
            backends["PostgreSQL"] = measure_rainer(postgres.url, settings, "PostgreSQL")
    stacks: dict[str, list[Row]] = {}
    if not args.no_granian:
        stacks["granian"] = measure_rainer(None, settings, "SQLite on granian", stack="granian")

    print("## Rainer HTTP benchmark\n")
    print("\n".join(machine()))
    print(
        f"- load: wrk, {settings.threads} thread, {settings.connections} connections unless "
        f"noted, {settings.warmup_seconds:g} s warm-up, median of {settings.runs} runs of "
        f"{settings.seconds:g} s; servers on 127.0.0.1, one process each; "
        f"whole run {time.monotonic() - began:.0f} s"
    )
    print_anchors(anchors)
    for backend, rows in backends.items():
        print_table(f"{backend} (uvicorn + httptools + uvloop)", rows, anchors)
    if postgres_missing:
        print(f"\nPostgreSQL: not measured: {postgres_missing}")
    if stacks:
        stack_rows = [replace(backends["SQLite"][0], name="uvicorn + httptools + uvloop")]
        stack_rows += [
            replace(rows[0], name="granian (1 worker, uvloop, HTTP/1)") for rows in stacks.values()
        ]
        print_table("HTTP stack: the same app, SQLite head reads", stack_rows, anchors)
    print_targets(backends, anchors)

    every = [row.result for rows in (*backends.values(), *stacks.values()) for row in rows]
    bad = sum(r.bad + r.socket_errors for r in (*every, *anchors.values()))
    if bad:
        print(f"\nbench: {bad} answers were not 200 (see non-200 above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
