# Copyright: Rainer for Python and Ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The modules end to end (argument parsing, exit and fail JSON) against a real server."""

from __future__ import annotations

import json

from ansible.module_utils.common.parameters import PASS_VARS

from ansible_collections.rainer.rainer.plugins.module_utils._client import NO_URL
from ansible_collections.rainer.rainer.plugins.modules import rainer_changeset, rainer_commit, rainer_info


def test_commit_module_check_apply_rerun(rainer_url, key, run_module):
    args = dict(url=rainer_url, key=key, value={"port": 80}, author="module-test", comment="c")
    code, result = run_module(rainer_commit, dict(args, _ansible_check_mode=True, _ansible_diff=True))
    assert code == 0 and result["changed"] and result["version"] == 1 and result["diff"]["before"] == ""
    code, result = run_module(rainer_commit, args)
    assert code == 0 and result["changed"] and result["commit"]["author"] == "module-test" and "diff" not in result
    code, result = run_module(rainer_commit, args)
    assert code == 0 and not result["changed"] and result["version"] == 1


def test_commit_module_env_fallbacks(rainer_url, key, run_module, monkeypatch):
    monkeypatch.setenv("RAINER_URL", rainer_url)
    monkeypatch.setenv("RAINER_AUTHOR", "from-env")
    code, result = run_module(rainer_commit, dict(key=key, content="x"))
    assert code == 0 and result["commit"]["author"] == "from-env"


def test_commit_module_failures(rainer_url, key, run_module, closed_port_url):
    code, result = run_module(rainer_commit, dict(url=rainer_url, key=key, content="x", expected_version=3))
    assert code == 1 and result["failed"] and "expected_version is 3" in result["msg"]
    assert result["current_version"] == 0
    code, result = run_module(rainer_commit, dict(url=rainer_url, key=key, content="x", value="y"))
    assert code == 1 and "mutually exclusive" in result["msg"]
    code, result = run_module(rainer_commit, dict(url=rainer_url, key=key))
    assert code == 1 and "content" in result["msg"]
    code, result = run_module(rainer_commit, dict(url=closed_port_url, key=key, content="x", retries=0))
    assert code == 1 and result["error"] == "RainerUnreachableError" and result["status"] is None


def test_a_module_without_url_says_how_to_give_one(key, run_module, monkeypatch):
    monkeypatch.delenv("RAINER_URL", raising=False)
    for module, args in ((rainer_commit, dict(key=key, content="x")), (rainer_info, dict(key=key)),
                         (rainer_changeset, dict(changes=[dict(key=key, content="x")]))):
        code, result = run_module(module, args)
        assert code == 1 and result["msg"] == NO_URL and "url" not in result
    assert "the url option" in NO_URL and "RAINER_URL" in NO_URL and "rainer_url" in NO_URL


def test_only_the_modules_that_commit_take_an_author(rainer_url, key, run_module):
    code, result = run_module(rainer_info, dict(url=rainer_url, key=key, author="someone"))
    assert code == 1 and result["msg"].startswith("Unsupported parameters") and "author" in result["msg"]
    code, result = run_module(rainer_commit, dict(url=rainer_url, key=key, content="x", author="someone"))
    assert code == 0 and result["commit"]["author"] == "someone"


def test_info_module(rainer_url, key, run_module):
    run_module(rainer_commit, dict(url=rainer_url, key=key, value=[1, 2], format="yaml"))
    code, result = run_module(rainer_info, dict(url=rainer_url, key=key, format="yaml", history=True))
    assert code == 0 and not result["changed"] and result["value"] == [1, 2] and len(result["history"]) == 1
    code, result = run_module(rainer_info, dict(url=rainer_url, key=key + "-missing"))
    assert code == 0 and result["exists"] is False
    code, result = run_module(rainer_info, dict(url=rainer_url, _ansible_check_mode=True))
    assert code == 0 and key in result["commits"]
    code, result = run_module(rainer_info, dict(url=rainer_url, version=1))
    assert code == 1 and "key" in result["msg"]


def test_changeset_module_check_apply_rerun(rainer_url, key, run_module):
    args = dict(url=rainer_url, author="module-test", comment="set",
                changes=[dict(key=key + ".a", content="a"), dict(key=key + ".b", value={"b": 1}, comment="own")])
    code, result = run_module(rainer_changeset, dict(args, _ansible_check_mode=True, _ansible_diff=True))
    assert code == 0 and result["changed"] and len(result["diff"]) == 2 and result["commits"][1]["comment"] == "own"
    code, result = run_module(rainer_changeset, args)
    assert code == 0 and result["changed_keys"] == [key + ".a", key + ".b"]
    code, result = run_module(rainer_changeset, args)
    assert code == 0 and not result["changed"]
    code, result = run_module(rainer_changeset, dict(args, changes=[dict(key=key, content="x", value="y")]))
    assert code == 1 and "mutually exclusive" in result["msg"]
    code, result = run_module(rainer_changeset, dict(args, changes=[dict(key=key)]))
    assert code == 1 and "content" in result["msg"]


def test_info_module_waits(rainer_url, key, run_module):
    run_module(rainer_commit, dict(url=rainer_url, key=key, content="one"))
    code, result = run_module(rainer_info, dict(url=rainer_url, key=key, wait_for=dict(version=1)))
    assert code == 0 and result["version"] == 1 and "waited" in result
    code, result = run_module(rainer_info, dict(url=rainer_url, key=key, wait_for=dict(changed_from=1, timeout=0.5)))
    assert code == 1 and "did not get a version after 1" in result["msg"] and result["version"] == 1
    code, result = run_module(rainer_info, dict(url=rainer_url, key=key, wait_for=dict(version=1, changed_from=0)))
    assert code == 1 and "mutually exclusive" in result["msg"]
    code, result = run_module(rainer_info, dict(url=rainer_url, wait_for=dict(version=1)))
    assert code == 1 and "key" in result["msg"]


def test_secrets_never_reach_the_output(secured, key, run_module):
    token = secured.tokens["ci-bot"]
    # ansible-core 2.16 always returns the invocation; later versions when the controller asks (verbosity)
    shown = dict(_ansible_inject_invocation=True) if "inject_invocation" in PASS_VARS else {}
    code, result = run_module(rainer_commit, dict(shown, url=secured.url, token=token, key="app." + key, content="x"))
    assert code == 0 and result["commit"]["author"] == "ci-bot"
    assert result["invocation"]["module_args"]["token"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    code, result = run_module(rainer_commit, dict(shown, url=secured.url.replace("://", "://ci-bot:%s@" % token),
                                                  key="db." + key, content="x"))
    text = json.dumps(result)
    assert code == 1 and token not in text and result["principal"] == "ci-bot"
    assert result["invocation"]["module_args"]["url"] == secured.url.replace("://", "://ci-bot:********@")
    code, result = run_module(rainer_info, dict(url=secured.url, headers={"Authorization": "Bearer " + token}, key="app." + key))
    assert code == 0 and token not in json.dumps(result) and result["payload"] == "x"
