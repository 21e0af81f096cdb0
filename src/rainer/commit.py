"""A commit: one version of one key, and its stored byte form.

The stored form is the original Rainer's, shared by the database ``payload`` column and by every
ZooKeeper node::

    <decimal length of H>\\n<H>\\n<payload bytes>\\n

where H is the metadata JSON. Keeping it byte-exact lets us read and write a tree or a table that
the original JVM servers also use.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from rainer.errors import BadRequestError

MAX_KEY_BYTES = 255


def validate_key(key: str) -> str:
    """Return ``key`` when it is a valid Rainer key, else raise BadRequestError saying why."""
    if (
        key.isascii()
        and key.isprintable()
        and "/" not in key
        and 0 < len(key) <= MAX_KEY_BYTES
        and key not in (".", "..")
    ):
        return key  # the common case, checked in one pass
    if not key:
        raise BadRequestError("Invalid key: must not be empty")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise BadRequestError(f"Invalid key: longer than {MAX_KEY_BYTES} bytes in UTF-8")
    if "/" in key:
        raise BadRequestError("Invalid key: must not contain '/'")
    if key in (".", ".."):
        raise BadRequestError(f"Invalid key: must not be {key!r}")
    for char in key:
        if unicodedata.category(char) in ("Cc", "Cs"):
            raise BadRequestError(f"Invalid key: contains control character U+{ord(char):04X}")
    return key


def format_mtime(mtime: datetime) -> str:
    """ISO-8601 with milliseconds and zone, as Joda-Time prints it: ``...T00:00:00.002Z``."""
    if mtime.tzinfo is None:
        raise ValueError("mtime must be timezone-aware")
    millis = mtime.microsecond // 1000
    text = mtime.strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}"
    offset = mtime.utcoffset() or timedelta(0)
    if offset == timedelta(0):
        return text + "Z"
    seconds = int(offset.total_seconds())
    sign = "+" if seconds >= 0 else "-"
    hours, minutes = divmod(abs(seconds) // 60, 60)
    return f"{text}{sign}{hours:02d}:{minutes:02d}"


def parse_mtime(text: str) -> datetime:
    """Parse an ISO-8601 timestamp with a zone; raise ValueError when it is not one.

    A timestamp without a zone is taken as UTC, as the original's servers ran in UTC. Precision
    beyond milliseconds is dropped because the wire form cannot carry it.
    """
    value = datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def now() -> datetime:
    """The current time in UTC, at millisecond precision."""
    current = datetime.now(UTC)
    return current.replace(microsecond=current.microsecond // 1000 * 1000)


@dataclass(frozen=True, slots=True)
class Commit:
    """One version of one key. ``payload is None`` makes it an empty commit (a tombstone)."""

    key: str
    version: int
    payload: bytes | None
    author: str
    comment: str
    mtime: datetime

    @property
    def empty(self) -> bool:
        return self.payload is None

    def meta(self) -> dict[str, object]:
        """The metadata dict, in the original's field order."""
        return {
            "key": self.key,
            "version": self.version,
            "author": self.author,
            "comment": self.comment,
            "mtime": format_mtime(self.mtime),
            "empty": self.payload is None,
        }

    def encode(self) -> bytes:
        """The stored byte form (database column and ZooKeeper node)."""
        header = json.dumps(self.meta(), separators=(",", ":"), ensure_ascii=False).encode()
        return b"%d\n%s\n%s\n" % (len(header), header, self.payload or b"")

    @classmethod
    def decode(cls, data: bytes) -> Commit:
        """Parse the stored byte form; raise CorruptCommitError when it is not one."""
        try:
            length_end = data.index(b"\n")
            length = int(data[:length_end])
            header_end = length_end + 1 + length
            if length < 0 or data[header_end : header_end + 1] != b"\n" or data[-1:] != b"\n":
                raise ValueError("framing does not match the declared header length")
            meta = json.loads(data[length_end + 1 : header_end])
            payload = data[header_end + 1 : -1]
            empty = bool(meta.get("empty", False))
            return cls(
                key=str(meta["key"]),
                version=int(meta["version"]),
                payload=None if empty else bytes(payload),
                author=str(meta["author"]),
                comment=str(meta["comment"]),
                mtime=parse_mtime(str(meta["mtime"])),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CorruptCommitError(f"not a stored Rainer commit: {exc}") from exc

    def __repr__(self) -> str:
        size = "[empty]" if self.payload is None else f"[{len(self.payload):,} bytes]"
        return (
            f"Commit({self.key!r}, {self.version}, {size}, {self.author!r}, "
            f"{self.comment!r}, {format_mtime(self.mtime)})"
        )


class CorruptCommitError(ValueError):
    """Bytes that should hold a stored commit do not parse as one."""
