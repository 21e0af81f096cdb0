"""The project's own server, ``python -m rainer serve``, as a subprocess on a free port.

It runs in its temporary folder, so the default ``--database sqlite:///rainer.db`` lands there.
The repository's ``src`` folder is put first on ``PYTHONPATH``, so the working tree is what runs
even when an older copy of the package is installed.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness._service import Service, http_request

SRC_DIR = Path(__file__).resolve().parents[2] / "src"
DEFAULT_PREFIX = "/diary"


class RainerServer(Service):
    """``rainer serve --host 127.0.0.1 --port PORT [--prefix P] *args``; ready when
    ``GET /healthz`` answers 200.

    ``env`` is merged into ``os.environ`` for the server (a value of None removes a variable).
    ``stop()`` sends SIGTERM, waits ``timeout`` seconds, then kills; it returns the exit code.
    """

    name = "rainer"

    def __init__(
        self,
        args: Sequence[str] = (),
        *,
        env: Mapping[str, str | None] | None = None,
        prefix: str | None = None,
        port: int | None = None,
        cwd: str | os.PathLike[str] | None = None,
        python: str = sys.executable,
        startup_timeout: float = 30.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """``args`` are extra ``rainer serve`` options; ``prefix`` is passed as ``--prefix``
        (default: the server's own, /diary); ``cwd`` defaults to the temporary folder. ``tls``,
        for a server given ``--tls-cert``, is a client context trusting its certificate: the URLs
        are then https://."""
        super().__init__(port=port, startup_timeout=startup_timeout)
        self.tls = tls
        self.args = list(args)
        self.env = dict(env or {})
        self.prefix = prefix
        self.cwd = Path(cwd) if cwd is not None else None
        self.python = python

    @classmethod
    def available(cls) -> str | None:
        if (SRC_DIR / "rainer" / "__main__.py").is_file():
            return None
        if importlib.util.find_spec("rainer") is not None:
            return None
        return f"the rainer package is neither in {SRC_DIR} nor installed"

    @property
    def url(self) -> str:
        """Base URL: ``http://127.0.0.1:PORT`` (https:// with ``tls``)."""
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def diary_url(self) -> str:
        """``url`` plus the API prefix, e.g. ``http://127.0.0.1:PORT/diary``."""
        prefix = self.prefix if self.prefix is not None else DEFAULT_PREFIX
        return self.url + "/" + prefix.strip("/") if prefix.strip("/") else self.url

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL. Returns the exit code (None
        when it was not running; negative when a signal ended it)."""
        return super().stop(timeout)

    def _shutdown(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        proc.send_signal(signal.SIGTERM)

    def _cwd(self) -> Path:
        return self.cwd if self.cwd is not None else self.tmpdir

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        for key, value in self.env.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        if (SRC_DIR / "rainer").is_dir():
            paths = [str(SRC_DIR), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
            env["PYTHONPATH"] = os.pathsep.join(paths)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _command(self) -> list[str]:
        argv = [self.python, "-m", "rainer", "serve", "--host", self.host, "--port", str(self.port)]
        if self.prefix is not None:
            argv += ["--prefix", self.prefix]
        return argv + self.args

    def _wait_ready(self, deadline: float) -> None:
        self._poll_until(
            lambda: http_request(self.url + "/healthz", timeout=1.0, tls=self.tls)[0] == 200,
            deadline,
            "GET /healthz answering 200",
            interval=0.05,
        )
