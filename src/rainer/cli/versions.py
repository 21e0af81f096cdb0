"""Finding the commit to start from, the version to post next, and explaining a conflict."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rainer.client import RainerClient, RainerCommit
from rainer.errors import CommitOrderingError, NotFoundError, RainerError


def starting_point(
    client: RainerClient, key: str, version: int | None
) -> tuple[RainerCommit | None, int]:
    """The commit to start editing from (None for a key with no commits yet) and the key's
    head version, to post head + 1. A missing ``version`` of an existing key is an error."""
    try:
        base = client.get_commit(key, version)
    except NotFoundError:
        if version is not None:
            raise NotFoundError(f"{key!r} has no version {version}") from None
        return None, 0
    if version is None:
        return base, base.version
    return base, int(client.get_metadata(key)["version"])


def describe(meta: Mapping[str, Any] | RainerCommit) -> str:
    """``version 7 by bob at 2024-...Z ("comment")``."""
    if isinstance(meta, RainerCommit):
        meta = meta.meta
    text = f"version {meta['version']} by {meta['author']} at {meta['mtime']}"
    if meta.get("empty"):
        text += " (uncommitted)"
    return text + (f' ("{meta["comment"]}")' if meta.get("comment") else "")


def explain_conflict(client: RainerClient, error: CommitOrderingError) -> str:
    """Who committed in between, in one line: what a person needs to decide how to retry."""
    key, expected, provided = error.key, error.expected_version, error.provided_version
    head = expected - 1
    if provided > expected:
        if head == 0:
            return f"{key!r} has no commits yet, so the first version must be 1, not {provided}"
        return f"{key!r} is at version {head}; version {provided} would skip ahead"
    between = expected - provided
    try:
        newer = client.history(key, limit=min(between, 3))
    except RainerError:
        newer = []
    if provided == 1:
        what, label = f"{key!r} already exists, at version {head}", "newest"
    else:
        what, label = f"{key!r} is at version {head}, not {provided - 1}", "committed since"
    if not newer:
        return what
    more = f" and {between - len(newer)} more" if between > len(newer) else ""
    return f"{what}: {label}: " + "; ".join(describe(c) for c in newer) + more
