"""``make bench``, security part (issue 10): what ``--auth`` tokens and TLS cost a head read.

Four servers, each ``rainer serve`` on SQLite in a temporary folder, seeded alike (100 keys of
100 bytes, bench/targets.py), and measured with the same wrk settings as bench/http_bench.py
(1 thread, 16 connections, a warm-up, then the median of several runs taken round-robin):

(a) plain HTTP, no ``--auth``;
(b) the same with ``--auth FILE``, every request carrying ``Authorization: Bearer TOKEN``;
(c) HTTPS (``--tls-cert``/``--tls-key`` from a throwaway CA, tests/harness/certs.py), no auth;
(d) HTTPS with a bearer token.

wrk keeps its connections alive, so TLS costs its handshake once per connection and then the
record layer per request: the steady state of a client with a connection pool. Besides req/s
and latency the bench counts the server process's CPU time per request (a figure that moves
less than req/s when other jobs share the machine), and times, in this process, what the
server does per request for a token: ``Guard.identify`` (the SHA-256 of the token, a dict
lookup by that hash, a constant-time compare) and the read-permission check.

Prints Markdown tables for docs/benchmarks.md; exit status 1 when any measured answer was not
a 200, or when a server did not enforce what it was started with.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import os
import socket
import ssl
import statistics
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loads
import targets
from http_bench import _command_output, machine, progress
from loads import Load, Result, Settings
from targets import harness

from harness import http_request
from harness.certs import TestCA
from rainer.server.auth import Credentials, Guard, new_token

#: Principals in the auth file besides the one the bench reads as: a real file names a few
#: teams and robots, and the lookup must not depend on being the only entry.
OTHER_PRINCIPALS = 100
GOAL_AUTH_RATIO = 0.8  # (b) >= 0.8x (a), the goal


@dataclass
class Variant:
    """One server configuration and its wrk load."""

    label: str
    name: str
    server: harness.RainerServer
    headers: dict[str, str]
    load: Load
    cpu_us: list[float] = field(default_factory=list)  # server CPU per request, each run

    def result(self) -> Result:
        return self.load.result()


def fixed_args(arguments: tuple[str, ...]) -> Callable[[int], tuple[str, ...]]:
    """wrk script arguments that are the same in every run."""
    return lambda run: arguments


# -- setting up --------------------------------------------------------------------------------


def write_auth_file(folder: Path) -> tuple[Path, str]:
    """An auth file in which principal ``bench`` may read every key and write the seeded ones;
    anonymous may do nothing, so a request without the token is refused. Returns the file and
    the bench's token (made the way ``rainer auth token`` makes one)."""
    token, line = new_token()
    others = "".join(
        f'  team-{n:03d}: {{roles: [reader], tokens: ["{new_token()[1]}"]}}\n'
        for n in range(OTHER_PRINCIPALS)
    )
    path = folder / "auth.yaml"
    path.write_text(
        "roles:\n"
        '  reader: {read: ["*"]}\n'
        '  seeder: {read: ["*"], write: ["key*"]}\n'
        "principals:\n"
        f'  bench: {{roles: [seeder], tokens: ["{line}"]}}\n' + others + "anonymous: {roles: []}\n"
    )
    path.chmod(0o600)
    return path, token


def seed(server: harness.RainerServer, headers: dict[str, str]) -> None:
    """bench/targets.py's seed (KEYS keys, READ_KEY with two versions), with credentials and
    over TLS where the server wants them."""

    def commit(key: str, version: int) -> None:
        status, body = http_request(
            f"{server.diary_url}/{key}/{version}",
            targets.PAYLOAD,
            headers={"X-Rainer-Author": "bench", "Content-Type": "text/plain", **headers},
            timeout=30,
            tls=server.tls,
        )
        if status != 200:
            raise RuntimeError(f"seeding {key}/{version} answered {status}: {body[:200]!r}")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: commit(targets.key_name(i), 1), range(targets.KEYS)))
    commit(targets.READ_KEY, 2)


