# Copyright: Rainer for Python and Ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import ssl
from unittest import mock

import pytest

from ansible.module_utils.urls import SSLValidationError

from ansible_collections.rainer.rainer.plugins.module_utils import _client as client_module
from ansible_collections.rainer.rainer.plugins.module_utils._client import (
    RainerBadRequestError,
    RainerClient,
    RainerConflictError,
    RainerNotFoundError,
    RainerProtocolError,
    RainerServerError,
    RainerTLSError,
    RainerUnreachableError,
    decode_payload,
    default_author,
)


def test_post_then_read_back_everything(client, key):
    assert client.head(key) is None
    meta = client.post(key, 1, b"hello\n", comment="first \u00e9")
    assert meta["key"] == key and meta["version"] == 1 and meta["author"] == "unit-tests"
    assert meta["comment"] == "first \u00e9" and meta["empty"] is False and meta["mtime"]

    head = client.get(key)
    assert head.payload == b"hello\n" and head.meta == meta and head.text == "hello\n"
    assert client.meta(key) == meta
    assert client.meta(key, 1) == meta
    assert client.get(key, 1).payload == b"hello\n"

    client.post(key, 2, b"\xff\x00binary")
    assert client.get(key).payload == b"\xff\x00binary"
    assert client.get(key).text is None
    assert [c.version for c in client.history(key)] == [2, 1]
    assert [c.version for c in client.history(key, limit=1)] == [2]
    assert [c.version for c in client.history(key, before=2)] == [1]
    assert client.history(key, payload=True)[1].payload == b"hello\n"

    listed = client.list()
    assert listed[key].version == 2 and listed[key].payload == b"\xff\x00binary"


def test_tombstones_are_listed_only_with_all(client, key):
    client.post(key, 1, b"x")
    meta = client.post(key, 2, b"ignored", empty=True)
    assert meta["empty"] is True and meta["version"] == 2
    head = client.get(key)
    assert head.empty and head.payload == b""
    assert key not in client.list()
    assert client.list(all=True)[key].empty
    assert client.list(all=True, payload=False)[key].payload is None


def test_not_found(client, key):
    with pytest.raises(RainerNotFoundError) as info:
        client.get(key)
    assert info.value.status == 404 and "Key not found" in info.value.body
    with pytest.raises(RainerNotFoundError):
        client.meta(key)
    client.post(key, 1, b"x")
    with pytest.raises(RainerNotFoundError):
        client.get(key, 7)


def test_conflict_carries_key_and_versions(client, key):
    client.post(key, 1, b"x")
    with pytest.raises(RainerConflictError) as info:
        client.post(key, 1, b"y")
    error = info.value
    assert (error.status, error.key, error.expected_version, error.provided_version) == (409, key, 2, 1)
    assert error.to_dict()["conflict"] == {"key": key, "expectedVersion": 2, "providedVersion": 1}
    assert str(error) == "Conflict on key %r: expected version 2, got 1" % key
    # a conflict is a clear answer: commit_once does not post again
    before = client.requests
    with pytest.raises(RainerConflictError):
        client.commit_once(key, 5, b"z")
    assert client.requests == before + 1


def test_bad_request(client, key):
    with pytest.raises(RainerBadRequestError) as info:
        client._read(client._with_query(client.url, {"all": "maybe"}))
    assert info.value.status == 400 and info.value.body
    with pytest.raises(RainerBadRequestError) as info:
        client._send_once("POST", client._key_url(key, "1"), data=b"x", headers={})
    assert "X-Rainer-Author" in info.value.body


def test_key_with_special_characters_round_trips(client, key):
    odd = key + " sp%ce & ü"
    client.post(odd, 1, b"odd")
    assert client.get(odd).payload == b"odd"
    assert client.get(odd).key == odd


