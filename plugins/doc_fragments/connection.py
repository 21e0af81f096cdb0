# Copyright: Rainer for Python and Ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Connection options shared by the plugins of the rainer.rainer collection."""

from __future__ import annotations


class ModuleDocFragment:
    """Documentation fragments for the Rainer HTTP connection.

    C(DOCUMENTATION) describes the options every plugin takes (module_utils/_common.py's
    CONNECTION_ARGUMENT_SPEC); C(AUTHOR) the author, which only the plugins that commit take
    (AUTHOR_ARGUMENT_SPEC), so the read-only lookup and rainer_info do not list it; C(PLUGINS)
    adds the environment, ini and variable sources that controller-side plugins (the lookup)
    read through C(get_option).
    """

    DOCUMENTATION = r"""
options:
  url:
    description:
      - Base URL of the Rainer diary, including its mount prefix, for example V(http://127.0.0.1:8080/diary).
      - A trailing slash is ignored.
      - V(https://PRINCIPAL:TOKEN@host/diary) sends the token as HTTP Basic credentials. They are taken out of
        the URL before any request, and no message or returned field shows them; O(token) keeps them out of
        the URL altogether.
      - For the modules it may also come from the E(RAINER_URL) environment variable, the variable
        V(rainer_url) (read by the action plugin) or, most conveniently, from C(module_defaults)
        for the action group C(group/rainer.rainer.rainer).
      - One of these must give it. Without a URL the task fails with a message naming these ways.
    type: str
  timeout:
    description:
      - Seconds to wait for a connection to the server, and then for each read of its answer.
      - The default is above every bound the server itself works within, so a commit is not
        given up on while the server is still saving it.
    type: float
    default: 30
  validate_certs:
    description:
      - Whether to verify the server's TLS certificate when O(url) starts with V(https://).
      - Only set this to V(false) against a server you control, for example in a lab.
    type: bool
    default: true
  ca_path:
    description:
      - Path to a PEM file of certificate authorities used to verify the server's certificate,
        instead of the system's trust store.
    type: path
  client_cert:
    description:
      - Path to a PEM client certificate for servers behind mutual TLS.
      - When the file also holds the private key, O(client_key) can be left out.
    type: path
  client_key:
    description:
      - Path to the PEM private key that belongs to O(client_cert).
    type: path
  headers:
    description:
      - Extra HTTP headers sent with every request, for example an C(Authorization) header
        checked by a reverse proxy in front of the server.
      - The option is C(no_log), as header values often carry secrets. As for every C(no_log) option, each
        value is masked wherever it appears in the task's result, so avoid short values such as V(1).
      - An C(Authorization) header cannot be combined with O(token) or credentials in O(url).
    type: dict
  retries:
    description:
      - How many times a read is retried after a connection failure, a timeout or a
        502, 503 or 504 answer, with a pause of 0.5 s, then 1 s, and so on (at most 5 s) before each try.
      - TLS failures and clear answers (400, 404, 409, ...) are not retried.
      - A commit is never posted again blindly. After a failed post the key is read again to
        learn whether the commit landed; only when it did not, and tries are left, it is posted again.
    type: int
    default: 2
  token:
    description:
      - A token that proves who the task is to a server started with C(--auth), sent in the
        C(Authorization) header as C(Bearer TOKEN). C(rainer auth token) makes one.
      - For the modules it may also come from the E(RAINER_TOKEN) environment variable or the
        variable V(rainer_token) (read by the action plugin). Keep it in Ansible Vault.
      - Never shown in logs or results. With a token (or credentials in O(url), or an C(Authorization)
        header), redirects are not followed, so the token never goes to another address.
      - A refused token (401), or a principal without the permission (403), fails the task with a message
        naming the principal (when known), the key and the permission.
    type: str
"""

    AUTHOR = r"""
options:
  author:
    description:
      - Author recorded with each commit (C(X-Rainer-Author)).
      - Defaults to the E(RAINER_AUTHOR) environment variable, else the login name of the
        user that runs the task.
      - When neither is set and the task proves who it is (O(token), credentials in O(url), an
        C(Authorization) header or O(client_cert)), no author is sent, and a server with C(--auth)
        records the principal it proved. A server without C(--auth) then asks for one, and the login name is sent.
      - With C(--auth), only a principal with the C(admin) role may record another author; for any
        other principal, an author that is not its own name fails the task (403).
    type: str
"""

    PLUGINS = r"""
options:
  url:
    env:
      - name: RAINER_URL
    ini:
      - section: rainer
        key: url
    vars:
      - name: rainer_url
  timeout:
    env:
      - name: RAINER_TIMEOUT
    ini:
      - section: rainer
        key: timeout
    vars:
      - name: rainer_timeout
  validate_certs:
    env:
      - name: RAINER_VALIDATE_CERTS
    ini:
      - section: rainer
        key: validate_certs
    vars:
      - name: rainer_validate_certs
  ca_path:
    env:
      - name: RAINER_CA_PATH
    ini:
      - section: rainer
        key: ca_path
    vars:
      - name: rainer_ca_path
  client_cert:
    vars:
      - name: rainer_client_cert
  client_key:
    vars:
      - name: rainer_client_key
  headers:
    vars:
      - name: rainer_headers
  retries:
    env:
      - name: RAINER_RETRIES
    ini:
      - section: rainer
        key: retries
    vars:
      - name: rainer_retries
  token:
    env:
      - name: RAINER_TOKEN
    ini:
      - section: rainer
        key: token
    vars:
      - name: rainer_token
"""
