"""``rainer completion bash|zsh``: a shell completion script, made by shtab from the very
parser the command line runs, so it never lags behind a new command or option."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from rainer.cli import common
from rainer.cli.common import CommandError, command

SHELLS = ("bash", "zsh")
#: Arguments whose values are paths, known by their metavar: completed with file names.
PATH_METAVARS = {"FILE", "PEM", "PATH", "PLAN", "PLAN|PATH"}


def register(subparsers: common.Subparsers) -> None:
    parser = subparsers.add_parser(
        "completion",
        help="print a shell completion script",
        description="Print a completion script for bash or zsh. For bash, add "
        "'source <(rainer completion bash)' to ~/.bashrc; for zsh, write it to a file named "
        "_rainer in a folder of $fpath, e.g. 'rainer completion zsh > "
        "~/.zfunc/_rainer' with 'fpath=(~/.zfunc $fpath)' before compinit in ~/.zshrc.",
    )
    parser.add_argument(
        "shell", choices=SHELLS, metavar="SHELL", help=f"the shell: {' or '.join(SHELLS)}"
    )
    parser.set_defaults(handler=completion)


@command
def completion(args: argparse.Namespace) -> int:
    try:
        import shtab  # only here: the other commands do not pay for its import
    except ImportError:
        raise CommandError(
            "shell completion needs shtab, a dependency: pip install shtab"
        ) from None

    # Imported here, not at the top: rainer.cli imports this module to build its parser.
    from rainer.cli import build_parser

    parser = build_parser()
    for action in _actions(parser):
        if action.metavar in PATH_METAVARS:
            action.complete = shtab.FILE  # type: ignore[attr-defined]
    print(shtab.complete(parser, shell=args.shell), end="")
    return common.EXIT_OK


def _actions(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    """Every argument of ``parser`` and of its sub-commands, at any depth."""
    for action in parser._actions:
        yield action
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from _actions(child)
