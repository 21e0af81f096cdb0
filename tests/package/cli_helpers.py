"""Helpers of the client and command-line tests: commit the next version, and run ``rainer``
as a user would, through pipes (no terminal at all) or on a pseudo-terminal."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness.rainer import SRC_DIR
from rainer.client import RainerClient
from rainer.errors import NotFoundError


def commit(client: RainerClient, key: str, value: bytes | str | None, **meta) -> dict:
    """Commit the next version of ``key`` as 'tester' (an empty commit when value is None)."""
    try:
        version = client.get_metadata(key)["version"] + 1
    except NotFoundError:
        version = 1
    fields = {"key": key, "version": version, "author": "tester", "comment": "", **meta}
    if value is None:
        fields["empty"] = True
    return client.post_commit(fields, value)


def cli_env(url: str | None, **extra: str | None) -> dict[str, str]:
    """The environment of a ``rainer`` run: the working tree's package, no colour settings
    inherited from whoever runs the tests, a fixed author."""
    env = dict(os.environ)
    for name in ("NO_COLOR", "PAGER", "EDITOR", "VISUAL", "RAINER_URL", "RAINER_AUTHOR", "LESS"):
        env.pop(name, None)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC_DIR), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    env["RAINER_AUTHOR"] = "cli-tester"
    if url is not None:
        env["RAINER_URL"] = url
    for name, value in extra.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


@dataclass
class Run:
    code: int
    stdout: bytes
    stderr: str

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8", "replace")


def rainer(*args: str, url: str | None, stdin: bytes = b"", **env: str | None) -> Run:
    """Run ``rainer ARGS`` with pipes for stdin, stdout and stderr (no terminal at all)."""
    done = subprocess.run(
        [sys.executable, "-m", "rainer", *args],
        input=stdin,
        capture_output=True,
        env=cli_env(url, **env),
        timeout=60,
        start_new_session=True,  # no controlling terminal, as under cron or CI
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr.decode("utf-8", "replace"))


def rainer_in_pty(
    *args: str,
    url: str | None,
    answers: list[tuple[bytes, bytes]] = (),
    timeout: float = 60.0,
    **env: str | None,
) -> tuple[int, str]:
    """Run ``rainer ARGS`` on a pseudo-terminal, as a person at a terminal would; each time
    the output shows an expected prompt, type its answer. Returns (exit code, all output with
    line ends as \\n)."""
    pending = list(answers)
    environment = cli_env(url, **env)
    pid, master = pty.fork()
    if pid == 0:  # the child: its stdin, stdout, stderr and /dev/tty are the terminal
        try:
            os.execvpe(sys.executable, [sys.executable, "-m", "rainer", *args], environment)
        finally:
            os._exit(127)
    output = b""
    seen = 0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            if pending and pending[0][0] in output[seen:]:
                seen = output.index(pending[0][0], seen) + len(pending[0][0])
                os.write(master, pending.pop(0)[1])
        else:
            os.kill(pid, signal.SIGKILL)
            raise AssertionError(f"rainer {' '.join(args)} did not finish: {output!r}")
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(master)
    text = output.decode("utf-8", "replace").replace("\r\n", "\n")
    return os.waitstatus_to_exitcode(status), text


def write_script(path: Path, body: str) -> str:
    """An executable shell script at ``path``; returns its path."""
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)
