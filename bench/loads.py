"""Running wrk: one load at a time, figures read from the JSON line our Lua ``done()`` prints.

Every load script under ``bench/wrk/`` is sent with ``report.lua`` appended, so each run reports
requests, duration, p50/p99 latency, HTTP errors and socket errors the same way.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

WRK_DIR = Path(__file__).resolve().parent / "wrk"
_MARKER = "WRK_JSON "


@dataclass(frozen=True)
class Settings:
    """The same for every load (anchors included), so the figures compare."""

    threads: int = 1
    connections: int = 16
    seconds: int = 4
    runs: int = 3
    warmup_seconds: int = 1


@dataclass(frozen=True)
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    bad: int  # answers that were not 200 (reads: status >= 400, as wrk counts them)
    socket_errors: int

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
        )


def wrk_available() -> str | None:
    """None when wrk can run here, else why not."""
    return None if shutil.which("wrk") else "wrk not found (Debian package wrk)"


def run_wrk(
    url: str,
    settings: Settings,
    script: str | None = None,
    args: tuple[str, ...] = (),
    *,
    connections: int | None = None,
    seconds: int | None = None,
) -> Result:
    """One wrk run against ``url``; ``script`` names a file in bench/wrk (None: plain GET)."""
    lua = (WRK_DIR / script).read_text() if script else ""
    lua += "\n" + (WRK_DIR / "report.lua").read_text()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="rainer-bench-") as file:
        file.write(lua)
        file.flush()
        command = [
            "wrk",
            f"-t{settings.threads}",
            f"-c{connections or settings.connections}",
            f"-d{seconds or settings.seconds}s",
            "--timeout",
            "5s",
            "--latency",
            "-s",
            file.name,
            url,
        ]
        if args:
            command += ["--", *args]
        seconds_ = seconds or settings.seconds
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds_ + 60, check=False
        )
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
    )


def measure(
    url: str,
    settings: Settings,
    script: str | None = None,
    args: tuple[str, ...] = (),
    *,
    connections: int | None = None,
    fresh_args=None,
) -> Result:
    """A short warm-up, then ``settings.runs`` runs; the median of each figure.

    ``fresh_args(run)`` gives each run its own script arguments (commits need fresh keys).
    """

    def arguments(run: int) -> tuple[str, ...]:
        return fresh_args(run) if fresh_args else args

    if settings.warmup_seconds:
        run_wrk(
            url,
            settings,
            script,
            arguments(0),
            connections=connections,
            seconds=settings.warmup_seconds,
        )
    results = [
        run_wrk(url, settings, script, arguments(run), connections=connections)
        for run in range(1, settings.runs + 1)
    ]
    return Result.median(results)
