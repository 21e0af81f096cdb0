#!/usr/bin/python
# Copyright: Rainer for Python and Ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: rainer_info
short_description: Read commits, history and key listings from a Rainer server
version_added: 0.1.0
description:
  - Reads without changing anything.
  - With O(key), returns the key's head (or O(version)) with metadata and payload, and with
    O(format) the payload parsed as data. A missing key is not an error; RV(exists) is V(false).
  - With O(history=true), adds the key's metadata history, newest first, in one more request (one per 1000 entries).
  - With O(wait_for), first waits until the key reaches a version, with blocking reads that the server answers
    as soon as a commit arrives, so a pipeline can wait for another one's deploy. A timeout fails the task.
  - Without O(key), returns the newest commit of every key, of the keys in O(keys), or of the keys under O(prefix),
    in one request (one per 1000 keys of O(keys)).
  - O(payloads=false) reads metadata only, which is much less to transfer for large payloads.
  - When the task runs on the controller (local connection, or C(delegate_to) localhost), the action
    plugin of the same name runs this module's code inside the controller process.
# The authors are named in galaxy.yml. An author line here must name a GitHub account as "(@name)"
# or say "(!UNKNOWN)", which ansible-doc shows to every reader; they have no account to name here.
author: []
extends_documentation_fragment:
  - rainer.rainer.connection
  - rainer.rainer.attributes
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.actiongroups
  - ansible.builtin.action_common_attributes.flow
