"""Finding the commit to start from and the head to compare with, and explaining a conflict."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard

from rainer.client import RainerClient, RainerCommit
from rainer.errors import CommitOrderingError, NotFoundError, RainerError

#: Commits named in a conflict message, newest first, at most.
SHOWN_COMMITS = 3


def head_commit(client: RainerClient, key: str) -> RainerCommit | None:
    """The key's newest commit with its payload; None for a key never committed."""
    try:
        return client.get_commit(key)
    except NotFoundError:
        return None


def starting_point(
    client: RainerClient, key: str, version: int | None
) -> tuple[RainerCommit | None, RainerCommit | None]:
    """The commit to start editing from (``version``'s, else the newest) and the newest, to
    post its version + 1 and to compare with; both None for a key with no commits yet. A
    missing ``version`` is an error."""
    head = head_commit(client, key)
    if version is None or (head is not None and head.version == version):
        return head, head
    try:
        return client.get_commit(key, version), head
    except NotFoundError:
        raise NotFoundError(f"{key!r} has no version {version}") from None


def holds(head: RainerCommit | None, value: bytes | None) -> TypeGuard[RainerCommit]:
    """Whether there is a ``head`` and it carries ``value`` already (None: an empty commit, a
    tombstone). A type guard, so that the caller may use the head it found.

    The one rule of every writing command: a write that would only repeat the newest payload
    makes no new version (without --force), as the collection's module does.
    """
    return head is not None and head.value == value


def describe(meta: Mapping[str, Any] | RainerCommit) -> str:
    """``version 7 by bob at 2024-...Z ("comment")``."""
    if isinstance(meta, RainerCommit):
        meta = meta.meta
    text = f"version {meta['version']} by {meta['author']} at {meta['mtime']}"
    if meta.get("empty"):
        text += " (uncommitted)"
    return text + (f' ("{meta["comment"]}")' if meta.get("comment") else "")


def explain_conflict(
    client: RainerClient, error: CommitOrderingError, *, head_was_named: bool = False
) -> str:
    """Who committed in between, in one line: what a person needs to decide how to retry.

    It quotes only numbers the person typed or can see: the key's newest version, and the
    version they asked to create (a VERSION argument, or ``version:`` in a prepared commit);
    with ``head_was_named``, the version they named as the newest (``uncommit KEY VERSION``).
    """
    key, expected, provided = error.key, error.expected_version, error.provided_version
    head = expected - 1
    named = provided - 1
    if head_was_named:
        what = f"{key!r} is at version {head}, not {named}" if head else f"{key!r} has no commits"
        if named > head:
            return what
    elif provided > expected:
        if head == 0:
            return f"{key!r} has no commits yet, so the first version must be 1, not {provided}"
        return f"{key!r} is at version {head}; version {provided} would skip ahead"
    else:
        what = (
            f"{key!r} is at version {head}: version {provided} exists already; "
            f"the next is {expected}"
        )
    # The commits the person did not know of: from the version they meant to create up to the
    # newest.
    unseen = expected - provided
    try:
        newer = client.history(key, limit=min(unseen, SHOWN_COMMITS))
    except RainerError:
        newer = []
    if not newer:
        return what
    more = f" and {unseen - len(newer)} more" if unseen > len(newer) else ""
    return f"{what} (newest first: " + "; ".join(describe(c) for c in newer) + f"{more})"
