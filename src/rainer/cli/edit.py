"""``rainer edit``: change a key in $EDITOR, see the diff, confirm, commit the next version.

The prepared commit lives in a temporary file. It is removed only once the commit is done (or
nothing changed); after any failure it stays, and the message says where and how to retry.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile

from rainer.cli import common
from rainer.cli.common import (
    EXIT_CONFLICT,
    EXIT_DENIED,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    CommandError,
    command,
)
from rainer.cli.diffs import unified_diff
from rainer.cli.prepared import PreparedCommit, PreparedCommitError, parse, render
from rainer.cli.prompt import confirm
from rainer.cli.versions import explain_conflict, holds, starting_point
from rainer.cli.writing import add_force_option, print_outcome
from rainer.client import RainerClient, RainerCommit
from rainer.errors import CommitOrderingError, RainerAccessError, RainerError


def register(subparsers: common.Subparsers) -> None:
    parser = subparsers.add_parser(
        "edit",
        parents=[common.global_parent()],
        help="edit a key in $EDITOR and commit it",
        description="Open $EDITOR on a prepared commit of the next version, show the diff, "
        "ask, and commit. Starts from VERSION's payload when given, else the newest.",
    )
    common.add_author_option(parser)
    add_force_option(parser)
    parser.add_argument(
        "key", metavar="KEY", help="the key to edit (a new one starts empty, at version 1)"
    )
    parser.add_argument(
        "version",
        metavar="VERSION",
        type=common.version_number,
        nargs="?",
        help="start from this version's payload (default: the newest)",
    )
    parser.add_argument("-y", "--yes", action="store_true", help="commit without asking")
    parser.set_defaults(handler=edit)


def editor_command() -> list[str]:
    """$EDITOR (else $VISUAL, else vi), split as a shell would: ``code --wait`` works."""
    text = os.environ.get("EDITOR") or os.environ.get("VISUAL") or "vi"
    try:
        argv = shlex.split(text)
    except ValueError as exc:
        raise CommandError(f"cannot parse EDITOR={text!r}: {exc}") from None
    if not argv:
        raise CommandError("EDITOR is empty")
    return argv


@command
def edit(args: argparse.Namespace) -> int:
    client = common.client_from(args)
    base, head = starting_point(client, args.key, args.version)
    author = common.author_from(args, client)
    next_version = (head.version if head is not None else 0) + 1
    start = base.value if base is not None and base.value is not None else b""
    path = _write_temp(args.key, render(PreparedCommit(next_version, author, "", start)))
    try:
        return _edit_and_commit(args, client, author, path, head)
    except KeyboardInterrupt:
        print(f"rainer edit: interrupted; your work is saved in {path}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except CommandError as exc:
        raise CommandError(f"{exc}; your work is saved in {path}", exc.code) from None
    except (RainerError, OSError, ValueError) as exc:
        raise CommandError(
            f"{exc}; your work is saved in {path} (retry: rainer commit {shlex.quote(args.key)}"
            f" < {shlex.quote(path)})",
            EXIT_DENIED if isinstance(exc, RainerAccessError) else EXIT_ERROR,
        ) from None


def _write_temp(key: str, data: bytes) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", key)[:40]
    fd, path = tempfile.mkstemp(prefix=f"rainer-{safe}-", suffix=".yaml")
    with os.fdopen(fd, "wb") as file:
        file.write(data)
    return path


def _edit_and_commit(
    args: argparse.Namespace,
    client: RainerClient,
    author: str,
    path: str,
    head: RainerCommit | None,
) -> int:
    argv = editor_command()
    try:
        status = subprocess.call([*argv, path])
    except OSError as exc:
        raise CommandError(f"cannot run the editor {argv[0]!r}: {exc.strerror or exc}") from None
    if status != 0:
        raise CommandError(f"the editor {shlex.join(argv)!r} exited with status {status}")
    with open(path, "rb") as file:
        data = file.read()
    try:
        new = parse(data, args.key, author)
    except PreparedCommitError as exc:
        raise CommandError(f"not a prepared commit: {exc}") from None
    value = None if new.empty else new.payload
    if holds(head, value) and not args.force:
        os.unlink(path)
        print_outcome(head.meta, changed=False)
        return common.EXIT_OK
    # Shown against the newest version, which is what the commit changes (the file may have
    # started from an older one); on stderr, as stdout is for the one line of JSON.
    current = head.value if head is not None else None
    color = common.use_color(args, sys.stderr)
    sys.stderr.write(
        unified_diff(current, new.payload, f"{args.key} (current)", f"{args.key} (new)", color)
    )
    if new.empty:
        print(f"{args.key} (new) is empty: this uncommits the key.", file=sys.stderr)
    elif not new.payload:
        print(f"{args.key} (new) has an empty payload.", file=sys.stderr)
    if not args.yes:
        confirm(f"Commit to {client.commit_uri(args.key)} (yes/no)? ")
    try:
        meta = client.post_commit(new.metadata(args.key), value)
    except CommitOrderingError as exc:
        # Not "set the next version in the file and commit it": that would overwrite the
        # other person's change with a payload made from the version before it.
        again = f"run 'rainer edit {shlex.quote(args.key)}' again: it "
        newest = exc.expected_version - 1
        if exc.provided_version <= newest:
            again += f"starts from version {newest}, theirs, to make your change on top of it"
        else:  # the file's version was set past the next one
            again += f"prepares version {exc.expected_version}"
        raise CommandError(f"{explain_conflict(client, exc)}; {again}", EXIT_CONFLICT) from None
    os.unlink(path)
    print_outcome(meta, changed=True)
    return common.EXIT_OK