options:
  key:
    description:
      - The key to read. Without it, every key's newest commit is returned (or those O(keys) and O(prefix) select).
    type: str
  keys:
    description:
      - Without O(key), list only these keys, in one request. Keys that do not exist are left out of
        RV(commits) and named in RV(missing).
      - Mutually exclusive with O(key).
    type: list
    elements: str
  prefix:
    description:
      - Without O(key), list only the keys that start with this text, in one request.
      - With O(keys) too, only the keys of O(keys) that start with it.
      - Mutually exclusive with O(key).
    type: str
  payloads:
    description:
      - Whether to read payloads. With V(false), only metadata is read and returned (no RV(payload),
        RV(payload_base64) or RV(value)); for a single key that is C(GET /diary/KEY/meta).
      - V(false) cannot be combined with O(format).
    type: bool
    default: true
  version:
    description:
      - Read this version of O(key) instead of its head.
    type: int
  format:
    description:
      - Parse payloads as V(json) or V(yaml) and return them as RV(value) (for each key in RV(commits)).
      - With O(key), the task fails when the payload does not parse. In a listing, a key whose payload
        does not parse gets C(parse_error) instead of C(value). An empty commit's value is V(null).
    type: str
    choices: [json, yaml]
  history:
    description:
      - Also return the metadata of the key's commits, newest first (needs O(key)).
    type: bool
    default: false
  history_limit:
    description:
      - Return at most this many history entries (1 or more), newest first.
      - When not set, at most 100 entries are returned.
      - The server answers at most 1000 entries per request; for more, the module asks for one page
        after the other.
    type: int
  history_before:
    description:
      - Only return history entries older than this version.
      - With O(history_limit), pages through a long history, one task per page.
    type: int
  all:
    description:
      - Without O(key), also list keys whose newest commit is empty (deleted keys).
    type: bool
    default: false
  wait_for:
    description:
      - Wait until O(key) reaches a version before reading it, for example until another pipeline's commit
        has landed. Needs O(key); cannot be combined with O(version).
      - The module asks the server to hold each read until a commit to the key arrives (a blocking read,
        C(GET /diary/KEY?index=N&wait=...)), at most 50 seconds per request, and repeats it until the
        condition holds or O(wait_for.timeout) has passed. A commit wakes it within milliseconds; an
        idle wait costs one request per 50 seconds.
      - Tombstones count, since they are versions too. A key that does not exist has version 0.
      - A server that does not block (such as the original Rainer's) is read once a second instead.
      - On success the result is the key's commit that met the condition (it may be newer than asked for)
        and RV(waited). On timeout the task fails, saying which version the key is at.
    type: dict
    suboptions:
      version:
        description:
          - Wait until the key's newest version is this one or a later one (1 or more).
        type: int
      changed_from:
        description:
          - Wait until the key has a version newer than this one, typically RV(version) from an earlier read.
            V(0) waits for a key that does not exist yet to be created.
        type: int
      timeout:
        description:
          - The longest time to wait, in seconds. V(0) checks once without waiting.
          - This is the whole wait. The connection option O(timeout) keeps its meaning for each request,
            which is given its blocking time plus O(timeout) to answer.
        type: float
        default: 300
attributes:
  check_mode:
    support: full
    details: Reads only, so it runs the same in check mode.
  diff_mode:
    support: none
notes:
  - Reading records nothing, so this module takes no O(rainer.rainer.rainer_commit#module:author). When C(module_defaults) for the
    action group C(group/rainer.rainer.rainer) set one for the modules that commit, this module leaves it aside.
seealso:
  - module: rainer.rainer.rainer_commit
  - module: rainer.rainer.rainer_changeset
  - plugin: rainer.rainer.rainer
    plugin_type: lookup
"""

EXAMPLES = r"""
- name: Read a key's head and parse it
  rainer.rainer.rainer_info:
    url: http://127.0.0.1:8080/diary
    key: web.json
    format: json
  register: web

- name: Use it
  ansible.builtin.debug:
    msg: "web.json is at version {{ web.version }} and listens on {{ web.value.listen }}"
  when: web.exists

- name: Read version 2 and the last ten commits' metadata
  rainer.rainer.rainer_info:
    url: http://127.0.0.1:8080/diary
    key: web.json
    version: 2
    history: true
    history_limit: 10
  register: old

- name: List every key, deleted ones too
  rainer.rainer.rainer_info:
    url: http://127.0.0.1:8080/diary
    all: true
  register: everything

- name: Metadata of two keys in one request, without their payloads
  rainer.rainer.rainer_info:
    url: http://127.0.0.1:8080/diary
    keys: [web.json, db.json]
    payloads: false
  register: two

- name: Every key under app., parsed
  rainer.rainer.rainer_info:
    url: http://127.0.0.1:8080/diary
    prefix: app.
    format: json
  register: app

- name: Wait up to ten minutes until the release pipeline has committed version 7 of web.json
  rainer.rainer.rainer_info:
    url: http://127.0.0.1:8080/diary
    key: web.json
    format: json
    wait_for:
      version: 7
      timeout: 600
  register: released

- name: Wait for the next commit to a key after the version read earlier
  rainer.rainer.rainer_info:
    url: http://127.0.0.1:8080/diary
    key: web.json
    payloads: false
    wait_for:
      changed_from: "{{ web.version }}"
      timeout: 60

- name: Remember the version a CI pipeline reviewed
  ansible.builtin.set_fact:
    reviewed_version: "{{ web.version | default(0) }}"
"""

RETURN = r"""
key:
  description: The key read.
  returned: when O(key) is given
  type: str
exists:
  description: Whether the key (or that version of it) exists. An empty commit exists.
  returned: when O(key) is given
  type: bool
version:
  description:
    - Version of the commit read.
    - When O(wait_for) timed out, the version the key was at (V(0) when it does not exist).
  returned: when O(key) is given and RV(exists), and when O(wait_for) timed out
  type: int
  sample: 3
waited:
  description: Seconds spent waiting for O(wait_for) (also when it timed out).
  returned: when O(wait_for) is given
  type: float
  sample: 12.407
commit:
  description: Metadata of the commit read, V(null) when it does not exist.
  returned: when O(key) is given
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
    empty:
      description: Whether it is an empty commit (a tombstone).
      type: bool
      returned: success
payload:
  description: The payload as text, V(null) when it is not UTF-8.
  returned: when O(key) is given, RV(exists) and O(payloads) is true
  type: str
payload_base64:
  description: The payload, base64-encoded (also for binary payloads).
  returned: when O(key) is given, RV(exists) and O(payloads) is true
  type: str
value:
  description: The payload parsed as O(format).
  returned: when O(format) is given and RV(exists)
  type: raw
history:
  description: Metadata of the key's commits, newest first (same fields as RV(commit)).
  returned: when O(history=true)
  type: list
  elements: dict
commits:
  description:
    - Without O(key), the newest commit of every key (or of those O(keys) and O(prefix) select); each has the
      metadata fields and, unless O(payloads=false), C(payload), C(payload_base64) and, with O(format), C(value)
      (or C(parse_error) when the payload does not parse).
  returned: when O(key) is not given
  type: dict
  sample:
    web.json:
      key: web.json
      version: 3
      author: alice
      comment: ''
      mtime: '2026-01-02T03:04:05.678Z'
      empty: false
      payload: "{\"listen\": 8080}\n"
      payload_base64: eyJsaXN0ZW4iOiA4MDgwfQo=
key_names:
  description: The listed keys, sorted.
  returned: when O(key) is not given
  type: list
  elements: str
missing:
  description: The keys of O(keys) that were not listed (they do not exist, or are deleted and O(all) is false).
  returned: when O(keys) is given
  type: list
  elements: str
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
    - Kind of failure, for example C(RainerNotFoundError), C(RainerUnreachableError), C(RainerTLSError),
      C(RainerUnauthorizedError) (401) or C(RainerForbiddenError) (403).
  returned: failure
  type: str
principal:
  description: Who the server took the task for, when it refused access and said so (V(anonymous) without credentials).
  returned: when the server refused access (401 or 403)
  type: str
  sample: ci-bot
permission:
  description: The permission the principal lacks (V(read) or V(write)).
  returned: when the server refused access (401 or 403)
  type: str
  sample: read
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.rainer.rainer.plugins.module_utils._common import run_module
from ansible_collections.rainer.rainer.plugins.module_utils._info import INFO_ARGUMENT_SPEC, INFO_MODULE_KWARGS, run_info


def main():
    module = AnsibleModule(argument_spec=INFO_ARGUMENT_SPEC, **INFO_MODULE_KWARGS)
    run_module(module, run_info)


if __name__ == "__main__":
    main()
