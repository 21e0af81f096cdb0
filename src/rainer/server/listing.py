"""Lists and histories rendered a bounded piece at a time.

A list of every head with its payload, or a page of history of large versions, can be far larger
than anything a server should hold at once, and encoding one large payload in a single call
would hold the interpreter lock (and so the event loop) for tens of milliseconds. So bodies are
rendered as a sequence of chunks of about ``CHUNK_BYTES``: small payloads are fetched a batch at
a time, large ones a slice at a time (``Payloads``), and every slice is escaped or base64-encoded
on its own, so no single step takes long and no request holds more than a few slices.

The bytes are exactly those of ``wire.json_body`` on the whole list (or history) would give.
"""

from __future__ import annotations

import base64
import codecs
from collections.abc import Iterable, Iterator, Sequence
from json.encoder import encode_basestring
from typing import Protocol

from rainer.commit import CommitInfo
from rainer.storage.base import SLICE_BYTES, batches

#: Rendered bytes per chunk handed to the event loop to send.
CHUNK_BYTES = 256 * 1024
#: Payload bytes fetched whole per batch; larger payloads are read in slices.
BATCH_BYTES = 1024 * 1024
#: Bodies estimated up to this size are made whole (and a list kept in memory); larger ones
#: are streamed as they are made.
WHOLE_BYTES = 4 * 1024 * 1024


class Payloads(Protocol):
    """Where a renderer gets payloads, and keeps what it rendered of small ones."""

    def whole(self, infos: Sequence[CommitInfo]) -> dict[tuple[str, int], bytes | None]:
        """The payloads of small commits, in one go; a missing entry could not be read."""

    def slices(self, info: CommitInfo) -> Iterator[bytes]:
        """A large commit's payload, a slice at a time."""

    def entry(self, info: CommitInfo, utf8: bool, b64: bool) -> bytes | None:
        """The entry rendered for ``info`` with these flags before, when it was kept."""

    def keep_entry(self, info: CommitInfo, utf8: bool, b64: bool, entry: bytes) -> None:
        """Keep a small commit's rendered entry: a commit never changes, so neither does it."""


def _string(text: str) -> bytes:
    """``text`` as a JSON string, as ``json.dumps(text, ensure_ascii=False)`` writes it (with the
    same encoder, without making a JSONEncoder per call)."""
    return encode_basestring(text).encode()


def _utf8(slices: Iterable[bytes]) -> Iterator[bytes]:
    """The payload as the inside of a JSON string: decoded as UTF-8 with replacement (a
    character split between slices is carried over), then escaped, slice by slice."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    for piece in slices:
        text = decoder.decode(piece)
        if text:
            yield _string(text)[1:-1]
    text = decoder.decode(b"", final=True)
    if text:
        yield _string(text)[1:-1]


def _base64(slices: Iterable[bytes]) -> Iterator[bytes]:
    """The payload in base64, slice by slice (whole groups of three bytes at a time)."""
    carry = b""
    for piece in slices:
        piece = carry + piece
        whole = len(piece) - len(piece) % 3
        carry = piece[whole:]
        if whole:
            yield base64.b64encode(piece[:whole])
    if carry:
        yield base64.b64encode(carry)


def _entry(
    info: CommitInfo, payload: bytes | None, payloads: Payloads, utf8: bool, b64: bool
) -> Iterator[bytes]:
    """One commit's metadata JSON, with its payload fields when asked."""
    meta = info.meta_json()
    if info.empty or not (utf8 or b64):
        yield meta
        return
    yield meta[:-1]  # without the closing brace: the payload fields follow

    def slices() -> Iterable[bytes]:
        if payload is not None:
            return (payload[i : i + SLICE_BYTES] for i in range(0, len(payload), SLICE_BYTES))
        return payloads.slices(info)

    if utf8:
        yield b',"payload_utf8":"'
        yield from _utf8(slices())
        yield b'"'
    if b64:
        yield b',"payload_base64":"'
        yield from _base64(slices())
        yield b'"'
    yield b"}"


def _pieces(
    infos: Sequence[CommitInfo], payloads: Payloads, utf8: bool, b64: bool
) -> Iterator[tuple[CommitInfo, Iterator[bytes]]]:
    """Each info with the pieces of its rendered metadata; entries whose payload could not be
    read are left out."""
    if not (utf8 or b64):
        for info in infos:
            yield info, iter((info.meta_json(),))
        return
    for batch in batches(infos, BATCH_BYTES):
        # Small commits' entries are rendered whole, and kept: a list made again (another
        # request, or after a commit to one of its keys) fetches and renders only what is new.
        kept: dict[tuple[str, int], bytes] = {}
        small = []
        for info in batch:
            if not info.empty and info.size <= SLICE_BYTES:
                entry = payloads.entry(info, utf8, b64)
                if entry is None:
                    small.append(info)
                else:
                    kept[info.key, info.version] = entry
        found = payloads.whole(small) if small else {}
        for info in batch:
            name = (info.key, info.version)
            if name in kept:
                yield info, iter((kept[name],))
            elif info.empty or info.size > SLICE_BYTES:
                yield info, _entry(info, None, payloads, utf8, b64)
            elif name in found:
                entry = b"".join(_entry(info, found[name], payloads, utf8, b64))
                payloads.keep_entry(info, utf8, b64, entry)
                yield info, iter((entry,))


def _chunked(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """``pieces`` joined into chunks of about CHUNK_BYTES."""
    buffer: list[bytes] = []
    size = 0
    for piece in pieces:
        buffer.append(piece)
        size += len(piece)
        if size >= CHUNK_BYTES:
            yield b"".join(buffer)
            buffer, size = [], 0
    if buffer:
        yield b"".join(buffer)


def render_list(
    infos: Sequence[CommitInfo], payloads: Payloads, utf8: bool, b64: bool
) -> Iterator[bytes]:
    """The body of ``GET /diary``: a JSON object, key -> metadata, in ``infos``' order."""

    def pieces() -> Iterator[bytes]:
        separator = b"{"
        for info, entry in _pieces(infos, payloads, utf8, b64):
            yield separator + _string(info.key) + b":"
            yield from entry
            separator = b","
        yield (b"{" if separator == b"{" else b"") + b"}\r\n"

    return _chunked(pieces())


def render_history(
    infos: Sequence[CommitInfo], payloads: Payloads, utf8: bool, b64: bool
) -> Iterator[bytes]:
    """The body of a history page: a JSON array of metadata, in ``infos``' order."""

    def pieces() -> Iterator[bytes]:
        separator = b"["
        for _, entry in _pieces(infos, payloads, utf8, b64):
            yield separator
            yield from entry
            separator = b","
        yield (b"[" if separator == b"[" else b"") + b"]\r\n"

    return _chunked(pieces())


def estimated_size(infos: Iterable[CommitInfo], utf8: bool, b64: bool) -> int:
    """About how many bytes a rendered list or history of ``infos`` takes (escaping can make
    payload text longer: this is for choosing between whole and streamed, not a bound)."""
    total = 0.0
    for info in infos:
        total += 160 + 2 * len(info.key) + len(info.author) + len(info.comment)
        if not info.empty:
            total += info.size * ((1.1 if utf8 else 0) + (4 / 3 if b64 else 0))
    return int(total)
