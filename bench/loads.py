"""Running wrk: one load at a time, figures read from the JSON line our Lua ``done()`` prints.

Every load script under ``bench/wrk/`` is sent with ``report.lua`` appended, so each run reports
requests, duration, p50/p99 latency, HTTP errors and socket errors the same way.

The machine may be shared: during each run we also count the CPU time that neither wrk nor the
server under test used (``others``, a fraction of all cores), and repeat a run that other
processes disturbed. Loads run round-robin (run 1 of every load, then run 2, ...), so a busy
spell spreads over all of them instead of skewing one ratio.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

WRK_DIR = Path(__file__).resolve().parent / "wrk"
_MARKER = "WRK_JSON "
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Settings:
    """The same for every load (anchors included), so the figures compare."""

    threads: int = 1
    connections: int = 16
    seconds: int = 4
    runs: int = 5
    warmup_seconds: int = 1
    busy_threshold: float = 0.15  # repeat a run when others used more of the machine
    retries: int = 0


@dataclass(frozen=True)
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    bad: int  # answers that were not 200 (reads: status >= 400, as wrk counts them)
    socket_errors: int
    others: float = 0.0  # CPU used by other processes during the run, fraction of all cores
    runs: int = 1
    #: CPU microseconds per request of the server under test (its first pid's process tree:
    #: Rainer alone, not its database); moves less with the neighbours than requests per second
    server_us: float = 0.0

    @staticmethod
    def median(results: list[Result]) -> Result:
        """Median of each figure on its own; the counts of bad answers add up."""
        return Result(
            rps=statistics.median(r.rps for r in results),
            p50_ms=statistics.median(r.p50_ms for r in results),
            p99_ms=statistics.median(r.p99_ms for r in results),
            requests=sum(r.requests for r in results),
            bad=sum(r.bad for r in results),
            socket_errors=sum(r.socket_errors for r in results),
            others=statistics.median(r.others for r in results),
            runs=len(results),
            server_us=statistics.median(r.server_us for r in results),
        )


@dataclass
class Load:
    """One thing to measure: ``url`` with a script from bench/wrk (None: plain GET)."""

    name: str
    url: str
    pids: list[int]  # the server's processes; they and their children are not "others"
    script: str | None = None
    args: Callable[[int], tuple[str, ...]] = lambda run: ()
    connections: int | None = None
    anchor: str | None = None  # the anchor load it is compared to
    results: list[Result] = field(default_factory=list)
    discarded: int = 0  # runs repeated because other processes were busy
    bad: int = 0  # answers that were not 200 and socket errors, in every run of this load

    def result(self) -> Result:
        return Result.median(self.results)


def wrk_available() -> str | None:
    """None when wrk can run here, else why not."""
    return None if shutil.which("wrk") else "wrk not found (Debian package wrk)"


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine since boot."""
    with open("/proc/stat") as file:
        values = [int(v) for v in file.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def _tree_ticks(roots: list[int]) -> int:
    """CPU ticks used by the live processes ``roots`` and their descendants (all threads).

    By process tree, not by session: PostgreSQL's backends start sessions of their own.
    """
    processes: dict[int, tuple[int, int]] = {}  # pid -> (parent, utime + stime)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as file:
                fields = file.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # after "pid (comm)": state, ppid, ..., utime is field 14 and stime field 15
        processes[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    ours = set(roots)
    total = 0
    for pid, (_, ticks) in processes.items():
        chain = pid
        while chain not in ours and chain > 1:
            chain = processes.get(chain, (0, 0))[0]
        if chain in ours:
            total += ticks
    return total


def _children_ticks() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (usage.ru_utime + usage.ru_stime) * _TICKS


def run_wrk(load: Load, settings: Settings, run: int, seconds: int | None = None) -> Result:
    """One wrk run of ``load``; ``run`` picks the script arguments (commits need fresh keys)."""
    seconds = seconds or settings.seconds
    lua = (WRK_DIR / load.script).read_text() if load.script else ""
    lua += "\n" + (WRK_DIR / "report.lua").read_text()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="rainer-bench-") as file:
        file.write(lua)
        file.flush()
        command = [
            "wrk",
            f"-t{settings.threads}",
            f"-c{load.connections or settings.connections}",
            f"-d{seconds}s",
            "--timeout",
            "5s",
            "--latency",
            "-s",
            file.name,
            load.url,
        ]
        arguments = load.args(run)
        if arguments:
            command += ["--", *arguments]
        busy, total = _machine_ticks()
        server = _tree_ticks(load.pids)
        first = _tree_ticks(load.pids[:1])
        wrk = _children_ticks()
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 60, check=False
        )
        busy_after, total_after = _machine_ticks()
        ours = _tree_ticks(load.pids) - server + _children_ticks() - wrk
        first = _tree_ticks(load.pids[:1]) - first
    others = max(0.0, (busy_after - busy - ours) / max(1, total_after - total))
    for line in done.stdout.splitlines():
        if line.startswith(_MARKER):
            figures = json.loads(line[len(_MARKER) :])
            break
    else:
        raise RuntimeError(f"wrk printed no figures (exit {done.returncode}):\n{done.stdout}")
    requests = figures["requests"]
    return Result(
        rps=requests / (figures["duration_us"] / 1e6),
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        requests=requests,
        bad=figures.get("non200", figures["status_errors"]),
        socket_errors=figures["socket_errors"],
        others=others,
        server_us=first / _TICKS / max(1, requests) * 1e6,
    )


def measure_all(
    loads: list[Load], settings: Settings, progress: Callable[[str], None] = print
) -> None:
    """Warm every load up, then ``settings.runs`` rounds of one run per load, round-robin.

    A run during which other processes used more than ``busy_threshold`` of the machine is
    repeated up to ``retries`` times, and the least disturbed attempt counts. Answers that were not
    200 are counted in every run, warm-ups and repeated runs included (``Load.bad``).
    """
    fresh = settings.runs + 1  # script arguments of repeated runs: fresh keys again
    for load in loads:
        if settings.warmup_seconds:
            warm = run_wrk(load, settings, 0, seconds=settings.warmup_seconds)
            load.bad += warm.bad + warm.socket_errors
    for run in range(1, settings.runs + 1):
        progress(f"round {run} of {settings.runs}")
        for load in loads:
            attempts = []
            for attempt in range(settings.retries + 1):
                result = run_wrk(load, settings, run if attempt == 0 else fresh)
                fresh += 1
                load.bad += result.bad + result.socket_errors
                attempts.append(result)
                if result.others <= settings.busy_threshold or attempt == settings.retries:
                    break
                load.discarded += 1
                progress(f"  {load.name}: others used {result.others:.0%} of the CPU; again")
            load.results.append(min(attempts, key=lambda r: r.others))


def percentile(values: list[float], fraction: float) -> float:
    """The value at ``fraction`` (0.99 for p99) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]
