# -*- coding: utf-8 -*-
# Copyright: Rainer for Python and Ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible.errors import AnsibleError
from ansible.plugins.loader import lookup_loader

from ansible_collections.rainer.rainer.plugins.module_utils.client import RainerClient


@pytest.fixture
def lookup():
    return lookup_loader.get("rainer.rainer.rainer")


@pytest.fixture
def data(client, key):
    client.post(key + "-a", 1, b'{"n": 1}')
    client.post(key + "-a", 2, b'{"n": 2}', comment="two")
    client.post(key + "-b", 1, b"b: [x]\n")
    client.post(key + "-gone", 1, b"x")
    client.post(key + "-gone", 2, b"", empty=True)
    client.post(key + "-bin", 1, b"\xff\xfe")
    return key


def count_requests(monkeypatch):
    counter = []
    real = RainerClient._send_once

    def counting(self, *args, **kwargs):
        counter.append(args)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(RainerClient, "_send_once", counting)
    return counter


def test_text_and_formats(lookup, data, rainer_url):
    assert lookup.run([data + "-a"], {}, url=rainer_url) == ['{"n": 2}']
    assert lookup.run([data + "-a"], {}, url=rainer_url, format="json") == [{"n": 2}]
    assert lookup.run([data + "-b"], {}, url=rainer_url, format="yaml") == [{"b": ["x"]}]
    assert lookup.run([data + "-a"], {}, url=rainer_url, version=1, format="json") == [{"n": 1}]


def test_many_keys_cost_one_request(lookup, data, rainer_url, monkeypatch):
    requests = count_requests(monkeypatch)
    result = lookup.run([data + "-a", data + "-b", data + "-a"], {}, url=rainer_url)
    assert result == ['{"n": 2}', "b: [x]\n", '{"n": 2}'] and len(requests) == 1


def test_one_key_costs_one_request(lookup, data, rainer_url, monkeypatch):
    requests = count_requests(monkeypatch)
    lookup.run([data + "-a"], {}, url=rainer_url)
    assert len(requests) == 1


def test_meta(lookup, data, rainer_url):
    [result] = lookup.run([data + "-a"], {}, url=rainer_url, meta=True, format="json")
    assert result["value"] == {"n": 2} and result["version"] == 2 and result["comment"] == "two"
    assert result["key"] == data + "-a" and result["empty"] is False and result["mtime"]
    [many] = lookup.run([data + "-a", data + "-b"], {}, url=rainer_url, meta=True)[:1]
    assert many["version"] == 2 and many["value"] == '{"n": 2}'


def test_default_and_missing(lookup, data, rainer_url):
    assert lookup.run([data + "-nope"], {}, url=rainer_url, default="d") == ["d"]
    assert lookup.run([data + "-gone", data + "-a"], {}, url=rainer_url, default=None) == [None, '{"n": 2}']
    assert lookup.run([data + "-a"], {}, url=rainer_url, version=9, default={}) == [{}]
    with pytest.raises(AnsibleError) as info:
        lookup.run([data + "-nope"], {}, url=rainer_url)
    assert data + "-nope" in str(info.value) and rainer_url in str(info.value) and "not found" in str(info.value)
    with pytest.raises(AnsibleError) as info:
        lookup.run([data + "-gone", data + "-a"], {}, url=rainer_url)
    assert "deleted" in str(info.value)


def test_bad_payloads(lookup, data, rainer_url):
    with pytest.raises(AnsibleError) as info:
        lookup.run([data + "-bin"], {}, url=rainer_url)
    assert "binary" in str(info.value)
    with pytest.raises(AnsibleError) as info:
        lookup.run([data + "-b"], {}, url=rainer_url, format="json")
    assert "not valid JSON" in str(info.value)


def test_options_from_variables_and_env(lookup, data, rainer_url, monkeypatch):
    assert lookup.run([data + "-a"], {"rainer_url": rainer_url}) == ['{"n": 2}']
    monkeypatch.setenv("RAINER_URL", rainer_url)
    assert lookup.run([data + "-a"], {}) == ['{"n": 2}']


def test_unreachable_and_empty_terms(lookup, closed_port_url):
    with pytest.raises(AnsibleError) as info:
        lookup.run(["k"], {}, url=closed_port_url, retries=0)
    assert "cannot reach" in str(info.value) and "connection refused" in str(info.value)
    assert lookup.run([], {}, url=closed_port_url) == []
