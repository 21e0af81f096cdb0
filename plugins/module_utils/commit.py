# -*- coding: utf-8 -*-
# Copyright: Rainer for Python and Ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The logic of ``rainer.rainer.rainer_commit``, shared by the module and its action plugin.

:func:`run_commit` is the one implementation: the module calls it on the
managed host, the action plugin calls it in the controller process. It reads
the key's head (one request), decides, and only when the head differs from
what the task asks for posts head+1 (a second request). A 409 from a
concurrent writer makes it read the head again and decide again.
"""

from __future__ import annotations

from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.rainer.rainer.plugins.module_utils.client import (
    RainerConflictError,
    RainerError,
    decode_payload,
)
from ansible_collections.rainer.rainer.plugins.module_utils.common import (
    FORMATS,
    ParseError,
    RainerTaskError,
    argument_spec,
    parse,
    serialize,
)

COMMIT_ARGUMENT_SPEC = argument_spec(dict(
    key=dict(type="str", required=True, no_log=False),
    content=dict(type="str"),
    value=dict(type="raw"),
    format=dict(type="str", default="json", choices=list(FORMATS)),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    comment=dict(type="str", default=""),
    expected_version=dict(type="int"),
    conflict_retries=dict(type="int", default=3),
))

COMMIT_MODULE_KWARGS = dict(
    mutually_exclusive=[("content", "value")],
    required_if=[("state", "present", ("content", "value"), True)],
    supports_check_mode=True,
)


def desired(params):
    """(payload bytes, comparison function) for state=present.

    ``params`` holds ``content`` or ``value`` (with ``format``): a task's options or one
    entry of a change set's ``changes``.
    """
    if params.get("content") is not None:
        payload = to_bytes(params["content"], encoding="utf-8", errors="surrogate_or_strict")

        def same(head):
            return head.payload == payload

        return payload, same

    fmt = params.get("format") or "json"
    value = params.get("value")
    payload = serialize(value, fmt)

    def same_value(head):
        if head.payload == payload:
            return True
        try:
            return parse(head.payload, fmt) == value
        except ParseError:
            return False

    return payload, same_value


def needs_change(params, head, same):
    if params.get("state") == "absent":
        return head is not None and not head.empty
    return head is None or head.empty or not same(head)


def text_diff(key, head, desired_payload, new_version):
    before = b"" if head is None or head.empty else head.payload
    before_text = decode_payload(before)
    after_text = decode_payload(desired_payload)
    if before_text is None or after_text is None:
        return None  # binary payloads get no diff
    return {
        "before": before_text,
        "after": after_text,
        "before_header": "%s (version %s)" % (key, head.version) if head is not None else "%s (missing)" % key,
        "after_header": "%s (version %s)" % (key, new_version),
    }


def _read_head(client, key, conflict=None):
    head = client.head(key)
    if head is None and conflict is not None and (conflict.expected_version or 0) > 1:
        # A server that answers 404 for a deleted key still knows its versions.
        head = client.get(key, int(conflict.expected_version) - 1)
    return head


def run_commit(client, params, check_mode=False, diff=False):
    """Make the newest commit of ``params['key']`` equal to what ``params`` describe.

    Returns the task result; raises :class:`RainerTaskError` to fail the task.
    """
    key = params["key"]
    absent = params.get("state") == "absent"
    expected = params.get("expected_version")
    retries = max(0, params.get("conflict_retries") if params.get("conflict_retries") is not None else 3)
    if not absent and params.get("content") is None and params.get("value") is None:
        raise RainerTaskError("state=present needs content or value", key=key)
    if expected is not None and expected < 0:
        raise RainerTaskError("expected_version must be 0 (the key must not exist) or a version number", key=key)

    desired_payload, same = (b"", None) if absent else desired(params)
    conflict = None
    attempts = 0
    try:
        while True:
            head = _read_head(client, key, conflict)
            previous = head.meta if head is not None else None
            head_version = head.version if head is not None else 0
            result = dict(changed=False, key=key, version=head_version, commit=previous, previous=previous)

            if not needs_change(params, head, same):
                return result

            if expected is not None and expected != head_version:
                raise RainerTaskError(
                    "Key %r: expected_version is %s but the server's newest version is %s; "
                    "someone else committed in between, refusing to overwrite" % (key, expected, head_version),
                    key=key, expected_version=expected, current_version=head_version, previous=previous)

            new_version = head_version + 1
            if diff:
                diff_data = text_diff(key, head, desired_payload, new_version)
                if diff_data is not None:
                    result["diff"] = diff_data
            result["changed"] = True
            result["version"] = new_version

            if check_mode:
                result["commit"] = {
                    "key": key, "version": new_version, "author": client.commit_author(),
                    "comment": params.get("comment") or "", "mtime": None, "empty": absent,
                }
                return result

            try:
                result["commit"] = client.commit_once(key, new_version, desired_payload,
                                                      comment=params.get("comment") or "", empty=absent)
                return result
            except RainerConflictError as exc:
                conflict = exc
                if expected is not None:
                    found = (exc.expected_version or new_version) - 1
                    raise RainerTaskError(
                        "Key %r: expected_version is %s but another writer committed version %s first; "
                        "refusing to overwrite" % (key, expected, found),
                        key=key, expected_version=expected, current_version=found, **exc.to_dict())
                if attempts >= retries:
                    raise RainerTaskError(
                        "Key %r: gave up after %d conflicts with concurrent writers (last: %s)"
                        % (key, attempts + 1, exc.message), key=key, **exc.to_dict())
                attempts += 1
    except RainerError as exc:
        raise RainerTaskError(exc.message, key=key, **exc.to_dict())
