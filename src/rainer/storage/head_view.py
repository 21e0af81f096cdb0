"""A head view: where a server reads the newest commit of each key without asking the database.

Two kinds exist, and a server picks one when it is built: ``cached.HeadCache`` for a storage only
this process writes (SQLite), updated after every durable save, and ``rainer.keeper.mirror.Mirror``
for a cluster, fed by ZooKeeper's watches. Both hold metadata only (``CommitInfo``), so their size
follows the number of keys, not the bytes of the payloads; payloads are fetched by (key, version),
which never changes once written, and cached by the server within its memory budget.
"""

from __future__ import annotations

from collections.abc import Callable

from rainer.commit import Commit, CommitInfo


class HeadView:
    """The metadata of every key's newest commit, kept current; reads are dictionary lookups,
    cheap enough for an event loop."""

    #: True for a ZooKeeper mirror: answers drawn from it say ``X-Rainer-Cached: Yes``.
    cached: bool = False
    #: True when the view holds every key, tombstones included, so a key it lacks has no commits.
    #: A mirror holds only what ZooKeeper holds: the database answers for the rest.
    complete: bool = False
    #: Called with every whole commit the view comes across (a save, a node read), so that the
    #: server can keep its payload within its memory budget.
    on_commit: Callable[[Commit], object] | None = None
    #: Called after every change with the changed keys (and their new head, or None when the
    #: view no longer holds the key) and the view's new index: how watchers are woken. It is
    #: called from the view's own thread, holding its lock: it must only hand the news on.
    on_change: Callable[[list[tuple[str, CommitInfo | None]], int], object] | None = None

    @property
    def generation(self) -> int:
        """A number that grows with every change, so callers can keep what they derive."""
        raise NotImplementedError

    @property
    def index(self) -> int:
        """A number that grows with every commit the view learns of (``X-Rainer-Index``): for a
        head cache, the journal's commit count; for a mirror, ZooKeeper's transaction id, the
        same on every server of a cluster."""
        raise NotImplementedError

    def info(self, key: str) -> CommitInfo | None:
        """The newest commit of ``key`` as the view knows it, or None.

        Raises CorruptCommitError when the head is known to exist but cannot be read.
        """
        raise NotImplementedError

    def infos(self, include_empty: bool = False) -> dict[str, CommitInfo]:
        """A consistent copy of every head the view holds (tombstones with ``include_empty``)."""
        raise NotImplementedError
