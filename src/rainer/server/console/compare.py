"""Comparing two payloads: a line diff with the changes inside changed lines marked, in rows for
a side-by-side and a unified table, and for JSON and YAML a diff by path
(``spec.replicas: 3 → 5``).

Every text that reaches a row is escaped here (``Markup``); the only tags added are ``<del>`` and
``<ins>`` around changed words.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any

from markupsafe import Markup, escape

from rainer.server.console import payloads

#: Unchanged lines kept around each change when the rest is folded away.
CONTEXT = 3
#: Line diffs are made for texts up to this many lines and bytes each; beyond, too slow to be
#: worth a page (the download links remain).
MAX_LINES = 20_000
MAX_BYTES = payloads.SHOW_BYTES
#: Lines longer than this are marked as changed whole, not word by word.
INLINE_MAX_CHARS = 2_000
#: Changes listed in a diff by path; beyond, the page says how many were left out.
MAX_PATH_CHANGES = 1_000
#: A value in a diff by path is cut after this many characters.
VALUE_CHARS = 160

_WORDS = re.compile(r"\w+|\s+|[^\w\s]")


@dataclass(slots=True)
class SideRow:
    """One row of the side-by-side table. kind: ctx, chg, del, ins, or skip (folded lines)."""

    kind: str
    old_no: int | None = None
    old: Markup | None = None
    new_no: int | None = None
    new: Markup | None = None
    skipped: int = 0


@dataclass(slots=True)
class UnifiedRow:
    """One row of the unified table. kind: ctx, del, ins, or skip."""

    kind: str
    old_no: int | None = None
    new_no: int | None = None
    text: Markup | None = None
    skipped: int = 0


@dataclass(slots=True)
class LineDiff:
    side: list[SideRow] = field(default_factory=list)
    unified: list[UnifiedRow] = field(default_factory=list)
    added: int = 0
    removed: int = 0
    #: the texts differ, but not line by line (line endings, a final newline)
    whitespace_only: bool = False


def too_large_for_lines(old: str, new: str) -> bool:
    """True when either text is beyond what a line diff is made for."""
    return any(len(text) > MAX_BYTES or text.count("\n") > MAX_LINES for text in (old, new))


def line_diff(old: str, new: str, context: int | None = CONTEXT) -> LineDiff:
    """The rows of the diff from ``old`` to ``new``; runs of unchanged lines longer than twice
    ``context`` are folded (None: everything is shown)."""
    a, b = old.splitlines(), new.splitlines()
    result = LineDiff()
    codes = SequenceMatcher(None, a, b).get_opcodes()
    for position, (tag, i1, i2, j1, j2) in enumerate(codes):
        if tag == "equal":
            _equal(result, a, i1, i2, j1, context, position == 0, position == len(codes) - 1)
            continue
        result.removed += i2 - i1
        result.added += j2 - j1
        pairs = min(i2 - i1, j2 - j1) if tag == "replace" else 0
        marked_old: list[Markup] = []
        marked_new: list[Markup] = []
        for offset in range(pairs):
            left, right = inline(a[i1 + offset], b[j1 + offset])
            marked_old.append(left)
            marked_new.append(right)
        marked_old += [escape(line) for line in a[i1 + pairs : i2]]
        marked_new += [escape(line) for line in b[j1 + pairs : j2]]
        for offset in range(max(i2 - i1, j2 - j1)):
            has_old, has_new = offset < i2 - i1, offset < j2 - j1
            result.side.append(
                SideRow(
                    "chg" if has_old and has_new else ("del" if has_old else "ins"),
                    i1 + offset + 1 if has_old else None,
                    marked_old[offset] if has_old else None,
                    j1 + offset + 1 if has_new else None,
                    marked_new[offset] if has_new else None,
                )
            )
        for offset, text in enumerate(marked_old):
            result.unified.append(UnifiedRow("del", i1 + offset + 1, None, text))
        for offset, text in enumerate(marked_new):
            result.unified.append(UnifiedRow("ins", None, j1 + offset + 1, text))
    result.whitespace_only = not result.added and not result.removed and old != new
    return result


def _equal(
    result: LineDiff,
    lines: list[str],
    i1: int,
    i2: int,
    j1: int,
    context: int | None,
    first: bool,
    last: bool,
) -> None:
    """Unchanged lines, folded to ``context`` lines next to the changes around them."""
    count = i2 - i1
    keep_head = count if context is None else (0 if first else context)
    keep_tail = count if context is None else (0 if last else context)
    if keep_head + keep_tail + 2 >= count:  # folding fewer than three lines saves nothing
        shown = [range(count)]
        skipped = 0
    else:
        shown = [range(keep_head), range(count - keep_tail, count)]
        skipped = count - keep_head - keep_tail
    for part, offsets in enumerate(shown):
        if part == 1:
            result.side.append(SideRow("skip", skipped=skipped))
            result.unified.append(UnifiedRow("skip", skipped=skipped))
        for offset in offsets:
            text = escape(lines[i1 + offset])
            old_no, new_no = i1 + offset + 1, j1 + offset + 1
            result.side.append(SideRow("ctx", old_no, text, new_no, text))
            result.unified.append(UnifiedRow("ctx", old_no, new_no, text))


def inline(old: str, new: str) -> tuple[Markup, Markup]:
    """Two versions of a line with the words that differ wrapped in ``<del>``/``<ins>``; lines
    too long or too different to be worth it come back merely escaped."""
    if len(old) > INLINE_MAX_CHARS or len(new) > INLINE_MAX_CHARS:
        return escape(old), escape(new)
    a, b = _WORDS.findall(old), _WORDS.findall(new)
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    if matcher.ratio() < 0.3:
        return escape(old), escape(new)
    left: list[str] = []
    right: list[str] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        before, after = "".join(a[i1:i2]), "".join(b[j1:j2])
        if tag == "equal":
            left.append(str(escape(before)))
            right.append(str(escape(after)))
            continue
        if before:
            left.append(f"<del>{escape(before)}</del>")
        if after:
            right.append(f"<ins>{escape(after)}</ins>")
    return Markup("".join(left)), Markup("".join(right))


# -- the diff by path ---------------------------------------------------------------------------


@dataclass(slots=True)
class PathChange:
    """kind: changed, added or removed. Values are compact JSON, cut at VALUE_CHARS."""

    kind: str
    path: str
    old: str | None = None
    new: str | None = None


@dataclass(slots=True)
class PathDiff:
    changes: list[PathChange]
    #: more changes than MAX_PATH_CHANGES were found; the rest are left out
    more: bool = False


class _Index(int):
    """A list position in a path (a mapping key that is a number prints differently)."""


def path_diff(old: Any, new: Any, limit: int = MAX_PATH_CHANGES) -> PathDiff:
    """The changes from ``old`` to ``new`` (parsed JSON or YAML), leaf by leaf, in document
    order. Lists are aligned by their items' content, so an inserted item shows as one addition
    and not as every later item changed."""
    changes: list[PathChange] = []
    for change in _walk((), old, new):
        if len(changes) == limit:
            return PathDiff(changes, more=True)
        changes.append(change)
    return PathDiff(changes)


def _walk(path: tuple[Any, ...], old: Any, new: Any) -> Iterator[PathChange]:
    if isinstance(old, dict) and isinstance(new, dict):
        for key, value in old.items():
            if key in new:
                yield from _walk((*path, key), value, new[key])
            else:
                yield PathChange("removed", format_path((*path, key)), old=_value(value))
        for key, value in new.items():
            if key not in old:
                yield PathChange("added", format_path((*path, key)), new=_value(value))
        return
    if isinstance(old, list) and isinstance(new, list):
        matcher = SequenceMatcher(None, [_canon(v) for v in old], [_canon(v) for v in new], False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal":
                continue
            pairs = min(i2 - i1, j2 - j1) if tag == "replace" else 0
            for offset in range(pairs):
                yield from _walk((*path, _Index(j1 + offset)), old[i1 + offset], new[j1 + offset])
            for index in range(i1 + pairs, i2):
                yield PathChange(
                    "removed", format_path((*path, _Index(index))), old=_value(old[index])
                )
            for index in range(j1 + pairs, j2):
                yield PathChange(
                    "added", format_path((*path, _Index(index))), new=_value(new[index])
                )
        return
    if type(old) is type(new) and old == new:
        return
    yield PathChange("changed", format_path(path), _value(old), _value(new))


_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")


def format_path(path: tuple[Any, ...]) -> str:
    """``spec.containers[0].image``; keys that are not plain names as ``["a.b"]``."""
    out = ""
    for part in path:
        if isinstance(part, _Index):
            out += f"[{int(part)}]"
        elif isinstance(part, str) and _PLAIN_NAME.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{_json(part)}]"
    return out or "(the whole document)"


def _value(value: Any) -> str:
    text = _json(value)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"


def _json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):  # YAML mapping keys that JSON cannot hold
        return repr(value)


def _canon(value: Any) -> str:
    """A list item's content as one string, for aligning two lists."""
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(value)
