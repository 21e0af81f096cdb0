# Copyright: Rainer for Python and Ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the rainer.rainer collection, as the leading underscore of the file name says (the
# convention of community.hashi_vault and community.general): only this collection's plugins import
# it, and its names may change in any release without notice.

"""The logic of ``rainer.rainer.rainer_changeset``, shared by the module and its action plugin.

:func:`run_changeset` reads the heads of every key of the set in one request, plans each
key exactly as ``rainer_commit`` decides for one key (the same comparison of ``content`` and
``value``), and when anything needs a change posts every change in one ``POST /diary``: the
server saves all of them in one transaction, or none. A 409 from a concurrent writer makes it
read and plan again.
"""

from __future__ import annotations

from ansible_collections.rainer.rainer.plugins.module_utils._client import (
    MAX_CHANGES,
    RainerChangeSetConflictError,
    RainerError,
)
from ansible_collections.rainer.rainer.plugins.module_utils._commit import (
    CONFLICT_RETRIES_OPTION,
    conflict_retries,
    desired,
    needs_change,
    stale_reason,
    text_diff,
)
from ansible_collections.rainer.rainer.plugins.module_utils._common import FORMATS, RainerTaskError, argument_spec

CHANGE_OPTIONS = dict(
    key=dict(type="str", required=True, no_log=False),
    content=dict(type="str"),
    value=dict(type="raw"),
    format=dict(type="str", default="json", choices=list(FORMATS)),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    comment=dict(type="str"),
)

CHANGESET_ARGUMENT_SPEC = argument_spec(dict(
    changes=dict(
        type="list",
        elements="dict",
        required=True,
        options=CHANGE_OPTIONS,
        mutually_exclusive=[("content", "value")],
        required_if=[("state", "present", ("content", "value"), True)],
    ),
    comment=dict(type="str", default=""),
    expected_versions=dict(type="dict"),
    conflict_retries=dict(CONFLICT_RETRIES_OPTION),
), commits=True)

CHANGESET_MODULE_KWARGS = dict(supports_check_mode=True)


def _expected_versions(params, keys):
    """``expected_versions`` as a dict key -> int, checked against the keys of the set."""
    given = params.get("expected_versions") or {}
    expected = {}
    for key, version in given.items():
        if key not in keys:
            raise RainerTaskError("expected_versions names %r, which is not a key of changes" % key)
        try:
            number = int(str(version).strip())
        except ValueError:
            number = -1
        if number < 0:
            raise RainerTaskError("expected_versions[%r] must be 0 (the key must not exist) or a version, not %r"
                                  % (key, version))
        expected[key] = number
    return expected


def _check(changes):
    if not changes:
        raise RainerTaskError("changes is empty: a change set needs at least one key")
    if len(changes) > MAX_CHANGES:
        raise RainerTaskError("a change set holds at most %d changes, not %d: split it" % (MAX_CHANGES, len(changes)))
    seen = set()
    for change in changes:
        key = change["key"]
        if key in seen:
            raise RainerTaskError("key %r is named twice in changes: a change set changes each key once" % key,
                                  key=key)
        seen.add(key)
        if change.get("state") != "absent" and change.get("content") is None and change.get("value") is None:
            raise RainerTaskError("the change of key %r needs content or value (or state: absent)" % key, key=key)


def _action(change, head, changing):
    if not changing:
        return "unchanged"
    if change.get("state") == "absent":
        return "delete"
    return "create" if head is None or head.empty else "update"


def _plan(heads, changes, wanted, expected):
    """One entry per change: its key, head, wanted payload, action and the version it makes."""
    plan = []
    stale = []
    for change, (payload, same) in zip(changes, wanted):
        key = change["key"]
        head = heads.get(key)
        head_version = head.version if head is not None else 0
        changing = needs_change(change, head, same)
        entry = dict(change=change, key=key, head=head, payload=payload, action=_action(change, head, changing),
                     version=head_version + 1 if changing else head_version)
        if changing and key in expected and expected[key] != head_version:
            stale.append(dict(key=key, expected_version=expected[key], current_version=head_version))
        plan.append(entry)
    if stale:
        raise RainerTaskError(
            "expected_versions do not match the server, so nothing was written: "
            + "; ".join("%r is at version %s, not %s (%s)"
                        % (s["key"], s["current_version"], s["expected_version"],
                           stale_reason(s["expected_version"], s["current_version"]))
                        for s in stale),
            stale=stale)
    return plan


def _outcome(plan, commits):
    """The task's per-key report; ``commits`` maps keys to the commit now (or planned) at their head."""
    report = []
    for entry in plan:
        previous = entry["head"].meta if entry["head"] is not None else None
        report.append(dict(key=entry["key"], action=entry["action"], version=entry["version"], previous=previous,
                           commit=commits.get(entry["key"], previous)))
    return report


def run_changeset(client, params, check_mode=False, diff=False):
    """Make the newest commit of every key of ``params['changes']`` what it says, atomically.

    Returns the task result; raises :class:`RainerTaskError` to fail the task.
    """
    changes = params.get("changes") or []
    _check(changes)
    keys = [change["key"] for change in changes]
    expected = _expected_versions(params, set(keys))
    wanted = [(b"", None) if change.get("state") == "absent" else desired(change) for change in changes]
    comment = params.get("comment") or ""
    retries = conflict_retries(params)
    attempts = 0
    try:
        while True:
            heads = client.list(all=True, payload=True, keys=keys)
            plan = _plan(heads, changes, wanted, expected)
            moving = [entry for entry in plan if entry["action"] != "unchanged"]
            result = dict(changed=bool(moving), changed_keys=[entry["key"] for entry in moving], commits=[])
            if not moving:
                result["changes"] = _outcome(plan, {})
                return result
            if diff:
                diffs = [text_diff(entry["key"], entry["head"], entry["payload"], entry["version"]) for entry in moving]
                diffs = [one for one in diffs if one is not None]
                if diffs:
                    result["diff"] = diffs

            if check_mode:
                author = client.commit_author()
                planned = [dict(key=entry["key"], version=entry["version"], author=author,
                                comment=comment if entry["change"].get("comment") is None else entry["change"]["comment"],
                                mtime=None, empty=entry["action"] == "delete") for entry in moving]
                result["commits"] = planned
                result["changes"] = _outcome(plan, {meta["key"]: meta for meta in planned})
                return result

            try:
                written = client.commit_changes(
                    [dict(key=entry["key"], version=entry["version"], payload=entry["payload"],
                          empty=entry["action"] == "delete", comment=entry["change"].get("comment"))
                     for entry in moving],
                    comment=comment)
            except RainerChangeSetConflictError as exc:
                if attempts >= retries:
                    raise RainerTaskError("Gave up after %d conflicts with concurrent writers (last: %s)"
                                          % (attempts + 1, exc.message), key=exc.conflicts[0].key, **exc.to_dict())
                attempts += 1
                continue
            result["commits"] = written
            result["changes"] = _outcome(plan, {meta["key"]: meta for meta in written})
            return result
    except RainerError as exc:
        details = exc.to_dict()
        if getattr(exc, "key", None):
            details["key"] = exc.key
        raise RainerTaskError(exc.message, **details)
