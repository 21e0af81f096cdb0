"""The mirror: a live, read-only copy of every commit under ``<path>/data``, fed by watches.

How it stays right:

- One worker thread does every ZooKeeper read, in order, on one session. ZooKeeper guarantees a
  client's reads never see an older state than an earlier read did, so the mirror never goes
  back in time; it may only lag by the time a watch takes to fire and a read to come back.
- Watches only queue work (they run on kazoo's event thread, which must not block): a change to
  the children queues a listing, a change to a node queues a fresh read of that node. Watches
  say *that* something changed, and every read returns the current state, so collapsed or
  reordered notifications cannot leave the mirror wrong.
- Watches can be missed: kazoo drops every watch when the connection is lost, and a session
  that expires loses them on the server too. So every time the client connects again the worker
  rebuilds from a full listing (and a read of every node), which converges to the truth. The
  rebuild starts with a ``sync``, so that even a new session on a server that lags the leader
  reads nothing older than what the mirror already holds.

Nodes that do not parse, or that hold an empty commit, are logged and left out.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from kazoo.client import KazooState
from kazoo.exceptions import NoNodeError
from kazoo.protocol.states import EventType, WatchedEvent

from rainer.commit import CommitInfo
from rainer.errors import CorruptCommitError
from rainer.keeper.keeper import Keeper, decode_node
from rainer.storage.head_view import HeadView

log = logging.getLogger(__name__)

_LIST = ("list",)
_RESYNC = ("resync",)
_STOP = ("stop",)
_RETRY_SECONDS = 1.0


class Mirror(HeadView):
    """The metadata of every non-empty head under the keeper's path, kept current: the head view
    of a server in a cluster.

    ``start()`` returns once the mirror is complete; reads (``info``, ``infos``) are plain
    dictionary lookups, cheap enough for an event loop.
    """

    cached = True
    complete = False  # no tombstones, and keys may arrive late: the database answers for those

    def __init__(self, keeper: Keeper) -> None:
        self.client = keeper.client
        self.keeper = keeper
        self._heads: dict[str, CommitInfo] = {}
        #: keys whose node we have read (and watch), including corrupt ones
        self._known: set[str] = set()
        self._changed = threading.Condition()
        self._work: queue.SimpleQueue[tuple[str, ...]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="rainer-mirror", daemon=True)
        self._synced = threading.Event()
        self._needs_resync = False
        self._closed = False
        self._generation = 0
        self._index = 0
        self._busy = False  # the worker has work in hand or waiting
        #: How many full rebuilds ran (the first one included); /healthz reports it.
        self.rebuilds = 0

    # -- life cycle ------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> None:
        """Start following ZooKeeper; return once the first full listing is in.

        The client must be started. Raises TimeoutError when the mirror is not complete in time.
        """
        self.client.add_listener(self._on_state)
        self._thread.start()
        self._work.put(_RESYNC)
        if not self._synced.wait(timeout):
            raise TimeoutError(f"the ZooKeeper mirror of {self.keeper.data_path} is not complete")

    def close(self, wait: float = 10.0) -> None:
        """Stop following ZooKeeper, waiting up to ``wait`` seconds for the worker thread (a
        request to a ZooKeeper that is gone ends when the client stops or times out). The last
        known heads stay readable."""
        if not self._closed:
            self._closed = True
            self.client.remove_listener(self._on_state)
            self._work.put(_STOP)
        if self._thread.is_alive():
            self._thread.join(wait)

    @property
    def synced(self) -> bool:
        """True once the first full listing is in."""
        return self._synced.is_set()

    # -- reads -----------------------------------------------------------------------------

    @property
    def generation(self) -> int:
        return self._generation

    def info(self, key: str) -> CommitInfo | None:
        """The newest commit of ``key`` as last seen in ZooKeeper; None when it has no node."""
        return self._heads.get(key)

    def infos(self, include_empty: bool = False) -> dict[str, CommitInfo]:
        """A consistent copy of every head (the mirror holds no tombstones)."""
        with self._changed:
            return dict(self._heads)

    def wait_for(self, predicate: Callable[[Mirror], bool], timeout: float) -> bool:
        """Wait until ``predicate(self)`` holds (checked after each change); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True

    # -- watches (kazoo's thread: queue work, never block) ----------------------------------

    def _on_state(self, state: str) -> None:
        if state == KazooState.CONNECTED:
            if self._needs_resync:
                self._work.put(_RESYNC)
        else:
            # SUSPENDED or LOST: changes may go unreported until we rebuild.
            self._needs_resync = True

    def _on_children(self, event: WatchedEvent) -> None:
        # EventType.NONE is kazoo dropping its watches on a lost connection; the rebuild on
        # reconnection covers that, and a read now would only wait for the connection.
        if event.type != EventType.NONE:
            self._work.put(_LIST)

    def _on_node(self, event: WatchedEvent) -> None:
        if event.type in (EventType.CHANGED, EventType.DELETED, EventType.CREATED):
            self._work.put(("node", event.path.rsplit("/", 1)[1]))

    # -- the worker thread -----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._work.get()
            if item is _STOP:
                return
            self._busy = True
            try:
                if item is _RESYNC:
                    self._needs_resync = False
                    self._rebuild()
                elif item is _LIST:
                    self._list()
                else:
                    self._read(item[1])
            except Exception as exc:  # connection loss and the like: rebuild when back
                if self._closed:
                    return
                self._needs_resync = True
                log.warning("ZooKeeper mirror: %s failed (%s); will rebuild", item[0], exc)
                if self.client.connected:
                    time.sleep(_RETRY_SECONDS)  # connected but failing: retry, not too often
                    self._work.put(_RESYNC)
            finally:
                self._busy = not self._work.empty()

    def _rebuild(self) -> None:
        """Replace everything with a full listing and a read of every node."""
        data_path = self.keeper.data_path
        wait = self.keeper.wait
        wait(self.client.ensure_path_async(data_path))
        wait(self.client.sync_async(data_path))
        names, listing = wait(
            self.client.get_children_async(data_path, watch=self._on_children, include_data=True)
        )
        index = listing.pzxid
        pending = [
            (name, self.client.get_async(f"{data_path}/{name}", watch=self._on_node))
            for name in names
        ]
        fresh: dict[str, CommitInfo] = {}
        known: set[str] = set()
        for name, result in pending:
            try:
                data, stat = wait(result)
            except NoNodeError:  # deleted since the listing; the children watch will tell
                continue
            index = max(index, stat.mzxid)
            known.add(name)
            commit = self._parse(name, data)
            if commit is not None:
                fresh[name] = commit
        with self._changed:
            changes: list[tuple[str, CommitInfo | None]] = [
                (key, None) for key in self._heads if key not in fresh
            ]
            changes += [(k, c) for k, c in fresh.items() if self._heads.get(k) != c]
            self._heads = fresh
            self._known = known
            self.rebuilds += 1
            self._index = max(self._index, index)
            self._bump(changes)
        _log_changes(changes)
        log.info("ZooKeeper mirror of %s rebuilt: %d heads", data_path, len(fresh))
        self._synced.set()

    def _list(self) -> None:
        """The children changed: read new nodes; drop the ones that are gone."""
        data_path = self.keeper.data_path
        children, listing = self.keeper.wait(
            self.client.get_children_async(data_path, watch=self._on_children, include_data=True)
        )
        names = set(children)
        with self._changed:
            self._index = max(self._index, listing.pzxid)
            gone = [key for key in self._known if key not in names]
            new = [name for name in names if name not in self._known]
        for key in gone:
            self._apply(key, None, known=False)
        for name in new:
            self._read(name)

    def _read(self, key: str) -> None:
        """Read one node afresh (and watch it again)."""
        try:
            request = self.client.get_async(self.keeper.znode(key), watch=self._on_node)
            data, stat = self.keeper.wait(request)
        except NoNodeError:
            # The deletion's transaction is the parent's pzxid: read it for the index.
            _, listing = self.keeper.wait(
                self.client.get_children_async(self.keeper.data_path, include_data=True)
            )
            self._apply(key, None, known=False, index=listing.pzxid)
            return
        self._apply(key, self._parse(key, data), known=True, index=stat.mzxid)

    def _parse(self, key: str, data: bytes) -> CommitInfo | None:
        """The metadata of the commit in ``key``'s node (the commit itself goes to
        ``on_commit``); None for a node that is corrupt or holds an empty commit."""
        try:
            commit = decode_node(key, data)
        except CorruptCommitError as exc:
            shown = data[:256].decode("utf-8", "replace") + (" ..." if len(data) > 256 else "")
            log.error(
                "Leaving out corrupt node %s: %s; data = %r", self.keeper.znode(key), exc, shown
            )
            return None
        if commit.empty:
            log.warning("Leaving out node %s: it holds an empty commit", self.keeper.znode(key))
            return None
        if self.on_commit is not None:
            self.on_commit(commit)
        return commit.info()

    def _apply(self, key: str, commit: CommitInfo | None, known: bool, index: int = 0) -> None:
        with self._changed:
            if known:
                self._known.add(key)
            else:
                self._known.discard(key)
            self._index = max(self._index, index)
            if self._heads.get(key) == commit:
                return
            if commit is None:
                del self._heads[key]
            else:
                self._heads[key] = commit
            self._bump([(key, commit)])
        _log_changes([(key, commit)])

    @property
    def index(self) -> int:
        """The newest ZooKeeper transaction (zxid) the mirror has seen under its path: the same
        number on every server once their mirrors have caught up.

        One transaction can change several nodes (a change set), which the mirror reads one at a
        time; while it is still reading, the index is the one just before, so that a blocking
        list given it wakes once the rest is in: it may see a list twice, it never misses one.
        """
        return self._index - 1 if self._busy and self._index else self._index

    def _bump(self, changes: list[tuple[str, CommitInfo | None]]) -> None:
        # Called holding the lock, in the same step as the change: a reader that reads the
        # generation before the heads can never file old heads under a new generation.
        if changes:
            self._generation += 1
            self._changed.notify_all()
            if self.on_change is not None:
                self.on_change(changes, self._index)


def _log_changes(changes: list[tuple[str, CommitInfo | None]]) -> None:
    for key, info in changes:
        if info is None:
            log.debug("Mirror: %r removed", key)
        else:
            log.debug("Mirror: %r at version %d", key, info.version)
