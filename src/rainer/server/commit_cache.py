"""The server's memory budget: commits and rendered answers, least recently used first out.

A commit never changes once written, so whatever is derived from (key, version) can be kept for as
long as memory allows (its payload, its answers, its entry in a list); heads are found through the
head view, which holds metadata only. Lists rendered for one generation of the heads are kept here
too, and dropped when the heads move on.
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

    __slots__ = ("_info", "_meta", "_payload", "commit")

    def __init__(self, info: CommitInfo | None, commit: Commit | None) -> None:
        assert info is not None or commit is not None
        self._info = info
        self.commit = commit
        self._meta: Response | None = None
        self._payload: Response | None = None

    @property
    def info(self) -> CommitInfo:
        # Made when first asked for: an entry put for every commit saved (``put``) seldom is.
        if self._info is None:
            assert self.commit is not None
            self._info = self.commit.info()
        return self._info

    def meta_response(self) -> Response:
        if self._meta is None:
            # A loaded commit has its metadata JSON already (its stored form was made with it).
            self._meta = meta_response(self.commit if self.commit is not None else self.info)
        return self._meta

    def payload_response(self) -> Response:
        """The payload answer; only for an entry whose commit is loaded."""
        if self._payload is None:
            assert self.commit is not None
            self._payload = payload_response(self.commit)
        return self._payload

    @property
    def cost(self) -> int:
        return ENTRY_OVERHEAD + (len(self.commit.payload or b"") if self.commit is not None else 0)


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
        self._list_generation: object = None
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
        entry = CachedCommit(found.info if found is not None else None, commit)
        if found is not None:
            entry._meta = found._meta  # keep what was rendered already
        self._put((commit.key, commit.version), entry, entry.cost)
        return entry

    def list_entry(self, key: str, version: int, flags: tuple[object, ...]) -> bytes | None:
        """What a list rendered for (key, version) with ``flags`` (``listing``), when kept."""
        found = self._get(("\0entry", key, version, flags))
        return found if isinstance(found, bytes) else None

    def put_list_entry(
        self, key: str, version: int, flags: tuple[object, ...], entry: bytes
    ) -> None:
        self._put(("\0entry", key, version, flags), entry, len(entry) + ENTRY_OVERHEAD)

    def list_body(self, generation: object, flags: tuple[object, ...]) -> bytes | None:
        """A list kept for ``generation`` of the heads (anything that changes when they do:
        the view's generation, or the heads' versions themselves) and ``flags``."""
        found = self._get(("\0list", generation, flags))
        return found if isinstance(found, bytes) else None

    def put_list_body(
        self, generation: object, flags: tuple[object, ...], body: bytes, generation_bytes: int = 0
    ) -> None:
        """Keep a list; ``generation_bytes``: what the generation itself holds in memory (the
        heads' versions), charged with the body."""
        with self._lock:
            if self._list_generation != generation:
                # Lists of older generations will never be asked for again.
                for name in self._list_names:
                    self._drop(name)
                self._list_names.clear()
                self._list_generation = generation
            name = ("\0list", generation, flags)
            self._list_names.add(name)
        self._put(name, body, len(body) + generation_bytes + ENTRY_OVERHEAD)

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
