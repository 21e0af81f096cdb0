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
from rainer.cli.common import EXIT_CONFLICT, EXIT_DENIED, EXIT_ERROR, CommandError, command
from rainer.cli.diffs import unified_diff
from rainer.cli.prepared import PreparedCommit, PreparedCommitError, parse, render
from rainer.cli.prompt import ask_yes_no
from rainer.cli.versions import explain_conflict, starting_point
from rainer.client import RainerClient
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
    parser.add_argument("key")
    parser.add_argument("version", type=common.version_number, nargs="?")
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
    old = base.value if base is not None else None
    author = common.author_from(args, client)
    prepared = PreparedCommit(head + 1, author, "", old or b"")
    path = _write_temp(args.key, render(prepared))
    try:
        return _edit_and_commit(args, client, author, path, old, base is not None and base.empty)
    except KeyboardInterrupt:
        print(f"rainer edit: interrupted; your work is saved in {path}", file=sys.stderr)
        return 130
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
    old: bytes | None,
    was_empty: bool,
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
    if (new.empty, new.payload) == (was_empty, old or b""):
        os.unlink(path)
        print("No change, not committing.")
        return common.EXIT_OK
    color = common.use_color(args)
    sys.stdout.write(
        unified_diff(old, new.payload, f"{args.key} (current)", f"{args.key} (new)", color)
    )
    if new.empty:
        print(f"{args.key} (new) is empty: this uncommits the key.")
    elif was_empty and not new.payload:
        print(f"{args.key} (new) has an empty payload.")
    if not args.yes and not ask_yes_no(f"Commit to {client.commit_uri(args.key)} (yes/no)? "):
        print(f"OK, not committing. Your work is saved in {path}")
        return common.EXIT_OK
    try:
        meta = client.post_commit(new.metadata(args.key), None if new.empty else new.payload)
    except CommitOrderingError as exc:
        retry = (
            f"to retry, see 'rainer log {shlex.quote(args.key)}', set 'version: "
            f"{exc.expected_version}' in the file and run 'rainer commit "
            f"{shlex.quote(args.key)} < {shlex.quote(path)}', or start over with 'rainer edit "
            f"{shlex.quote(args.key)}'"
        )
        raise CommandError(f"{explain_conflict(client, exc)}; {retry}", EXIT_CONFLICT) from None
    os.unlink(path)
    print(f"Committed {args.key} version {meta['version']}.")
    return common.EXIT_OK
