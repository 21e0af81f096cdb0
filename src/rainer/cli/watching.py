"""``rainer watch``: follow a key, version by version, or every commit in a scope, as they come.

``rainer watch KEY`` prints a line per new version (``--json``: its metadata), or, given
``-- COMMAND ...``, runs the command for each one, as ``consul watch`` runs a handler: the payload
on its stdin, the metadata in ``RAINER_KEY``, ``RAINER_VERSION``, ``RAINER_AUTHOR``,
``RAINER_COMMENT``, ``RAINER_MTIME`` and ``RAINER_EMPTY``. Without a key it prints the server's
change feed as JSON lines. Both ride out a server that goes away, and end on Ctrl-C (exit 130)
or SIGTERM (exit 143).
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
from typing import Any

from rainer.cli import common
from rainer.cli.common import EXIT_USAGE, CommandError, command
from rainer.cli.versions import describe
from rainer.client import FeedEvent, RainerCommit
from rainer.errors import NotFoundError, RainerError

EXIT_TERMINATED = 128 + signal.SIGTERM


def register(subparsers: common.Subparsers) -> None:
    parser = subparsers.add_parser(
        "watch",
        parents=[common.global_parent()],
        help="follow a key's new versions, or every commit, as they come",
        description="With KEY: print each new version of it as it is committed (every one, "
        "oldest first), or run COMMAND for each with the payload on stdin and the metadata in "
        "RAINER_KEY, RAINER_VERSION, RAINER_AUTHOR, RAINER_COMMENT, RAINER_MTIME and "
        "RAINER_EMPTY. Without KEY: print the server's change feed as JSON lines. A server that "
        "goes away is waited for; Ctrl-C ends the watch.",
        usage="rainer watch [options] [KEY [-- COMMAND ...]]",
    )
    parser.add_argument(
        "key", nargs="?", metavar="KEY", help="the key to follow (default: every commit, as a feed)"
    )
    parser.add_argument(
        "--index",
        type=int,
        metavar="N",
        help="with KEY: start after version N (default: its newest now; 0: from version 1)",
    )
    parser.add_argument("--prefix", help="without KEY: only commits of keys that start with this")
    parser.add_argument(
        "--key",
        dest="keys",
        action="append",
        metavar="NAME",
        help="without KEY: only commits of this key; may be given more than once",
    )
    parser.add_argument(
        "--last-event-id",
        type=int,
        metavar="N",
        help="without KEY: resume after the event with this index (default: from now on)",
    )
    parser.add_argument("--json", action="store_true", help="with KEY: print metadata as JSON")
    parser.add_argument(
        "--payload",
        action="store_true",
        help="with the JSON lines, add each payload (payload_utf8, or payload_base64)",
    )
    parser.set_defaults(handler=watch, runs_command=True, command_argv=[])


@command
def watch(args: argparse.Namespace) -> int:
    if args.key is None and args.command_argv:
        raise CommandError(
            "a COMMAND runs for the versions of a KEY: rainer watch KEY -- ...", EXIT_USAGE
        )
    if args.key is not None and (args.prefix or args.keys or args.last_event_id is not None):
        raise CommandError(
            "--prefix, --key and --last-event-id are for the feed, without KEY", EXIT_USAGE
        )
    client = common.client_from(args)
    signal.signal(signal.SIGTERM, _terminated)

    def waiting(error: RainerError, delay: float) -> None:
        print(f"rainer watch: {error}; trying again in {delay:g} s", file=sys.stderr, flush=True)

    if args.key is None:
        events = client.feed(
            prefix=args.prefix,
            keys=args.keys,
            last_event_id=args.last_event_id,
            payloads=args.payload,
            on_retry=waiting,
        )
        for event in events:
            _print_event(event)
        return common.EXIT_OK
    start = args.index
    if start is None:
        try:
            start = int(client.get_metadata(args.key)["version"])
        except NotFoundError:
            start = 0
    for found in client.watch_versions(args.key, start, on_retry=waiting):
        if args.command_argv:
            _run(args.command_argv, found)
        elif args.json:
            common.print_json(
                common.with_payload(found.meta, found.value) if args.payload else found.meta
            )
        else:
            print(f"{found.key}: {describe(found)}", flush=True)
    return common.EXIT_OK


def _terminated(signum: int, frame: object) -> None:
    # SIGTERM (a service manager stopping the watch) ends it as cleanly as Ctrl-C does.
    raise SystemExit(EXIT_TERMINATED)


def _run(argv: list[str], found: RainerCommit) -> None:
    """Run the handler for one version; a failing handler is reported, and the watch goes on."""
    environment = {
        **os.environ,
        "RAINER_KEY": found.key,
        "RAINER_VERSION": str(found.version),
        "RAINER_AUTHOR": found.author,
        "RAINER_COMMENT": found.comment,
        "RAINER_MTIME": found.mtime,
        "RAINER_EMPTY": "yes" if found.empty else "no",
    }
    try:
        done = subprocess.run(argv, input=found.payload, env=environment, check=False)
    except OSError as exc:
        raise CommandError(f"cannot run {shlex.join(argv)}: {exc.strerror or exc}") from None
    if done.returncode != 0:
        print(
            f"rainer watch: {shlex.join(argv)} exited with status {done.returncode} for "
            f"{found.key!r} version {found.version}",
            file=sys.stderr,
            flush=True,
        )


def _print_event(event: FeedEvent) -> None:
    """A feed event as JSON lines: a commit; or a reset, then the scope's heads."""
    if event.kind == "reset":
        common.print_json({"event": "reset", "index": event.index})
        for head in event.heads:
            common.print_json(_event_line("head", head))
    else:
        common.print_json(_event_line("commit", event))


def _event_line(kind: str, event: FeedEvent) -> dict[str, Any]:
    return common.with_payload(
        {"event": kind, "index": event.index, **(event.meta or {})}, event.payload
    )
