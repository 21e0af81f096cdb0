#!/usr/bin/python
# Copyright: Rainer for Python and Ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: rainer_commit
short_description: Commit a key's value to a Rainer server, only when it differs
version_added: 0.1.0
description:
  - Makes the newest commit of a key in a Rainer diary equal to what the task says.
  - Reads the key's head (one HTTP request) and only when it differs posts the next version
    (a second request). An unchanged run therefore costs one request and reports no change.
  - Commits are optimistic. A post names the version it creates; when a concurrent writer got there
    first, the server answers 409 and the module reads the head again and decides again
    (O(conflict_retries) times). With O(expected_version) it fails instead of deciding again.
  - O(state=absent) writes an empty commit (a tombstone) unless the key is already missing or empty.
    Rainer never forgets, so older versions stay readable.
  - When the task runs on the controller (local connection, or C(delegate_to) localhost), the action
    plugin of the same name runs this module's code inside the controller process, which is much
    faster in loops. Options, check and diff mode and return values are the same.
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
  key:
    description:
      - The key to commit.
    type: str
    required: true
  content:
    description:
      - The payload as a string, compared with the server's payload byte for byte (UTF-8).
      - Mutually exclusive with O(value).
    type: str
  value:
    description:
      - Any data (a dict, list, string, number, ...), written in O(format).
      - It is compared as data with the server's payload parsed in O(format), so a different key
        order or whitespace on the server never causes a change.
      - Mutually exclusive with O(content).
    type: raw
  format:
    description:
      - How O(value) is written and how the server's payload is parsed for the comparison.
      - V(json) writes sorted keys, a two-space indent and a trailing newline.
      - V(yaml) writes block-style YAML with sorted keys. It needs PyYAML where the task runs.
    type: str
    choices: [json, yaml]
    default: json
  state:
    description:
      - V(present) makes the head carry O(content) or O(value).
      - V(absent) commits an empty commit when the head exists and is not empty already.
    type: str
    choices: [present, absent]
    default: present
  comment:
    description:
      - Comment recorded with the commit (C(X-Rainer-Comment)).
    type: str
    default: ''
  expected_version:
    description:
      - The head version the task expects, V(0) meaning the key must not exist yet.
      - When a change is needed and the head's version differs, the task fails with a message naming
        both versions and writes nothing. When the head already holds the wanted payload, the task
        reports no change whatever the version, so a re-run after a successful commit stays green.
      - A conflict with a concurrent writer fails the task instead of being retried.
    type: int
  conflict_retries:
    description:
      - How many times to read the head again and decide again after a 409 conflict,
        when O(expected_version) is not set.
    type: int
    default: 3
attributes:
  check_mode:
    support: full
    details: Reads the head and reports which version it would write; writes nothing.
  diff_mode:
    support: full
    details: Shows the payload before and after as text; omitted for binary payloads.
notes:
  - The diff is only computed when C(--diff) is asked for.
seealso:
  - module: rainer.rainer.rainer_changeset
    description: Commit several keys together, all or nothing, after a plan shown in check and diff mode.
  - module: rainer.rainer.rainer_info
  - plugin: rainer.rainer.rainer
    plugin_type: lookup
"""

EXAMPLES = r"""
- name: Commit a JSON document (compared as data)
  rainer.rainer.rainer_commit:
    url: http://127.0.0.1:8080/diary
    key: web.json
    value:
      listen: 8080
      workers: 4
    comment: more workers

- name: Use module_defaults for the connection, commit plain text
  module_defaults:
    group/rainer.rainer.rainer:
      url: "{{ rainer_url }}"
      author: deploy-bot
  block:
    - name: Commit a text payload byte for byte
      rainer.rainer.rainer_commit:
        key: motd.txt
        content: "Welcome!\n"

    - name: Commit YAML
      rainer.rainer.rainer_commit:
        key: app.yaml
        value: "{{ app_settings }}"
        format: yaml

- name: Deploy only over the version that was reviewed
  rainer.rainer.rainer_commit:
    url: http://127.0.0.1:8080/diary
    key: web.json
    value: "{{ lookup('file', 'config/web.json') | from_json }}"
    expected_version: "{{ reviewed_version }}"

