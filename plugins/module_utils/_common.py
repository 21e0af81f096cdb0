# Copyright: Rainer for Python and Ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the rainer.rainer collection, as the leading underscore of the file name says (the
# convention of community.hashi_vault and community.general): only this collection's plugins import
# it, and its names may change in any release without notice.

"""Pieces shared by the rainer.rainer modules, action plugins and lookup.

The connection argument spec matches the ``rainer.rainer.connection`` doc
fragment, and the author option the ``rainer.rainer.connection.author`` one,
which only the plugins that commit take; :func:`client_from_options` turns
options into a client, and the payload helpers give one meaning to
``format: json|yaml`` everywhere.
"""

from __future__ import annotations

import base64
import json

from ansible.module_utils.basic import env_fallback
from ansible.module_utils.common.text.converters import to_bytes, to_text

from ansible_collections.rainer.rainer.plugins.module_utils._client import (
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    RainerClient,
    decode_payload,
    redact_url,
    url_secrets,
)

try:
    import yaml
    HAS_YAML = True
    YAML_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - PyYAML ships with ansible-core on the controller
    yaml = None
    HAS_YAML = False
    YAML_IMPORT_ERROR = _exc

FORMATS = ("json", "yaml")

#: The options every plugin takes to reach the server. ``url`` is not ``required`` here: a missing
#: URL is found by :class:`RainerClient`, the one check, whose message says how to give one (the
#: option, RAINER_URL or the rainer_url variable), where ansible-core would only name the option.
CONNECTION_ARGUMENT_SPEC = dict(
    url=dict(type="str", fallback=(env_fallback, ["RAINER_URL"])),
    timeout=dict(type="float", default=DEFAULT_TIMEOUT),
    validate_certs=dict(type="bool", default=True),
    ca_path=dict(type="path"),
    client_cert=dict(type="path"),
    client_key=dict(type="path", no_log=False),
    headers=dict(type="dict", no_log=True),
    retries=dict(type="int", default=DEFAULT_RETRIES),
    token=dict(type="str", no_log=True, fallback=(env_fallback, ["RAINER_TOKEN"])),
)

#: The author recorded with each commit: an option of the plugins that commit only, so that a
#: read-only plugin neither takes nor documents it.
AUTHOR_ARGUMENT_SPEC = dict(
    author=dict(type="str", fallback=(env_fallback, ["RAINER_AUTHOR"])),
)

#: What the read-only lookup reads with get_option.
CONNECTION_OPTIONS = tuple(CONNECTION_ARGUMENT_SPEC)


class RainerTaskError(Exception):
    """A task failure: ``message`` for ``msg`` and ``details`` for the rest of the result."""

    def __init__(self, message, **details):
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self):
        return self.message


def argument_spec(specific, commits=False):
    """The connection options, the author when the plugin ``commits``, and a plugin's own options."""
    shared = dict(CONNECTION_ARGUMENT_SPEC, **AUTHOR_ARGUMENT_SPEC) if commits else CONNECTION_ARGUMENT_SPEC
    spec = {name: dict(option) for name, option in shared.items()}
    spec.update(specific)
    return spec


def client_from_options(options, **kwargs):
    """A :class:`RainerClient` configured from validated options (module params or lookup options).

    The client checks them (a missing or unusable url, credentials given twice, ...); its
    ValueError's message, which names the option, becomes the task's.
    """
    try:
        return RainerClient(
            url=options.get("url"),
            timeout=options.get("timeout"),
            validate_certs=options.get("validate_certs"),
            ca_path=options.get("ca_path"),
            client_cert=options.get("client_cert"),
            client_key=options.get("client_key"),
            headers=options.get("headers"),
            retries=options.get("retries"),
            author=options.get("author"),
            token=options.get("token"),
            **kwargs
        )
    except ValueError as exc:
        url = options.get("url")
        raise RainerTaskError(str(exc), **({"url": redact_url(url)} if url else {}))


def secrets_of(options):
    """Values a task must never show: the password in ``url`` (the token and headers are
    ``no_log`` options already). A module adds them to ``no_log_values``."""
    return url_secrets(options.get("url"))


def require_yaml():
    if not HAS_YAML:
        raise RainerTaskError("format=yaml needs the PyYAML Python library on the host that runs the task",
                              exception=str(YAML_IMPORT_ERROR))


def serialize(value, fmt):
    """Bytes written for ``value``: JSON with sorted keys, two-space indent and a trailing newline, or YAML."""
    if fmt == "yaml":
        require_yaml()
        text = yaml.safe_dump(value, default_flow_style=False, sort_keys=True, allow_unicode=True)
    else:
        text = json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False, separators=(",", ": ")) + "\n"
    return to_bytes(text, encoding="utf-8")


class ParseError(ValueError):
    """A payload that is not valid in the requested format."""


def parse(payload, fmt):
    """Parse payload bytes as ``fmt`` (json or yaml); raises :class:`ParseError`."""
    text = decode_payload(payload)
    if text is None:
        raise ParseError("the payload is not UTF-8 text")
    try:
        if fmt == "yaml":
            require_yaml()
            return yaml.safe_load(text)
        return json.loads(text)
    except ParseError:
        raise
    except RainerTaskError:
        raise
    except Exception as exc:  # pylint: disable=broad-except
        raise ParseError("the payload is not valid %s: %s" % (fmt.upper(), to_text(exc)))


def describe_commit(commit, fmt=None, strict=True):
    """A commit as task result data: metadata plus payload text / base64 and, with ``fmt``, the parsed value.

    A payload that does not parse fails (``strict``) or gets ``parse_error`` instead of ``value``.
    """
    result = dict(commit.meta)
    payload = commit.payload
    if payload is not None:
        result["payload"] = decode_payload(payload)
        result["payload_base64"] = to_text(base64.b64encode(payload))
        if fmt:
            if commit.empty:
                result["value"] = None
            else:
                try:
                    result["value"] = parse(payload, fmt)
                except ParseError as exc:
                    if not strict:
                        result["parse_error"] = str(exc)
                        return result
                    raise RainerTaskError("Key %r version %s: %s" % (commit.key, commit.version, exc),
                                          key=commit.key, version=commit.version)
    return result


def run_module(module, logic):
    """The rest of every rainer.rainer module's main(): hide secrets, run ``logic``, exit.

    ``logic(client, params, check_mode, diff)`` is the function the module's action plugin
    calls in the controller process, so both paths give the same result.
    """
    module.no_log_values.update(secrets_of(module.params))
    try:
        client = client_from_options(module.params)
        result = logic(client, module.params, module.check_mode, module._diff)
    except RainerTaskError as exc:
        module.fail_json(msg=exc.message, **exc.details)
    module.exit_json(**result)
