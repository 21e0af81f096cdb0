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
from ansible_collections.rainer.rainer.plugins.module_utils._client import NO_URL, RainerClient
from ansible_collections.rainer.rainer.plugins.modules import rainer_changeset, rainer_commit, rainer_info
from ansible_collections.rainer.rainer.plugins.plugin_utils._controller_action import plain

MODULES = {CommitAction: rainer_commit, InfoAction: rainer_info, ChangeSetAction: rainer_changeset}
GROUP = "group/rainer.rainer.rainer"


def make(action_class, args, transport="local", become=False, check_mode=False, diff=False, environment=None,
         module_defaults=None):
    task = mock.MagicMock()
    task.args = args
    task.module_defaults = module_defaults or []
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


def both_paths(run_module, action_class, args, check_mode=False, diff=False, module_defaults=None):
    """The results of one task in the controller process and as a module (``invocation`` left out:
    only a module process echoes the arguments it was given).

    The module path is the action plugin's own, with the module's main() run in this process
    where AnsiballZ would run it on the host; the integration target rainer_paths runs it for real.
    """
    results = []
    for transport in ("local", "ssh"):
        action = make(action_class, args, transport=transport, check_mode=check_mode, diff=diff,
                      module_defaults=module_defaults)

        def execute(module_name, module_args, task_vars):
            hidden = dict(_ansible_check_mode=check_mode, _ansible_diff=diff, _ansible_module_name=module_name)
            return run_module(MODULES[action_class], dict(module_args, **hidden))[1]

        with mock.patch.object(action, "_execute_module", side_effect=execute) as executed:
            result = action.run(task_vars={})
        assert executed.called == (transport == "ssh")
        result.pop("invocation", None)
        results.append(result)
    return results


@pytest.mark.parametrize("action_class, args, words", [
    (CommitAction, {"content": "a", "value": "b"}, "parameters are mutually exclusive: content|value"),
    (CommitAction, {"content": "a", "bogus": 1}, "Unsupported parameters for (rainer.rainer.rainer_commit) module: bogus"),
    (InfoAction, {"version": 1}, "missing parameter(s) required by 'version': key"),
    (InfoAction, {"author": "someone"}, "Unsupported parameters for (rainer.rainer.rainer_info) module: author"),
    (ChangeSetAction, {"changes": [{"key": "k", "content": "a", "value": "b"}]}, "parameters are mutually exclusive: content|value"),
])
def test_invalid_options_fail_the_same_on_both_paths(run_module, rainer_url, key, action_class, args, words):
    args = dict(args, url=rainer_url, key=key) if action_class is not ChangeSetAction else dict(args, url=rainer_url)
    if action_class is InfoAction and "version" in args:
        del args["key"]
    in_process, as_module = both_paths(run_module, action_class, args)
    assert in_process == as_module and in_process["failed"] and in_process["msg"].startswith(words)


def test_both_paths_give_the_same_results(run_module, rainer_url, key, closed_port_url, monkeypatch):
    monkeypatch.delenv("RAINER_URL", raising=False)
    RainerClient(rainer_url, author="seed").post(key, 1, b"before\n")
    for action_class, args, modes in [
        (CommitAction, {"url": rainer_url, "key": key, "content": "after\n", "author": "a"}, dict(check_mode=True, diff=True)),
        (CommitAction, {"url": rainer_url, "key": key, "content": "before\n"}, dict(diff=True)),
        (CommitAction, {"url": rainer_url, "key": key, "content": "x", "expected_version": 7}, {}),
        (CommitAction, {"url": closed_port_url, "key": key, "content": "x", "retries": 0}, {}),
        (CommitAction, {"key": key, "content": "x"}, {}),
        (InfoAction, {"url": rainer_url, "key": key, "history": True}, {}),
        (ChangeSetAction, {"url": rainer_url, "changes": [{"key": key, "state": "absent"}]}, dict(check_mode=True, diff=True)),
    ]:
        in_process, as_module = both_paths(run_module, action_class, args, **modes)
        assert in_process == as_module, (action_class.MODULE, args)
    assert in_process["changed"] and in_process["changes"][0]["action"] == "delete"


def test_an_author_from_the_group_defaults_is_left_aside_by_rainer_info(run_module, rainer_url, key):
    """module_defaults for the group give every member the author; rainer_info takes none."""
    RainerClient(rainer_url, author="seed").post(key, 1, b"x")
    defaults = [{GROUP: {"url": rainer_url, "author": "deployer"}}]
    in_process, as_module = both_paths(run_module, InfoAction, {"key": key, "url": rainer_url, "author": "deployer"},
                                       module_defaults=defaults)
    assert in_process == as_module and in_process["exists"] and "failed" not in in_process
    result = make(CommitAction, {"key": key, "url": rainer_url, "content": "y", "author": "deployer"},
                  module_defaults=defaults).run(task_vars={})
    assert result["commit"]["author"] == "deployer"


def test_no_url_says_how_to_give_one(key, monkeypatch):
    monkeypatch.delenv("RAINER_URL", raising=False)
    result = make(CommitAction, {"key": key, "content": "x"}).run(task_vars={"rainer_url": ""})
    assert result["failed"] and result["msg"] == NO_URL


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