- name: Create a key only when it does not exist yet
  rainer.rainer.rainer_commit:
    url: http://127.0.0.1:8080/diary
    key: cluster-id
    content: "{{ 99999999 | random | string }}"
    expected_version: 0
  register: created
  failed_when: created is failed and 'expected_version' not in created.msg

- name: Delete a key (commits a tombstone; history stays)
  rainer.rainer.rainer_commit:
    url: http://127.0.0.1:8080/diary
    key: old.json
    state: absent

- name: Commit with a token on a server started with --auth (the server records the token's principal as author)
  rainer.rainer.rainer_commit:
    url: https://rainer.example.com:8443/diary
    ca_path: /etc/ssl/rainer-ca.pem
    token: "{{ vault_rainer_token }}"
    key: web.json
    value: {listen: 8080}

- name: Commit every file of a directory, fast on the controller
  rainer.rainer.rainer_commit:
    url: http://127.0.0.1:8080/diary
    key: "{{ item | basename }}"
    value: "{{ lookup('file', item) | from_json }}"
  loop: "{{ query('fileglob', 'config/*.json') }}"
  delegate_to: localhost
"""

RETURN = r"""
key:
  description: The key.
  returned: always
  type: str
  sample: web.json
version:
  description:
    - The head version after the task, V(0) when the key does not exist.
    - In check mode, the version that would be written when a change is needed.
  returned: success
  type: int
  sample: 4
commit:
  description:
    - Metadata of the head after the task, V(null) when the key does not exist.
    - In check mode with a change, the commit that would be written (C(mtime) is V(null)).
  returned: success
  type: dict
  contains:
    key:
      description: The key.
      type: str
      returned: success
    version:
      description: The commit's version.
      type: int
      returned: success
    author:
      description: Who committed it.
      type: str
      returned: success
    comment:
      description: The commit's comment.
      type: str
      returned: success
    mtime:
      description: When it was committed, ISO-8601 with milliseconds and zone.
      type: str
      returned: success
      sample: '2014-02-11T14:01:28.839-08:00'
    empty:
      description: Whether it is an empty commit (a tombstone).
      type: bool
      returned: success
previous:
  description: Metadata of the head before the task (same fields as RV(commit)), V(null) when the key did not exist.
  returned: success
  type: dict
  sample:
    key: web.json
    version: 3
    author: alice
    comment: first cut
    mtime: '2026-01-02T03:04:05.678Z'
    empty: false
expected_version:
  description: The O(expected_version) that did not match.
  returned: when O(expected_version) did not match
  type: int
current_version:
  description: The head's version when O(expected_version) did not match.
  returned: when O(expected_version) did not match
  type: int
status:
  description: HTTP status of the failed request, V(null) when no answer came.
  returned: failure
  type: int
body:
  description: Body of the failed request's answer.
  returned: failure
  type: str
  sample: Key not found
url:
  description: URL of the failed request.
  returned: failure
  type: str
error:
  description: Kind of failure, for example C(RainerConflictError), C(RainerUnreachableError), C(RainerHeaderTooLargeError),
    C(RainerTLSError), C(RainerUnauthorizedError) (401) or C(RainerForbiddenError) (403).
  returned: failure
  type: str
principal:
  description: Who the server took the task for, when it refused access and said so (V(anonymous) without credentials).
  returned: when the server refused access (401 or 403)
  type: str
  sample: ci-bot
permission:
  description: The permission the principal lacks (V(read) or V(write)), or V(commit as 'NAME') for an author it may not record.
  returned: when the server refused access (401 or 403)
  type: str
  sample: write
conflict:
  description: The server's 409 answer.
  returned: on a conflict
  type: dict
  sample: {"key": "web.json", "expectedVersion": 5, "providedVersion": 4}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rainer.rainer.plugins.module_utils._common import run_module
from ansible_collections.rainer.rainer.plugins.module_utils._commit import COMMIT_ARGUMENT_SPEC, COMMIT_MODULE_KWARGS, run_commit


def main():
    module = AnsibleModule(argument_spec=COMMIT_ARGUMENT_SPEC, **COMMIT_MODULE_KWARGS)
    run_module(module, run_commit)


if __name__ == "__main__":
    main()
