"""The original Rainer's wire conventions, shared by the server and the client.

Yes/no flags, the metadata JSON, the ``X-Rainer-*`` headers and how a payload is typed.
"""

from __future__ import annotations

import base64
import json

from rainer.commit import Commit, CommitInfo, format_mtime
from rainer.errors import BadRequestError

HEADER_KEY = "X-Rainer-Key"
HEADER_VERSION = "X-Rainer-Version"
HEADER_AUTHOR = "X-Rainer-Author"
HEADER_COMMENT = "X-Rainer-Comment"
HEADER_MTIME = "X-Rainer-Modified-Time"
HEADER_EMPTY = "X-Rainer-Empty"
HEADER_CACHED = "X-Rainer-Cached"
HEADER_INDEX = "X-Rainer-Index"

TEXT = "text/plain; charset=UTF-8"
BINARY = "application/octet-stream"
JSON = "application/json; charset=UTF-8"

#: Longest author and comment a server takes, in bytes of UTF-8 (longer ones are 431): a header
#: line over 64 KiB is more than Python's own HTTP client will read back.
MAX_AUTHOR_BYTES = 1024
MAX_COMMENT_BYTES = 16 * 1024

#: History pages: how many commits when ``limit`` is not given, and the most it may ask for.
HISTORY_LIMIT = 100
HISTORY_LIMIT_MAX = 1000

_YES = frozenset(("yes", "true", "1"))
_NO = frozenset(("no", "false", "0"))


def parse_yes_no(text: str) -> bool | None:
    """yes/no/true/false/1/0 in any case (and nothing around them); None for anything else."""
    lowered = text.lower()
    if lowered in _YES:
        return True
    if lowered in _NO:
        return False
    return None


def flag(params: dict[str, str], name: str) -> bool:
    """A boolean query parameter, false when absent; BadRequestError when malformed."""
    text = params.get(name)
    if text is None:
        return False
    value = parse_yes_no(text)
    if value is None:
        raise BadRequestError(f"Invalid '{name}' parameter (should be boolean)")
    return value


def json_body(value: object) -> bytes:
    """A JSON response body: compact, UTF-8, ending with CRLF as the original's."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode() + b"\r\n"


def meta_with_payload(
    info: Commit | CommitInfo, payload: bytes | None, utf8: bool, b64: bool
) -> dict[str, object]:
    """Metadata plus ``payload_utf8`` and/or ``payload_base64`` when asked and not empty."""
    meta = info.meta()
    if payload is not None and not info.empty:
        if utf8:
            meta["payload_utf8"] = payload.decode("utf-8", "replace")
        if b64:
            meta["payload_base64"] = base64.b64encode(payload).decode("ascii")
    return meta


def content_type(payload: bytes) -> str:
    """Text when the payload decodes as UTF-8, else octet-stream, as the original answers."""
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return BINARY
    return TEXT


def commit_headers(commit: Commit | CommitInfo) -> list[tuple[str, str]]:
    """The ``X-Rainer-*`` headers describing a commit."""
    return [
        (HEADER_KEY, commit.key),
        (HEADER_VERSION, str(commit.version)),
        (HEADER_AUTHOR, commit.author),
        (HEADER_COMMENT, commit.comment),
        (HEADER_MTIME, format_mtime(commit.mtime)),
        (HEADER_EMPTY, "Yes" if commit.empty else "No"),
    ]


def conflict_body(key: str, expected: int, provided: int) -> bytes:
    return json_body(
        {"conflict": {"key": key, "expectedVersion": expected, "providedVersion": provided}}
    )
