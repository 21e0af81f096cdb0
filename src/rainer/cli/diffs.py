"""Unified diffs of two payloads, coloured like git's when asked, and diffs by path of JSON
and YAML documents (``spec.replicas: 3 → 5``)."""

from __future__ import annotations

import difflib
import json
import re

import yaml

from rainer.commit import payload_text

# libyaml's loader when PyYAML was built with it: several times faster on large documents.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

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


def unified_diff(
    old: bytes | None, new: bytes | None, old_label: str, new_label: str, color: bool = False
) -> str:
    """The diff from ``old`` to ``new`` (None counts as no payload); "" when they are equal."""
    if (old or b"") == (new or b""):
        return ""
    old_text, new_text = payload_text(old), payload_text(new)
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


# -- diffs by path, for JSON and YAML payloads ---------------------------------------------------

#: Payloads larger than this are not parsed for a diff by path (the unified diff still shows).
STRUCTURED_MAX_BYTES = 1024 * 1024
#: Values compared at most: a YAML document's aliases can make a small text a huge tree.
STRUCTURED_MAX_NODES = 100_000
#: Lines of a diff by path shown at most; the rest is counted.
PATH_DIFF_MAX_LINES = 50
_ABSENT = object()
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def structured(payload: bytes | None) -> object:
    """The document a payload holds when it is JSON or YAML whose top is a mapping or a list;
    None otherwise (text, a scalar, binary, too large, or not parsing)."""
    text = payload_text(payload)
    if not text or len(payload or b"") > STRUCTURED_MAX_BYTES:
        return None
    try:
        document = json.loads(text)
    except ValueError:
        try:
            document = yaml.load(text, Loader=_YAML_LOADER)  # a safe loader: no objects
        except (yaml.YAMLError, RecursionError):
            return None
    except RecursionError:
        return None
    return document if isinstance(document, dict | list) else None


def path_diff(old: object, new: object, color: bool = False) -> list[str]:
    """The differences between two documents, one line per path that changed:
    ``spec.replicas: 3 → 5``; ``(none)`` stands for a path one side does not have."""
    changes: list[tuple[str, object, object]] = []
    budget = [STRUCTURED_MAX_NODES]
    _compare(old, new, "", changes, budget)
    lines = []
    for path, before, after in changes[:PATH_DIFF_MAX_LINES]:
        shown_before = paint(_shown(before), RED, color)
        shown_after = paint(_shown(after), GREEN, color)
        lines.append(f"{path or '(the whole document)'}: {shown_before} → {shown_after}")
    if len(changes) > PATH_DIFF_MAX_LINES:
        lines.append(f"… and {len(changes) - PATH_DIFF_MAX_LINES} more")
    if budget[0] <= 0:
        lines.append("… (the documents are too large to compare in full)")
    return lines


def _compare(
    old: object, new: object, path: str, out: list[tuple[str, object, object]], budget: list[int]
) -> None:
    budget[0] -= 1
    if budget[0] <= 0:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for name in [*old, *(name for name in new if name not in old)]:
            _compare(
                old.get(name, _ABSENT), new.get(name, _ABSENT), _child(path, name), out, budget
            )
    elif isinstance(old, list) and isinstance(new, list):
        for index in range(max(len(old), len(new))):
            before = old[index] if index < len(old) else _ABSENT
            after = new[index] if index < len(new) else _ABSENT
            _compare(before, after, f"{path}[{index}]", out, budget)
    elif type(old) is not type(new) or old != new:
        out.append((path, old, new))


def _child(path: str, name: object) -> str:
    """``spec.replicas``; a name that is not a plain word is quoted: ``labels["app.kind"]``."""
    if isinstance(name, str) and _PLAIN_NAME.fullmatch(name):
        return f"{path}.{name}" if path else name
    return f"{path}[{json.dumps(name, ensure_ascii=False, default=str)}]"


def _shown(value: object, limit: int = 80) -> str:
    if value is _ABSENT:
        return "(none)"
    text = json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"
