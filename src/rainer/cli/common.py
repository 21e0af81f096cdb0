"""What every client command shares: connection options, the author, colour, output, and one
place that turns errors into a single line on stderr and an exit code."""

from __future__ import annotations

import argparse
import functools
import getpass
import json
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, TypeAlias

from rainer import wire
from rainer.client import (
    DEFAULT_TIMEOUT,
    RainerClient,
    options_from_environment,
    payload_json,
    read_token_file,
)
from rainer.errors import (
    CommitOrderingError,
    RainerAccessError,
    RainerError,
    RainerUnauthorizedError,
)

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CONFLICT = 3
#: The server's access control refused: 401, 403 or 429 (``rainer serve --auth``). Not 1, so a
#: pipeline can tell "fix the credentials or the roles" from a failure worth retrying.
EXIT_DENIED = 4
#: A question was answered no, or nobody could answer it (no terminal, and stdin ended):
#: nothing was written. Not 1, so a script can tell "nobody said yes" (pass --yes) from a failure.
EXIT_DECLINED = 5
EXIT_INTERRUPTED = 130

Handler = Callable[[argparse.Namespace], int]
#: What ``add_subparsers`` gives: each command module's ``register`` adds its parsers to it.
Subparsers: TypeAlias = "argparse._SubParsersAction[ArgumentParser]"


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, whose usage errors exit with ``usage_status`` (2 unless a command
    gives 2 a meaning of its own, as ``plan`` does for "there are changes")."""

    usage_status = EXIT_USAGE

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # No abbreviations: --token would otherwise be taken for --token-file, and a token
        # typed there by mistake would end up in an error message.
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(self.usage_status, f"{self.prog}: error: {message}\n")


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
    group = parser.add_argument_group("connection options")
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
        "--token-file",
        default=suppress,
        metavar="FILE",
        help="send the token in FILE (rainer serve --auth); default: $RAINER_TOKEN, else the "
        "file $RAINER_TOKEN_FILE names. A token is never taken on the command line",
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
    group = parser.add_argument_group("output options")
    group.add_argument(
        "--debug",
        action="store_true",
        default=suppress,
        help="print each HTTP exchange on stderr, and the traceback of an unexpected error "
        "(default: $RAINER_DEBUG); secrets are never printed",
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
        help="commit author (default: $RAINER_AUTHOR; else, with credentials, the principal "
        "the server knows them as; else your login name)",
    )


def global_parent() -> ArgumentParser:
    """A parent parser carrying the global options, for ``add_parser(parents=[...])``."""
    # Of the parsers' own class, as add_parser's types ask; a parent lends only its arguments.
    parent = ArgumentParser(add_help=False)
    add_global_options(parent)
    return parent


def debugging(args: argparse.Namespace) -> bool:
    """--debug, or $RAINER_DEBUG set to anything but no."""
    if getattr(args, "debug", False):
        return True
    text = os.environ.get("RAINER_DEBUG", "")
    return bool(text) and wire.parse_yes_no(text) is not False


def setting(args: argparse.Namespace, name: str, env: str, default: Any = None) -> Any:
    """An option's value: the command line, else ``$env``, else ``default``."""
    value = getattr(args, name, None)
    if value is not None:
        return value
    return os.environ.get(env) or default


def client_from(args: argparse.Namespace, url: str | None = None) -> RainerClient:
    """The client the options and environment describe (of ``url`` when given); a usage
    error without a URL. Credentials and TLS options come from ``options_from_environment``,
    which ``rainer serve --database http(s)://...`` reads too, and the options beat it."""
    url = url or setting(args, "url", "RAINER_URL")
    if not url:
        raise CommandError("no server: pass --url URL or set RAINER_URL", EXIT_USAGE)
    timeout_text = setting(args, "timeout", "RAINER_TIMEOUT", DEFAULT_TIMEOUT)
    try:
        timeout = float(timeout_text)
    except ValueError:
        raise CommandError(
            f"RAINER_TIMEOUT is not a number: {timeout_text!r}", EXIT_USAGE
        ) from None
    try:
        options = options_from_environment(url=url)
        if getattr(args, "token_file", None):
            options["token"] = read_token_file(args.token_file, "the --token-file")
        for name, option in (
            ("ca_file", "ca_path"),
            ("client_cert", "client_cert"),
            ("client_key", "client_key"),
        ):
            if getattr(args, name, None):
                options[option] = getattr(args, name)
        if getattr(args, "insecure", False):
            options["validate_certs"] = False
        if options.get("validate_certs") is False:
            # Asked for on purpose: no warning from urllib3 on every request.
            warnings.filterwarnings("ignore", "Unverified HTTPS request")
        trace = _print_exchange if debugging(args) else None
        client = RainerClient(url, timeout, trace=trace, **options)
    except ValueError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    if trace is not None:
        how = "with credentials" if client.has_credentials else "without credentials"
        print(f"rainer: debug: {client.url} ({how})", file=sys.stderr)
    return client


