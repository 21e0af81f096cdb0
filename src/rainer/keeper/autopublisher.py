"""The auto-publisher: heals ZooKeeper from the database, on one elected leader.

Publishing after each save can fail (ZooKeeper down, a server killed between its database commit
and its publish). So every server runs an auto-publisher; they elect one leader under
``<path>/election`` with kazoo's election recipe, and the leader republishes every database head
each period (90 s by default, each wait drawn within ±20% so that a restarted cluster does not
publish in lockstep), as the original did. Republishing is cheap and harmless: the keeper's save
rules leave a node alone when it already holds the commit, and never move it back.

Differences from the original, on purpose: the leader publishes once right after it is elected
(so ZooKeeper is healed as soon as it is back, not a period later), and it gives up leadership as
soon as its connection is suspended or its session lost, so that it never acts on a lock it may
no longer hold; it stands again once reconnected.

With credentials, a new leader also gives the servers' ACL to every key node that has other
ACLs (``Keeper.secure_keys``), once per leadership: nodes published before ACLs were turned on
are protected within moments of the first protected server leading, with no step for the
operator, and only the leader pays a read of every node's ACL.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import NoAuthError

from rainer import defaults
from rainer.commit import Commit
from rainer.keeper.keeper import ConcurrentCommitError, Keeper
from rainer.storage.base import Storage

log = logging.getLogger(__name__)

_RETRY_SECONDS = 1.0


def fuzzed(period: float, fuzz: float, rng: random.Random | None = None) -> float:
    """``period`` times a uniform factor in [1 - fuzz, 1 + fuzz]."""
    return period * (1.0 + (rng or random).uniform(-fuzz, fuzz))


class AutoPublisher:
    """Stands for election under the keeper's election path; while leading, publishes every
    head of ``storage`` (the database, not a publishing wrapper) each fuzzed period."""

    def __init__(
        self,
        keeper: Keeper,
        storage: Storage,
        period: float = defaults.PUBLISH_PERIOD,
        fuzz: float = defaults.PUBLISH_FUZZ,
        identifier: str | None = None,
    ) -> None:
        if period <= 0 or not 0 <= fuzz < 1:
            raise ValueError("the period must be positive and the fuzz in [0, 1)")
        self.keeper = keeper
        self.client: KazooClient = keeper.client
        self.storage = storage
        self.period = period
        self.fuzz = fuzz
        self.identifier = identifier or f"{socket.gethostname()}:{os.getpid()}"
        self.election = self.client.Election(keeper.election_path, self.identifier)
        self._closed = threading.Event()
        self._step_down = threading.Event()
        self._leading = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rainer-autopublisher", daemon=True)

    @property
    def is_leader(self) -> bool:
        """True while this publisher leads."""
        return self._leading.is_set()

    def start(self) -> None:
        self.client.add_listener(self._on_state)
        self._thread.start()

    def stop(self, wait: float = 10.0) -> None:
        """Give up leadership (or candidacy) and stop, waiting up to ``wait`` seconds for the
        thread; another server takes over. Releasing the election lock needs ZooKeeper: when it
        is gone the thread ends once the client stops (closing the session frees the lock)."""
        if not self._closed.is_set():
            self._closed.set()
            self._step_down.set()
            self.election.cancel()
            self.client.remove_listener(self._on_state)
        if self._thread.is_alive():
            self._thread.join(wait)

    def _on_state(self, state: str) -> None:
        # kazoo's thread: only flag. SUSPENDED may end in a lost session, and a leader must not
        # publish on a lock it may no longer hold.
        if state != KazooState.CONNECTED:
            self._step_down.set()

    def _run(self) -> None:
        while not self._closed.is_set():
            if not self.client.connected:
                self._closed.wait(0.1)
                continue
            self._step_down.clear()
            if self._closed.is_set():  # stop() sets _closed first, then _step_down
                break
            try:
                self.election.run(self._lead)
            except Exception as exc:  # lost connection while standing or stepping down
                log.warning("Auto-publisher election interrupted: %s", exc)
                self._closed.wait(_RETRY_SECONDS)
            finally:
                self._leading.clear()
            # The election recipe cancels itself only once; make it usable for the next run.
            if not self._closed.is_set():
                self.election = self.client.Election(self.keeper.election_path, self.identifier)

    def _lead(self) -> None:
        if self._closed.is_set() or not self.client.connected:
            return
        # A suspension that ended before we got the lock is no reason to step down; one that
        # cost us the session is caught by the ownership check below.
        self._step_down.clear()
        if self._closed.is_set():  # stop() sets _closed first, then _step_down: never lost
            return
        self._leading.set()
        log.info(
            "Leading the auto-publishers under %s: every %.1f s ± %d%%",
            self.keeper.election_path,
            self.period,
            round(self.fuzz * 100),
        )
        secured = self.keeper.acl is None
        while not self._step_down.is_set():
            if not self._holds_lock():
                log.warning("The election lock is no longer ours (session lost?)")
                break
            if not secured:
                try:
                    self.keeper.secure_keys()
                    secured = True
                except Exception as exc:
                    log.warning(
                        "Setting the ACLs of key nodes failed; next try in one period: %s", exc
                    )
            try:
                self.publish_all()
            except Exception as exc:
                log.warning("Auto-publishing failed; next try in one period: %s", exc)
            if self._step_down.wait(fuzzed(self.period, self.fuzz)):
                break
        # Not leading from here on, although handing the lock back may wait for ZooKeeper.
        self._leading.clear()
        log.info("Stepping down as auto-publisher leader")

    def _is_newest(self, commit: Commit) -> bool:
        # The heads were read at the start of the round; a key may have been deleted since.
        return self.storage.head_version(commit.key) == commit.version

    def _holds_lock(self) -> bool:
        """True when our lock node exists and belongs to our current session: a lock won on a
        session that has since expired is not leadership."""
        lock = self.election.lock
        node = lock.node
        if node is None:
            return False
        try:
            stat = self.keeper.wait(self.client.exists_async(f"{lock.path}/{node}"))
        except Exception:
            return False
        return stat is not None and stat.ephemeralOwner == self.client.client_id[0]

    def publish_all(self) -> int:
        """Publish every database head (empty ones delete their node); returns how many nodes
        changed. A key another server just moved on is skipped until the next round."""
        changed = refused = 0
        for commit in self.storage.iter_heads():
            if self._step_down.is_set():
                break
            try:
                outcome = self.keeper.save(commit, self._is_newest)
            except ConcurrentCommitError as exc:
                log.info("Auto-publisher skipped %s: %s", commit.key, exc)
                continue
            except NoAuthError:
                # One node shut to us must not keep every key after it from being healed.
                refused += 1
                continue
            if outcome not in ("unchanged", "absent"):
                changed += 1
        if changed:
            log.info("Auto-publisher healed %d node(s)", changed)
        if refused:
            log.warning(
                "ZooKeeper's ACLs under %s shut this server out of %d key node(s)",
                self.keeper.data_path,
                refused,
            )
        return changed
