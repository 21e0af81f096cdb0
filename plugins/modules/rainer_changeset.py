#!/usr/bin/python
# Copyright: Rainer for Python and Ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: rainer_changeset
short_description: Commit several keys to a Rainer server together, all or nothing
version_added: 0.1.0
description:
  - Makes the newest commit of every key in O(changes) equal to what its entry says, in one change set
    that the server saves in one transaction, so every key changes or none does. A deploy that changes a
    web tier's settings and the feature flags it needs can never leave half of them behind.
  - Each entry is decided as M(rainer.rainer.rainer_commit) decides for one key (O(changes[].content) compared byte
    for byte, O(changes[].value) compared as data, O(changes[].state=absent) for a tombstone), and only the keys that
    differ are committed.
  - Reads the heads of all keys in one request (C(GET /diary?key=...)). When nothing differs, that is all,
    and the task reports no change, so re-running a successful deploy is V(ok). Otherwise it posts every
    change in one more request (C(POST /diary)).
  - Commits are optimistic. When a concurrent writer commits one of the keys between the read and the post,
    the server refuses the whole set (409) and the module reads the heads again and plans again
    (O(conflict_retries) times). With O(expected_versions), a key that moved fails the task and nothing is written.
  - Check mode (C(--check)) shows the plan, that is which keys would be created, updated or deleted, and the
    version each would get. Diff mode (C(--diff)) shows each changing key's payload before and after.
  - When the task runs on the controller (local connection, or C(delegate_to) localhost), the action
    plugin of the same name runs this module's code inside the controller process. Options, check and
    diff mode and return values are the same.
# The authors are named in galaxy.yml. An author line here must name a GitHub account as "(@name)"
# or say "(!UNKNOWN)", which ansible-doc shows to every reader; they have no account to name here.
author: []
extends_documentation_fragment:
  - rainer.rainer.connection
  - rainer.rainer.connection.author
  - rainer.rainer.attributes
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
  - ansible.builtin.action_common_attributes.flow
options:
  changes:
    description:
      - The keys of the change set and what each should hold, at most 1000, each key once.
    type: list
    elements: dict
    required: true
    suboptions:
      key:
        description:
          - The key.
        type: str
        required: true
      content:
        description:
          - The payload as a string, compared with the server's payload byte for byte (UTF-8).
          - Mutually exclusive with O(changes[].value).
        type: str
      value:
        description:
          - Any data, written in O(changes[].format) and compared as data with the server's payload parsed
            in that format, so a different key order or whitespace on the server is no change.
          - Mutually exclusive with O(changes[].content).
        type: raw
      format:
        description:
          - How O(changes[].value) is written and how the server's payload is parsed for the comparison.
          - V(json) writes sorted keys, a two-space indent and a trailing newline; V(yaml) writes
            block-style YAML with sorted keys (it needs PyYAML where the task runs).
        type: str
        choices: [json, yaml]
        default: json
      state:
        description:
          - V(present) makes the key's head carry O(changes[].content) or O(changes[].value).
          - V(absent) commits an empty commit (a tombstone) unless the key is already missing or deleted.
        type: str
        choices: [present, absent]
        default: present
      comment:
        description:
          - The comment recorded for this key, instead of O(comment).
        type: str
  comment:
    description:
      - Comment recorded with every commit of the set (C(X-Rainer-Comment)).
    type: str
    default: ''
  expected_versions:
    description:
      - A dict of key to the head version the task expects for it, V(0) meaning the key must not exist yet;
        keys left out are not checked. Every key named must be a key of O(changes).
      - When a key needs a change and its head's version differs, the task fails naming every such key and
        both versions, and writes nothing. A key that already holds what the task wants is no change
        whatever its version, so a re-run after a successful deploy stays green.
      - Typically the versions a pull request was reviewed against, for example from M(rainer.rainer.rainer_info)
        or C(rainer plan).
    type: dict
  conflict_retries:
    description:
      - How many times to read the heads again and plan again after the server refused the set
        because a concurrent writer committed one of its keys (409). O(expected_versions) are checked
        again on each plan.
    type: int
    default: 3
attributes:
  check_mode:
    support: full
    details: Reads the heads and reports the plan (RV(changes), RV(commits) with C(mtime) V(null)); writes nothing.
  diff_mode:
    support: full
    details: Shows each changing key's payload before and after as text; binary payloads get none.
