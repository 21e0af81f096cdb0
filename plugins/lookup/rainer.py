# -*- coding: utf-8 -*-
# Copyright: Rainer for Python and Ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: rainer
short_description: Read values and metadata of keys from a Rainer server
version_added: 0.1.0
description:
  - Returns the payload of each key given as a term, as text or, with O(format), as parsed data.
  - Several keys cost one HTTP request (the server's list of heads with payloads), not one per key.
    One key, or O(version), costs one request per key.
  - A missing key, or a key whose newest commit is empty (deleted), is an error naming the key and the
    server, unless O(default) is given, which is then returned for it.
  - Runs on the controller, so it costs milliseconds per task, also in loops.
author:
  - Rainer for Python and Ansible contributors (!UNKNOWN)
extends_documentation_fragment:
  - rainer.rainer.connection
  - rainer.rainer.connection.plugins
options:
  _terms:
    description: The keys to read.
    type: list
    elements: str
    required: true
  format:
    description:
      - Parse each payload as V(json) or V(yaml) and return the data instead of the text.
    type: str
    choices: [json, yaml]
  meta:
    description:
      - Return a dict of the commit's metadata (C(key), C(version), C(author), C(comment), C(mtime),
        C(empty)) plus C(value), the payload as text or, with O(format), as data.
    type: bool
    default: false
  version:
    description:
      - Read this version of every key instead of its newest commit.
    type: int
  default:
    description:
      - Returned for a key that does not exist (or whose newest commit is empty) instead of failing.
      - Without it, such a key fails the lookup.
    type: raw
notes:
  - Options can be set with keywords, for example C(lookup('rainer.rainer.rainer', 'k', url=my_url)),
    or through the E(RAINER_URL) environment variable, the C([rainer]) section of C(ansible.cfg),
    or variables such as V(rainer_url).
  - With C(query) or C(wantlist=true) the result is always a list, one element per key.
seealso:
  - module: rainer.rainer.rainer_info
  - module: rainer.rainer.rainer_commit
"""

EXAMPLES = r"""
- name: Payload of one key as text (url from RAINER_URL, ansible.cfg or rainer_url)
  ansible.builtin.debug:
    msg: "{{ lookup('rainer.rainer.rainer', 'motd.txt') }}"

- name: Parsed JSON, with an explicit URL
  ansible.builtin.debug:
    msg: "{{ lookup('rainer.rainer.rainer', 'web.json', format='json', url='http://127.0.0.1:8080/diary').listen }}"

- name: Several keys in one request
  ansible.builtin.set_fact:
    settings: "{{ query('rainer.rainer.rainer', 'web.json', 'db.json', format='json') }}"

- name: Metadata and value
  ansible.builtin.debug:
    msg: "web.json v{{ web.version }} by {{ web.author }}: {{ web.value }}"
  vars:
    web: "{{ lookup('rainer.rainer.rainer', 'web.json', meta=true, format='json') }}"

- name: An older version, and a default for a key that may not exist
  ansible.builtin.debug:
    msg:
      - "{{ lookup('rainer.rainer.rainer', 'web.json', version=1) }}"
      - "{{ lookup('rainer.rainer.rainer', 'feature-flags.json', format='json', default={}) }}"

# In a template (templates/web.conf.j2):
#   {% set web = lookup('rainer.rainer.rainer', 'web.json', format='json') %}
#   listen {{ web.listen }};
"""

RETURN = r"""
_raw:
  description:
    - One element per key, in the order given.
    - The payload text; with O(format) the parsed data; with O(meta=true) a dict of the metadata plus C(value);
      O(default) for a missing or deleted key.
  type: list
  elements: raw
"""

from ansible.errors import AnsibleLookupError
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.lookup import LookupBase

from ansible_collections.rainer.rainer.plugins.module_utils.client import RainerError, RainerNotFoundError
from ansible_collections.rainer.rainer.plugins.module_utils.common import (
    CONNECTION_OPTIONS,
    ParseError,
    RainerTaskError,
    client_from_options,
    parse,
)

_MISSING = object()


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        has_default = "default" in kwargs
        self.set_options(var_options=variables, direct=kwargs)
        default = self.get_option("default") if has_default else _MISSING
        fmt = self.get_option("format")
        meta = self.get_option("meta")
        version = self.get_option("version")
        keys = [to_native(term) for term in terms]
        options = dict((name, self._templated(self.get_option(name))) for name in CONNECTION_OPTIONS)

        try:
            client = client_from_options(options)
            commits = self._read(client, keys, version)
            return [self._answer(client, key, commits.get(key), fmt, meta, default, version) for key in keys]
        except RainerTaskError as exc:
            raise AnsibleLookupError(exc.message)
        except RainerError as exc:
            raise AnsibleLookupError("Rainer lookup failed: %s" % exc.message)

    def _templated(self, value):
        """Options taken from variables (rainer_url, ...) arrive untemplated; template them."""
        if isinstance(value, str) and self._templar is not None and "{" in value:
            return self._templar.template(value)
        return value

    @staticmethod
    def _read(client, keys, version):
        """A dict key -> Commit (or None) in as few requests as possible."""
        if not keys:
            return {}
        if version is None and len(set(keys)) > 1:
            heads = client.list(all=True, payload=True)
            return dict((key, heads.get(key)) for key in keys)
        commits = {}
        for key in keys:
            if key not in commits:
                try:
                    commits[key] = client.get(key, version)
                except RainerNotFoundError:
                    commits[key] = None
        return commits

    @staticmethod
    def _answer(client, key, commit, fmt, meta, default, version):
        if commit is None or commit.empty:
            if default is not _MISSING:
                return default
            what = "version %s of key %r" % (version, key) if version is not None else "key %r" % key
            state = "is deleted (its newest commit is empty)" if commit is not None else "was not found"
            raise RainerTaskError("Rainer lookup: %s %s at %s" % (what, state, client.url))
        if fmt:
            try:
                value = parse(commit.payload, fmt)
            except ParseError as exc:
                raise RainerTaskError("Rainer lookup: key %r version %s at %s: %s" % (key, commit.version, client.url, exc))
        else:
            value = commit.text
            if value is None:
                raise RainerTaskError("Rainer lookup: key %r version %s at %s is binary, not UTF-8 text"
                                      % (key, commit.version, client.url))
        if meta:
            result = dict(commit.meta)
            result["value"] = value
            return result
        return value
