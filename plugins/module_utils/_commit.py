# Copyright: Rainer for Python and Ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the rainer.rainer collection, as the leading underscore of the file name says (the
# convention of community.hashi_vault and community.general): only this collection's plugins import
# it, and its names may change in any release without notice.

"""The logic of ``rainer.rainer.rainer_commit``, shared by the module and its action plugin.

:func:`run_commit` is the one implementation: the module calls it on the
managed host, the action plugin calls it in the controller process. It reads
the key's head (one request), decides, and only when the head differs from
what the task asks for posts head+1 (a second request). A 409 from a
concurrent writer makes it read the head again and decide again.
"""

from __future__ import annotations

from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.rainer.rainer.plugins.module_utils._client import (
    RainerConflictError,
    RainerError,
    decode_payload,
)
from ansible_collections.rainer.rainer.plugins.module_utils._common import (
    FORMATS,
    ParseError,
    RainerTaskError,
    argument_spec,
    parse,
    serialize,
)

#: How many times a commit (or a change set, which plans the same way) reads again and decides
#: again after a concurrent writer's 409: the default of both modules' conflict_retries.
CONFLICT_RETRIES = 3

CONFLICT_RETRIES_OPTION = dict(type="int", default=CONFLICT_RETRIES)

COMMIT_ARGUMENT_SPEC = argument_spec(dict(
    key=dict(type="str", required=True, no_log=False),
    content=dict(type="str"),
    value=dict(type="raw"),
    format=dict(type="str", default="json", choices=list(FORMATS)),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    comment=dict(type="str", default=""),
    expected_version=dict(type="int"),
    conflict_retries=dict(CONFLICT_RETRIES_OPTION),
), commits=True)

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


def conflict_retries(params):
    """How many times to read again and decide again after a 409: ``conflict_retries``, its default
    when left out (a caller that did not validate the options), never below 0."""
    retries = params.get("conflict_retries")
    return max(0, CONFLICT_RETRIES if retries is None else retries)


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
    retries = conflict_retries(params)
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
                    "Key %r: expected_version is %s but the newest version is %s; %s"
                    % (key, expected, head_version, stale_reason(expected, head_version)),
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


def stale_reason(expected, head_version):
    """Why a write with ``expected_version`` is refused, in terms of the versions the user sees."""
    if expected < head_version:
        return "version %s was committed after it, refusing to overwrite" % head_version
    return "the key has no version %s yet, refusing to write" % expected
