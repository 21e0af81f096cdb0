"""The server's memory budget: commits and rendered answers, least recently used first out.

A commit never changes once written, so whatever is derived from (key, version) can be kept for as
long as memory allows; heads are found through the head view, which holds metadata only. Lists
rendered for one generation of the heads are kept here too, and dropped when the heads move on.
Everything is charged by its bytes (payload, rendered bodies, a fixed allowance for the objects),
and ``max_bytes`` is never exceeded.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from rainer.commit import Commit, CommitInfo
from rainer.defaults import CACHE_BYTES
from rainer.server.responses import Response, meta_response, payload_response

#: What an entry costs beyond its payload and bodies: the objects, headers and bookkeeping.
ENTRY_OVERHEAD = 1024
#: No single entry may take more than this share of the budget, so one huge payload cannot
#: flush everything else.
MAX_ENTRY_SHARE = 8


class CachedCommit:
    """One (key, version): its metadata, its payload when loaded, and the answers rendered for it.

    Rendering is lazy and idempotent, so two threads racing to render get equal answers.
    """

    __slots__ = ("_meta", "_payload", "commit", "info")

    def __init__(self, info: CommitInfo, commit: Commit | None) -> None:
        self.info = info
        self.commit = commit
        self._meta: Response | None = None
        self._payload: Response | None = None

    def meta_response(self) -> Response:
        if self._meta is None:
            self._meta = meta_response(self.info)
        return self._meta

    def payload_response(self) -> Response:
        """The payload answer; only for an entry whose commit is loaded."""
        if self._payload is None:
            assert self.commit is not None
            self._payload = payload_response(self.commit)
        return self._payload

    @property
    def cost(self) -> int:
        return ENTRY_OVERHEAD + (self.info.size if self.commit is not None else 0)


class CommitCache:
    """Entries by (key, version) and rendered lists by (generation, flags), within ``max_bytes``.

    Safe to use from the event loop and from threads; every operation is a few dictionary steps
    under one lock.
    """

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.max_entry_bytes = max_bytes // MAX_ENTRY_SHARE
        self._lock = threading.Lock()
        self._entries: OrderedDict[object, tuple[object, int]] = OrderedDict()
        self._used = 0
        self._list_generation: int | None = None
        self._list_names: set[object] = set()

    @property
    def used_bytes(self) -> int:
        return self._used

    def get(self, key: str, version: int) -> CachedCommit | None:
        return self._get((key, version))  # type: ignore[return-value]

    def entry(self, info: CommitInfo) -> CachedCommit:
        """The entry for ``info``'s (key, version), created (without payload) when missing."""
        found = self.get(info.key, info.version)
        if found is None:
            found = CachedCommit(info, None if not info.empty else _tombstone(info))
            self._put((info.key, info.version), found, found.cost)
        return found

    def put(self, commit: Commit) -> CachedCommit:
        """The entry for ``commit``, with its payload, kept when it fits."""
        found = self.get(commit.key, commit.version)
        if found is not None and found.commit is not None:
            return found
        entry = CachedCommit(commit.info(), commit)
        if found is not None:
            entry._meta = found._meta  # keep what was rendered already
        self._put((commit.key, commit.version), entry, entry.cost)
        return entry

    def list_body(self, generation: int, flags: tuple[object, ...]) -> bytes | None:
        found = self._get(("\0list", generation, flags))
        return found if isinstance(found, bytes) else None

    def put_list_body(self, generation: int, flags: tuple[object, ...], body: bytes) -> None:
        with self._lock:
            if self._list_generation != generation:
                # Lists of older generations will never be asked for again.
                for name in self._list_names:
                    self._drop(name)
                self._list_names.clear()
                self._list_generation = generation
            name = ("\0list", generation, flags)
            self._list_names.add(name)
        self._put(name, body, len(body) + ENTRY_OVERHEAD)

    def _get(self, name: object) -> object | None:
        with self._lock:
            found = self._entries.get(name)
            if found is None:
                return None
            self._entries.move_to_end(name)
            return found[0]

    def _put(self, name: object, value: object, cost: int) -> None:
        if cost > self.max_entry_bytes:
            return
        with self._lock:
            self._drop(name)
            self._entries[name] = (value, cost)
            self._used += cost
            while self._used > self.max_bytes:
                self._drop(next(iter(self._entries)))

    def _drop(self, name: object) -> None:
        found = self._entries.pop(name, None)
        if found is not None:
            self._used -= found[1]


def _tombstone(info: CommitInfo) -> Commit:
    return Commit(info.key, info.version, None, info.author, info.comment, info.mtime)
