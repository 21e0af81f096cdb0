"""The ``rainer`` command line: one module per command group, wired together here.

Each command module offers ``register(subparsers)``, which adds its sub-commands and sets
``handler`` on each: a function taking the parsed arguments and returning the exit code.
Exit codes: 0 success, 1 error (a missing key or version too), 2 usage, 3 conflict, 4 refused
by the server's access control, 5 not confirmed (a question answered no, or nobody to answer it),
130 interrupted; ``plan`` uses 2 for "there are changes", and 1 for its usage errors;
``diff --exit-code`` uses 1 for "there are differences", and 2 for its errors.
"""

from __future__ import annotations

import argparse
import sys

from rainer import __version__
from rainer.cli import (
    changes,
    completion,
    edit,
    reading,
    serve,
    transfer,
    watching,
    writing,
)
from rainer.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    ArgumentParser,
    Handler,
    add_global_options,
)

COMMAND_MODULES = [reading, edit, writing, changes, transfer, watching, serve, completion]


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="rainer",
        description="Versioned, audited configuration commits: serve them, read them, commit them.",
    )
    parser.add_argument("--version", action="version", version=f"rainer {__version__}")
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", help="what to do ('rainer COMMAND --help' for more)"
    )
    for module in COMMAND_MODULES:
        module.register(subparsers)
    # Also before the command, as pyrainer took them: `rainer --url U show KEY`.
    add_global_options(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args: argparse.Namespace | None = None
    extras: list[str] = []
    if "--" in argv and "watch" in argv[: argv.index("--")]:
        # `rainer watch KEY [options] -- COMMAND ...`: what follows -- is the command to run.
        # (argparse cannot take options between a positional and the -- of a list after it.)
        cut = argv.index("--")
        args, extras = parser.parse_known_args(argv[:cut])
        if getattr(args, "runs_command", False):
            args.command_argv = argv[cut + 1 :]
        else:
            args = None  # an ordinary --, ending the options: `rainer show -- -key`
    if args is None:
        args, extras = parser.parse_known_args(argv)
    if extras:
        # Reported here rather than by parse_args, so that the command's usage status holds.
        parser.print_usage(sys.stderr)
        print(f"rainer: error: unrecognized arguments: {_shown(extras)}", file=sys.stderr)
        return getattr(args, "usage_status", EXIT_USAGE)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("rainer: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _shown(extras: list[str]) -> str:
    """Unrecognized arguments as the error shows them: what follows an unknown option is left
    out, as it may be a secret given where it must not be (``--token SECRET``)."""
    shown = []
    for index, argument in enumerate(extras):
        hidden = index > 0 and extras[index - 1].startswith("-") and not argument.startswith("-")
        shown.append("…" if hidden else argument)
    return " ".join(shown)
