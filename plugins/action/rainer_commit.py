# Copyright: Rainer for Python and Ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin for rainer.rainer.rainer_commit: controller tasks run the module's code in-process."""

from __future__ import annotations

from ansible_collections.rainer.rainer.plugins.module_utils._commit import (
    COMMIT_ARGUMENT_SPEC,
    COMMIT_MODULE_KWARGS,
    run_commit,
)
from ansible_collections.rainer.rainer.plugins.plugin_utils._controller_action import RainerControllerAction


class ActionModule(RainerControllerAction):

    MODULE = "rainer.rainer.rainer_commit"
    ARGUMENT_SPEC = COMMIT_ARGUMENT_SPEC
    MODULE_KWARGS = COMMIT_MODULE_KWARGS

    def run_logic(self, client, params, check_mode, diff):
        return run_commit(client, params, check_mode=check_mode, diff=diff)
