"""Change sets: the body of ``POST /diary``, read strictly.

::

    {"changes": [{"key": "a", "version": 4, "payload_utf8": "..."},
                 {"key": "b", "version": 1, "payload_base64": "...", "comment": "why"},
                 {"key": "c", "version": 7, "empty": true}]}

Each change names a key (once in the set), the version it commits (the key's head plus one),
and exactly one of ``payload_utf8``, ``payload_base64`` or ``"empty": true``; ``comment``
overrides the request's ``X-Rainer-Comment`` for that change. Anything else is a 400 that says
which change and why.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from rainer import defaults
from rainer.commit import validate_key
from rainer.errors import BadRequestError, PayloadTooLargeError

_INT_MAX = 2**31 - 1
_FIELDS = {"key", "version", "payload_utf8", "payload_base64", "empty", "comment"}


@dataclass(frozen=True)
class Change:
    """One commit of a change set, before it has an author and a time."""

    key: str
    version: int
    payload: bytes | None
    comment: str | None


def parse(body: bytes) -> list[Change]:
    """The changes in a change set's JSON body; BadRequestError or PayloadTooLargeError saying
    what is wrong (and where) otherwise."""
    try:
        document = json.loads(body)
    except RecursionError:
        raise BadRequestError("Malformed change set: nested too deeply") from None
    except ValueError as exc:
        raise BadRequestError(f"Malformed change set: not JSON: {exc}") from None
    if not isinstance(document, dict) or set(document) != {"changes"}:
        raise BadRequestError('Malformed change set: expected {"changes": [...]} and nothing else')
    items = document["changes"]
    if not isinstance(items, list) or not items:
        raise BadRequestError("Malformed change set: 'changes' must be a non-empty list")
    if len(items) > defaults.MAX_CHANGES:
        raise PayloadTooLargeError(
            f"Change set too large: {len(items)} changes, at most {defaults.MAX_CHANGES}"
        )
    changes = [_change(index, item) for index, item in enumerate(items)]
    seen: set[str] = set()
    for change in changes:
        if change.key in seen:
            raise BadRequestError(f"Malformed change set: key {change.key!r} is named twice")
        seen.add(change.key)
    return changes


def _change(index: int, item: object) -> Change:
    where = f"Malformed change set: change {index}"
    if not isinstance(item, dict):
        raise BadRequestError(f"{where} is not an object")
    unknown = set(item) - _FIELDS
    if unknown:
        raise BadRequestError(f"{where}: unknown field {sorted(unknown)[0]!r}")
    key = item.get("key")
    if not isinstance(key, str):
        raise BadRequestError(f"{where}: 'key' must be text")
    try:
        validate_key(key, new=True)
    except BadRequestError as exc:
        raise BadRequestError(f"{where}: {exc}") from None
    version = item.get("version")
    if type(version) is not int or not -_INT_MAX <= version <= _INT_MAX:
        raise BadRequestError(f"{where}: 'version' must be a 32-bit integer")
    given = [name for name in ("payload_utf8", "payload_base64", "empty") if name in item]
    if len(given) != 1:
        raise BadRequestError(
            f"{where}: give exactly one of 'payload_utf8', 'payload_base64' or 'empty': true"
        )
    payload: bytes | None
    if given[0] == "empty":
        if item["empty"] is not True:
            raise BadRequestError(f"{where}: 'empty' can only be true")
        payload = None
    elif given[0] == "payload_utf8":
        if not isinstance(item["payload_utf8"], str):
            raise BadRequestError(f"{where}: 'payload_utf8' must be text")
        try:
            payload = item["payload_utf8"].encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequestError(f"{where}: 'payload_utf8' holds a lone surrogate") from None
    else:
        text = item["payload_base64"]
        try:
            payload = base64.b64decode(text, validate=True) if isinstance(text, str) else None
        except (binascii.Error, ValueError):
            payload = None
        if payload is None:
            raise BadRequestError(f"{where}: 'payload_base64' is not base64")
    comment = item.get("comment")
    if comment is not None and not isinstance(comment, str):
        raise BadRequestError(f"{where}: 'comment' must be text")
    return Change(key, version, payload, comment)
