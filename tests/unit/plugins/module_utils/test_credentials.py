# Copyright: Rainer for Python and Ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Credentials: tokens, credentials in the url (redacted everywhere), 401/403/429 in words,
and the recorded author, against a real ``rainer serve --auth`` where one can answer."""

from __future__ import annotations

import base64
import json

import pytest

from ansible_collections.rainer.rainer.plugins.module_utils import _client as client_module
from ansible_collections.rainer.rainer.plugins.module_utils._client import (
    RainerClient,
    RainerForbiddenError,
    RainerHTTPError,
    RainerRateLimitedError,
    RainerUnauthorizedError,
    redact_url,
    url_secrets,
)
from ansible_collections.rainer.rainer.plugins.module_utils._commit import run_commit
from ansible_collections.rainer.rainer.plugins.module_utils._common import RainerTaskError, client_from_options

META = {"key": "k", "version": 1, "author": "a", "comment": "", "mtime": "1970-01-01T00:00:00.002Z", "empty": False}


def params(key, **kwargs):
    base = dict(key=key, content="x", value=None, format="json", state="present", comment="",
                expected_version=None)
    base.update(kwargs)
    return base


def with_credentials(url, user, password):
    return url.replace("://", "://%s:%s@" % (user, password), 1)


# -- without a server ---------------------------------------------------------------------------


def test_redaction_helpers():
    assert redact_url("https://ci-bot:s3cret@rainer.example:8443/diary") == "https://rainer.example:8443/diary"
    assert redact_url("http://h/diary") == "http://h/diary"
    assert url_secrets("https://ci-bot:s%40cret@h/diary") == ["s@cret"]
    assert url_secrets("https://lonely-token@h/diary") == ["lonely-token"]
    assert url_secrets("http://h/diary") == [] and url_secrets(None) == []


def test_credentials_leave_the_url_and_become_a_header(monkeypatch):
    monkeypatch.delenv("RAINER_AUTHOR", raising=False)
    made = RainerClient("https://ci-bot:s%40cret@rainer.example/diary/")
    assert made.url == "https://rainer.example/diary" and made.origin == "https://rainer.example"
    assert made.headers["Authorization"] == "Basic " + base64.b64encode(b"ci-bot:s@cret").decode()
    assert made.claimed_principal == "ci-bot" and "s@cret" not in made.credentials
    assert made._redirects == "none"
    bearer = RainerClient("http://h/diary", token="tok")
    assert bearer.headers["Authorization"] == "Bearer tok" and bearer.credentials == "the token"
    assert RainerClient("http://h/diary")._redirects == "safe"


@pytest.mark.parametrize("kwargs, words", [
    (dict(url="https://u:p@h/diary", token="t"), "given twice"),
    (dict(url="https://u:p@h/diary", headers={"authorization": "Bearer x"}), "given twice"),
    (dict(url="http://h/diary", token="t", headers={"Authorization": "Bearer x"}), "given twice"),
    (dict(url="https://only-a-secret@h/diary"), "without a password"),
    (dict(url="http://h/diary", token="a\nb"), "line break"),
])
def test_contradictory_credentials_are_refused(kwargs, words):
    with pytest.raises(ValueError) as info:
        RainerClient(**kwargs)
    assert words in str(info.value)
    assert "only-a-secret" not in str(info.value) and ":p@" not in str(info.value)


def test_a_bad_url_never_shows_its_password():
    with pytest.raises(RainerTaskError) as info:
        client_from_options({"url": "ftp://ci-bot:hunter2@h/diary"})
    assert "hunter2" not in str(info.value) and "hunter2" not in json.dumps(info.value.details)
    with pytest.raises(RainerTaskError) as info:
        client_from_options({"url": "https://ci-bot:hunter2@h:notaport/diary"})
    assert "hunter2" not in str(info.value)


def test_credentials_are_sent_and_redirects_not_followed(stub_server):
    stub = stub_server([(302, {"Location": "https://x:leaked@elsewhere.example/diary/k"}, b"")])
    made = RainerClient(with_credentials(stub.url, "ci-bot", "s3cret"), retry_delay=0)
    with pytest.raises(RainerHTTPError) as info:
        made.get("k")
    assert len(stub.requests) == 1
    method, path, headers, body = stub.requests[0]
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"ci-bot:s3cret").decode()
    assert "redirected (302)" in info.value.message and "https://elsewhere.example/diary/k" in info.value.message
    assert "leaked" not in info.value.message and "s3cret" not in json.dumps(info.value.to_dict())


def test_429_says_when_to_try_again(stub_server):
    stub = stub_server([(429, {"Retry-After": "42"}, b"Too many failed authentications: try again in 42 s")])
    with pytest.raises(RainerRateLimitedError) as info:
        RainerClient(stub.url, token="t", retries=3, retry_delay=0).get("k")
    assert info.value.status == 429 and info.value.retry_after == 42
    assert "try again in 42 s" in info.value.message and len(stub.requests) == 1


# -- against a real server with --auth ----------------------------------------------------------


def test_a_token_proves_the_author(secured, monkeypatch, key):
    monkeypatch.delenv("RAINER_AUTHOR", raising=False)
    bot = RainerClient(secured.url, token=secured.tokens["ci-bot"], retry_delay=0)
    result = run_commit(bot, params("app." + key, content="hello"))
    assert result["commit"]["author"] == "ci-bot"
    assert "X-Rainer-Author" not in result  # nothing odd leaks into results
    planned = run_commit(bot, params("app." + key, content="again"), check_mode=True)
    assert planned["commit"]["author"] == "ci-bot" and planned["commit"]["mtime"] is None
    assert bot.whoami()["principal"] == "ci-bot"


def test_an_admin_may_record_another_author_others_may_not(secured, key):
    root = RainerClient(secured.url, token=secured.tokens["root"], author="release-tool")
    assert root.post("db." + key, 1, b"x")["author"] == "release-tool"
    bot = RainerClient(secured.url, token=secured.tokens["ci-bot"], author="alice")
    with pytest.raises(RainerForbiddenError) as info:
        bot.post("app." + key, 1, b"x")
    error = info.value
    assert (error.status, error.principal, error.permission) == (403, "ci-bot", "commit as 'alice'")
    assert "only an admin may record another author" in error.message


def test_403_names_the_principal_the_key_and_the_permission(secured, key):
    bot = RainerClient(secured.url, token=secured.tokens["ci-bot"], retry_delay=0)
    with pytest.raises(RainerTaskError) as info:
        run_commit(bot, params("db." + key))
    details = info.value.details
    assert info.value.message == "permission denied (403): principal 'ci-bot' may not write key 'db.%s'" % key
    assert details["error"] == "RainerForbiddenError" and details["principal"] == "ci-bot"
    assert details["permission"] == "write" and details["key"] == "db." + key and details["status"] == 403
    viewer = RainerClient(secured.url, token=secured.tokens["viewer"])
    with pytest.raises(RainerForbiddenError) as info:
        viewer.get("db." + key)
    assert (info.value.principal, info.value.permission, info.value.key) == ("viewer", "read", "db." + key)


def test_401_says_what_was_missing(secured, key):
    with pytest.raises(RainerUnauthorizedError) as info:
        RainerClient(secured.url).get("app." + key)
    assert info.value.principal == "anonymous" and info.value.permission == "read"
    assert "no credentials were given, and anonymous may not read key 'app.%s'" % key in info.value.message
    assert "token" in info.value.message
    with pytest.raises(RainerUnauthorizedError) as info:
        RainerClient(secured.url, token="not-the-token", retries=2, retry_delay=0).get("app." + key)
    assert "did not accept the token" in info.value.message and "not-the-token" not in json.dumps(info.value.to_dict())
    wrong = RainerClient(with_credentials(secured.url, "ci-bot", "WrongSecret"), retry_delay=0)
    with pytest.raises(RainerUnauthorizedError) as info:
        wrong.get("app." + key)
    assert info.value.principal == "ci-bot" and "user 'ci-bot' in url" in info.value.message
    assert "WrongSecret" not in json.dumps(info.value.to_dict()) and info.value.url.startswith(secured.origin)
    assert wrong.requests == 1  # a clear answer: not retried


def test_basic_credentials_in_the_url_work(secured, key):
    made = RainerClient(with_credentials(secured.url, "ci-bot", secured.tokens["ci-bot"]))
    assert made.post("app." + key, 1, b"via basic")["author"] == "ci-bot"
    assert made.url == secured.url


def test_a_server_without_auth_gets_the_default_author(rainer_url, key, monkeypatch):
    """A token (or a certificate) on a server without --auth: the server asks for an author."""
    monkeypatch.setattr(client_module, "_AUTHOR_WANTED", set())
    monkeypatch.delenv("RAINER_AUTHOR", raising=False)
    made = RainerClient(rainer_url, token="ignored-by-this-server", retry_delay=0)
    meta = made.post(key, 1, b"x")
    assert meta["author"] == made.author and made.requests == 2
    assert made.commit_author() == made.author
    again = RainerClient(rainer_url, token="ignored-by-this-server")
    again.post(key, 2, b"y")
    assert again.requests == 1  # the origin is remembered in this process
