"""Write commands: commit, commit-value, uncommit and revert.

Each prints one line of JSON on stdout, whatever happens short of an error: the new commit's
metadata with ``"changed": true``, or, when the newest version holds that payload already, the
newest version's metadata with ``"changed": false`` and no new version (``--force`` commits
anyway). What they show a person (a diff, a note) goes to stderr, so ``| jq`` always works.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any

from rainer.cli import common
from rainer.cli.common import EXIT_CONFLICT, CommandError, command
from rainer.cli.diffs import unified_diff
from rainer.cli.prepared import PreparedCommitError, parse
from rainer.cli.prompt import confirm
from rainer.cli.versions import explain_conflict, head_commit, holds
from rainer.client import RainerClient, RainerCommit, RainerForbiddenError
from rainer.errors import CommitOrderingError


def register(subparsers: common.Subparsers) -> None:
    parent = common.global_parent()

    parser = subparsers.add_parser(
        "commit", parents=[parent], help="commit a prepared commit read from stdin"
    )
    common.add_author_option(parser)
    add_force_option(parser)
    parser.add_argument(
        "key", metavar="KEY", help="the key to commit (the version is in the prepared commit)"
    )
    parser.set_defaults(handler=commit)

    parser = subparsers.add_parser(
        "commit-value", parents=[parent], help="commit the payload read from stdin"
    )
    common.add_author_option(parser)
    add_force_option(parser)
    parser.add_argument("key", metavar="KEY", help="the key to commit")
    parser.add_argument(
        "version",
        metavar="VERSION",
        type=common.version_number,
        nargs="?",
        help="the version to create (default: the newest plus one); a conflict if it exists",
    )
    parser.add_argument("-m", "--message", required=True, help="commit comment")
    parser.set_defaults(handler=commit_value)

    parser = subparsers.add_parser(
        "uncommit", parents=[parent], help="commit an empty version (a tombstone)"
    )
    common.add_author_option(parser)
    add_force_option(parser)
    parser.add_argument("key", metavar="KEY", help="the key to uncommit")
    parser.add_argument(
        "version",
        metavar="VERSION",
        type=common.version_number,
        nargs="?",
        help="the version you expect to be the newest; a conflict if it is not",
    )
    parser.add_argument("-y", "--yes", action="store_true", help="do not ask")
    parser.add_argument("-m", "--message", default="", help="commit comment")
    parser.set_defaults(handler=uncommit)

    parser = subparsers.add_parser(
        "revert", parents=[parent], help="commit an old version's payload as the next version"
    )
    common.add_author_option(parser)
    add_force_option(parser)
    parser.add_argument("key", metavar="KEY", help="the key to revert")
    parser.add_argument(
        "version", metavar="VERSION", type=common.version_number, help="the version to go back to"
    )
    parser.add_argument("-m", "--message", help="comment (default: 'Revert to version N')")
    parser.set_defaults(handler=revert)


def add_force_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--force",
        action="store_true",
        help="commit a new version even when the newest holds this payload already "
        '(by default nothing is written, and the newest is printed with "changed": false)',
    )


def print_outcome(meta: Mapping[str, Any], changed: bool) -> None:
    """A writing command's one line of JSON: the metadata of the commit that holds the payload
    now (new, or the newest when nothing needed writing), and whether this run wrote it."""
    common.print_json({**meta, "changed": changed})


def conflict_error(
    client: RainerClient, error: CommitOrderingError, *, head_was_named: bool = False
) -> CommandError:
    """A conflict as the command's error (exit 3), naming who committed in between."""
    return CommandError(
        f"{explain_conflict(client, error, head_was_named=head_was_named)}. Nothing was "
        f"committed; look with 'rainer log {error.key}' and try again.",
        EXIT_CONFLICT,
    )


def post(
    client: RainerClient,
    metadata: Mapping[str, Any],
    value: bytes | None,
    *,
    head_was_named: bool = False,
) -> dict[str, Any]:
    """Post; a conflict becomes an error naming who committed in between (exit 3)."""
    try:
        return client.post_commit(metadata, value)
    except CommitOrderingError as exc:
        raise conflict_error(client, exc, head_was_named=head_was_named) from None


def head_to_compare(client: RainerClient, key: str, version: int | None) -> RainerCommit | None:
    """The key's newest commit, to compare a payload with; None for a key never committed.

    Also None when the version to create is known and the credentials may write the key but not
    read it (a secret's rotator): such a commit goes ahead unchecked, as it always could.
    """
    try:
        return head_commit(client, key)
    except RainerForbiddenError:
        if version is None:
            raise
        return None


@command
def commit(args: argparse.Namespace) -> int:
    client = common.client_from(args)
    try:
        prepared = parse(sys.stdin.buffer.read(), args.key, common.author_from(args, client))
    except PreparedCommitError as exc:
        raise CommandError(f"stdin is not a prepared commit: {exc}") from None
    value = None if prepared.empty else prepared.payload
    head = head_to_compare(client, args.key, prepared.version)
    if holds(head, value) and not args.force:
        print_outcome(head.meta, changed=False)
    else:
        print_outcome(post(client, prepared.metadata(args.key), value), changed=True)
    return common.EXIT_OK


@command
def commit_value(args: argparse.Namespace) -> int:
    client = common.client_from(args)
    payload = sys.stdin.buffer.read()
    head = head_to_compare(client, args.key, args.version)
    if holds(head, payload) and not args.force:
        # Whatever VERSION says, as the collection's module does: a re-run of a commit that
        # landed finds its payload on top and stays green.
        print_outcome(head.meta, changed=False)
        return common.EXIT_OK
    metadata = {
        "key": args.key,
        "version": args.version or (head.version if head is not None else 0) + 1,
        "author": common.author_from(args, client),
        "comment": args.message,
    }
    print_outcome(post(client, metadata, payload), changed=True)
    return common.EXIT_OK


@command
def uncommit(args: argparse.Namespace) -> int:
    client = common.client_from(args)
    head = client.get_commit(args.key)
    if holds(head, None) and not args.force:
        print_outcome(head.meta, changed=False)
        return common.EXIT_OK
    if args.version is not None and args.version != head.version:
        # Told before asking: the answer could not be used.
        stale = CommitOrderingError(args.key, head.version + 1, args.version + 1)
        raise conflict_error(client, stale, head_was_named=True)
    if not args.yes:
        sys.stderr.write(
            unified_diff(
                head.value,
                None,
                f"{args.key} (current)",
                f"{args.key} (new)",
                common.use_color(args, sys.stderr),
            )
        )
        confirm(f"Uncommit {client.commit_uri(args.key)} (yes/no)? ")
    metadata = {
        "key": args.key,
        "version": head.version + 1,
        "author": common.author_from(args, client),
        "comment": args.message,
        "empty": True,
    }
    print_outcome(
        post(client, metadata, None, head_was_named=args.version is not None), changed=True
    )
    return common.EXIT_OK


@command
def revert(args: argparse.Namespace) -> int:
    client = common.client_from(args)
    target = client.get_commit(args.key, args.version)
    head = client.get_commit(args.key)
    if holds(head, target.value) and not args.force:
        print_outcome(head.meta, changed=False)
        return common.EXIT_OK
    metadata = {
        "key": args.key,
        "version": head.version + 1,
        "author": common.author_from(args, client),
        "comment": args.message
        if args.message is not None
        else f"Revert to version {args.version}",
        "empty": target.empty,
    }
    print_outcome(post(client, metadata, target.value), changed=True)
    return common.EXIT_OK