notes:
  - Why a module of its own rather than a list in M(rainer.rainer.rainer_commit) - a change set has other
    options (one O(expected_versions) dict, a comment per key) and another result (one report per key),
    and its name says in the playbook that the keys go together, all or nothing.
  - The server takes at most 1000 changes and 16 MiB of JSON per change set; split larger ones.
  - A server in front of another Rainer server (C(rainer serve --database http://...)) cannot save change
    sets and answers 501.
seealso:
  - module: rainer.rainer.rainer_commit
  - module: rainer.rainer.rainer_info
  - plugin: rainer.rainer.rainer
    plugin_type: lookup
"""

EXAMPLES = r"""
- name: Release 7 of the web tier, all or nothing
  rainer.rainer.rainer_changeset:
    url: http://127.0.0.1:8080/diary
    comment: release 7
    changes:
      - key: web.json
        value: {listen: 8080, workers: 8}
      - key: flags.yaml
        value: {new_checkout: true}
        format: yaml
      - key: motd.txt
        content: "Release 7 is out\n"
        comment: new banner
      - key: legacy.json
        state: absent

- name: Deploy only over the versions a pull request was reviewed against
  rainer.rainer.rainer_changeset:
    url: "{{ rainer_url }}"
    token: "{{ vault_rainer_token }}"
    comment: "{{ lookup('ansible.builtin.env', 'CI_COMMIT_TITLE', default='deploy') }}"
    changes:
      - key: web.json
        value: "{{ lookup('ansible.builtin.file', 'config/web.json') | from_json }}"
      - key: db.json
        value: "{{ lookup('ansible.builtin.file', 'config/db.json') | from_json }}"
    expected_versions:
      web.json: 4
      db.json: 2

- name: The plan, without writing (run with --check --diff to see each payload)
  rainer.rainer.rainer_changeset:
    url: http://127.0.0.1:8080/diary
    changes:
      - key: web.json
        value: {listen: 8080, workers: 8}
  check_mode: true
  register: plan

- name: Show which keys would change
  ansible.builtin.debug:
    msg: "{{ plan.changes | map(attribute='action') | zip(plan.changes | map(attribute='key')) | list }}"
"""

RETURN = r"""
changed_keys:
  description: The keys that changed (in check mode, that would change), in the order of O(changes).
  returned: success
  type: list
  elements: str
  sample: [web.json, legacy.json]
changes:
  description: One report per entry of O(changes), in order.
  returned: success
  type: list
  elements: dict
  contains:
    key:
      description: The key.
      type: str
      returned: success
    action:
      description: What the set did (or, in check mode, would do) to the key.
      type: str
      returned: success
      choices: [create, update, delete, unchanged]
    version:
      description: The key's head version after the task (in check mode, the version it would get); V(0) for a missing key.
      type: int
      returned: success
    previous:
      description: Metadata of the key's head before the task, V(null) when the key did not exist.
      type: dict
      returned: success
    commit:
      description:
        - Metadata of the key's head after the task, V(null) when the key does not exist.
        - In check mode, for a changing key, the commit that would be written (C(mtime) is V(null)).
      type: dict
      returned: success
  sample:
    - key: web.json
      action: update
      version: 5
      previous: {key: web.json, version: 4, author: alice, comment: '', mtime: '2026-01-02T03:04:05.678Z', empty: false}
      commit: {key: web.json, version: 5, author: ci-bot, comment: release 7, mtime: '2026-01-03T10:00:00.000Z', empty: false}
commits:
  description:
    - Metadata of the commits the change set wrote, in order (all share one C(mtime)); empty when nothing changed.
    - In check mode, the commits it would write, with C(mtime) V(null).
  returned: success
  type: list
  elements: dict
stale:
  description: The keys whose head did not match O(expected_versions), each with C(key), C(expected_version) and C(current_version).
  returned: when O(expected_versions) did not match
  type: list
  elements: dict
  sample: [{key: web.json, expected_version: 4, current_version: 5}]
conflicts:
  description: The server's 409 answer, every stale change of the last try, when O(conflict_retries) ran out.
  returned: when conflicts ran out the retries
  type: list
  elements: dict
  sample: [{key: web.json, expectedVersion: 6, providedVersion: 5}]
status:
  description: HTTP status of the failed request, V(null) when no answer came.
  returned: failure
  type: int
body:
  description: Body of the failed request's answer.
  returned: failure
  type: str
url:
  description: URL of the failed request.
  returned: failure
  type: str
error:
  description:
    - Kind of failure, for example C(RainerChangeSetConflictError), C(RainerBadRequestError),
      C(RainerPayloadTooLargeError), C(RainerUnreachableError), C(RainerUnauthorizedError) (401)
      or C(RainerForbiddenError) (403).
  returned: failure
  type: str
principal:
  description: Who the server took the task for, when it refused access and said so.
  returned: when the server refused access (401 or 403)
  type: str
  sample: ci-bot
permission:
  description: The permission the principal lacks (V(write) for a key of the set).
  returned: when the server refused access (401 or 403)
  type: str
  sample: write
key:
  description: The key the failure is about, when there is one (the key refused, or the first conflict's).
  returned: failure
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rainer.rainer.plugins.module_utils._changeset import (
    CHANGESET_ARGUMENT_SPEC,
    CHANGESET_MODULE_KWARGS,
    run_changeset,
)
from ansible_collections.rainer.rainer.plugins.module_utils._common import run_module


def main():
    module = AnsibleModule(argument_spec=CHANGESET_ARGUMENT_SPEC, **CHANGESET_MODULE_KWARGS)
    run_module(module, run_changeset)


if __name__ == "__main__":
    main()
