"""A commit: one version of one key, and its stored byte form.

The stored form is the original Rainer's, shared by the database ``payload`` column and by every
ZooKeeper node::

    <decimal length of H>\\n<H>\\n<payload bytes>\\n

where H is the metadata JSON. Keeping it byte-exact lets us read and write a tree or a table that
the original JVM servers also use.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from json.encoder import encode_basestring
from typing import Any

from rainer.errors import BadRequestError, CorruptCommitError

MAX_KEY_BYTES = 255

# Characters no key may hold, by Unicode category. Control characters and surrogates cannot travel
# in a URL or a ZooKeeper path; format characters (U+202E right-to-left override, U+200B zero-width
# space, ...) and line or paragraph separators make two different keys look alike in any listing.
_REFUSED = {"Cc": "control character", "Cs": "surrogate"}
_REFUSED_IN_NEW_KEYS = {
    **_REFUSED,
    "Cf": "format character",
    "Zl": "line separator",
    "Zp": "paragraph separator",
}


def payload_text(payload: bytes | None) -> str | None:
    """A payload as text ("" for none); None when it is binary: not UTF-8, or holding NUL bytes
    (the rule every diff and every page showing payloads uses)."""
    if payload is None:
        return ""
    if b"\0" in payload:
        return None
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return None


def validate_key(key: str, new: bool = False) -> str:
    """Return ``key`` when it is a valid Rainer key, else raise BadRequestError saying why.

    ``new`` is for keys being written: they may not hold format characters or line separators
    either. Reads accept those, so that keys an older server wrote stay readable.
    """
    if not key:
        raise BadRequestError("Invalid key: must not be empty")
    if key in (".", ".."):
        raise BadRequestError(f"Invalid key: must not be {key!r}")
    if "/" in key:
        raise BadRequestError("Invalid key: must not contain '/'")
    if key.isascii():
        if len(key) > MAX_KEY_BYTES:
            raise BadRequestError(f"Invalid key: longer than {MAX_KEY_BYTES} bytes in UTF-8")
        if key.isprintable():
            return key  # the common case: printable ASCII needs no per-character look
    elif len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise BadRequestError(f"Invalid key: longer than {MAX_KEY_BYTES} bytes in UTF-8")
    refused = _REFUSED_IN_NEW_KEYS if new else _REFUSED
    for char in key:
        kind = refused.get(unicodedata.category(char))
        if kind is not None:
            raise BadRequestError(f"Invalid key: contains {kind} U+{ord(char):04X}")
    return key


def format_mtime(mtime: datetime) -> str:
    """ISO-8601 with milliseconds and zone, as Joda-Time prints it: ``...T00:00:00.002Z``.

    Every field is zero-padded (year 999 is ``0999``), so whatever is written parses back.
    """
    if mtime.tzinfo is None:
        raise ValueError("mtime must be timezone-aware")
    # isoformat (in C, twice as fast as formatting the fields here; every commit's metadata
    # needs this) pads every field as Joda-Time does; the zone is written below, in our form.
    text = mtime.isoformat(timespec="milliseconds")[:23]
    offset = mtime.utcoffset()
    if not offset:
        return text + "Z"
    seconds = int(offset.total_seconds())
    sign = "+" if seconds >= 0 else "-"
    hours, minutes = divmod(abs(seconds) // 60, 60)
    return f"{text}{sign}{hours:02d}:{minutes:02d}"


# An ISO-8601 date and time in the extended form, seconds and fraction optional, zone optional
# (Z, +HH:MM, +HHMM or +HH). ASCII digits only: Python's own parsers accept other scripts' digits.
_MTIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2})"
    r"(?::([0-9]{2})(?:[.,]([0-9]{1,9}))?)?"
    r"(Z|z|[+-][0-9]{2}(?::?[0-9]{2})?)?"
)


def parse_mtime(text: str) -> datetime:
    """Parse an ISO-8601 date and time; raise ValueError when it is not one.

    A time without a zone is taken as UTC, as the original's servers ran in UTC. Precision beyond
    milliseconds is dropped because the stored form cannot carry it. Whatever this accepts,
    ``format_mtime`` writes back in a form this accepts again.
    """
    match = _MTIME.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not an ISO-8601 date and time: {text!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    if zone is None or zone in "Zz":
        tz = UTC
    else:
        digits = zone[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:] or 0)
        if hours > 23 or minutes > 59:
            raise ValueError(f"not a zone offset: {zone!r}")
        offset = timedelta(hours=hours, minutes=minutes)
        tz = timezone(-offset if zone[0] == "-" else offset)
    millis = int((fraction or "0")[:3].ljust(3, "0"))
    return datetime(
        int(year),
        int(month),
        int(day),
        int(hour),
        int(minute),
        int(second or 0),
        millis * 1000,
        tzinfo=tz,
    )


def now() -> datetime:
    """The current time in UTC, at millisecond precision."""
    current = datetime.now(UTC)
    return current.replace(microsecond=current.microsecond // 1000 * 1000)


def _meta(
    key: str, version: int, author: str, comment: str, mtime: datetime, empty: bool
) -> dict[str, object]:
    """The metadata dict, in the original's field order."""
    return {
        "key": key,
        "version": version,
        "author": author,
        "comment": comment,
        "mtime": format_mtime(mtime),
        "empty": empty,
    }


