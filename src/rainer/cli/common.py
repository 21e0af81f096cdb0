"""What every client command shares: connection options, the author, colour, output, and one
place that turns errors into a single line on stderr and an exit code."""

from __future__ import annotations

import argparse
import functools
import getpass
import json
import os
import sys
import warnings
from collections.abc import Callable
from typing import Any

from rainer import wire
from rainer.client import DEFAULT_TIMEOUT, RainerClient
from rainer.errors import CommitOrderingError, RainerError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CONFLICT = 3

Handler = Callable[[argparse.Namespace], int]


class CommandError(Exception):
    """A failure a command explains itself: ``message`` goes to stderr, ``code`` is the exit."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


def add_global_options(parser: argparse.ArgumentParser) -> None:
    """Connection and output options. Each client command takes them after its name; calling
    this on the top-level parser too makes ``rainer --url U show KEY`` (pyrainer's order) work.

    Defaults are left out of the namespace (SUPPRESS), so an option given before the command is
    not overwritten by a sub-command's default; ``setting()`` falls back to the environment.
    """
    group = parser.add_argument_group("server options")
    suppress = argparse.SUPPRESS
    group.add_argument(
        "--url",
        default=suppress,
        help="the diary's base URL, e.g. http://host:8080/diary (default: $RAINER_URL)",
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=suppress,
        metavar="SECONDS",
        help="wait this long for a connection and for each read of an answer "
        f"(default: $RAINER_TIMEOUT or {DEFAULT_TIMEOUT:g})",
    )
    group.add_argument(
        "--ca-file",
        default=suppress,
        metavar="PEM",
        help="trust this CA for https (default: $RAINER_CA_FILE)",
    )
    group.add_argument(
        "--client-cert",
        default=suppress,
        metavar="PEM",
        help="present this client certificate (default: $RAINER_CLIENT_CERT)",
    )
    group.add_argument(
        "--client-key",
        default=suppress,
        metavar="PEM",
        help="the client certificate's key (default: $RAINER_CLIENT_KEY)",
    )
    group.add_argument(
        "--insecure",
        action="store_true",
        default=suppress,
        help="do not verify the server's certificate",
    )
    group.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default=suppress,
        help="colour diffs: auto (a terminal without $NO_COLOR), always or never",
    )


def add_author_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--author",
        default=argparse.SUPPRESS,
        help="commit author (default: $RAINER_AUTHOR, else your login name)",
    )


def global_parent() -> argparse.ArgumentParser:
    """A parent parser carrying the global options, for ``add_parser(parents=[...])``."""
    parent = argparse.ArgumentParser(add_help=False)
    add_global_options(parent)
    return parent


def setting(args: argparse.Namespace, name: str, env: str, default: Any = None) -> Any:
    """An option's value: the command line, else ``$env``, else ``default``."""
    value = getattr(args, name, None)
    if value is not None:
        return value
    return os.environ.get(env) or default


def client_from(args: argparse.Namespace) -> RainerClient:
    """The client the options and environment describe; a usage error without a URL."""
    url = setting(args, "url", "RAINER_URL")
    if not url:
        raise CommandError("no server: pass --url URL or set RAINER_URL", EXIT_USAGE)
    timeout_text = setting(args, "timeout", "RAINER_TIMEOUT", DEFAULT_TIMEOUT)
    try:
        timeout = float(timeout_text)
    except ValueError:
        raise CommandError(
            f"RAINER_TIMEOUT is not a number: {timeout_text!r}", EXIT_USAGE
        ) from None
    insecure = getattr(args, "insecure", False) or bool(
        wire.parse_yes_no(os.environ.get("RAINER_INSECURE", "no"))
    )
    if insecure:
        # Asked for on purpose: no warning from urllib3 on every request.
        warnings.filterwarnings("ignore", "Unverified HTTPS request")
    try:
        return RainerClient(
            url,
            timeout,
            ca_path=setting(args, "ca_file", "RAINER_CA_FILE"),
            client_cert=setting(args, "client_cert", "RAINER_CLIENT_CERT"),
            client_key=setting(args, "client_key", "RAINER_CLIENT_KEY"),
            validate_certs=not insecure,
        )
    except ValueError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None


def author_from(args: argparse.Namespace) -> str:
    """--author, $RAINER_AUTHOR, or the login name. getpass looks at $LOGNAME, $USER and the
    password database; unlike os.getlogin() (pyrainer's) it needs no terminal."""
    author = setting(args, "author", "RAINER_AUTHOR")
    if author:
        return author
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # a uid with no name, as in some containers
        return f"uid-{os.getuid()}"


def use_color(args: argparse.Namespace, stream: Any = None) -> bool:
    """Colour on a terminal without $NO_COLOR, unless --color says otherwise."""
    choice = getattr(args, "color", "auto")
    if choice != "auto":
        return choice == "always"
    stream = stream if stream is not None else sys.stdout
    return "NO_COLOR" not in os.environ and stream.isatty()


def write_bytes(data: bytes) -> None:
    """Write raw payload bytes to stdout, exactly as stored."""
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def print_json(value: Any, pretty: bool = False) -> None:
    """JSON for scripts: one line, or indented with ``pretty``."""
    print(json.dumps(value, ensure_ascii=False, indent=2 if pretty else None))


def command(function: Handler) -> Handler:
    """Wrap a command: errors become one line on stderr and an exit code, never a traceback.
    Set RAINER_DEBUG=1 to see the traceback of an unexpected error."""

    @functools.wraps(function)
    def handler(args: argparse.Namespace) -> int:
        name = f"rainer {args.command}"
        try:
            return function(args)
        except CommandError as exc:
            kind = "conflict" if exc.code == EXIT_CONFLICT else "error"
            print(f"{name}: {kind}: {exc}", file=sys.stderr)
            return exc.code
        except CommitOrderingError as exc:
            print(f"{name}: conflict: {exc}", file=sys.stderr)
            return EXIT_CONFLICT
        except BrokenPipeError:
            # The reader went away (`rainer log KEY | head`): stop quietly, as cat does.
            _silence_stdout()
            return EXIT_ERROR
        except (RainerError, OSError, ValueError) as exc:
            print(f"{name}: error: {exc}", file=sys.stderr)
            return EXIT_ERROR
        except Exception as exc:
            if os.environ.get("RAINER_DEBUG"):
                raise
            print(f"{name}: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
            return EXIT_ERROR

    return handler


def _silence_stdout() -> None:
    # Python would report the broken pipe again when it flushes stdout at exit.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def version_number(text: str) -> int:
    """An argparse type: a version, a positive integer."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a version (a positive integer): {text!r}")
    return int(text)