def check_enforced(server: harness.RainerServer, token_headers: dict[str, str]) -> list[str]:
    """What must hold before the numbers mean anything: the head read answers 200 with the
    token, and 401 without it (so (b) and (d) really check every request)."""
    url = f"{server.diary_url}/{targets.READ_KEY}"
    problems = []
    status, body = http_request(url, headers=token_headers, tls=server.tls)
    if status != 200 or body != targets.PAYLOAD:
        problems.append(f"{url} with the token answered {status} {body[:80]!r}")
    if token_headers:
        status, _ = http_request(url, tls=server.tls)
        if status != 401:
            problems.append(f"{url} without a token answered {status}, not 401")
    return problems


def tls_description(server: harness.RainerServer) -> str:
    """The protocol and cipher a client gets from the TLS server, as wrk's OpenSSL would."""
    assert server.tls is not None
    with (
        socket.create_connection((server.host, server.port), timeout=5) as raw,
        server.tls.wrap_socket(raw, server_hostname=server.host) as wrapped,
    ):
        cipher = wrapped.cipher()
    return f"{cipher[1]}, {cipher[0]}" if cipher else "?"


# -- measuring ---------------------------------------------------------------------------------


def run_once(variant: Variant, settings: Settings, run: int) -> Result:
    """One wrk run, and the server's CPU microseconds per request during it."""
    assert variant.server.pid is not None
    before = loads._tree_ticks([variant.server.pid])
    result = loads.run_wrk(variant.load, settings, run)
    used = loads._tree_ticks([variant.server.pid]) - before
    if result.requests:
        variant.cpu_us.append(used / os.sysconf("SC_CLK_TCK") / result.requests * 1e6)
    return result


def measure(variants: list[Variant], settings: Settings) -> None:
    """Warm each up, then ``settings.runs`` rounds of one run per variant, round-robin; a run
    disturbed by other processes is repeated up to ``settings.retries`` times (the least
    disturbed attempt counts), as bench/loads.py's ``measure_all`` does."""
    for variant in variants:
        if settings.warmup_seconds:
            warm = loads.run_wrk(variant.load, settings, 0, seconds=settings.warmup_seconds)
            variant.load.bad += warm.bad + warm.socket_errors
    for run in range(1, settings.runs + 1):
        progress(f"round {run} of {settings.runs}")
        for variant in variants:
            attempts = []
            for attempt in range(settings.retries + 1):
                result = run_once(variant, settings, run)
                variant.load.bad += result.bad + result.socket_errors
                attempts.append(result)
                if result.others <= settings.busy_threshold or attempt == settings.retries:
                    break
                variant.load.discarded += 1
            variant.load.results.append(min(attempts, key=lambda r: r.others))


def per_request_check(auth_file: Path, token: str, rounds: int = 5) -> dict[str, float]:
    """Microseconds, in this process, for what the server adds to a head read with a token:
    identifying the principal (``Guard.identify``: parse the header, SHA-256 the token, look the
    hash up, compare it in constant time) and checking that it may read the key. The best of
    ``rounds`` timings, each over many calls: the least disturbed."""
    guard = Guard(auth_file)
    header = f"Bearer {token}".encode()

    def whole() -> None:
        who = guard.identify(Credentials(header, None), "127.0.0.1")
        if not who.can_read(targets.READ_KEY):
            raise RuntimeError("the bench's principal may not read the key")

    encoded = token.encode()
    digest = hashlib.sha256(encoded).hexdigest()
    table = guard.policy._by_digest
    parts: dict[str, Callable[[], object]] = {
        "identify and may-read, together": whole,
        "of which SHA-256 of the token (hexdigest)": lambda: hashlib.sha256(encoded).hexdigest(),
        "of which the dict lookup by hash": lambda: table.get(digest),
        "of which the constant-time compare": lambda: hmac.compare_digest(digest, digest),
    }
    timings = {}
    for name, function in parts.items():
        timer = timeit.Timer(function)
        count, _ = timer.autorange()
        timings[name] = min(timer.repeat(rounds, count)) / count * 1e6
    return timings


# -- printing ----------------------------------------------------------------------------------


