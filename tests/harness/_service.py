"""The life cycle every launcher shares: a temporary folder, one process group, one log file,
and clean-up that runs even when a test forgets (``atexit``)."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

from harness.ports import LOOPBACK, free_port, port_is_open


class ServiceError(RuntimeError):
    """A service could not be started, stopped or used."""


class ServiceUnavailable(ServiceError):
    """Something the service needs (a binary, a system user) is not on this machine."""


_LIVE: set[Service] = set()
_LIVE_LOCK = threading.Lock()


def _close_all() -> None:
    """Safety net at interpreter exit: stop every service still running, remove its folder."""
    with _LIVE_LOCK:
        services = list(_LIVE)
    for service in services:
        with contextlib.suppress(Exception):
            service.close()


atexit.register(_close_all)

_SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def left_nothing_behind(pid: int | None, folder: Path | str | None) -> bool:
    """Whether a service that ran as process group ``pid`` in ``folder`` is gone without a
    trace: no process left in its group, and its temporary folder removed."""
    if pid is None:
        return False
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return folder is not None and not os.path.exists(str(folder))
    return False


def find_binary(*names: str, extra_dirs: Sequence[str] = _SBIN_DIRS) -> str | None:
    """First of ``names`` found on PATH or in ``extra_dirs`` (sbin is often off PATH)."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
        for folder in extra_dirs:
            candidate = Path(folder) / name
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    return None


# Loopback requests must never go through a proxy configured in the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_request(
    url: str,
    data: bytes | None = None,
    *,
    method: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 5.0,
    tls: ssl.SSLContext | None = None,
) -> tuple[int, bytes]:
    """One HTTP request without a proxy; returns (status, body) for any status. ``tls`` is the
    context for an https:// URL (a test CA, say)."""
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    opener = _OPENER
    if tls is not None:
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=tls)
        )
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


