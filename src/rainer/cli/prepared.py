"""pyrainer's prepared-commit format: a YAML header, a ``---`` line, then the payload verbatim.

::

    author: alice
    comment: ''
    version: 4
    ---
    the payload, byte for byte

``prepare`` and ``edit`` write it, ``commit`` and ``edit`` read it. The header may also say
``empty: true`` (a tombstone, as ``uncommit`` prepares) and ``key`` (which must then match).
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

SEPARATOR = b"\n---\n"
_FIELDS = {"author", "comment", "version", "empty", "key"}


class PreparedCommitError(ValueError):
    """Text that is not a valid prepared commit; the message says what to fix."""


@dataclass(frozen=True)
class PreparedCommit:
    """A commit as a person edits it, before it is posted."""

    version: int
    author: str
    comment: str
    payload: bytes
    empty: bool = False

    def metadata(self, key: str) -> dict[str, object]:
        """pyrainer's metadata dict, for ``RainerClient.post_commit``."""
        return {
            "key": key,
            "version": self.version,
            "author": self.author,
            "comment": self.comment,
            "empty": self.empty,
        }


def render(commit: PreparedCommit) -> bytes:
    """The prepared-commit text of ``commit``."""
    header: dict[str, object] = {
        "author": commit.author,
        "comment": commit.comment,
        "version": commit.version,
    }
    if commit.empty:
        header["empty"] = True
    text = yaml.safe_dump(header, default_flow_style=False, allow_unicode=True, sort_keys=True)
    return text.encode("utf-8") + b"---\n" + commit.payload


def parse(data: bytes, key: str, default_author: str) -> PreparedCommit:
    """Read a prepared commit for ``key``; PreparedCommitError says what is wrong."""
    head, separator, payload = data.partition(SEPARATOR)
    if not separator:
        if data.endswith(b"\n---"):  # an editor dropped the newline after an empty payload
            head, payload = data[: -len(b"\n---")], b""
        else:
            raise PreparedCommitError("no '---' line between the header and the payload")
    try:
        header = yaml.safe_load(head.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = " ".join(str(exc).split())
        raise PreparedCommitError(f"the header is not YAML: {reason}") from None
    if header is None:
        header = {}
    if not isinstance(header, dict):
        raise PreparedCommitError("the header must be YAML fields (author, comment, version)")
    unknown = sorted(str(name) for name in header if name not in _FIELDS)
    if unknown:
        raise PreparedCommitError(f"unknown header field(s): {', '.join(unknown)}")
    if "key" in header and str(header["key"]) != key:
        raise PreparedCommitError(f"the header is for key {header['key']!r}, not {key!r}")
    version = header.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise PreparedCommitError("the header needs 'version:' with a positive integer")
    author = header.get("author")
    author = default_author if author is None or author == "" else str(author)
    comment = header.get("comment")
    comment = "" if comment is None else str(comment)
    if "\n" in comment.rstrip("\n") or "\r" in comment:
        raise PreparedCommitError("the comment must be one line (HTTP headers carry it)")
    comment = comment.rstrip("\n")
    empty = header.get("empty", False)
    if not isinstance(empty, bool):
        raise PreparedCommitError("'empty:' must be true or false")
    if empty and payload:
        raise PreparedCommitError("an empty commit (empty: true) cannot have a payload")
    return PreparedCommit(version, author, comment, payload, empty)
