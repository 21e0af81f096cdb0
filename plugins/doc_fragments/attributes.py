# Copyright: Rainer for Python and Ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Attributes every module of the rainer.rainer collection shares."""

from __future__ import annotations


class ModuleDocFragment:
    """How the modules run, the same for each: their action plugins run them in the controller
    process when they can, and they form the C(rainer.rainer.rainer) action group. Check and
    diff mode differ from module to module and stay in each module's own documentation.
    """

    DOCUMENTATION = r"""
attributes:
  platform:
    platforms: all
  action:
    support: full
    details: Runs in the controller process when the task's connection is local or delegated to localhost.
  async:
    support: none
  bypass_host_loop:
    support: none
  action_group:
    support: full
    membership:
      - rainer.rainer.rainer
"""