def _meta_json(
    key: str, version: int, author: str, comment: str, mtime: datetime, empty: bool
) -> bytes:
    """The metadata JSON: exactly ``json.dumps(_meta(...), separators=(",", ":"),
    ensure_ascii=False).encode()``, made directly. Every commit needs it (its stored form, its
    200, each list entry), and building the dict and a JSON encoder for it took several times
    as long. Strings go through the encoder ``json.dumps`` itself uses for them."""
    return (
        f'{{"key":{encode_basestring(key)},"version":{version:d},'
        f'"author":{encode_basestring(author)},"comment":{encode_basestring(comment)},'
        f'"mtime":"{format_mtime(mtime)}","empty":{"true" if empty else "false"}}}'
    ).encode()


@dataclass(frozen=True, slots=True)
class CommitInfo:
    """A commit without its payload: its metadata and the payload's size in bytes.

    What the server keeps in memory for every head, and all a list or a history without payloads
    needs, whatever the payloads weigh.
    """

    key: str
    version: int
    author: str
    comment: str
    mtime: datetime
    empty: bool
    size: int

    def meta(self) -> dict[str, object]:
        """The metadata dict, in the original's field order."""
        return _meta(self.key, self.version, self.author, self.comment, self.mtime, self.empty)

    def meta_json(self) -> bytes:
        """The metadata as compact JSON (what ``wire.json_body`` makes of ``meta()``, less the
        line end)."""
        return _meta_json(self.key, self.version, self.author, self.comment, self.mtime, self.empty)


@dataclass(frozen=True, slots=True)
class Commit:
    """One version of one key. ``payload is None`` makes it an empty commit (a tombstone)."""

    key: str
    version: int
    payload: bytes | None
    author: str
    comment: str
    mtime: datetime
    #: ``meta_json()``, once made: a commit's stored form and its 200 share it.
    _json: bytes | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def empty(self) -> bool:
        return self.payload is None

    def meta(self) -> dict[str, object]:
        """The metadata dict, in the original's field order."""
        return _meta(
            self.key, self.version, self.author, self.comment, self.mtime, self.payload is None
        )

    def meta_json(self) -> bytes:
        """The metadata as compact JSON (as ``CommitInfo.meta_json``), made once per commit."""
        found = self._json
        if found is None:
            found = _meta_json(
                self.key, self.version, self.author, self.comment, self.mtime, self.empty
            )
            # Frozen, but this is derived from the fields: two threads racing make equal bytes.
            object.__setattr__(self, "_json", found)
        return found

    def info(self) -> CommitInfo:
        """This commit without its payload."""
        return CommitInfo(
            self.key,
            self.version,
            self.author,
            self.comment,
            self.mtime,
            self.payload is None,
            len(self.payload or b""),
        )

    def encode(self) -> bytes:
        """The stored byte form (database column and ZooKeeper node)."""
        header = self.meta_json()
        return b"%d\n%s\n%s\n" % (len(header), header, self.payload or b"")

    @classmethod
    def decode(cls, data: bytes) -> Commit:
        """Parse the stored byte form; raise CorruptCommitError when it is not one."""
        try:
            meta, header_end = _decode_header(data)
            if data[-1:] != b"\n" or len(data) < header_end + 2:
                raise ValueError("framing does not match the declared header length")
            empty = bool(meta.get("empty", False))
            return cls(
                key=str(meta["key"]),
                version=int(meta["version"]),
                payload=None if empty else bytes(data[header_end + 1 : -1]),
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


def decode_info(head: bytes, stored_size: int) -> CommitInfo:
    """A commit's metadata from the first bytes of its stored form, ``stored_size`` long in all.

    Raises IncompleteHeaderError when ``head`` stops inside the header (read more of the row),
    CorruptCommitError when it is not a stored commit.
    """
    try:
        meta, header_end = _decode_header(head)
        empty = bool(meta.get("empty", False))
        size = stored_size - header_end - 2
        if size < 0 or (empty and size):
            raise ValueError("framing does not match the declared header length")
        return CommitInfo(
            key=str(meta["key"]),
            version=int(meta["version"]),
            author=str(meta["author"]),
            comment=str(meta["comment"]),
            mtime=parse_mtime(str(meta["mtime"])),
            empty=empty,
            size=size,
        )
    except IncompleteHeaderError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CorruptCommitError(f"not a stored Rainer commit: {exc}") from exc


class IncompleteHeaderError(ValueError):
    """The bytes given stop before the end of the stored form's header."""


def _decode_header(data: bytes) -> tuple[dict[str, Any], int]:
    """The header dict of a stored form and the offset of the newline that ends it."""
    length_end = data.find(b"\n", 0, 12)
    if length_end < 1 or not data[:length_end].isdigit():
        raise ValueError("no header length")
    header_end = length_end + 1 + int(data[:length_end])
    if len(data) <= header_end:
        raise IncompleteHeaderError("the header is longer than the bytes given")
    if data[header_end : header_end + 1] != b"\n":
        raise ValueError("framing does not match the declared header length")
    meta = json.loads(data[length_end + 1 : header_end])
    if not isinstance(meta, dict):
        raise ValueError("the header is not a JSON object")
    return meta, header_end
