"""A 100-key change from the command line: ``rainer apply`` against 100 ``rainer commit-value``.

Starts one ``rainer serve`` (SQLite, loopback) and writes 100 files of about 200 bytes. Each
round commits them as 100 new keys three ways, timing the whole of it (wall clock, processes
started and all), as a deploy pipeline would see it:

- ``rainer apply DIR --yes``: one process, one bulk read of the heads, one ``POST /diary``;
- ``rainer plan DIR --out PLAN`` then ``rainer apply PLAN``: the reviewed way, two processes;
- 100 runs of ``rainer commit-value KEY -m M < FILE``: a process, a read of the head and a
  commit per key.

Rounds are interleaved and the median is printed as a Markdown table. The goal (issue 11):
``rainer apply`` at least 20 times faster than the 100 single commits.

    .venv/bin/python bench/cli_bench.py [--keys N] [--rounds R]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from harness.rainer import SRC_DIR, RainerServer  # noqa: E402  (after the path is set)

GOAL = 20.0


def rainer(*args: str, env: dict[str, str], stdin: bytes = b"") -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rainer", *args],
        input=stdin,
        capture_output=True,
        env=env,
        check=False,
    )
    if done.returncode not in (0, 2):  # plan's 2 means "there are changes"
        raise SystemExit(f"rainer {' '.join(args)} failed: {done.stderr.decode()}")


def make_files(folder: Path, prefix: str, count: int) -> Path:
    folder.mkdir(parents=True)
    for index in range(count):
        body = f'{{"service": "svc-{index}", "replicas": {index % 7 + 1}, "image": "app:1.{index}",'
        body += f' "env": {{"LOG_LEVEL": "info", "REGION": "eu-{index % 3}"}}}}\n'
        (folder / f"{prefix}{index:03d}.json").write_text(body)
    return folder


def timed(action) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    results: dict[str, list[float]] = {"apply": [], "plan+apply": [], "commit-value": []}
    with tempfile.TemporaryDirectory(prefix="rainer-cli-bench-") as scratch:
        work = Path(scratch)
        with RainerServer(["--database", f"sqlite:///{work / 'bench.db'}"]) as server:
            env = dict(os.environ)
            env.update(PYTHONPATH=str(SRC_DIR), RAINER_URL=server.diary_url, RAINER_AUTHOR="bench")
            for name in ("RAINER_TOKEN", "RAINER_TOKEN_FILE", "RAINER_DEBUG"):
                env.pop(name, None)
            rainer("list", env=env)  # warm the caches of Python and the server
            for round_number in range(options.rounds):
                base = work / f"round{round_number}"
                folder = make_files(base / "apply", f"r{round_number}.apply.", options.keys)
                results["apply"].append(
                    timed(lambda f=folder: rainer("apply", str(f), "--yes", env=env))
                )
                folder = make_files(base / "plan", f"r{round_number}.plan.", options.keys)
                plan = base / "plan.json"
                results["plan+apply"].append(
                    timed(
                        lambda f=folder, p=plan: (
                            rainer("plan", str(f), "--out", str(p), env=env),
                            rainer("apply", str(p), env=env),
                        )
                    )
                )
                folder = make_files(base / "single", f"r{round_number}.single.", options.keys)

                def singles(f: Path = folder) -> None:
                    for path in sorted(f.iterdir()):
                        rainer("commit-value", path.name, "-m", "one", env=env,
                               stdin=path.read_bytes())  # fmt: skip

                results["commit-value"].append(timed(singles))
                print(f"round {round_number + 1} of {options.rounds} done", file=sys.stderr)
    baseline = statistics.median(results["commit-value"])
    rows = [
        ("`rainer apply DIR --yes` (1 process, 2 requests)", "apply"),
        ("`rainer plan --out` + `rainer apply PLAN` (2 processes, 2 requests)", "plan+apply"),
        (f"{options.keys} x `rainer commit-value` ({options.keys} processes, "
         f"{2 * options.keys} requests)", "commit-value"),
    ]  # fmt: skip
    print(f"### {options.keys} keys from the command line (median of {options.rounds} rounds)\n")
    print("| how | wall time | per key | speed-up |")
    print("| --- | ---: | ---: | ---: |")
    for label, name in rows:
        median = statistics.median(results[name])
        print(
            f"| {label} | {median:.2f} s | {median / options.keys * 1000:.1f} ms | "
            f"{baseline / median:.1f}x |"
        )
    speedup = baseline / statistics.median(results["apply"])
    verdict = "met" if speedup >= GOAL else "NOT met"
    print(f"\nGoal: `rainer apply` ≥ {GOAL:g}x faster than single commits: {verdict} "
          f"({speedup:.1f}x).")  # fmt: skip
    print(
        f"\nPython {platform.python_version()}, {os.cpu_count()} CPUs, SQLite, loopback, "
        f"{time.strftime('%Y-%m-%d')}."
    )
    return 0 if speedup >= GOAL else 1


if __name__ == "__main__":
    raise SystemExit(main())
