"""A yes/no question asked on the terminal, even when stdin and stdout are redirected."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from rainer.cli.common import EXIT_DECLINED, CommandError


def confirm(question: str) -> None:
    """Ask ``question``; return on yes, and raise CommandError (exit EXIT_DECLINED, nothing
    written) on no, or when nobody answers. Every command that asks has ``-y/--yes`` to skip
    the question, so the message names it where it helps: when there was nobody to ask."""
    answer = _answer_yes_no(question)
    if answer is None:
        raise CommandError(
            "nobody answered (the input ended; without a terminal, the answer is read from "
            "stdin); nothing was written; --yes goes ahead without asking",
            EXIT_DECLINED,
        )
    if not answer:
        raise CommandError("the answer was no; nothing was written", EXIT_DECLINED)


def _answer_yes_no(question: str) -> bool | None:
    """Ask until the answer is yes or no (y/n too); None when the input ends first.

    The question goes to /dev/tty and the answer comes from it, so it works inside pipes and
    after an editor ran; without a controlling terminal, stdin and stderr are used instead.
    """
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return _ask(
            question, _stdin_line, lambda text: (sys.stderr.write(text), sys.stderr.flush())
        )
    try:
        return _ask(question, lambda: _tty_line(fd), lambda text: os.write(fd, text.encode()))
    finally:
        os.close(fd)


def _ask(
    question: str, read_line: Callable[[], str | None], write: Callable[[str], object]
) -> bool | None:
    sys.stdout.flush()
    sys.stderr.flush()  # what the question is about (a diff) comes before it
    write(question)
    while True:
        line = read_line()
        if line is None:
            write("\n")
            return None
        answer = line.strip().lower()
        if answer in ("yes", "y"):
            return True
        if answer in ("no", "n"):
            return False
        write("Please type 'yes' or 'no': ")


def _tty_line(fd: int) -> str | None:
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 1024)
        if not chunk:
            return None if not data else data.decode("utf-8", "replace")
        data += chunk
    return data.decode("utf-8", "replace")


def _stdin_line() -> str | None:
    line = sys.stdin.readline()
    return line or None