def _print_exchange(method: str, url: str, status: int | None, seconds: float) -> None:
    # The URL is the client's, which never holds credentials; headers are not printed.
    answer = "no answer" if status is None else str(status)
    print(f"rainer: debug: {method} {url} -> {answer} in {seconds * 1000:.1f} ms", file=sys.stderr)


def author_from(args: argparse.Namespace, client: RainerClient | None = None) -> str:
    """--author, $RAINER_AUTHOR; else, when ``client`` sends credentials, the principal the
    server knows them as (a server with --auth refuses any other author but an admin's); else
    the login name. getpass looks at $LOGNAME, $USER and the password database; unlike
    os.getlogin() (pyrainer's) it needs no terminal."""
    author: str | None = setting(args, "author", "RAINER_AUTHOR")
    if author:
        return author
    if client is not None and client.has_credentials:
        found = client.whoami()
        if found is not None:
            return str(found["principal"])
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
    """JSON for scripts: one line, or indented with ``pretty``. Flushed at once: a pipe
    (`rainer watch | jq`) would otherwise hold lines back in a buffer."""
    print(json.dumps(value, ensure_ascii=False, indent=2 if pretty else None), flush=True)


def with_payload(meta: Mapping[str, Any], payload: bytes | None) -> dict[str, Any]:
    """Metadata with the payload added as ``payload_utf8`` (or ``payload_base64`` when it is not
    UTF-8), as exports and change sets carry it; an empty commit (None) gets neither."""
    return {**meta, **payload_json(payload)} if payload is not None else dict(meta)


#: The word before a failure's message, by exit code; "error" for the others.
_FAILURE_KINDS = {EXIT_CONFLICT: "conflict", EXIT_DECLINED: "not confirmed"}


def command(function: Handler) -> Handler:
    """Wrap a command: errors become one line on stderr and an exit code, never a traceback.
    With --debug (or RAINER_DEBUG=1), an unexpected error also shows its traceback.

    A command whose exit status 1 means something else (``diff --exit-code``: differences)
    sets ``args.error_status`` to the code its errors exit with instead.
    """

    @functools.wraps(function)
    def handler(args: argparse.Namespace) -> int:
        name = f"rainer {args.command}"
        try:
            return function(args)
        except CommandError as exc:
            code = _error_status(args) if exc.code == EXIT_ERROR else exc.code
            print(f"{name}: {_FAILURE_KINDS.get(code, 'error')}: {exc}", file=sys.stderr)
            return code
        except CommitOrderingError as exc:
            print(f"{name}: conflict: {exc}", file=sys.stderr)
            return EXIT_CONFLICT
        except RainerAccessError as exc:
            print(f"{name}: error: {exc}{_access_hint(exc)}", file=sys.stderr)
            return EXIT_DENIED
        except BrokenPipeError:
            # The reader went away (`rainer log KEY | head`): stop quietly, as cat does.
            _silence_stdout()
            return EXIT_ERROR
        except (RainerError, OSError, ValueError) as exc:
            print(f"{name}: error: {exc}", file=sys.stderr)
            return _error_status(args)
        except Exception as exc:
            if debugging(args):
                traceback.print_exc()
            print(f"{name}: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
            return _error_status(args)

    return handler


def _error_status(args: argparse.Namespace) -> int:
    status: int = getattr(args, "error_status", EXIT_ERROR)
    return status


def _access_hint(error: RainerAccessError) -> str:
    """What to check after a refusal of the server's access control."""
    if not isinstance(error, RainerUnauthorizedError):
        return ""
    if error.body.startswith("Authentication required"):
        return " (the server took this request as anonymous: set RAINER_TOKEN or --token-file)"
    return " (check the token in RAINER_TOKEN or --token-file)"


def _silence_stdout() -> None:
    # Python would report the broken pipe again when it flushes stdout at exit.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def version_number(text: str) -> int:
    """An argparse type: a version, a positive integer."""
    return _positive(text, "a version")


def count(text: str) -> int:
    """An argparse type: how many of something, a positive integer."""
    return _positive(text, "a count")


def _positive(text: str, what: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not {what} (a positive integer): {text!r}")
    return int(text)
