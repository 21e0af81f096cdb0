"""``make bench``: our HTTP API on SQLite and PostgreSQL against etcd 3.4 and nginx, with wrk.

Every load runs with the same wrk settings (1 thread, 16 connections unless the load says
otherwise, a warm-up, then the median of several runs, taken round-robin across all loads).
Every server is started here on loopback, each Rainer on a fresh database, and stopped at the
end. The tables print as Markdown, for docs/benchmarks.md. Exit status 1 when any answer was
not a 200 (a benchmark that gets 409s measures the wrong thing).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loads
import targets
from anchors import EtcdServer, NginxServer
from loads import Load, Result, Settings
from targets import harness

WRITERS = 16
STACKS = {
    "uvicorn": "uvicorn + httptools + uvloop",
    "granian": "granian (1 worker, uvloop, HTTP/1)",
}


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
    versions = [
        _command_output(["wrk", "--version"]).splitlines()[0].split(" Copyright")[0],
        _command_output(["etcd", "--version"]).splitlines()[0],
        _command_output(["nginx", "-v"]),
    ]
    if postgres:
        versions.append(_command_output([str(postgres / "postgres"), "--version"]))
    return [
        f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        f"- CPU: {model}, {_command_output(['nproc'])} cores, shared by wrk and the server",
        f"- memory: {memory}; kernel {platform.release()}; Python {platform.python_version()}",
        f"- {'; '.join(versions)}",
    ]


def anchor_loads(stack: contextlib.ExitStack) -> list[Load]:
    nginx = stack.enter_context(NginxServer())
    etcd = stack.enter_context(EtcdServer())
    targets.seed_etcd(etcd)
    range_body, put_body = targets.etcd_bodies()

    def post(body: str):
        return lambda run: ("application/json", body)

    return [
        Load("nginx", nginx.static_url, [nginx.pid]),
        Load("etcd range", f"{etcd.client_url}/v3/kv/range", [etcd.pid], "post.lua",
             post(range_body)),
        Load("etcd put", f"{etcd.client_url}/v3/kv/put", [etcd.pid], "post.lua", post(put_body)),
        Load("etcd put, 1 connection", f"{etcd.client_url}/v3/kv/put", [etcd.pid], "post.lua",
             post(put_body), connections=1),
    ]  # fmt: skip


def rainer_loads(
    stack: contextlib.ExitStack,
    label: str,
    database: harness.PostgresServer | None,
    server: str,
    zookeeper: harness.ZooKeeperServer | None = None,
    src: Path | None = None,
    tag: str = "",
) -> list[Load]:
    """Rainer's loads (granian: head reads only), each server on a fresh database.

    Reads go to a server seeded with KEYS keys; commits to a second server on a database of its
    own, so the list stays at KEYS keys and read tables do not grow during the run. ``src``
    serves a patched copy of src/; ``tag`` names its databases apart from the others'.
    """

    def start(name: str) -> harness.RainerServer:
        url = database and (
            database.url if name == "reads" and not tag else database.create_database(name + tag)
        )
        return stack.enter_context(targets.rainer_server(url, server, src=src))

    def pids(rainer: harness.RainerServer) -> list[int]:
        return [rainer.pid] + ([database.pid] if database else [])

    reads = start("reads")
    targets.seed_rainer(reads.diary_url)
    diary, key = reads.diary_url, targets.READ_KEY
    head = Load(f"{label}: head reads: GET /diary/KEY", f"{diary}/{key}", pids(reads))
    head.anchor = "etcd range"
    if server != "uvicorn":
        return [head]
    mirrored = []
    if database and zookeeper:
        url = database.create_database("mirrored" + tag)
        rainer = stack.enter_context(targets.rainer_server(url, server, zookeeper.hosts, src))
        targets.seed_rainer(rainer.diary_url)
        targets.wait_for_mirror(rainer.diary_url)
        name = f"{label}: head reads from the ZooKeeper mirror (--zookeeper)"
        url = f"{rainer.diary_url}/{key}"
        mirrored = [Load(name, url, [*pids(rainer), zookeeper.pid], anchor="etcd range")]
    writes = start("writes")
    payload = targets.PAYLOAD.decode()
    return [
        head,
        *mirrored,
        Load(f"{label}: versioned reads: GET /diary/KEY/1", f"{diary}/{key}/1", pids(reads),
             anchor="etcd range"),
        Load(f"{label}: list, {targets.KEYS} keys: GET /diary?payload_base64=yes",
             f"{diary}?payload_base64=yes", pids(reads), anchor="etcd range"),
        Load(f"{label}: commits, 1 writer", writes.url, pids(writes), "commits.lua",
             lambda run: (f"one{run}", payload), connections=1,
             anchor="etcd put, 1 connection"),
        Load(f"{label}: commits, {WRITERS} writers on distinct keys", writes.url,
             pids(writes), "commits.lua", lambda run: (f"many{run}", payload),
             connections=WRITERS, anchor="etcd put"),
    ]  # fmt: skip


def _ratio(ours: Result, theirs: Result | None) -> str:
    return f"{ours.rps / theirs.rps:.2f}x" if theirs and theirs.rps else "-"


def print_table(title: str, rows: list[Load], anchors: dict[str, Result], prefix: str) -> None:
    print(f"\n### {title}\n")
    print(
        "| load | req/s | p50 ms | p99 ms | non-200 | vs etcd | vs nginx | Rainer CPU µs/req "
        "| others' CPU |"
    )
    print("| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |")
    for load in rows:
        r = load.result()
        vs_etcd = f"{_ratio(r, anchors.get(load.anchor))} {load.anchor}" if load.anchor else "-"
        print(
            f"| {load.name.removeprefix(prefix)} | {r.rps:,.0f} | {r.p50_ms:.2f} "
            f"| {r.p99_ms:.2f} | {load.bad} | {vs_etcd} | {_ratio(r, anchors.get('nginx'))} "
            f"| {r.server_us:.1f} | {r.others:.0%} |"
        )


def print_comparison(pairs: list[tuple[Load, Load]], base: str, other: str) -> None:
    """Each load served from src/ (``base``) and from the --compare copy, measured in turns."""
    print(f"\n### {base} against {other}, interleaved\n")
    print(
        f"| load | {base} req/s | {other} req/s | {other} vs {base} | {base} CPU µs/req "
        f"| {other} CPU µs/req | {other} vs {base} | others' CPU |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for before, after in pairs:
        b, a = before.result(), after.result()
        rps = a.rps / b.rps - 1 if b.rps else 0.0
        cpu = a.server_us / b.server_us - 1 if b.server_us else 0.0
        print(
            f"| {before.name} | {b.rps:,.0f} | {a.rps:,.0f} | {rps:+.0%} | {b.server_us:.1f} "
            f"| {a.server_us:.1f} | {cpu:+.0%} | {max(b.others, a.others):.0%} |"
        )


def print_anchors(rows: list[Load]) -> None:
    names = {
        "nginx": "nginx, 100-byte static file (1 worker)",
        "etcd range": "etcd range: POST /v3/kv/range",
        "etcd put": "etcd put: POST /v3/kv/put",
    }
    print("\n### Anchors\n")
    print("| load | req/s | p50 ms | p99 ms | non-200 | others' CPU |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for load in rows:
        r = load.result()
        print(
            f"| {names.get(load.name, load.name)} | {r.rps:,.0f} | {r.p50_ms:.2f} "
            f"| {r.p99_ms:.2f} | {load.bad} | {r.others:.0%} |"
        )


def print_targets(backends: dict[str, list[Load]], anchors: dict[str, Result]) -> None:
    print("\n### Targets (issue 2)\n")
    print("| target | measured | result |")
    print("| --- | --- | --- |")

    def line(target: str, measured: str, ok: bool, margin: str) -> None:
        print(f"| {target} | {measured} | {'pass' if ok else 'MISS'} ({margin}) |")

    etcd_range, nginx, put = (anchors[n].rps for n in ("etcd range", "nginx", "etcd put"))
    for backend, rows in backends.items():
        for load in rows:
            if "head reads" not in load.name:
                continue
            head = load.result()
            what = f"{backend} {load.name.split(': ')[1]}"
            ratio = head.rps / etcd_range
            line(
                f"{what} >= 3x etcd range",
                f"{ratio:.2f}x ({head.rps:,.0f} vs {etcd_range:,.0f}/s)",
                ratio >= 3,
                f"{ratio / 3:.0%} of the target",
            )
            ratio = head.rps / nginx
            line(
                f"{what} >= 0.3x nginx",
                f"{ratio:.2f}x ({head.rps:,.0f} vs {nginx:,.0f}/s)",
                ratio >= 0.3,
                f"{ratio / 0.3:.0%} of the target",
            )
            line(
                f"{what}: p99 < 2 ms at 16 connections",
                f"{head.p99_ms:.2f} ms",
                head.p99_ms < 2,
                f"{head.p99_ms / 2:.0%} of the limit",
            )
        many = [load for load in rows if "writers on distinct keys" in load.name]
        if backend == "SQLite" and many:
            commits = many[0].result()
            ratio = commits.rps / put
            line(
                f"SQLite {WRITERS}-writer commits >= 1.0x etcd put",
                f"{ratio:.2f}x ({commits.rps:,.0f} vs {put:,.0f}/s)",
                ratio >= 1,
                f"{ratio:.0%} of the target",
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=4, help="seconds per run (4)")
    parser.add_argument("--runs", type=int, default=5, help="runs per load; the median (5)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up seconds per load (1)")
    parser.add_argument(
        "--retries",
        type=int,
        default=0,
        help="repeat a run disturbed by other processes up to N times (0)",
    )
    parser.add_argument("--quick", action="store_true", help="1 run of 2 s: a smoke test")
    parser.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL")
    parser.add_argument(
        "--no-zookeeper", action="store_true", help="skip PostgreSQL with the ZooKeeper mirror"
    )
    parser.add_argument("--no-granian", action="store_true", help="skip the granian comparison")
    parser.add_argument(
        "--src",
        type=Path,
        metavar="DIR",
        help="serve the rainer package from DIR (a patched copy of src/) instead of src/",
    )
    parser.add_argument(
        "--compare",
        type=Path,
        metavar="DIR",
        help="also serve every Rainer load from DIR (another copy of src/), each measured right "
        "after its twin from src/ (or --src), and print the two side by side",
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="TEXT",
        help="measure only the Rainer loads whose name contains TEXT (repeatable; the anchors "
        "always run), e.g. --only commits --only list",
    )
    args = parser.parse_args(argv)
    if args.src:
        harness.rainer.SRC_DIR = args.src.resolve()
    compare = args.compare.resolve() if args.compare else None
    settings = Settings(
        seconds=args.seconds, runs=args.runs, warmup_seconds=args.warmup, retries=args.retries
    )
    if args.quick:
        settings = replace(settings, seconds=2, runs=1, retries=0)
    for reason in (
        loads.wrk_available(),
        EtcdServer.available(),
        NginxServer.available(),
    ):
        if reason:
            print(f"bench: cannot run: {reason}", file=sys.stderr)
            return 2
    postgres_missing = harness.PostgresServer.available()
    zookeeper_missing = harness.ZooKeeperServer.available()
    if args.no_zookeeper:
        zookeeper_missing = "skipped (--no-zookeeper)"
    if args.no_postgres:
        postgres_missing = "skipped (--no-postgres)"
    began = time.monotonic()

    def wanted(rows: list[Load]) -> list[Load]:
        return [row for row in rows if not args.only or any(t in row.name for t in args.only)]

    base_name, other_name = str(args.src or "src/"), str(args.compare)
    with contextlib.ExitStack() as stack:
        progress("starting nginx, etcd, Rainer on SQLite and PostgreSQL; seeding")
        anchor_rows = anchor_loads(stack)
        backends = {"SQLite": wanted(rainer_loads(stack, "SQLite", None, "uvicorn"))}
        compared: dict[str, list[Load]] = {}
        if compare:
            rows = rainer_loads(stack, "SQLite", None, "uvicorn", src=compare, tag="_compare")
            compared["SQLite"] = wanted(rows)
        if not postgres_missing:
            postgres = stack.enter_context(harness.PostgresServer())
            zookeeper = None
            if zookeeper_missing is None:
                zookeeper = stack.enter_context(harness.ZooKeeperServer())
            backends["PostgreSQL"] = wanted(
                rainer_loads(stack, "PostgreSQL", postgres, "uvicorn", zookeeper)
            )
            if compare:
                rows = rainer_loads(
                    stack, "PostgreSQL", postgres, "uvicorn", zookeeper, compare, "_compare"
                )
                compared["PostgreSQL"] = wanted(rows)
        granian = []
        if not args.no_granian and not args.only:
            granian = rainer_loads(stack, "granian", None, "granian")
        pairs = [
            (load, twin)
            for backend, rows in compared.items()
            for load, twin in zip(backends[backend], rows, strict=True)
        ]
        for _, twin in pairs:
            twin.name += f" [{other_name}]"
        ours = [load for rows in backends.values() for load in rows]
        # Each load from src/ right before its twin from the copy: neighbours hit both alike.
        twins = {id(load): twin for load, twin in pairs}
        ours = [row for load in ours for row in (load, twins.get(id(load))) if row is not None]
        every = anchor_rows + ours + granian
        loads.measure_all(every, settings, progress)
        progress("stopping the servers")

    anchors = {load.name: load.result() for load in anchor_rows}
    print("## Rainer HTTP benchmark\n")
    print("\n".join(machine()))
    if args.src:
        print(f"- rainer served from {args.src} (a patched copy), not from src/")
    if compare:
        print(f"- every Rainer load also served from {compare}, measured right after its twin")
    if args.only:
        print(f"- only the Rainer loads whose name contains: {', '.join(args.only)}")
    repeated = sum(load.discarded for load in every)
    print(
        f"- load: wrk, {settings.threads} thread, {settings.connections} connections unless "
        f"noted, {settings.warmup_seconds} s warm-up, then {settings.runs} rounds of one "
        f"{settings.seconds} s run per load, round-robin; medians. Runs during which other "
        f"processes used more than {settings.busy_threshold:.0%} of the CPU repeated: {repeated} "
        f"(--retries {settings.retries}). Servers on 127.0.0.1, one "
        f"process each; whole run {time.monotonic() - began:.0f} s"
    )
    others = statistics.median(r.others for load in every for r in load.results)
    print(
        f"- other processes on the machine used a median {others:.0%} of its CPU during the "
        'runs (column "others\' CPU"); they slow anchors and Rainer alike, so compare ratios'
    )
    print_anchors(anchor_rows)
    for backend, rows in backends.items():
        print_table(f"{backend} ({STACKS['uvicorn']})", rows, anchors, f"{backend}: ")
        if backend in compared:
            title = f"{backend} from {other_name} ({STACKS['uvicorn']})"
            print_table(title, compared[backend], anchors, f"{backend}: ")
    if pairs:
        print_comparison(pairs, base_name, other_name)
    if postgres_missing:
        print(f"\nPostgreSQL: not measured: {postgres_missing}")
    elif zookeeper_missing:
        print(f"\nPostgreSQL with the ZooKeeper mirror: not measured: {zookeeper_missing}")
    if granian and backends["SQLite"]:
        stack_rows = [replace(backends["SQLite"][0], name=STACKS["uvicorn"])]
        stack_rows += [replace(granian[0], name=STACKS["granian"])]
        print_table("HTTP stack: the same app, SQLite head reads", stack_rows, anchors, "")

    if not args.only:
        print_targets(backends, anchors)

    bad = sum(load.bad for load in every)
    if bad:
        print(f"\nbench: {bad} answers were not 200 (see non-200 above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