def print_results(variants: list[Variant]) -> None:
    plain = variants[0].result()
    print("\n### Head reads: GET /diary/KEY\n")
    print(
        "| server | req/s | p50 ms | p99 ms | non-200 | vs (a) | server CPU µs/request "
        "| others' CPU |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for variant in variants:
        r = variant.result()
        cpu = statistics.median(variant.cpu_us) if variant.cpu_us else float("nan")
        print(
            f"| ({variant.label}) {variant.name} | {r.rps:,.0f} | {r.p50_ms:.2f} "
            f"| {r.p99_ms:.2f} | {variant.load.bad} | {r.rps / plain.rps:.2f}x | {cpu:.1f} "
            f"| {r.others:.0%} |"
        )


def print_ratios(variants: list[Variant]) -> None:
    by = {variant.label: variant for variant in variants}

    def ratio(top: str, bottom: str) -> tuple[float, str]:
        a, b = by[top].result().rps, by[bottom].result().rps
        return a / b, f"{a / b:.2f}x ({a:,.0f} vs {b:,.0f}/s)"

    print("\n### Ratios and goal (issue 10)\n")
    print("| comparison | measured | result |")
    print("| --- | --- | --- |")
    value, text = ratio("b", "a")
    verdict = "pass" if value >= GOAL_AUTH_RATIO else "MISS"
    print(
        f"| (b) bearer token / (a) plain, goal >= {GOAL_AUTH_RATIO}x | {text} "
        f"| {verdict} ({value / GOAL_AUTH_RATIO:.0%} of the target) |"
    )
    for top, bottom, what in (
        ("d", "c", "(d) bearer token / (c) HTTPS: the token's cost under TLS"),
        ("c", "a", "(c) HTTPS / (a) plain: TLS's cost"),
        ("d", "a", "(d) HTTPS + token / (a) plain: both"),
    ):
        print(f"| {what} | {ratio(top, bottom)[1]} | - |")


def print_check(timings: dict[str, float], variants: list[Variant]) -> None:
    whole = timings["identify and may-read, together"]
    plain_cpu = statistics.median(variants[0].cpu_us) if variants[0].cpu_us else float("nan")
    print("\n### What the server checks per request with a token\n")
    print(
        "`Guard.identify` takes the `Authorization` header, computes the SHA-256 of the token "
        "(only hashes are in the auth file), looks the hash up in a dict of principals by hash, "
        "confirms it with `hmac.compare_digest`, and `can_read` matches the key against the "
        "principal's read patterns (a set and a prefix tuple); failed attempts are counted per "
        f"address. In this process, with {OTHER_PRINCIPALS + 1} principals in the file:\n"
    )
    print("| step | µs per request |")
    print("| --- | ---: |")
    for name, micros in timings.items():
        print(f"| {name} | {micros:.2f} |")
    print(
        f"\nThat is {whole / plain_cpu:.0%} of the {plain_cpu:.1f} µs of server CPU a plain "
        "head read costs over HTTP (table above)."
    )


def print_how(
    settings: Settings, tls_text: str, began: float, load_before: float, repeated: int
) -> None:
    print("\n### How measured\n")
    print(
        f"Four `rainer serve` processes on SQLite, each in a temporary folder, seeded with "
        f"{targets.KEYS} keys of {len(targets.PAYLOAD)} bytes; wrk on "
        f"`GET /diary/{targets.READ_KEY}` with {settings.threads} thread and "
        f"{settings.connections} kept-alive connections, a {settings.warmup_seconds} s warm-up "
        f"per server, then {settings.runs} round(s) of one {settings.seconds} s run per server, "
        "round-robin; medians (p50/p99 from wrk's latency histogram). Runs during which other "
        f"processes used more than {settings.busy_threshold:.0%} of the CPU repeated: {repeated} "
        f"(--retries {settings.retries}). "
        "(b) and (d) run with `--auth` (the bench's principal has a role reading every key; "
        f"{OTHER_PRINCIPALS} more principals with tokens; anonymous may do nothing: the bench "
        "checks that a read without the token gets 401) and wrk sends "
        "`Authorization: Bearer TOKEN` on every request (bench/wrk/header.lua). (c) and (d) "
        f"serve HTTPS with a P-256 ECDSA certificate from a throwaway CA; negotiated: "
        f"{tls_text}. wrk opens its connections once, so the handshake is not in the "
        "steady state. Server CPU per request: the server process's utime + stime from "
        "/proc/PID/stat during each run, divided by the requests; others' CPU: the machine's "
        "busy time minus wrk's and the server's. The per-request check is timed in the bench "
        f"process with `timeit` (best of 5). Load average at the start {load_before:.1f}, "
        f"at the end {os.getloadavg()[0]:.1f}; whole run {time.monotonic() - began:.0f} s."
    )


# -- main --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=4, help="seconds per run (4)")
    parser.add_argument("--runs", type=int, default=5, help="runs per server; the median (5)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up seconds per server (1)")
    parser.add_argument(
        "--retries",
        type=int,
        default=0,
        help="repeat a run disturbed by other processes up to N times (0)",
    )
    parser.add_argument("--quick", action="store_true", help="1 run of 2 s: a smoke test")
    parser.add_argument(
        "--src",
        type=Path,
        metavar="DIR",
        help="serve the rainer package from DIR (a patched copy of src/) instead of src/",
    )
    args = parser.parse_args(argv)
    if args.src:
        harness.rainer.SRC_DIR = args.src.resolve()
    settings = Settings(
        seconds=args.seconds, runs=args.runs, warmup_seconds=args.warmup, retries=args.retries
    )
    if args.quick:
        settings = replace(settings, seconds=2, runs=1, retries=0)
    reason = loads.wrk_available()
    if reason:
        print(f"security_bench: cannot run: {reason}", file=sys.stderr)
        return 2
    began = time.monotonic()
    load_before = os.getloadavg()[0]
    problems: list[str] = []

    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rainer-security-")))
        progress("making a CA, a server certificate and an auth file; starting four servers")
        ca = TestCA(folder / "ca")
        issued = ca.server()
        auth_file, token = write_auth_file(folder)
        bearer = {"Authorization": f"Bearer {token}"}
        tls_args = ["--tls-cert", str(issued.cert), "--tls-key", str(issued.key)]
        auth_args = ["--auth", str(auth_file)]
        base = ["--database", "sqlite:///rainer.db", "--log-level", "warning"]
        variants = []
        for label, name, extra, tls, headers in (
            ("a", "HTTP, no --auth", [], None, {}),
            ("b", "HTTP, --auth, Bearer token", auth_args, None, bearer),
            ("c", "HTTPS, no --auth", tls_args, ca.context(), {}),
            ("d", "HTTPS, --auth, Bearer token", tls_args + auth_args, ca.context(), bearer),
        ):
            server = stack.enter_context(harness.RainerServer(base + extra, tls=tls))
            seed(server, headers)
            problems += check_enforced(server, headers)
            assert server.pid is not None
            # The token goes in through bench/wrk/header.lua's arguments, on every request.
            header: tuple[str, ...] = ("Authorization", f"Bearer {token}") if headers else ()
            load = Load(
                f"({label}) {name}",
                f"{server.diary_url}/{targets.READ_KEY}",
                [server.pid],
                "header.lua" if headers else None,
                fixed_args(header),
            )
            variants.append(Variant(label, name, server, headers, load))
        tls_text = tls_description(variants[2].server)
        if not problems:
            measure(variants, settings)
        progress("timing the per-request check in process")
        timings = per_request_check(auth_file, token)
        progress("stopping the servers")

    print("## Security: bearer tokens and TLS on head reads (issue 10)\n")
    print("\n".join(line for line in machine() if line.startswith(("- date", "- CPU", "- mem"))))
    wrk_version = _command_output(["wrk", "--version"]).splitlines()[0].split(" Copyright")[0]
    print(f"- {wrk_version}; server TLS: Python's ssl ({ssl.OPENSSL_VERSION}) under uvloop")
    if args.src:
        print(f"- rainer served from {args.src} (a patched copy), not from src/")
    if problems:
        print("\nNot measured: the servers did not behave as started:")
        print("\n".join(f"- {problem}" for problem in problems))
        return 1
    others = statistics.median(r.others for v in variants for r in v.load.results)
    print(
        f"- other processes used a median {others:.0%} of the machine's CPU during the runs "
        '(column "others\' CPU"); they slow every server alike, so compare ratios'
    )
    print_results(variants)
    print_ratios(variants)
    print_check(timings, variants)
    repeated = sum(variant.load.discarded for variant in variants)
    print_how(settings, tls_text, began, load_before, repeated)

    bad = sum(variant.load.bad for variant in variants)
    if bad:
        print(f"\nsecurity_bench: {bad} answers were not 200 (see non-200)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