def test_unreachable_is_retried_then_raised(closed_port_url):
    pauses = []
    client = RainerClient(closed_port_url, retries=2, sleep=pauses.append)
    with pytest.raises(RainerUnreachableError) as info:
        client.get("k")
    assert info.value.status is None and str(info.value).endswith(": connection refused")
    assert client.requests == 3 and len(pauses) == 2 and pauses[0] < pauses[1]


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_no_answer_is_one_line_in_words(closed_port_url, scheme):
    """The words of the rainer command's client: what went wrong, never "[Errno 111]"."""
    url = closed_port_url.replace("http:", scheme + ":")
    client = RainerClient(url, retries=0)
    with pytest.raises(RainerUnreachableError) as info:
        client.get("k")
    origin = url.rpartition("/")[0]
    assert str(info.value) == "cannot reach %s: connection refused" % origin
    client = RainerClient("%s://no-such-host.invalid/diary" % scheme, retries=0)
    with pytest.raises(RainerUnreachableError) as info:
        client.get("k")
    assert str(info.value) == "cannot reach %s://no-such-host.invalid: cannot resolve 'no-such-host.invalid'" % scheme


def test_wrapped_errors_are_put_in_words():
    """Errors ansible.module_utils.urls wraps in its own (where it checks an https:// connection
    with a handler of its own, as ansible-core 2.16 does after a redirect or through an https_proxy,
    "Failed to connect to ... [Errno 111] Connection refused") are put in words from the error inside."""
    def wrapped(outer, inner):
        try:
            try:
                raise inner
            except OSError:
                raise outer
        except Exception as exc:  # pylint: disable=broad-except
            return exc

    client = RainerClient("https://127.0.0.1:1/diary", retries=0)
    cases = [
        (wrapped(client_module.UrlsConnectionError("Failed to connect: [Errno 111] Connection refused"),
                 ConnectionRefusedError(111, "Connection refused")), RainerUnreachableError, "connection refused"),
        (wrapped(SSLValidationError("Failed to validate the SSL certificate ... (long)"),
                 ssl.SSLError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")), RainerTLSError,
         "TLS failed: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"),
        (wrapped(client_module.ProxyError("Failed to connect to the proxy"), ConnectionResetError(104, "Connection reset by peer")),
         RainerUnreachableError, "the proxy failed: connection reset"),
    ]
    for error, kind, words in cases:
        with mock.patch.object(client_module.Request, "open", side_effect=error):
            with pytest.raises(kind) as info:
                client.get("k")
        assert str(info.value).startswith("cannot reach https://127.0.0.1:1: " + words), str(info.value)
        assert "Errno" not in str(info.value) and "\n" not in str(info.value)


def test_no_url_is_refused_with_the_one_message():
    for url in (None, ""):
        with pytest.raises(ValueError) as info:
            RainerClient(url)
        assert str(info.value) == client_module.NO_URL


def test_timeout(silent_listener):
    client = RainerClient(silent_listener[0], timeout=0.3, retries=1, retry_delay=0)
    with pytest.raises(RainerUnreachableError) as info:
        client.get("k")
    assert str(info.value).endswith("no answer within 0.3 s") and client.requests == 2


def test_tls_failure_is_not_retried(stub_server):
    stub = stub_server([(200, {}, b"plain text, not TLS")])
    client = RainerClient(stub.url.replace("http://", "https://"), retries=3, retry_delay=0, timeout=3)
    with pytest.raises(RainerTLSError) as info:
        client.get("k")
    assert "TLS" in str(info.value) and client.requests == 1


def test_certificate_validation_failure_is_a_tls_error():
    client = RainerClient("https://127.0.0.1:1/diary", retries=2, retry_delay=0)
    with mock.patch.object(client_module.Request, "open", side_effect=SSLValidationError("certificate verify failed")):
        with pytest.raises(RainerTLSError):
            client.get("k")
    assert client.requests == 1
    with mock.patch.object(client_module.Request, "open", side_effect=ssl.SSLError("handshake")):
        with pytest.raises(RainerTLSError):
            client.list()


def test_5xx_reads_are_retried(stub_server):
    meta = {"key": "k", "version": 1, "author": "a", "comment": "", "mtime": "1970-01-01T00:00:00.002Z", "empty": False}
    stub = stub_server([
        (503, {}, b"busy"),
        (200, {"Content-Type": "application/json"}, json.dumps(meta).encode() + b"\r\n"),
    ])
    client = RainerClient(stub.url, retries=1, retry_delay=0)
    assert client.meta("k") == meta
    assert len(stub.requests) == 2


def test_500_is_a_server_error_and_not_retried(stub_server):
    stub = stub_server([(500, {}, b"boom")])
    client = RainerClient(stub.url, retries=3, retry_delay=0)
    with pytest.raises(RainerServerError) as info:
        client.list()
    assert info.value.status == 500 and info.value.body == "boom" and len(stub.requests) == 1


def test_broken_answers_are_protocol_errors(stub_server):
    stub = stub_server([(200, {}, b"not json")])
    client = RainerClient(stub.url, retry_delay=0)
    with pytest.raises(RainerProtocolError):
        client.meta("k")
    with pytest.raises(RainerProtocolError):
        client.get("k")  # no X-Rainer-Version header
    with pytest.raises(RainerProtocolError):
        client.post("k", 1, b"x")
    stub.script[:] = [(200, {}, b"[1]")]
    with pytest.raises(RainerProtocolError):
        client.list()
    stub.script[:] = [(200, {}, b"{}")]
    with pytest.raises(RainerProtocolError):
        client.history("k")


def test_headers_and_author_are_sent(stub_server):
    meta = {"key": "k", "version": 1, "author": "bob", "comment": "c", "mtime": None, "empty": False}
    stub = stub_server([(200, {}, json.dumps(meta).encode())])
    client = RainerClient(stub.url + "/", headers={"Authorization": "Bearer t"}, author="bob")
    client.post("k", 1, b"x", comment="c")
    method, path, headers, body = stub.requests[0]
    assert (method, path, body) == ("POST", "/diary/k/1", b"x")
    assert headers["Authorization"] == "Bearer t" and headers["X-Rainer-Author"] == "bob"
    assert headers["X-Rainer-Comment"] == "c" and "X-Rainer-Empty" not in headers


def test_lost_answer_to_a_post_that_landed(client, key):
    """The answer to a post is lost (a real server cannot be made to do that): re-read, do not re-post."""
    real_post = client.post

    def post_then_lose_answer(*args, **kwargs):
        real_post(*args, **kwargs)
        raise RainerUnreachableError("connection reset")

    with mock.patch.object(client, "post", side_effect=post_then_lose_answer) as post:
        meta = client.commit_once(key, 1, b"landed", comment="c")
    assert post.call_count == 1
    assert meta["version"] == 1 and client.get(key).payload == b"landed"


def test_post_that_did_not_land_is_posted_again(client, key):
    real_post = client.post
    calls = []

    def fail_first(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise RainerUnreachableError("connection refused")
        return real_post(*args, **kwargs)

    with mock.patch.object(client, "post", side_effect=fail_first):
        meta = client.commit_once(key, 1, b"second try")
    assert len(calls) == 2 and meta["version"] == 1


def test_post_failure_without_retries_left_raises(client, key):
    client.retries = 0
    with mock.patch.object(client, "post", side_effect=RainerUnreachableError("down")):
        with pytest.raises(RainerUnreachableError):
            client.commit_once(key, 1, b"x")
    assert client.head(key) is None


def test_post_failure_and_failed_reread(closed_port_url):
    client = RainerClient(closed_port_url, retries=0, retry_delay=0)
    with pytest.raises(RainerUnreachableError) as info:
        client.commit_once("k", 1, b"x")
    assert "the commit may or may not have been saved" in str(info.value)


def test_someone_elses_commit_at_our_version_is_not_ours(client, key):
    other = RainerClient(client.url, author="someone-else")
    client.retries = 0

    def other_wins(*args, **kwargs):
        other.post(key, 1, b"theirs")
        raise RainerUnreachableError("reset")

    with mock.patch.object(client, "post", side_effect=other_wins):
        with pytest.raises(RainerUnreachableError) as info:
            client.commit_once(key, 1, b"ours")
    assert "this commit was not saved: version 1 of" in str(info.value)


def test_helpers(monkeypatch):
    assert decode_payload(None) is None and decode_payload(b"\xff") is None and decode_payload(b"a") == "a"
    monkeypatch.setenv("RAINER_AUTHOR", "ci-bot")
    assert default_author() == "ci-bot"
    monkeypatch.delenv("RAINER_AUTHOR")
    assert default_author()
    with pytest.raises(ValueError):
        RainerClient("")
    assert RainerClient("http://h/diary/").url == "http://h/diary"
