"""Publishing storage: every commit goes to the database first, then to ZooKeeper.

The database is the journal and the only thing a 200 promises. Publishing is best effort: when
ZooKeeper is down or slow, the failure is logged and swallowed, and the leader's auto-publisher
republishes every head within one period. The order matters: a node is only ever written for a
commit that is already durable, so ZooKeeper never announces a commit that could be lost.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from kazoo.exceptions import NoAuthError

from rainer.commit import Commit
from rainer.keeper.keeper import ConcurrentCommitError, Keeper
from rainer.keeper.mirror import Mirror
from rainer.storage.base import Storage
from rainer.storage.wrapper import StorageWrapper

log = logging.getLogger(__name__)


class PublishingStorage(StorageWrapper):
    """A storage that publishes each saved commit to ``keeper`` after ``delegate`` saved it.

    With a ``mirror`` of the same tree, a save also waits (at most ``mirror_wait`` seconds)
    until that mirror shows what was published, so a client that reads a key back from this
    server right after its 200 sees its own commit. The wait only observes: it never writes into
    the mirror, which therefore still only ever moves forward.

    ``single_writer`` is False on purpose: with ZooKeeper on, the mirror is the head view, so
    the server does not keep a second copy of the heads (``HeadCache``).
    """

    single_writer = False

    def __init__(
        self,
        delegate: Storage,
        keeper: Keeper,
        mirror: Mirror | None = None,
        mirror_wait: float = 1.0,
    ) -> None:
        super().__init__(delegate)
        self.keeper = keeper
        self.mirror = mirror
        self.mirror_wait = mirror_wait
        self._warned_disconnected = False  # one warning per outage, not one per commit

    def after_save(self, saved: list[Commit]) -> None:
        published = self.publish(saved)
        if published and self.mirror is not None:
            self._wait_for_mirror(published)

    def after_changeset(self, saved: list[Commit]) -> None:
        """A change set goes to ZooKeeper in one transaction: the tree never holds half of it.
        Never raises: a failure is logged, and the auto-publisher publishes the keys later
        (one by one, so for that while the tree may show part of the set)."""
        if not self.keeper.client.connected:
            self._disconnected(saved)
            return
        try:
            outcomes = self.keeper.save_all(saved, self.is_newest)
        except ConcurrentCommitError as exc:
            log.info("Not publishing a change set of %d keys: %s", len(saved), exc)
            return
        except Exception as exc:  # connection loss, timeout, ...: the commits are journaled
            log.warning(
                "Failed to publish a change set of %d keys (the auto-publisher will): %s: %s",
                len(saved),
                type(exc).__name__,
                exc,
            )
            return
        published = [c for c, outcome in zip(saved, outcomes, strict=True) if outcome]
        if published and self.mirror is not None:
            self._wait_for_mirror(published)

    def publish(self, commits: Sequence[Commit]) -> list[Commit]:
        """Publish ``commits`` (already durable), in order; return the ones now in ZooKeeper.

        Never raises: every failure is logged, and healed later by the auto-publisher.
        """
        if not commits:
            return []
        done: list[Commit] = []
        for index, commit in enumerate(commits):
            if not self.keeper.client.connected:
                # Queuing requests on a client that is reconnecting would hold up every commit
                # behind this batch; the auto-publisher publishes these once it is back.
                self._disconnected(commits[index:])
                break
            try:
                self.keeper.save(commit, self.is_newest)
            except ConcurrentCommitError as exc:
                # Another server published this key meanwhile; its version wins or is newer.
                log.info("Not publishing %r: %s", commit, exc)
            except NoAuthError:
                # This key's node has ACLs that shut this server out (set by hand, or under
                # other credentials): a matter for the operator, not for the other keys.
                log.warning(
                    "ZooKeeper's ACLs on %s do not let this server publish %r",
                    self.keeper.znode(commit.key),
                    commit,
                )
            except Exception as exc:  # connection loss, timeout, ...: the commit is journaled
                log.warning(
                    "Failed to publish %r (the auto-publisher will): %s: %s",
                    commit,
                    type(exc).__name__,
                    exc,
                )
                self._disconnected(commits[index + 1 :])
                break
            else:
                done.append(commit)
        else:
            self._warned_disconnected = False
        return done

    def _disconnected(self, left: Sequence[Commit]) -> None:
        if not left:
            return
        level = logging.DEBUG if self._warned_disconnected else logging.WARNING
        log.log(
            level,
            "ZooKeeper is not answering: %d commit(s) are journaled but not published until it "
            "is back; then the auto-publisher publishes them (first: %r)",
            len(left),
            left[0],
        )
        self._warned_disconnected = True

    def is_newest(self, commit: Commit) -> bool:
        """True when ``commit`` is still its key's newest in the database (asked by the keeper
        before it creates a node, so that a late publish cannot bring a deleted key back)."""
        return self.delegate.head_version(commit.key) == commit.version

    def _wait_for_mirror(self, published: Sequence[Commit]) -> None:
        newest: dict[str, Commit] = {}
        for commit in published:
            newest[commit.key] = commit
        mirror = self.mirror
        assert mirror is not None

        def caught_up(view: Mirror) -> bool:
            for key, commit in newest.items():
                head = view.info(key)
                if commit.empty:
                    if head is not None and head.version <= commit.version:
                        return False
                elif head is None or head.version < commit.version:
                    return False
            return True

        if not mirror.wait_for(caught_up, self.mirror_wait):
            log.warning("The mirror did not show %d published commit(s) in time", len(newest))
