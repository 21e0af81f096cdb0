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
  - Several keys cost one HTTP request that asks for just those keys (C(GET /diary?key=a&key=b)), not one
    per key, and only their payloads travel (one more request per 1000 keys). One key, or O(version),
    costs one request per key.
  - With O(prefix) instead of keys, returns a dict of every key that starts with it (deleted keys left out)
    to its value, in one request.
  - A missing key, or a key whose newest commit is empty (deleted), is an error naming the key and the
    server, unless O(default) is given, which is then returned for it. A key the credentials may not read
    fails with a message naming the principal, the key and the permission.
  - Runs on the controller, so it costs milliseconds per task, also in loops.
# The authors are named in galaxy.yml. An author line here must name a GitHub account as "(@name)"
# or say "(!UNKNOWN)", which ansible-doc shows to every reader; they have no account to name here.
author: []
extends_documentation_fragment:
  - rainer.rainer.connection
  - rainer.rainer.connection.plugins
options:
  _terms:
    description:
      - The keys to read. Leave them out when O(prefix) is given.
    type: list
    elements: str
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
  prefix:
    description:
      - Read every key that starts with this text (V(app.) for V(app.web.json), V(app.db.json), ...) instead of
        keys given as terms, and return one dict of key to value (to metadata with O(meta=true)).
      - Keys whose newest commit is empty are left out. An empty dict when no key matches.
      - Cannot be combined with keys or O(version).
    type: str
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

- name: Every key under a prefix, as a dict of key to parsed value
  ansible.builtin.debug:
    msg: "{{ lookup('rainer.rainer.rainer', prefix='app.', format='json') }}"

- name: With a token for a server started with --auth (or set RAINER_TOKEN, or the rainer_token variable)
  ansible.builtin.debug:
    msg: "{{ lookup('rainer.rainer.rainer', 'web.json', token=vault_rainer_token, ca_path='/etc/ssl/rainer-ca.pem') }}"

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
    - With O(prefix), a single element, a dict of each matching key to what a key given as a term would return.
  type: list
  elements: raw
"""

from ansible.errors import AnsibleLookupError
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.lookup import LookupBase

from ansible_collections.rainer.rainer.plugins.module_utils._client import RainerError, RainerNotFoundError
from ansible_collections.rainer.rainer.plugins.module_utils._common import (
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
        self.set_options(var_options=self._rainer_variables(variables), direct=kwargs)
        default = self.get_option("default") if has_default else _MISSING
        fmt = self.get_option("format")
        meta = self.get_option("meta")
        version = self.get_option("version")
        prefix = self.get_option("prefix")
        keys = [to_text(term) for term in terms or []]
        options = {name: self.get_option(name) for name in CONNECTION_OPTIONS}

        try:
            if prefix is not None and keys:
                raise RainerTaskError("Rainer lookup: give keys or prefix, not both")
            if prefix is not None and version is not None:
                raise RainerTaskError("Rainer lookup: version reads keys one by one, so it does not go with prefix")
            client = client_from_options(options)
            if prefix is not None:
                heads = client.list(all=False, payload=True, prefix=prefix)
                return [{key: self._answer(client, key, heads[key], fmt, meta, default, None)
                         for key in sorted(heads)}]
            commits = self._read(client, keys, version, default)
            return [self._answer(client, key, commits.get(key), fmt, meta, default, version) for key in keys]
        except RainerTaskError as exc:
            raise AnsibleLookupError(exc.message)
        except RainerError as exc:
            raise AnsibleLookupError("Rainer lookup failed: %s" % exc.message)

    def _rainer_variables(self, variables):
        """The task's variables, with the ``rainer_*`` ones the options read templated.

        Variables reach a lookup untemplated (``rainer_url: "{{ base }}/diary"``); they are
        templated before the options are set, so that a ``path`` option such as ``ca_path``
        is resolved from the real value.
        """
        if not variables or self._templar is None:
            return variables
        templated = dict(variables)
        for name, value in variables.items():
            if name.startswith("rainer_") and isinstance(value, str) and "{" in value:
                templated[name] = self._templar.template(value)
        return templated

    @staticmethod
    def _read(client, keys, version, default):
        """A dict key -> Commit (or None) in as few requests as possible.

        Several keys are one request for just those keys (``?key=``); one key, or a version,
        one request per key. A key the bulk answer leaves out is absent, or one the
        credentials may not read: without a default it is read on its own, so that the
        failure says which.
        """
        if not keys:
            return {}
        unique = list(dict.fromkeys(keys))
        if version is None and len(unique) > 1:
            commits = client.list(all=True, payload=True, keys=unique)
            if default is _MISSING:
                for key in unique:
                    if key not in commits:
                        commits[key] = client.head(key)
            return commits
        commits = {}
        for key in unique:
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
