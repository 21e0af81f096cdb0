# Copyright: Rainer for Python and Ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Private to the rainer.rainer collection, as the leading underscore of the file name says (the
# convention of community.hashi_vault and community.general): only this collection's plugins import
# it, and its names may change in any release without notice.

"""Action plugin base: run a rainer.rainer module's own code in the controller when it may.

Every module execution costs a process start, an AnsiballZ payload and a
Python start-up (about 0.3 s per loop item on a small machine). When the
task's connection is ``local`` (which is what ``delegate_to: localhost`` and
the implicit localhost give) and no privilege escalation is asked for, the
module's logic is imported from module_utils and called in this process:
the same argument spec (validated with ansible-core's ArgumentSpecValidator),
the same ``run_*`` function, the same check and diff behaviour and the same
result. Any other host gets the module as usual.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping

from ansible.module_utils.basic import env_fallback
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.errors import UnsupportedError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

from ansible_collections.rainer.rainer.plugins.module_utils._common import (
    AUTHOR_ARGUMENT_SPEC,
    RainerTaskError,
    client_from_options,
    secrets_of,
)

#: Variables that stand in for a connection option the task leaves out (the lookup reads the
#: same variables): ``rainer_url`` and ``rainer_token``.
OPTION_VARIABLES = (("url", "rainer_url"), ("token", "rainer_token"))


def plain(value):
    """The value a module would receive after its arguments went through JSON."""
    if isinstance(value, Mapping):
        return {to_text(plain(k)): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bytes):
        return to_text(value, errors="surrogate_or_strict")
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return value


class RainerControllerAction(ActionBase):
    """Subclasses set MODULE, ARGUMENT_SPEC, MODULE_KWARGS and implement :meth:`run_logic`."""

    MODULE = None
    ARGUMENT_SPEC = None
    MODULE_KWARGS = None

    _supports_check_mode = True
    _supports_async = False

    def run_logic(self, client, params, check_mode, diff):
        raise NotImplementedError()

    def runs_on_controller(self, task_vars=None):
        """True when the module would run on the controller as the controller's user.

        The variable ``rainer_run_on_controller: false`` turns the shortcut off (the module then
        always runs as a module, for example to honour a task's ``environment``).
        """
        wanted = (task_vars or {}).get("rainer_run_on_controller", True)
        if not boolean(self._templar.template(wanted), strict=False):
            return False
        transport = getattr(self._connection, "transport", None)
        become = getattr(self._play_context, "become", False)
        return transport in ("local", "ansible.builtin.local") and not become

    def _args(self, task_vars):
        args = dict(self._task.args)
        for option in self._group_options_not_taken(args):
            del args[option]
        for option, variable in OPTION_VARIABLES:
            if args.get(option) is None and task_vars and task_vars.get(variable) is not None:
                value = self._templar.template(task_vars[variable])
                if value:
                    args[option] = to_text(value)
        return args

    def _group_options_not_taken(self, args):
        """Options among ``args`` that this module does not take and module_defaults for an action
        group gave: the author, which only the modules that commit take.

        ``group/rainer.rainer.rainer: {url: ..., author: ...}`` sets the connection for a whole play,
        and ansible-core hands every member of the group every option of it, so rainer_info, which
        commits nothing and therefore takes no author, would fail as if the task had named one.
        An author that no group's module_defaults give still fails as an unsupported parameter.
        """
        grouped = set()
        for defaults in self._task.module_defaults or []:
            for name, options in (defaults or {}).items():
                if name.startswith("group/") and isinstance(options, Mapping):
                    grouped.update(options)
        return [option for option in AUTHOR_ARGUMENT_SPEC
                if option in args and option in grouped and option not in self.ARGUMENT_SPEC]

    def _validation_failure(self, errors):
        """The message AnsibleModule fails with for the same options (the first error's, marked
        unsupported as it marks it), so that both paths say the same."""
        if isinstance(errors[0], UnsupportedError):
            return "Unsupported parameters for (%s) module: %s" % (self.MODULE, errors.msg)
        return errors.msg

    def _apply_task_environment(self, args):
        """Honour the task's ``environment:`` for env fallbacks (RAINER_URL, RAINER_AUTHOR).

        A module process would see those variables; this process does not, so the
        fallbacks are resolved here from the task's environment first (the validator
        then falls back to the controller's own environment, as a local module would).
        """
        task_environment = {}
        self._compute_environment_string(task_environment)
        if not task_environment:
            return
        for name, option in self.ARGUMENT_SPEC.items():
            fallback = option.get("fallback")
            if args.get(name) is not None or not fallback or fallback[0] is not env_fallback:
                continue
            for variable in fallback[1]:
                if variable in task_environment:
                    args[name] = to_text(task_environment[variable])
                    break

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        args = self._args(task_vars or {})

        if not self.runs_on_controller(task_vars):
            result.update(self._execute_module(module_name=self.MODULE, module_args=args, task_vars=task_vars))
            return result

        self._apply_task_environment(args)
        kwargs = dict(self.MODULE_KWARGS)
        kwargs.pop("supports_check_mode", None)
        validator = ArgumentSpecValidator(self.ARGUMENT_SPEC, **kwargs)
        validated = validator.validate(plain(args))
        if validated.error_messages:
            result.update(failed=True, msg=self._validation_failure(validated.errors))
            return result

        params = validated.validated_parameters
        try:
            client = client_from_options(params)
            result.update(self.run_logic(client, params, bool(self._task.check_mode), bool(self._task.diff)))
        except RainerTaskError as exc:
            result.update(exc.details)
            result.update(failed=True, msg=exc.message)
        # What a module hides from its result (no_log options, the password in url), hidden here too.
        secrets = set(getattr(validated, "_no_log_values", ())) | set(secrets_of(params))
        if secrets:
            result = remove_values(result, secrets)
        return result
