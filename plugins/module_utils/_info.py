# Copyright: Rainer for Python and Ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the rainer.rainer collection, as the leading underscore of the file name says (the
# convention of community.hashi_vault and community.general): only this collection's plugins import
# it, and its names may change in any release without notice.

"""The logic of ``rainer.rainer.rainer_info``, shared by the module and its action plugin.

:func:`run_info` reads one key (its head or a version, its history), waits for a key to reach
a version (blocking reads, ``wait_for``), or lists heads: every key, the keys named in
``keys``, or those under ``prefix`` (one request each), with or without payloads.
"""

from __future__ import annotations

import time

from ansible_collections.rainer.rainer.plugins.module_utils._client import (
    WAIT_SLICE,
    RainerCommit,
    RainerError,
    RainerNotFoundError,
)
from ansible_collections.rainer.rainer.plugins.module_utils._common import (
    FORMATS,
    RainerTaskError,
    argument_spec,
    describe_commit,
)

#: History entries returned when history_limit is not set: a server's default page.
HISTORY_DEFAULT = 100
#: Seconds wait_for waits when its timeout is not set.
WAIT_DEFAULT_TIMEOUT = 300
#: The pause between reads of a server that answers a blocking read at once (one that does not
#: know ?index=&wait=, such as the original Rainer's).
POLL_PAUSE = 1.0

INFO_ARGUMENT_SPEC = argument_spec(dict(
    key=dict(type="str", no_log=False),
    keys=dict(type="list", elements="str", no_log=False),
    prefix=dict(type="str"),
    version=dict(type="int"),
    format=dict(type="str", choices=list(FORMATS)),
    payloads=dict(type="bool", default=True),
    history=dict(type="bool", default=False),
    history_limit=dict(type="int"),
    history_before=dict(type="int"),
    all=dict(type="bool", default=False),
    wait_for=dict(
        type="dict",
        options=dict(
            version=dict(type="int"),
            changed_from=dict(type="int"),
            timeout=dict(type="float", default=WAIT_DEFAULT_TIMEOUT),
        ),
        mutually_exclusive=[("version", "changed_from")],
        required_one_of=[("version", "changed_from")],
    ),
))

INFO_MODULE_KWARGS = dict(
    mutually_exclusive=[("key", "keys"), ("key", "prefix"), ("version", "wait_for")],
    required_by=dict(version=("key",), history_limit=("key",), history_before=("key",), wait_for=("key",)),
    supports_check_mode=True,
)


def run_info(client, params, check_mode=False, diff=False, sleep=time.sleep, clock=time.monotonic):
    """Read one key (head, version, history; optionally after waiting for it), or list heads.

    Never changes anything, so check mode and diff mode make no difference.
    """
    del check_mode, diff
    key = params.get("key")
    fmt = params.get("format")
    payloads = params.get("payloads") is not False
    if fmt and not payloads:
        raise RainerTaskError("format needs the payloads: leave payloads out (or true) to parse them", key=key)
    try:
        if key is None:
            return _listing(client, params, fmt, payloads)
        result = dict(changed=False, key=key, exists=False, commit=None)
        if params.get("wait_for"):
            commit, waited = _wait(client, key, params["wait_for"], payloads, sleep, clock)
            result["waited"] = round(waited, 3)
        else:
            commit = _read(client, key, params.get("version"), payloads)
        if commit is not None:
            described = describe_commit(commit, fmt)
            result.update(exists=True, version=commit.version,
                          commit={name: described[name] for name in commit.meta})
            if payloads:
                result.update(payload=described.get("payload"), payload_base64=described.get("payload_base64"))
                if fmt:
                    result["value"] = described.get("value")
        if params.get("history"):
            result["history"] = _history(client, key, params)
        return result
    except RainerError as exc:
        raise RainerTaskError(exc.message, key=key, **exc.to_dict())


def _listing(client, params, fmt, payloads):
    if params.get("history"):
        raise RainerTaskError("history needs key")
    keys = params.get("keys")
    heads = client.list(all=bool(params.get("all")), payload=payloads, keys=keys, prefix=params.get("prefix"))
    commits = {name: describe_commit(commit, fmt, strict=False) for name, commit in sorted(heads.items())}
    result = dict(changed=False, commits=commits, key_names=sorted(commits))
    if keys is not None:
        result["missing"] = [name for name in dict.fromkeys(keys) if name not in commits]
    return result


def _read(client, key, version, payloads):
    """The key's head (or ``version``): with its payload, or just its metadata; None when missing."""
    try:
        if payloads:
            return client.get(key, version)
        return RainerCommit(client.meta(key, version), None)
    except RainerNotFoundError:
        return None


def _history(client, key, params):
    limit = params.get("history_limit")
    if limit is not None and limit < 1:
        raise RainerTaskError("history_limit must be 1 or more, not %s" % limit, key=key)
    try:
        history = client.history(key, limit=limit or HISTORY_DEFAULT, before=params.get("history_before"))
    except RainerNotFoundError:
        history = []
    return [entry.meta for entry in history]


def _wait(client, key, wait_for, payloads, sleep, clock):
    """Blocking reads of ``key`` until its newest version is above an index, or a timeout.

    ``version: N`` waits for version N or a later one (index N - 1); ``changed_from: N`` for a
    version after N (index N). Each read asks the server to hold the answer until a commit to
    the key (a tombstone counts) or for at most WAIT_SLICE seconds, so a long wait is a few
    quiet requests. Returns (commit, seconds waited); a timeout fails the task.
    """
    target = wait_for.get("version")
    if target is not None:
        if target < 1:
            raise RainerTaskError("wait_for.version must be 1 or more, not %s" % target, key=key)
        index = target - 1
        goal = "reach version %s" % target
    else:
        index = wait_for.get("changed_from")
        if index is None or index < 0:
            raise RainerTaskError("wait_for needs version (1 or more) or changed_from (0 or more)", key=key)
        goal = "get a version after %s" % index
    timeout = wait_for.get("timeout")
    timeout = WAIT_DEFAULT_TIMEOUT if timeout is None else float(timeout)
    if timeout < 0:
        raise RainerTaskError("wait_for.timeout must be 0 or more seconds, not %g" % timeout, key=key)
    started = clock()
    deadline = started + timeout
    while True:
        asked = clock()
        seconds = min(max(0.0, deadline - asked), WAIT_SLICE)
        commit = client.watch(key, index, seconds, payload=payloads)
        current = commit.version if commit is not None else 0
        now = clock()
        if current > index:
            return commit, now - started
        if now >= deadline:
            state = "its newest version is %s" % current if commit is not None else "it does not exist"
            raise RainerTaskError(
                "Key %r did not %s within %g s: %s" % (key, goal, timeout, state),
                key=key, version=current, exists=commit is not None, waited=round(now - started, 3))
        if now - asked < min(seconds, POLL_PAUSE) / 2:
            # answered at once without the condition: a server that does not block; poll it
            sleep(min(POLL_PAUSE, max(0.0, deadline - now)))
