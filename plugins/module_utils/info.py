# -*- coding: utf-8 -*-
# Copyright: Rainer for Python and Ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The logic of ``rainer.rainer.rainer_info``, shared by the module and its action plugin."""

from __future__ import annotations

from ansible_collections.rainer.rainer.plugins.module_utils.client import RainerError, RainerNotFoundError
from ansible_collections.rainer.rainer.plugins.module_utils.common import (
    FORMATS,
    RainerTaskError,
    argument_spec,
    describe_commit,
)

#: History entries returned when history_limit is not set: a server's default page.
HISTORY_DEFAULT = 100

INFO_ARGUMENT_SPEC = argument_spec(dict(
    key=dict(type="str", no_log=False),
    version=dict(type="int"),
    format=dict(type="str", choices=list(FORMATS)),
    history=dict(type="bool", default=False),
    history_limit=dict(type="int"),
    history_before=dict(type="int"),
    all=dict(type="bool", default=False),
))

INFO_MODULE_KWARGS = dict(
    required_by=dict(version=("key",), history_limit=("key",), history_before=("key",)),
    supports_check_mode=True,
)


def run_info(client, params):
    """Read one key (head or version, optionally its history) or all heads. Never changes anything."""
    key = params.get("key")
    fmt = params.get("format")
    try:
        if key is None:
            if params.get("history"):
                raise RainerTaskError("history needs key")
            heads = client.list(all=bool(params.get("all")), payload=True)
            commits = dict((name, describe_commit(commit, fmt, strict=False)) for name, commit in sorted(heads.items()))
            return dict(changed=False, commits=commits, key_names=sorted(commits))

        result = dict(changed=False, key=key, exists=False, commit=None)
        try:
            commit = client.get(key, params.get("version"))
        except RainerNotFoundError:
            commit = None
        if commit is not None:
            described = describe_commit(commit, fmt)
            result.update(
                exists=True,
                version=commit.version,
                commit=dict((name, described[name]) for name in commit.meta),
                payload=described.get("payload"),
                payload_base64=described.get("payload_base64"),
            )
            if fmt:
                result["value"] = described.get("value")
        if params.get("history"):
            limit = params.get("history_limit")
            if limit is not None and limit < 1:
                raise RainerTaskError("history_limit must be 1 or more, not %s" % limit, key=key)
            try:
                history = client.history(key, limit=limit or HISTORY_DEFAULT, before=params.get("history_before"))
            except RainerNotFoundError:
                history = []
            result["history"] = [entry.meta for entry in history]
        return result
    except RainerError as exc:
        raise RainerTaskError(exc.message, key=key, **exc.to_dict())
