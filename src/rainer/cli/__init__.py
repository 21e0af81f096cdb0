"""The ``rainer`` command line: one module per command group, wired together here.

Each command module offers ``register(subparsers)``, which adds its sub-commands and sets
``handler`` on each: a function taking the parsed arguments and returning the exit code.
Exit codes: 0 success, 1 error, 2 usage, 3 conflict.
"""

from __future__ import annotations

import argparse
import sys

from rainer import __version__
from rainer.cli import edit, reading, serve, writing
from rainer.cli.common import EXIT_USAGE, add_global_options

COMMAND_MODULES = [reading, edit, writing, serve]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rainer",
        description="Versioned, audited configuration commits: serve them, read them, commit them.",
    )
    parser.add_argument("--version", action="version", version=f"rainer {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(subparsers)
    # Also before the command, as pyrainer took them: `rainer --url U show KEY`.
    add_global_options(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("rainer: interrupted", file=sys.stderr)
        return 130