class Service:
    """Base class of the launchers. Life cycle:

    - ``start()`` makes the temporary folder and picks the port(s) the first time, initializes
      the data there once, starts the server and returns when it answers;
    - ``stop()`` stops the server and keeps folder, data and port, so ``start()`` brings the same
      server back; ``kill()`` is a crash (no clean shutdown) with the same effect;
    - ``close()`` stops and removes the temporary folder (kept when a start failed: the
      exception names the folder and quotes the log's tail). ``with`` calls start and close.
    """

    name: ClassVar[str] = "service"

    def __init__(self, *, port: int | None = None, startup_timeout: float = 30.0) -> None:
        self._requested_port = port
        self._port: int | None = None
        self.startup_timeout = startup_timeout
        self._tmpdir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._prepared = False
        self._initialized = False
        self._keep_tmpdir = False
        #: Seconds the last successful ``start()`` took.
        self.start_seconds: float | None = None

    # ----- what subclasses provide -------------------------------------------------------------

    @classmethod
    def available(cls) -> str | None:
        """None when this service can run here, else the reason it cannot."""
        return None

    def _allocate_ports(self) -> None:
        self._port = self._requested_port or free_port()

    def _ports(self) -> list[int]:
        """Every port the server listens on."""
        return [self.port]

    def _prepare(self) -> None:
        """Initialize the data in the temporary folder (once, before the first start)."""

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _environment(self) -> dict[str, str]:
        return dict(os.environ)

    def _cwd(self) -> Path:
        return self.tmpdir

    def _wait_ready(self, deadline: float) -> None:
        """Return once the server answers; raise on timeout (use ``_poll_until``)."""
        raise NotImplementedError

    def _after_first_start(self) -> None:
        """Create databases and the like (once, after the first successful start)."""

    def _shutdown(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        """Ask the server to stop cleanly; ``stop()`` waits and kills what is left."""
        proc.send_signal(signal.SIGTERM)

    def _crash(self, proc: subprocess.Popen[bytes]) -> None:
        """Stop the server the way a crash would."""
        self._kill_process_group()

    # ----- public API --------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """Always the loopback address."""
        return LOOPBACK

    @property
    def port(self) -> int:
        """The TCP port (fixed at the first start)."""
        if self._port is None:
            raise ServiceError(f"{self.name} has not been started")
        return self._port

    @property
    def tmpdir(self) -> Path:
        """The temporary folder holding data, configuration and log."""
        if self._tmpdir is None:
            raise ServiceError(f"{self.name} has not been started")
        return self._tmpdir

    @property
    def log_path(self) -> Path:
        """The file that receives the server's stdout and stderr."""
        return self.tmpdir / f"{self.name}.log"

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """PID of the process we started (it leads its own process group)."""
        return self._proc.pid if self._proc is not None else None

    def start(self) -> Self:
        """Start the server (see the class docstring); a no-op when it is running."""
        if self.running:
            return self
        reason = self.available()
        if reason:
            raise ServiceUnavailable(f"{self.name}: {reason}")
        began = time.monotonic()
        if self._tmpdir is None:
            self._tmpdir = Path(tempfile.mkdtemp(prefix=f"rainer-{self.name}-"))
            self._keep_tmpdir = False
            with _LIVE_LOCK:
                _LIVE.add(self)
            self._allocate_ports()
        try:
            if not self._prepared:
                self._prepare()
                self._prepared = True
            for port in self._ports():
                # Otherwise the readiness check could be answered by whoever holds the port.
                if port_is_open(self.host, port):
                    raise ServiceError(f"{self.host}:{port} is already in use by another process")
            self._proc = self._spawn(self._command())
            self._wait_ready(began + self.startup_timeout)
            if not self._initialized:
                self._after_first_start()
                self._initialized = True
        except BaseException as exc:
            self._kill_process_group()
            if self._proc is not None:
                with contextlib.suppress(Exception):
                    self._proc.wait(5)
                self._proc = None
            if not isinstance(exc, Exception):
                raise
            self._keep_tmpdir = True
            raise ServiceError(self.failure_message(f"failed to start: {exc}")) from exc
        self.start_seconds = time.monotonic() - began
        return self

    def stop(self, timeout: float = 30.0) -> int | None:
        """Stop the server cleanly (kill it after ``timeout`` seconds); keep its folder.
        Returns the exit code of the process we started, or None if none was running."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            try:
                self._shutdown(proc, timeout)
                proc.wait(timeout)
            except (subprocess.TimeoutExpired, OSError, ServiceError):
                pass
        self._kill_process_group()  # leftovers, or a server that did not stop in time
        code = proc.wait()
        self._proc = None
        return code

    def kill(self) -> None:
        """Crash the server: no clean shutdown. ``start()`` brings it back on the same data."""
        proc = self._proc
        if proc is None:
            return
        self._crash(proc)
        self._kill_process_group()
        proc.wait()
        self._proc = None

    def restart(self) -> Self:
        """``stop()`` then ``start()``: same port, same data."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop the server and remove its temporary folder (unless a start failed)."""
        try:
            self.stop()
        finally:
            with _LIVE_LOCK:
                _LIVE.discard(self)
            if self._tmpdir is not None and not self._keep_tmpdir:
                shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
            self._port = None
            self._prepared = self._initialized = False

    def log_text(self) -> str:
        """Everything the server wrote so far (empty when there is no log yet)."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except (OSError, ServiceError):
            return ""

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the log."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    def failure_message(self, what: str) -> str:
        """``what``, plus where the folder is and the tail of the log."""
        folder = self._tmpdir if self._tmpdir is not None else "(none)"
        return (
            f"{self.name}: {what}\ntemporary folder kept: {folder}\n"
            f"--- last lines of the log ---\n{self.log_tail()}"
        )

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        where = f"{self.host}:{self._port}" if self._port else "no port yet"
        return f"<{type(self).__name__} {state} {where} {self._tmpdir or ''}>"

    # ----- helpers for subclasses --------------------------------------------------------------

    def _spawn(self, argv: Sequence[str]) -> subprocess.Popen[bytes]:
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== {time.strftime('%H:%M:%S')} starting: {' '.join(argv)}\n".encode())
            log.flush()
            try:
                return subprocess.Popen(
                    list(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self._cwd(),
                    env=self._environment(),
                    start_new_session=True,
                )
            except FileNotFoundError as exc:
                raise ServiceUnavailable(f"{self.name}: cannot run {argv[0]}: {exc}") from exc

    def _run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
        quiet: bool = False,
    ) -> str:
        """Run a helper command to completion and return its stdout. Its output goes to the log
        too (unless ``quiet``); a non-zero exit raises ``ServiceError`` quoting the output."""
        try:
            done = subprocess.run(
                list(argv),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                cwd=self.tmpdir,
                env=dict(env) if env is not None else self._environment(),
                timeout=timeout,
                start_new_session=True,
                check=False,
            )
        except FileNotFoundError as exc:
            raise ServiceUnavailable(f"{self.name}: cannot run {argv[0]}: {exc}") from exc
        except subprocess.TimeoutExpired as exc:
            raise ServiceError(f"{' '.join(argv)} took more than {timeout:g} s") from exc
        output = (done.stdout + done.stderr).decode("utf-8", errors="replace")
        if not quiet:
            with contextlib.suppress(OSError), open(self.log_path, "a", encoding="utf-8") as log:
                log.write(f"\n=== ran: {' '.join(argv)} (exit {done.returncode})\n{output}")
        if done.returncode != 0:
            raise ServiceError(
                f"{' '.join(argv)} failed with exit code {done.returncode}:\n{output.strip()}"
            )
        return done.stdout.decode("utf-8", errors="replace")

    def _poll_until(
        self, check: Callable[[], bool], deadline: float, what: str, interval: float = 0.05
    ) -> None:
        """Call ``check`` until it returns True; fail early if the process died."""
        last_error: Exception | None = None
        while True:
            proc = self._proc
            if proc is not None and proc.poll() is not None:
                raise ServiceError(
                    f"the process exited with code {proc.returncode} before it was ready ({what})"
                )
            try:
                if check():
                    return
            except Exception as exc:  # not ready yet: remember why, try again
                last_error = exc
            if time.monotonic() >= deadline:
                detail = f" (last error: {last_error})" if last_error else ""
                raise TimeoutError(f"not ready ({what}) after {self.startup_timeout:g} s{detail}")
            time.sleep(interval)

    def _kill_process_group(self) -> None:
        proc = self._proc
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
