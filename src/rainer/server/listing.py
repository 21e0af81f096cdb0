"""Lists and histories rendered a bounded piece at a time.

A list of every head with its payload, or a page of history of large versions, can be far larger
than anything a server should hold at once. These render the JSON body as a sequence of chunks,
fetching payloads one batch at a time (``Payloads``), so a worker thread can hand each chunk to
the event loop to send while the next is made.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Iterator, Sequence

from rainer import wire
from rainer.commit import CommitInfo
from rainer.storage.base import batches

#: Payloads of (key, version)s, for a batch of infos; a missing entry could not be read.
Payloads = Callable[[Sequence[CommitInfo]], dict[tuple[str, int], bytes | None]]

#: Payload bytes fetched and rendered per chunk.
CHUNK_BYTES = 1024 * 1024
#: Entries per chunk when no payloads are asked for.
CHUNK_ENTRIES = 1000


def _dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _pieces(
    infos: Sequence[CommitInfo], payloads: Payloads, utf8: bool, b64: bool
) -> Iterator[list[tuple[CommitInfo, dict[str, object]]]]:
    """Each info with its rendered metadata (and payload when asked), a chunk at a time; entries
    whose payload could not be read are left out."""
    if not (utf8 or b64):
        for start in range(0, len(infos), CHUNK_ENTRIES):
            yield [(info, info.meta()) for info in infos[start : start + CHUNK_ENTRIES]]
        return
    for batch in batches(infos, CHUNK_BYTES):
        found = payloads(batch)
        yield [
            (info, wire.meta_with_payload(info, found[info.key, info.version], utf8, b64))
            for info in batch
            if (info.key, info.version) in found
        ]


def render_list(
    infos: Sequence[CommitInfo], payloads: Payloads, utf8: bool, b64: bool
) -> Generator[bytes]:
    """The body of ``GET /diary``: a JSON object, key -> metadata, in ``infos``' order."""
    opening = b"{"
    for chunk in _pieces(infos, payloads, utf8, b64):
        if chunk:
            body = b",".join(_dumps(info.key) + b":" + _dumps(meta) for info, meta in chunk)
            yield opening + body
            opening = b","
    yield (b"{" if opening == b"{" else b"") + b"}\r\n"


def render_history(
    infos: Sequence[CommitInfo], payloads: Payloads, utf8: bool, b64: bool
) -> Generator[bytes]:
    """The body of a history page: a JSON array of metadata, in ``infos``' order."""
    opening = b"["
    for chunk in _pieces(infos, payloads, utf8, b64):
        if chunk:
            yield opening + b",".join(_dumps(meta) for _, meta in chunk)
            opening = b","
    yield (b"[" if opening == b"[" else b"") + b"]\r\n"
