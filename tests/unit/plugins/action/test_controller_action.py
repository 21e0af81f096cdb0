# -*- coding: utf-8 -*-
# Copyright: Rainer for Python and Ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The action plugins: in-process execution on the controller, module execution elsewhere."""

from __future__ import annotations

import datetime
from unittest import mock

import pytest

from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

from ansible_collections.rainer.rainer.plugins.action.rainer_changeset import ActionModule as ChangeSetAction
from ansible_collections.rainer.rainer.plugins.action.rainer_commit import ActionModule as CommitAction
from ansible_collections.rainer.rainer.plugins.action.rainer_info import ActionModule as InfoAction
from ansible_collections.rainer.rainer.plugins.plugin_utils.controller_action import plain


def make(action_class, args, transport="local", become=False, check_mode=False, diff=False, environment=None):
    task = mock.MagicMock()
    task.args = args
    task.check_mode = check_mode
    task.diff = diff
    task.environment = environment
    task.async_val = 0
    connection = mock.MagicMock()
    connection.transport = transport
    play_context = mock.MagicMock()
    play_context.become = become
    loader = DataLoader()
    return action_class(task, connection, play_context, loader, Templar(loader=loader), None)


def test_plain_mimics_json():
    class Tagged(str):
        pass

    value = {Tagged("a"): (1, 2.5, True, None, b"x", Tagged("t"), datetime.date(2026, 1, 2))}
    result = plain(value)
    assert result == {"a": [1, 2.5, True, None, "x", "t", "2026-01-02"]}
    assert not isinstance(list(result)[0], Tagged) and not isinstance(result["a"][5], Tagged)


def test_commit_runs_in_process_with_check_and_diff(rainer_url, key):
    action = make(CommitAction, {"url": rainer_url, "key": key, "content": "x\n"}, check_mode=True, diff=True)
    with mock.patch.object(action, "_execute_module", side_effect=AssertionError("no module execution")):
        result = action.run(task_vars={})
    assert result["changed"] and result["version"] == 1 and result["diff"]["after"] == "x\n"
    action = make(CommitAction, {"url": rainer_url, "key": key, "content": "x\n", "author": "act"})
    assert action.run(task_vars={})["commit"]["author"] == "act"
    action = make(CommitAction, {"key": key, "content": "x\n"})
    result = action.run(task_vars={"rainer_url": rainer_url})
    assert not result["changed"] and result["version"] == 1


def test_task_environment_feeds_env_fallbacks(rainer_url, key):
    action = make(CommitAction, {"key": key, "content": "y"},
                  environment=[{"RAINER_URL": rainer_url, "RAINER_AUTHOR": "from-task-env"}])
    assert action.run(task_vars={})["commit"]["author"] == "from-task-env"


def test_invalid_options_fail_like_the_module(rainer_url, key):
    result = make(CommitAction, {"url": rainer_url, "key": key, "content": "a", "value": "b"}).run(task_vars={})
    assert result["failed"] and "mutually exclusive" in result["msg"]
    result = make(CommitAction, {"url": rainer_url, "key": key, "bogus": 1}).run(task_vars={})
    assert result["failed"] and "bogus" in result["msg"]
    result = make(InfoAction, {"url": rainer_url, "version": 1}).run(task_vars={})
    assert result["failed"]


def test_failures_carry_details(closed_port_url, key):
    result = make(InfoAction, {"url": closed_port_url, "key": key, "retries": 0}).run(task_vars={})
    assert result["failed"] and result["error"] == "RainerUnreachableError" and result["status"] is None


@pytest.mark.parametrize("transport, become, task_vars", [
    ("ssh", False, {}),
    ("local", True, {}),
    ("local", False, {"rainer_run_on_controller": False}),
])
def test_other_hosts_run_the_module(transport, become, task_vars):
    action = make(InfoAction, {"key": "k"}, transport=transport, become=become)
    task_vars = dict(task_vars, rainer_url="http://127.0.0.1:1/diary")
    with mock.patch.object(action, "_execute_module", return_value={"changed": False, "exists": True}) as execute:
        result = action.run(task_vars=task_vars)
    assert result["exists"]
    kwargs = execute.call_args.kwargs
    assert kwargs["module_name"] == "rainer.rainer.rainer_info"
    assert kwargs["module_args"] == {"key": "k", "url": "http://127.0.0.1:1/diary"}


def test_changeset_runs_in_process(rainer_url, key):
    args = {"url": rainer_url, "changes": [{"key": key + ".a", "content": "a"}, {"key": key + ".b", "value": [1]}]}
    action = make(ChangeSetAction, args, check_mode=True, diff=True)
    with mock.patch.object(action, "_execute_module", side_effect=AssertionError("no module execution")):
        result = action.run(task_vars={})
    assert result["changed"] and len(result["diff"]) == 2 and [c["version"] for c in result["commits"]] == [1, 1]
    assert make(ChangeSetAction, args).run(task_vars={})["changed"]
    assert not make(ChangeSetAction, args).run(task_vars={})["changed"]
    result = make(ChangeSetAction, {"url": rainer_url, "changes": [{"key": key}]}).run(task_vars={})
    assert result["failed"] and "content" in result["msg"]


def test_the_token_comes_from_rainer_token_and_never_shows(secured, key):
    token = secured.tokens["ci-bot"]
    action = make(CommitAction, {"key": "app." + key, "content": "x"})
    result = action.run(task_vars={"rainer_url": secured.url, "rainer_token": token})
    assert result["commit"]["author"] == "ci-bot"
    action = make(CommitAction, {"url": secured.url.replace("://", "://ci-bot:%s@" % token), "key": "db." + key,
                                 "content": token})
    result = action.run(task_vars={})
    assert result["failed"] and result["principal"] == "ci-bot" and token not in repr(result)


def test_the_module_path_gets_the_token_variable():
    action = make(InfoAction, {"key": "k"}, transport="ssh")
    with mock.patch.object(action, "_execute_module", return_value={"changed": False}) as execute:
        action.run(task_vars={"rainer_url": "http://127.0.0.1:1/diary", "rainer_token": "t0ken"})
    assert execute.call_args.kwargs["module_args"] == {"key": "k", "url": "http://127.0.0.1:1/diary", "token": "t0ken"}
