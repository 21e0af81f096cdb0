"""Unified diffs of two payloads, coloured like git's when asked."""

from __future__ import annotations

import difflib

BOLD = "\033[1m"
RED = "\033[31m"
GREEN = "\033[32m"
YELLOW = "\033[33m"
CYAN = "\033[36m"
RESET = "\033[0m"

_NO_NEWLINE = "\\ No newline at end of file\n"


def paint(text: str, code: str, color: bool) -> str:
    """``text`` wrapped in an ANSI colour when ``color`` is on."""
    return f"{code}{text}{RESET}" if color else text


def _text(payload: bytes | None) -> str | None:
    """The payload as text; None when it is binary (not UTF-8, or holding NUL bytes)."""
    if payload is None:
        return ""
    if b"\0" in payload:
        return None
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return None


def unified_diff(
    old: bytes | None, new: bytes | None, old_label: str, new_label: str, color: bool = False
) -> str:
    """The diff from ``old`` to ``new`` (None counts as no payload); "" when they are equal."""
    if (old or b"") == (new or b""):
        return ""
    old_text, new_text = _text(old), _text(new)
    if old_text is None or new_text is None:
        sizes = f"{len(old or b''):,} bytes -> {len(new or b''):,} bytes"
        return paint(f"Binary payloads differ ({sizes})\n", BOLD, color)
    lines = difflib.unified_diff(
        old_text.splitlines(keepends=True),
        new_text.splitlines(keepends=True),
        old_label,
        new_label,
    )
    out: list[str] = []
    for line in lines:
        # difflib leaves a last line without its newline: end it, and say so as diff(1) does.
        suffix = "" if line.endswith("\n") else "\n" + _NO_NEWLINE
        body = line if not suffix else line + "\n"
        if line.startswith(("---", "+++")):
            out.append(paint(body.rstrip("\n"), BOLD, color) + "\n")
        elif line.startswith("@@"):
            out.append(paint(body.rstrip("\n"), CYAN, color) + "\n")
        elif line.startswith("-"):
            out.append(paint(body.rstrip("\n"), RED, color) + "\n")
        elif line.startswith("+"):
            out.append(paint(body.rstrip("\n"), GREEN, color) + "\n")
        else:
            out.append(body)
        if suffix:
            out.append(_NO_NEWLINE)
    return "".join(out)
