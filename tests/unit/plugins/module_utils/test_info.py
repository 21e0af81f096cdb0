# Copyright: Rainer for Python and Ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""run_info's bulk reads (keys, prefix, payloads) and waits (wait_for), against a real server."""

from __future__ import annotations

import threading
import time

import pytest

from ansible_collections.rainer.rainer.plugins.module_utils._client import RainerClient
from ansible_collections.rainer.rainer.plugins.module_utils._common import RainerTaskError
from ansible_collections.rainer.rainer.plugins.module_utils._info import run_info


def later(seconds, action, *args):
    timer = threading.Timer(seconds, action, args)
    timer.start()
    return timer


def test_keys_prefix_and_metadata_only(client, key):
    client.post(key + ".a", 1, b'{"n": 1}')
    client.post(key + ".b", 1, b"x")
    client.post(key + ".b", 2, b"", empty=True)
    client.post(key + "-other", 1, b"y")
    before = client.requests
    result = run_info(client, dict(keys=[key + ".a", key + ".b", key + ".none", key + ".a"], format="json"))
    assert client.requests == before + 1
    assert result["key_names"] == [key + ".a"] and result["missing"] == [key + ".b", key + ".none"]
    assert result["commits"][key + ".a"]["value"] == {"n": 1}
    result = run_info(client, dict(keys=[key + ".a", key + ".b"], all=True, payloads=False))
    assert result["key_names"] == [key + ".a", key + ".b"] and result["missing"] == []
    assert "payload" not in result["commits"][key + ".a"] and result["commits"][key + ".b"]["empty"]
    result = run_info(client, dict(prefix=key + "."))
    assert result["key_names"] == [key + ".a"] and "missing" not in result
    result = run_info(client, dict(prefix=key, keys=[key + ".a", key + "-other", "elsewhere"]))
    assert result["key_names"] == [key + "-other", key + ".a"]
    before = client.requests
    single = run_info(client, dict(key=key + ".a", payloads=False))
    assert client.requests == before + 1 and single["version"] == 1 and "payload" not in single
    with pytest.raises(RainerTaskError) as info:
        run_info(client, dict(key=key + ".a", payloads=False, format="json"))
    assert "format needs the payloads" in info.value.message


def test_many_keys_go_in_pages_of_1000(client, key, monkeypatch):
    urls = []
    real = client._read

    def recording(url, *args, **kwargs):
        urls.append(url)
        return real(url, *args, **kwargs)

    monkeypatch.setattr(client, "_read", recording)
    client.list(keys=["%s-%d" % (key, i) for i in range(2001)], payload=False)
    assert len(urls) == 3 and urls[0].count("key=") == 1000 and urls[2].count("key=") == 1
    del urls[:]
    long_keys = ["%s-%s-%d" % (key, "x" * 200, i) for i in range(400)]
    client.post(long_keys[-1], 1, b"found")
    found = client.list(keys=long_keys)
    assert len(urls) == 3 and all(len(url) < 40 * 1024 for url in urls)  # not one 90 KB URL, which gets a 431
    assert list(found) == [long_keys[-1]] and found[long_keys[-1]].payload == b"found"


def test_wait_for_a_version_that_comes(client, key):
    client.post(key, 1, b"one")
    timer = later(0.5, client.post, key, 2, b"two")
    started = time.time()
    result = run_info(client, dict(key=key, wait_for=dict(version=2, timeout=30)))
    timer.join()
    assert result["version"] == 2 and result["payload"] == "two" and 0.3 < result["waited"] < 20
    assert time.time() - started < 20


def test_wait_for_a_key_to_be_created_and_for_a_tombstone(client, key):
    timer = later(0.5, client.post, key, 1, b"born")
    result = run_info(client, dict(key=key, format=None, wait_for=dict(changed_from=0, timeout=30)))
    timer.join()
    assert result["exists"] and result["version"] == 1
    timer = later(0.5, lambda: client.post(key, 2, b"", empty=True))
    result = run_info(client, dict(key=key, payloads=False, wait_for=dict(changed_from=1, timeout=30)))
    timer.join()
    assert result["commit"]["empty"] and result["version"] == 2 and "payload" not in result


def test_a_version_already_there_answers_at_once(client, key):
    client.post(key, 1, b"one")
    client.post(key, 2, b"two")
    before = client.requests
    result = run_info(client, dict(key=key, history=True, wait_for=dict(version=1, timeout=30)))
    assert result["version"] == 2 and result["waited"] < 5 and len(result["history"]) == 2
    assert client.requests == before + 2


def test_a_timeout_fails_saying_where_the_key_is(client, key):
    client.post(key, 1, b"one")
    with pytest.raises(RainerTaskError) as info:
        run_info(client, dict(key=key, wait_for=dict(version=3, timeout=1)))
    assert info.value.message == "Key %r did not reach version 3 within 1 s: its newest version is 1" % key
    assert info.value.details["version"] == 1 and info.value.details["waited"] >= 0.9
    with pytest.raises(RainerTaskError) as info:
        run_info(client, dict(key=key + "-none", wait_for=dict(version=1, timeout=0)))
    assert "it does not exist" in info.value.message and info.value.details["exists"] is False


def test_long_waits_are_slices_and_each_request_waits_long_enough(client, key, monkeypatch):
    asked = []
    real = client._read
    monkeypatch.setattr("ansible_collections.rainer.rainer.plugins.module_utils._info.WAIT_SLICE", 0.4)

    def recording(url, *args, **kwargs):
        asked.append((url, kwargs.get("timeout")))
        return real(url, *args, **kwargs)

    monkeypatch.setattr(client, "_read", recording)
    client.post(key, 1, b"one")
    with pytest.raises(RainerTaskError):
        run_info(client, dict(key=key, wait_for=dict(changed_from=1, timeout=1)))
    assert len(asked) >= 3 and "index=1" in asked[0][0] and "wait=400ms" in asked[0][0]
    assert asked[0][1] == pytest.approx(0.4 + client.timeout)


def test_a_server_that_does_not_block_is_polled(stub_server):
    headers = {"X-Rainer-Key": "k", "X-Rainer-Version": "1", "X-Rainer-Author": "a", "X-Rainer-Empty": "No"}
    stub = stub_server([(200, headers, b"one")])
    pauses = []
    made = RainerClient(stub.url, retry_delay=0)
    with pytest.raises(RainerTaskError):
        run_info(made, dict(key="k", wait_for=dict(version=2, timeout=0.5)), sleep=pauses.append)
    assert pauses and all(0 < pause <= 1.0 for pause in pauses)


@pytest.mark.parametrize("wait_for, words", [
    (dict(version=0), "wait_for.version must be 1 or more"),
    (dict(changed_from=-1), "needs version (1 or more) or changed_from"),
    (dict(version=1, timeout=-1), "timeout must be 0 or more"),
])
def test_bad_waits(client, key, wait_for, words):
    with pytest.raises(RainerTaskError) as info:
        run_info(client, dict(key=key, wait_for=wait_for))
    assert words in info.value.message
