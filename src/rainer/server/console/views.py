"""What each page shows, from what the server read: plain functions from commits to the values
a template needs. They run on the console's rendering threads, never on the event loop."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rainer.commit import Commit, CommitInfo, payload_text
from rainer.server.console import compare, payloads

#: Keys on one page of the list: about 40 KB of HTML, so that even 10,000 keys stay light.
KEYS_PER_PAGE = 100
#: Commits on one page of a key's history.
HISTORY_PER_PAGE = 50


def group_of(key: str) -> str:
    """The key's prefix up to and with its first dot (``prod.`` of ``prod.web.json``), or ""."""
    dot = key.find(".", 1)
    return key[: dot + 1] if dot > 0 else ""


@dataclass(slots=True)
class Group:
    name: str
    #: keys of the group among all that match, not only those on this page
    total: int
    rows: list[CommitInfo]


def matches(info: CommitInfo, terms: Sequence[str]) -> bool:
    """Every term appears in the key, the author or the comment (case ignored)."""
    if not terms:
        return True
    haystack = f"{info.key}\n{info.author}\n{info.comment}".casefold()
    return all(term in haystack for term in terms)


def key_list(
    infos: dict[str, CommitInfo],
    query: str = "",
    prefix: str = "",
    group: bool = True,
    page: int = 1,
    tombstones: bool = False,
) -> dict[str, Any]:
    """The list page: the keys that match, a page of them, grouped by prefix when asked."""
    terms = query.casefold().split()
    found = [
        infos[key]
        for key in sorted(infos)
        if key.startswith(prefix) and (not terms or matches(infos[key], terms))
    ]
    pages = max(1, math.ceil(len(found) / KEYS_PER_PAGE))
    page = min(page, pages)
    start = (page - 1) * KEYS_PER_PAGE
    shown = found[start : start + KEYS_PER_PAGE]
    groups: list[Group] = []
    if group:
        totals = Counter(group_of(info.key) for info in found)
        for info in shown:
            name = group_of(info.key)
            if totals[name] < 2:  # a prefix of one key is no group: no heading for it
                name = ""
            if not groups or groups[-1].name != name:
                groups.append(Group(name, totals[name], []))
            groups[-1].rows.append(info)
    else:
        groups.append(Group("", len(found), shown))
    return {
        # the list's parameters as its URLs carry them, for links that change one of them
        "state": {
            "q": query or None,
            "prefix": prefix or None,
            "all": tombstones,
            "group": None if group else "no",
        },
        "query": query,
        "prefix": prefix,
        "group": group,
        "tombstones": tombstones,
        "groups": groups,
        "total": len(infos),
        "found": len(found),
        "page": page,
        "pages": pages,
        "first": start + 1,
        "last": start + len(shown),
    }


def history_window(head: CommitInfo, version: int | None, before: int | None) -> int | None:
    """The ``before`` of the history page to show: as asked, else the page around ``version``
    (None: the newest page)."""
    if before is not None:
        return before
    if version is None:
        return None
    top = min(head.version, version + HISTORY_PER_PAGE // 2)
    return None if top >= head.version else top + 1


def key_page(
    key: str,
    head: CommitInfo,
    shown: Commit,
    history: list[CommitInfo],
    before: int | None,
    indent: bool,
) -> dict[str, Any]:
    """The key page: the shown version's payload, and one page of the history."""
    items = history[:HISTORY_PER_PAGE]
    older = items[-1].version if len(history) > HISTORY_PER_PAGE and items else None
    newer = None
    if before is not None and items and items[0].version < head.version:
        top = items[0].version + HISTORY_PER_PAGE
        newer = top + 1 if top < head.version else 0  # 0: the newest page
    on_page = {info.version for info in items}
    compare_to = shown.version
    compare_from = shown.version - 1 if shown.version > 1 else None
    return {
        "key": key,
        "head": head,
        "shown": shown.info(),
        "payload": payloads.show(key, shown.payload, indent),
        "indent": indent,
        "history": items,
        "before": before,
        "older": older,
        "newer": newer,
        "oldest": HISTORY_PER_PAGE + 1 if older is not None and older > HISTORY_PER_PAGE else None,
        "compare_from": compare_from if compare_from in on_page else None,
        "compare_to": compare_to if compare_to in on_page else None,
    }


@dataclass(slots=True)
class Comparison:
    """Two versions compared: what a page needs to show the difference."""

    old: CommitInfo
    new: CommitInfo
    identical: bool
    binary: bool
    #: the line diff; None when the texts are too large (``too_large``) or binary
    lines: compare.LineDiff | None
    too_large: bool
    #: the diff by path, when both sides are JSON or YAML (of the same kind)
    paths: compare.PathDiff | None
    kind: str  # json | yaml | text | binary
    indented: bool
    can_indent: bool


def comparison(old: Commit, new: Commit, full: bool = False, indent: bool = False) -> Comparison:
    """The difference from ``old`` to ``new``: line by line, and by path for JSON and YAML."""
    old_text, new_text = payload_text(old.payload), payload_text(new.payload)
    identical = (old.payload or b"") == (new.payload or b"")
    if old_text is None or new_text is None:
        return Comparison(
            old.info(), new.info(), identical, True, None, False, None, "binary", False, False
        )
    # Both sides must be of one kind to be compared by path; a tombstone or an empty payload
    # takes the kind of the other side (everything added, or everything removed).
    sides = [
        payloads.detect(old.key, text) if text.strip() else ("empty", None)
        for text in (old_text, new_text)
    ]
    kinds = {kind for kind, _ in sides} - {"empty"}
    kind = kinds.pop() if len(kinds) == 1 else "text"
    paths = None
    if kind in ("json", "yaml") and not identical:
        values = [value for _, value in sides]
        if all(value is not payloads.UNPARSED for value in values):
            paths = compare.path_diff(values[0], values[1])
    can_indent = kind == "json"
    indented = can_indent and indent
    if indented:
        old_text, new_text = payloads.indent_json(old_text), payloads.indent_json(new_text)
    too_large = compare.too_large_for_lines(old_text, new_text)
    lines = None
    if not identical and not too_large:
        lines = compare.line_diff(old_text, new_text, None if full else compare.CONTEXT)
    return Comparison(
        old.info(),
        new.info(),
        identical,
        False,
        lines,
        too_large,
        paths,
        kind,
        indented,
        can_indent,
    )
