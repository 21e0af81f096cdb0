"""The keeper: the newest non-empty commit of every key, one ZooKeeper node per key.

Layout (the original Rainer's, so both can share a tree)::

    <path>/data/<key>     the key's newest non-empty commit, in the stored byte form
    <path>/election       where the auto-publishers elect their leader

ZooKeeper is not the journal: the database is. A node here is a notification and a fast copy of
the head, so publishing may fail or lag and the auto-publisher heals it later. What a publish must
never do is move a node back to an older version; the save rules below guarantee that even when
several servers publish the same key at once, by making every change conditional on the node's
ZooKeeper version (a compare-and-set).

With credentials (``--zk-auth``) the client creates every node with the servers' ACL (kazoo's
``default_acl``); ``secure_base`` gives the base nodes that ACL at start, and ``secure_keys``
gives it to key nodes made before ACLs were on (the elected auto-publisher runs it).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any, Literal

from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, NoAuthError, NodeExistsError, NoNodeError
from kazoo.interfaces import IAsyncResult
from kazoo.security import ACL, Permissions

from rainer import defaults
from rainer.commit import Commit
from rainer.errors import BadRequestError, CorruptCommitError, PayloadTooLargeError, RainerError
from rainer.keeper.security import ZooKeeperSecurityError, describe_acl, same_acl

log = logging.getLogger(__name__)


SaveOutcome = Literal["created", "updated", "deleted", "replaced-corrupt", "unchanged", "absent"]


#: How many times a publish reads the node again after another writer changed it in between.
_CAS_ATTEMPTS = 5


class _Raced(Exception):
    """A conditional write found the node changed since it was read."""


class ConcurrentCommitError(RainerError):
    """ZooKeeper already holds a newer commit (or a different one at the same version), or another
    writer changed the node between our read and our write. Nothing was changed."""


def zookeeper_name_problem(key: str) -> str | None:
    """Why ``key`` cannot name a ZooKeeper node, or None when it can.

    ZooKeeper checks paths as Java (UTF-16) strings and refuses control characters, the
    surrogate and private-use range U+D800-U+F8FF and U+FFF0-U+FFFF. A character beyond U+FFFF
    becomes a surrogate pair in Java, so it is refused too. ``validate_key`` already refuses
    '/', '.', '..' and C0/C1 controls.
    """
    for char in key:
        code = ord(char)
        if code <= 0x1F or 0x7F <= code <= 0x9F:
            return f"control character U+{code:04X}"
        if 0xD800 <= code <= 0xF8FF or 0xFFF0 <= code <= 0xFFFF or code > 0xFFFF:
            return f"character U+{code:04X}, which ZooKeeper does not allow in a node name"
    return None


def check_publishable(commit: Commit, max_node_bytes: int = defaults.ZK_MAX_NODE_BYTES) -> None:
    """Raise when ``commit`` could be journaled but never published: a key ZooKeeper cannot name
    (BadRequestError) or a stored form too large for a node (PayloadTooLargeError).

    The server calls this before storing, because a commit that can never reach ZooKeeper would
    leave every mirror in the cluster behind the database for good.
    """
    problem = zookeeper_name_problem(commit.key)
    if problem:
        raise BadRequestError(f"Invalid key for ZooKeeper: {problem}")
    if commit.payload is not None:
        size = len(commit.encode())
        if size > max_node_bytes:
            raise PayloadTooLargeError(
                f"Payload too large for ZooKeeper: the stored commit would be {size} bytes, "
                f"more than {max_node_bytes}"
            )


def decode_node(key: str, data: bytes) -> Commit:
    """The commit stored in the node for ``key``; CorruptCommitError when the bytes do not parse
    or name another key (a node is only trusted for the key it is named after)."""
    commit = Commit.decode(data)
    if commit.key != key:
        raise CorruptCommitError(f"node {key!r} holds a commit for key {commit.key!r}")
    return commit


class Keeper:
    """Reads and writes the commits under ``<path>/data`` through one kazoo client.

    Thread-safe as far as kazoo is: every method is a few independent requests, each waited for
    at most ``timeout`` seconds (then kazoo's KazooTimeoutError). A request that timed out may
    still reach ZooKeeper later; every change is conditional (create-if-absent, or on the node's
    version), so a late one cannot overwrite a newer commit.
    """

    def __init__(
        self, client: KazooClient, path: str, timeout: float = defaults.ZK_REQUEST_TIMEOUT
    ) -> None:
        path = "/" + path.strip("/")
        self.client = client
        self.timeout = timeout
        self.path = path
        self.data_path = path.rstrip("/") + "/data"
        self.election_path = path.rstrip("/") + "/election"

    @property
    def acl(self) -> list[ACL] | None:
        """The ACL of every node this keeper's client creates (its ``default_acl``); None when
        nodes are created open to everyone, as the original's were."""
        acl: list[ACL] | None = self.client.default_acl
        return acl

    @property
    def base_paths(self) -> tuple[str, str, str]:
        """The nodes every server needs: the base path, its data and its election."""
        return (self.path, self.data_path, self.election_path)

    def znode(self, key: str) -> str:
        """The node holding ``key``'s commit."""
        return f"{self.data_path}/{key}"

    def wait(self, result: IAsyncResult) -> Any:
        """The value of a kazoo asynchronous request, waiting at most ``timeout`` seconds."""
        return result.get(timeout=self.timeout)

    # -- reads -----------------------------------------------------------------------------

    def get(self, key: str) -> Commit | None:
        """The commit in ``key``'s node; None when there is no node.

        Raises CorruptCommitError when the node exists but does not hold a commit for ``key``.
        """
        try:
            data, _stat = self.wait(self.client.get_async(self.znode(key)))
        except NoNodeError:
            return None
        return decode_node(key, data)

    def keys(self) -> list[str]:
        """Every key with a node, sorted; corrupt nodes included."""
        try:
            return sorted(self.wait(self.client.get_children_async(self.data_path)))
        except NoNodeError:
            return []

    # -- the save rules --------------------------------------------------------------------

    def save(
        self, commit: Commit, still_newest: Callable[[Commit], bool] | None = None
    ) -> SaveOutcome:
        """Publish ``commit`` under the original's rules, and say what was done:

        - no node: create it for a non-empty commit (``created``); nothing for an empty one
          (``absent``);
        - a node that does not parse: replace it, or delete it for an empty commit
          (``replaced-corrupt``);
        - the same commit already there: nothing (``unchanged``);
        - a strictly newer commit: replace the node, or delete it when the commit is empty
          (``updated`` / ``deleted``);
        - anything else (older, or the same version with other contents): ConcurrentCommitError.

        Every change is conditional on the ZooKeeper version read first. When another writer
        changed the node in between, the node is read again and the rules applied again (a few
        times), so the newer of the two commits always ends up in the node. Other ZooKeeper
        errors (connection loss, ...) propagate as kazoo raises them.

        A missing node cannot say which version deleted it, so a late publish of an old commit
        could bring a deleted key back. ``still_newest(commit)``, when given, is asked before a
        node is created and again right after (the database knows): a commit that turns out
        to have been overtaken while its node was being created takes the node back, and
        either way False makes this raise ConcurrentCommitError.
        """
        path = self.znode(commit.key)
        for _ in range(_CAS_ATTEMPTS):
            try:
                return self._save_once(path, commit, still_newest)
            except _Raced:
                continue  # the node changed between our read and our write: read it again
        raise ConcurrentCommitError(
            f"Gave up publishing version {commit.version} to {path}: it kept changing under us"
        )

    def _save_once(
        self, path: str, commit: Commit, still_newest: Callable[[Commit], bool] | None
    ) -> SaveOutcome:
        try:
            data, stat = self.wait(self.client.get_async(path))
        except NoNodeError:
            data, stat = None, None
        try:
            if data is None or stat is None:
                if commit.empty:
                    log.debug("No node to delete for empty commit %r", commit)
                    return "absent"
                if still_newest is not None and not still_newest(commit):
                    raise ConcurrentCommitError(
                        f"Not creating {path} at version {commit.version}: the database holds "
                        "a newer commit of the key"
                    )
                log.info("Creating %s at version %d", path, commit.version)
                self.wait(self.client.create_async(path, commit.encode(), makepath=True))
                if still_newest is not None and not still_newest(commit):
                    # A newer commit (a tombstone, say) was saved and published between our
                    # check and our create: take the node back unless it moved on already.
                    with contextlib.suppress(BadVersionError, NoNodeError):
                        self.wait(self.client.delete_async(path, version=0))
                    raise ConcurrentCommitError(
                        f"Took back {path} at version {commit.version}: the database got a "
                        "newer commit of the key while it was created"
                    )
                return "created"
            try:
                current = decode_node(commit.key, data)
            except CorruptCommitError as exc:
                log.warning(
                    "Replacing corrupt node %s with version %d: %s", path, commit.version, exc
                )
                self._replace(path, commit, stat.version)
                return "replaced-corrupt"
            if commit == current:
                log.debug("No change to %s (version %d)", path, commit.version)
                return "unchanged"
            if commit.version > current.version:
                log.info("Moving %s from version %d to %d", path, current.version, commit.version)
                self._replace(path, commit, stat.version)
                return "deleted" if commit.empty else "updated"
            raise ConcurrentCommitError(
                f"Refusing to move {path} from version {current.version} to {commit.version}"
                + (
                    " (same version, different contents)"
                    if commit.version == current.version
                    else ""
                )
            )
        except (BadVersionError, NodeExistsError, NoNodeError) as exc:
            raise _Raced from exc

    def save_all(
        self, commits: list[Commit], still_newest: Callable[[Commit], bool] | None = None
    ) -> list[SaveOutcome | None]:
        """Publish several commits (of distinct keys) in one ZooKeeper transaction, under the
        rules of ``save``: the tree never shows some of them without the others. Returns each
        commit's outcome, or None for one that is not published (ZooKeeper already holds a
        newer commit of its key, or the database does); raises ConcurrentCommitError when the
        nodes kept changing under us, and ZooKeeper's own errors as kazoo raises them.
        """
        self.wait(self.client.ensure_path_async(self.data_path))
        for _ in range(_CAS_ATTEMPTS):
            paths = [self.znode(commit.key) for commit in commits]
            reads = [self.client.get_async(path) for path in paths]
            transaction = self.client.transaction()
            outcomes: list[SaveOutcome | None] = []
            created: list[tuple[str, Commit]] = []
            for commit, path, read in zip(commits, paths, reads, strict=True):
                try:
                    data, stat = self.wait(read)
                except NoNodeError:
                    data, stat = None, None
                outcomes.append(self._plan(transaction, path, commit, data, stat, still_newest))
                if outcomes[-1] == "created":
                    created.append((path, commit))
            if not transaction.operations:
                return outcomes
            results = self.wait(transaction.commit_async())
            if any(isinstance(result, Exception) for result in results):
                continue  # a node changed between our reads and the transaction: read again
            for path, commit in created:
                if still_newest is not None and not still_newest(commit):
                    with contextlib.suppress(BadVersionError, NoNodeError):
                        self.wait(self.client.delete_async(path, version=0))
            return outcomes
        raise ConcurrentCommitError(
            f"Gave up publishing a change set of {len(commits)} keys: its nodes kept changing"
        )

    def _plan(
        self,
        transaction: Any,
        path: str,
        commit: Commit,
        data: bytes | None,
        stat: Any,
        still_newest: Callable[[Commit], bool] | None,
    ) -> SaveOutcome | None:
        """Add to ``transaction`` what ``save``'s rules do for ``commit``; its outcome."""
        if data is None or stat is None:
            if commit.empty:
                return "absent"
            if still_newest is not None and not still_newest(commit):
                return None
            transaction.create(path, commit.encode())
            return "created"
        try:
            current = decode_node(commit.key, data)
        except CorruptCommitError:
            current = None
        if current is not None and commit == current:
            return "unchanged"
        if current is not None and commit.version <= current.version:
            return None
        if commit.empty:
            transaction.delete(path, version=stat.version)
        else:
            transaction.set_data(path, commit.encode(), version=stat.version)
        if current is None:
            return "replaced-corrupt"
        return "deleted" if commit.empty else "updated"

    def _replace(self, path: str, commit: Commit, expected_version: int) -> None:
        if commit.empty:
            self.wait(self.client.delete_async(path, version=expected_version))
        else:
            self.wait(self.client.set_async(path, commit.encode(), version=expected_version))

    # -- ACLs ------------------------------------------------------------------------------

    def secure_base(self, who: str) -> list[str]:
        """Make the base nodes exist and carry ``acl`` (a server with credentials calls this at
        start); return the paths whose ACLs were changed.

        A node with other ACLs — made before ACLs were on, or under another ``--zk-acl-read``
        — gets ours: the servers' options say what the tree's ACLs are. ZooKeeper lets only an
        identity with ADMIN on a node change its ACLs, so a wrong password (``who`` names the
        credentials, for the message) ends here with ZooKeeperSecurityError.
        """
        acl = self.acl
        if acl is None:
            raise ValueError("secure_base needs a client with a default ACL")
        changed: list[str] = []
        for path in self.base_paths:
            for _ in range(_CAS_ATTEMPTS):
                current: list[ACL] | None = None
                try:
                    self.wait(self.client.ensure_path_async(path))
                    current, stat = self.wait(self.client.get_acls_async(path))
                    if not same_acl(current, acl):
                        self.wait(self.client.set_acls_async(path, acl, version=stat.aversion))
                        log.info("Set the ACLs of %s to %s", path, describe_acl(acl))
                        changed.append(path)
                except BadVersionError:
                    continue  # another server changed them between our read and our write
                except NoAuthError:
                    shown = f" (they allow {describe_acl(current)})" if current else ""
                    raise ZooKeeperSecurityError(
                        f"ZooKeeper does not let {who} set up {path}{shown}: a wrong password, "
                        "or a tree protected under other credentials"
                    ) from None
                break
        return changed

    def check_open(self) -> None:
        """Without credentials: raise ZooKeeperSecurityError when the tree's ACLs keep
        unauthenticated clients from creating and deleting key nodes or election nodes, so a
        server missing its ``--zk-auth`` refuses to start instead of never publishing.

        ACLs naming schemes other than ``world`` and ``digest`` (``ip``, ``x509``, ``sasl``)
        may well grant this client, which this cannot tell: they are given the benefit of the
        doubt.
        """
        needed = Permissions.CREATE | Permissions.DELETE
        for path in (self.data_path, self.election_path):
            target, acl = path, self._acl_or_none(path)
            if acl is None:  # missing: it will be created under the base node
                target, acl = self.path, self._acl_or_none(self.path)
                needed_here = Permissions.CREATE
            else:
                needed_here = needed
            if acl is not None and not _anyone_may(acl, needed_here):
                raise ZooKeeperSecurityError(
                    f"ZooKeeper's ACLs on {target} ({describe_acl(acl)}) keep a server without "
                    "credentials from publishing: give the servers' credentials with "
                    "--zk-auth FILE (or RAINER_ZK_AUTH)"
                )

    def _acl_or_none(self, path: str) -> list[ACL] | None:
        try:
            acl, _stat = self.wait(self.client.get_acls_async(path))
        except NoNodeError:
            return None
        except NoAuthError:  # not even READ: the tree is closed to clients without credentials
            raise ZooKeeperSecurityError(
                f"ZooKeeper does not let a client without credentials read {path}: give the "
                "servers' credentials with --zk-auth FILE (or RAINER_ZK_AUTH)"
            ) from None
        return list(acl)

    def secure_keys(self) -> int:
        """Give ``acl`` to every key node that has other ACLs (made before ACLs were on);
        return how many were changed. A no-op without an ACL.

        Two round trips however many keys: every read goes out at once, then every change. A
        node that changed or went away meanwhile is left for the next leader's pass; one that
        ZooKeeper does not let us change is counted and logged, with the way to fix it.
        """
        acl = self.acl
        if acl is None:
            return 0
        reads = [(key, self.client.get_acls_async(self.znode(key))) for key in self.keys()]
        writes = []
        for key, result in reads:
            try:
                current, stat = self.wait(result)
            except NoNodeError:
                continue
            if not same_acl(current, acl):
                change = self.client.set_acls_async(self.znode(key), acl, version=stat.aversion)
                writes.append((key, change))
        changed = 0
        refused: list[str] = []
        for key, result in writes:
            try:
                self.wait(result)
            except (BadVersionError, NoNodeError):
                continue
            except NoAuthError:
                refused.append(key)
                continue
            changed += 1
        if changed:
            log.info("Set the ACLs of %d key node(s) under %s", changed, self.data_path)
        if refused:
            log.warning(
                "%d key node(s) under %s have ACLs this server may not change (first: %r); "
                "a ZooKeeper superuser can fix them with zkCli's setAcl",
                len(refused),
                self.data_path,
                refused[0],
            )
        return changed


def _anyone_may(acl: list[ACL], perms: int) -> bool:
    """Whether an unauthenticated client may do ``perms`` on a node with ``acl`` — or might:
    an entry of a scheme other than world and digest (ip, x509, ...) may name it."""
    for entry in acl:
        scheme = entry.id.scheme
        if scheme == "world" and entry.id.id == "anyone" and entry.perms & perms == perms:
            return True
        if scheme not in ("world", "digest"):
            return True
    return False
