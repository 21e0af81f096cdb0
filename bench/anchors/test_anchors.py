"""Self-check of the anchors' launchers: each starts on loopback, answers one real request and
stops without leaving anything behind. Run by ``make test`` with the other suites, so a broken
launcher is found before a benchmark needs it."""

from __future__ import annotations

import base64
import json

from anchors import EtcdServer, NginxServer
from harness import http_request, left_nothing_behind, require


def test_etcd() -> None:
    require(EtcdServer)
    with EtcdServer() as etcd:
        etcd.put("greeting", "hello")
        key = base64.b64encode(b"greeting").decode()
        status, body = http_request(
            etcd.client_url + "/v3/kv/range", json.dumps({"key": key}).encode()
        )
        assert status == 200
        assert base64.b64decode(json.loads(body)["kvs"][0]["value"]) == b"hello"
        assert etcd.get("missing") is None
        pid, folder = etcd.pid, etcd.tmpdir
    assert left_nothing_behind(pid, folder)


def test_nginx() -> None:
    require(NginxServer)
    with NginxServer() as nginx:
        status, body = http_request(nginx.url + "/static100.txt")
        assert status == 200
        assert len(body) == 100
        pid, folder = nginx.pid, nginx.tmpdir
    assert left_nothing_behind(pid, folder)
