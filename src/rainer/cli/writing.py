"""Write commands: commit, commit-value, uncommit and revert. Each posts head + 1 (or the
version it is given) and prints the new commit's metadata as one line of JSON."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any

from rainer.cli import common
from rainer.cli.common import EXIT_CONFLICT, CommandError, command
from rainer.cli.diffs import unified_diff
from rainer.cli.prepared import PreparedCommitError, parse
from rainer.cli.prompt import ask_yes_no
from rainer.cli.versions import describe, explain_conflict
from rainer.client import RainerClient
from rainer.errors import CommitOrderingError, NotFoundError


def register(subparsers: common.Subparsers) -> None:
    parent = common.global_parent()

    parser = subparsers.add_parser(
        "commit", parents=[parent], help="commit a prepared commit read from stdin"
    )
    common.add_author_option(parser)
    parser.add_argument("key")
    parser.set_defaults(handler=commit)

    parser = subparsers.add_parser(
        "commit-value", parents=[parent], help="commit the payload read from stdin"
    )
    common.add_author_option(parser)
    parser.add_argument("key")
    parser.add_argument(
        "version", type=common.version_number, nargs="?", help="default: the newest plus one"
    )
    parser.add_argument("-m", "--message", required=True, help="commit comment")
    parser.set_defaults(handler=commit_value)

    parser = subparsers.add_parser(
        "uncommit", parents=[parent], help="commit an empty version (a tombstone)"
    )
    common.add_author_option(parser)
    parser.add_argument("key")
    parser.add_argument(
        "version", type=common.version_number, nargs="?", help="expect this to be the newest"
    )
    parser.add_argument("-y", "--yes", action="store_true", help="do not ask")
    parser.add_argument("-m", "--message", default="", help="commit comment")
    parser.set_defaults(handler=uncommit)

    parser = subparsers.add_parser(
        "revert", parents=[parent], help="commit an old version's payload as the next version"
    )
    common.add_author_option(parser)
    parser.add_argument("key")
    parser.add_argument("version", type=common.version_number)
    parser.add_argument("-m", "--message", help="comment (default: 'Revert to version N')")
    parser.set_defaults(handler=revert)


def post(client: RainerClient, metadata: Mapping[str, Any], value: bytes | None) -> dict[str, Any]:
    """Post; a conflict becomes an error naming who committed in between (exit 3)."""
    try:
        return client.post_commit(metadata, value)
    except CommitOrderingError as exc:
        raise CommandError(
            f"{explain_conflict(client, exc)}. Nothing was committed; "
            f"look with 'rainer log {metadata['key']}' and try again.",
            EXIT_CONFLICT,
        ) from None


def head_version(client: RainerClient, key: str) -> int:
    """The key's newest version, 0 when it has none."""
    try:
        return int(client.get_metadata(key)["version"])
    except NotFoundError:
        return 0


@command
def commit(args: argparse.Namespace) -> int:
    client = common.client_from(args)
    try:
        prepared = parse(sys.stdin.buffer.read(), args.key, common.author_from(args, client))
    except PreparedCommitError as exc:
        raise CommandError(f"stdin is not a prepared commit: {exc}") from None
    common.print_json(post(client, prepared.metadata(args.key), prepared.payload))
    return common.EXIT_OK


@command
def commit_value(args: argparse.Namespace) -> int:
    client = common.client_from(args)
    payload = sys.stdin.buffer.read()
    version = args.version or head_version(client, args.key) + 1
    metadata = {
        "key": args.key,
        "version": version,
        "author": common.author_from(args, client),
        "comment": args.message,
    }
    common.print_json(post(client, metadata, payload))
    return common.EXIT_OK


@command
def uncommit(args: argparse.Namespace) -> int:
    client = common.client_from(args)
    current = client.get_commit(args.key, args.version)
    if current.empty:
        print(f"{args.key}: {describe(current)} is already empty; nothing to uncommit.")
        return common.EXIT_OK
    if not args.yes:
        color = common.use_color(args)
        sys.stdout.write(
            unified_diff(current.value, None, f"{args.key} (current)", f"{args.key} (new)", color)
        )
        question = f"Uncommit {client.commit_uri(args.key)} (yes/no)? "
        if not ask_yes_no(question):
            print("OK, not committing.")
            return common.EXIT_OK
    metadata = {
        "key": args.key,
        "version": current.version + 1,
        "author": common.author_from(args, client),
        "comment": args.message,
        "empty": True,
    }
    common.print_json(post(client, metadata, None))
    return common.EXIT_OK


@command
def revert(args: argparse.Namespace) -> int:
    client = common.client_from(args)
    target = client.get_commit(args.key, args.version)
    head = client.get_commit(args.key)
    if (target.empty, target.value) == (head.empty, head.value):
        print(
            f"{args.key}: version {head.version} already has version {args.version}'s "
            "payload; nothing to do."
        )
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
    common.print_json(post(client, metadata, target.value))
    return common.EXIT_OK
