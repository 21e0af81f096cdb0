"""``--audit-log PATH``: one JSON line per write attempt and per failed authentication.

Accepted and refused writes alike (200, 400, 401, 403, 409, 413, 431, ...), so the log answers
"who tried to change what" as well as "who changed what". Each line is written (and flushed)
before the answer leaves the server. It never holds a payload or a credential: a payload is
described by its size and SHA-256. ``-`` writes to standard error; ``reopen`` (on SIGHUP) lets
a log rotator move the file away.
"""

from __future__ import annotations

import json
import sys
import threading
from datetime import UTC, datetime
from typing import IO


class AuditLog:
    """Appends audit records, one JSON object per line, from any thread."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        self.reopen()

    def reopen(self) -> None:
        """Open the file again (after a rotation); standard error stays as it is."""
        with self._lock:
            if self.path == "-":
                self._file = sys.stderr
                return
            old, self._file = self._file, open(self.path, "a", encoding="utf-8")  # noqa: SIM115
            if old is not None:
                old.close()

    def write(self, **record: object) -> None:
        """One line: the time, then ``record`` (values that JSON can hold)."""
        line = json.dumps(
            {"time": datetime.now(UTC).isoformat(timespec="milliseconds"), **record},
            ensure_ascii=False,
            separators=(",", ":"),
        )
        with self._lock:
            assert self._file is not None
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None and self._file is not sys.stderr:
                self._file.close()
            self._file = None
