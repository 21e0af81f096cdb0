"""``--validate json|yaml``: refuse payloads that do not parse, within bounds, off the event loop.

A parser is the easiest thing on a server to make work hard: a payload nested fifty thousand deep
overflows a recursive parser, a few kilobytes of YAML aliases expand to gigabytes, and a large
document keeps a C parser (which holds the interpreter's lock) busy for seconds. So:

- nesting deeper than ``MAX_DEPTH`` and YAML with more than ``MAX_ALIASES`` aliases are refused
  before anything is built;
- payloads up to ``INLINE_BYTES`` are parsed on a worker thread: at that size a parse takes a
  fraction of a millisecond, short enough for the interpreter lock to be shared fairly;
- larger ones go to a separate worker process (``python -m rainer.server.validation``), which
  has ``TIMEOUT`` seconds and ``WORKER_MEMORY_BYTES`` of address space; past either it is
  killed and replaced, and the payload is refused. The server's own loop never waits on it.

Every refusal is a 400 ``Malformed input: …``, one line, and nothing is logged for it.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import select
import struct
import subprocess
import sys
import threading
from collections.abc import Iterable
from typing import IO

import yaml

from rainer.defaults import VALIDATE_INLINE_BYTES as INLINE_BYTES
from rainer.defaults import VALIDATE_MAX_ALIASES as MAX_ALIASES
from rainer.defaults import VALIDATE_MAX_DEPTH as MAX_DEPTH
from rainer.defaults import VALIDATE_TIMEOUT as TIMEOUT
from rainer.defaults import VALIDATE_WORKER_MEMORY_BYTES as WORKER_MEMORY_BYTES
from rainer.defaults import VALIDATE_WORKERS as WORKERS

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_KINDS = {"json": b"j", "yaml": b"y"}
_FRAME = struct.Struct(">cI")  # kind or status byte, then the length of what follows


def problem(kind: str, payload: bytes) -> str | None:
    """Why ``payload`` is not acceptable as ``kind`` (``json`` or ``yaml``), or None when it is."""
    try:
        if kind == "json":
            _check_depth(json.loads(payload))
        else:
            _check_yaml_events(payload)
            yaml.load(payload, Loader=_LOADER)
    except RecursionError:
        return f"nested deeper than {MAX_DEPTH} levels"
    except MemoryError:
        return "too large to parse"
    except (ValueError, yaml.YAMLError, _TooComplex) as exc:
        return " ".join(str(exc).split())
    return None


class _TooComplex(Exception):
    pass


def _check_depth(value: object) -> None:
    """Refuse a parsed JSON value nested deeper than MAX_DEPTH (without recursing ourselves)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children: Iterable[object]
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > MAX_DEPTH:
            raise _TooComplex(f"nested deeper than {MAX_DEPTH} levels")
        stack.extend((child, depth + 1) for child in children)


def _check_yaml_events(payload: bytes) -> None:
    """Refuse YAML nested deeper than MAX_DEPTH or with more than MAX_ALIASES aliases, from the
    parser's events, before any object is built."""
    depth = aliases = 0
    for event in yaml.parse(payload, Loader=_LOADER):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise _TooComplex(f"nested deeper than {MAX_DEPTH} levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                raise _TooComplex(f"more than {MAX_ALIASES} YAML aliases")


class Validator:
    """Checks payloads as ``kind`` for a server: small ones in the calling thread, large ones in
    worker processes started on first use. Call ``check`` from a thread, never the event loop."""

    def __init__(self, kind: str, workers: int = WORKERS) -> None:
        if kind not in _KINDS:
            raise ValueError(f"cannot validate {kind!r}: use json or yaml")
        self.kind = kind
        self._idle: queue.SimpleQueue[_WorkerProcess | None] = queue.SimpleQueue()
        for _ in range(workers):
            self._idle.put(None)  # a slot; its process starts when first needed

    def check(self, payload: bytes) -> str | None:
        """Why ``payload`` is refused, or None."""
        if len(payload) <= INLINE_BYTES:
            return problem(self.kind, payload)
        worker = self._idle.get()  # waits while every worker is busy
        try:
            if worker is None or not worker.alive():
                worker = _WorkerProcess()
            try:
                return worker.check(self.kind, payload)
            except _WorkerLost as exc:
                worker.kill()
                worker = None
                return str(exc)
        finally:
            self._idle.put(worker)

    def close(self) -> None:
        """Stop the worker processes (a busy one is stopped when it gives its slot back)."""
        while True:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                return
            if worker is not None:
                worker.kill()


class _WorkerLost(Exception):
    """The worker ran out of time or memory, or died: the payload is refused with this reason."""


class _WorkerProcess:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rainer.server.validation"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
        )
        self._lock = threading.Lock()

    def alive(self) -> bool:
        return self.process.poll() is None

    def check(self, kind: str, payload: bytes) -> str | None:
        assert self.process.stdin is not None and self.process.stdout is not None
        with self._lock:
            try:
                self.process.stdin.write(_FRAME.pack(_KINDS[kind], len(payload)) + payload)
                self.process.stdin.flush()
                head = _read(self.process.stdout, _FRAME.size, TIMEOUT)
                status, length = _FRAME.unpack(head)
                reason = _read(self.process.stdout, length, TIMEOUT).decode("utf-8", "replace")
            except TimeoutError:
                raise _WorkerLost(f"not parsed within {TIMEOUT:g} s") from None
            except (OSError, EOFError, struct.error):
                raise _WorkerLost("too large or too complex to parse") from None
        return reason if status == b"!" else None

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(1)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def _read(stream: IO[bytes], size: int, timeout: float) -> bytes:
    """Exactly ``size`` bytes from a pipe, waiting at most ``timeout`` seconds for each read."""
    fd = stream.fileno()
    chunks = []
    while size:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            raise TimeoutError
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _serve() -> None:
    """The worker process: answer frames on stdin until it closes."""
    # Parsing is worth less than answering: let the server's own process have the CPU first.
    with contextlib.suppress(OSError):
        os.nice(10)
    with contextlib.suppress(ValueError, OSError):
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_BYTES, WORKER_MEMORY_BYTES))
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    kinds = {code: kind for kind, code in _KINDS.items()}
    while True:
        head = source.read(_FRAME.size)
        if len(head) < _FRAME.size:
            return
        code, length = _FRAME.unpack(head)
        payload = source.read(length)
        reason = problem(kinds.get(code, "json"), payload)
        answer = b"" if reason is None else reason.encode("utf-8")
        sink.write(_FRAME.pack(b"." if reason is None else b"!", len(answer)) + answer)
        sink.flush()


if __name__ == "__main__":
    _serve()
