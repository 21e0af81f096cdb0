"""Long output through $PAGER (default ``less -FRSX``), only when stdout is a terminal."""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from typing import TextIO

DEFAULT_PAGER = "less -FRSX"


@contextlib.contextmanager
def paged(enabled: bool = True) -> Iterator[TextIO]:
    """A text stream to write to: a pager's input on a terminal, else stdout itself.

    ``PAGER=""`` or ``cat`` turn paging off as for git. When the user quits the pager early, the
    rest of the output is dropped quietly.
    """
    command = os.environ.get("PAGER", DEFAULT_PAGER)
    if not enabled or not sys.stdout.isatty() or not command.strip():
        yield sys.stdout
        return
    env = dict(os.environ)
    env.setdefault("LESS", "FRSX")  # raw colours, and quit when it fits on a screen
    try:
        pager = subprocess.Popen(shlex.split(command), stdin=subprocess.PIPE, env=env)
    except (OSError, ValueError):
        # No such pager: still show the output rather than fail.
        yield sys.stdout
        return
    assert pager.stdin is not None
    stream = io.TextIOWrapper(pager.stdin, encoding="utf-8", errors="replace", write_through=True)
    try:
        yield stream
        stream.flush()
    except BrokenPipeError:
        pass  # the user quit the pager
    finally:
        with contextlib.suppress(BrokenPipeError, OSError):
            stream.close()
        while True:
            try:
                pager.wait()
                break
            except KeyboardInterrupt:
                continue  # Ctrl-C belongs to the pager; wait for it to end
