# Copyright: Rainer for Python and Ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible.errors import AnsibleError
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import lookup_loader
from ansible.template import Templar

try:
    from ansible.template import trust_as_template
except ImportError:  # ansible-core < 2.19 templates every string
    def trust_as_template(value):
        return value

from ansible_collections.rainer.rainer.plugins.module_utils._client import NO_URL, RainerClient


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


def test_no_url_says_how_to_give_one(lookup, monkeypatch):
    monkeypatch.delenv("RAINER_URL", raising=False)
    with pytest.raises(AnsibleError) as info:
        lookup.run(["k"], {})
    assert str(info.value) == NO_URL
    with pytest.raises(AnsibleError) as info:
        lookup.run(["k"], {"rainer_url": ""})
    assert str(info.value) == NO_URL


def test_the_read_only_lookup_has_no_author(lookup):
    """It documents, and so reads, only what it takes: the author is recorded with commits."""
    lookup.set_options(direct={"url": "http://127.0.0.1:1/diary"})
    assert lookup.get_option("url") == "http://127.0.0.1:1/diary"
    with pytest.raises(KeyError):
        lookup.get_option("author")


def test_unreachable_and_empty_terms(lookup, closed_port_url):
    with pytest.raises(AnsibleError) as info:
        lookup.run(["k"], {}, url=closed_port_url, retries=0)
    assert "cannot reach" in str(info.value) and "connection refused" in str(info.value)
    assert lookup.run([], {}, url=closed_port_url) == []


def test_several_keys_read_just_those_keys(lookup, data, rainer_url, monkeypatch):
    requests = count_requests(monkeypatch)
    result = lookup.run([data + "-a", data + "-b"], {}, url=rainer_url, meta=True)
    assert [r["key"] for r in result] == [data + "-a", data + "-b"] and len(requests) == 1
    method, url = requests[0][:2]
    assert method == "GET" and url.count("key=") == 2 and "payload_base64=yes" in url


def test_prefix_returns_a_dict(lookup, data, client, rainer_url, monkeypatch):
    client.post(data + "-p.1", 1, b"[1]")
    client.post(data + "-p.2", 1, b"[2]")
    client.post(data + "-p.3", 1, b"x")
    client.post(data + "-p.3", 2, b"", empty=True)
    requests = count_requests(monkeypatch)
    [found] = lookup.run([], {}, url=rainer_url, prefix=data + "-p.", format="json")
    assert found == {data + "-p.1": [1], data + "-p.2": [2]}
    assert len(requests) == 1 and "prefix=" in requests[0][1]
    [meta] = lookup.run([], {}, url=rainer_url, prefix=data + "-a", meta=True)
    assert meta[data + "-a"]["version"] == 2 and meta[data + "-a"]["value"] == '{"n": 2}'
    assert lookup.run([], {}, url=rainer_url, prefix=data + "-none") == [{}]
    with pytest.raises(AnsibleError) as info:
        lookup.run([], {}, url=rainer_url, prefix=data + "-")
    assert "binary" in str(info.value)
    with pytest.raises(AnsibleError) as info:
        lookup.run([data + "-a"], {}, url=rainer_url, prefix=data)
    assert "not both" in str(info.value)
    with pytest.raises(AnsibleError) as info:
        lookup.run([], {}, url=rainer_url, prefix=data, version=1)
    assert "does not go with prefix" in str(info.value)


def test_templated_variables_and_a_token(secured):
    bot = RainerClient(secured.url, token=secured.tokens["ci-bot"])
    if bot.head("app.lookup-token") is None:
        bot.post("app.lookup-token", 1, b"secret value")
    variables = {"rainer_url": trust_as_template("{{ base }}/diary"), "base": secured.origin,
                 "rainer_token": secured.tokens["viewer"]}
    loader = DataLoader()
    templated = lookup_loader.get("rainer.rainer.rainer", loader=loader, templar=Templar(loader=loader, variables=variables))
    assert templated.run(["app.lookup-token"], variables) == ["secret value"]


def test_refusals_name_principal_key_and_permission(lookup, secured):
    RainerClient(secured.url, token=secured.tokens["root"]).post("db.lookup-refused", 1, b"x") \
        if RainerClient(secured.url, token=secured.tokens["root"]).head("db.lookup-refused") is None else None
    for terms in (["db.lookup-refused"], ["app.anything", "db.lookup-refused"]):
        with pytest.raises(AnsibleError) as info:
            lookup.run(terms, {}, url=secured.url, token=secured.tokens["viewer"])
        assert "principal 'viewer' may not read key 'db.lookup-refused'" in str(info.value)
    assert lookup.run(["app.anything", "db.lookup-refused"], {}, url=secured.url, token=secured.tokens["viewer"],
                      default="hidden") == ["hidden", "hidden"]
    with pytest.raises(AnsibleError) as info:
        lookup.run(["app.anything"], {}, url=secured.url.replace("://", "://ci-bot:NotTheToken@"))
    assert "401" in str(info.value) and "NotTheToken" not in str(info.value)
