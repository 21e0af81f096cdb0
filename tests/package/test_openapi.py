"""The OpenAPI description: a valid OpenAPI 3.1 document, served with the server's prefix, and
true of a real ``rainer serve``.

The last part is a table of hand-written requests, one or more for every route and every status
the contract gives that a real server can be made to give. Each is sent as raw bytes (so that
malformed escapes, repeated headers and odd Host names reach the server as written) and its answer
is checked twice: against the status the table expects, and by openapi-core against what the
description documents for that operation (status, content type, body schema, headers).
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
from http_util import Reply, call, post_commit
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from openapi_core.validation.response.validators import V31ResponseHeadersValidator
from openapi_spec_validator import validate as validate_spec
from openapi_spec_validator.validation import OpenAPIV31SpecValidator

from harness.rainer import RainerServer
from rainer.server import openapi

TEXT = "text/plain; charset=UTF-8"
JSON = "application/json; charset=UTF-8"
META_FIELDS = ["key", "version", "author", "comment", "mtime", "empty"]
METHODS = ("get", "head", "post", "put", "delete", "patch", "options", "trace")
# The statuses the contract lets any request get, whatever it asks.
ANY_ROUTE = {"408", "421", "431", "503"}
HEAD_TIMEOUT = 20.0  # seconds we wait for a 408 to a request head that never ends


# -- the document ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi.description()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def test_description_is_valid_openapi_3_1(document):
    assert document["openapi"] == "3.1.0"
    validate_spec(document, cls=OpenAPIV31SpecValidator)


def test_description_has_every_route_and_no_other(document):
    routes = {(path, method) for path, method, _ in operations(document)}
    reads = ("get", "head")
    expected = {
        *(
            (path, method)
            for method in reads
            for path in ("/diary", "/healthz", "/whoami", "/openapi.json")
        ),
        *(
            (f"/diary/{{key}}{suffix}", method)
            for method in reads
            for suffix in ("", "/meta", "/history", "/{version}", "/{version}/meta")
        ),
        ("/diary/{key}/{version}", "post"),
        ("/diary", "post"),
    }
    assert routes == expected


def test_every_operation_is_described_for_users(document):
    """What a reader of generated docs, and a fuzzer, relies on being there."""
    ids = [operation["operationId"] for _, _, operation in operations(document)]
    assert len(ids) == len(set(ids))
    for path, method, operation in operations(document):
        where = f"{method.upper()} {path}"
        assert operation.get("summary") and operation.get("description"), where
        assert operation.get("tags"), where
        assert set(operation["responses"]) >= ANY_ROUTE, where
        if path.startswith("/diary/"):
            assert {"400", "500"} <= set(operation["responses"]), where
    components = document["components"]
    for name, parameter in components["parameters"].items():
        assert parameter.get("description"), name
    for name, response in components["responses"].items():
        assert response.get("description") and response.get("content"), name


def test_links_name_real_operations_and_parameters(document):
    by_id = {
        operation["operationId"]: (path, operation) for path, _, operation in operations(document)
    }
    links = document["components"]["responses"]["Committed"]["links"]
    assert {link["operationId"] for link in links.values()} >= {
        "getPayload",
        "getMeta",
        "getVersion",
        "getVersionMeta",
        "getHistory",
    }
    for name, link in links.items():
        path, operation = by_id[link["operationId"]]
        accepted = {
            _resolve(document, parameter)["name"]
            for parameter in document["paths"][path].get("parameters", [])
            + operation.get("parameters", [])
        }
        assert set(link["parameters"]) <= accepted, name
        assert all(value.startswith("$response.body#/") for value in link["parameters"].values())


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """``node`` with its local ``$ref`` followed, as often as it takes."""
    while "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


# -- served ------------------------------------------------------------------------------------


def test_openapi_json_is_served_with_the_prefix(tmp_path):
    args = ["--database", f"sqlite:///{tmp_path / 'rainer.db'}"]
    with RainerServer(args, prefix="/other") as server:
        got = call("GET", server.url + "/openapi.json")
        listed = call("GET", server.url + "/other")
    assert got.status == 200
    assert got.header("content-type") == JSON
    served = json.loads(got.body)
    assert served == openapi.description("/other")
    validate_spec(served, cls=OpenAPIV31SpecValidator)
    assert "/other/{key}/{version}" in served["paths"]
    assert {"/healthz", "/openapi.json"} <= set(served["paths"])
    assert not any(path.startswith("/diary") for path in served["paths"])
    # The served document describes the routes this server really has.
    assert listed.status == 200
    assert not response_errors(served, OpenAPI.from_dict(served), "GET", "/other", "/other", listed)


# -- answers against the description -----------------------------------------------------------


def send(
    url: str,
    method: str,
    target: str,
    headers: Sequence[tuple[str, str | bytes]] = (),
    body: bytes | None = None,
    host: str | None = None,
) -> Reply:
    """One request as written: ``target`` verbatim, a header twice when listed twice, and
    ``host`` (when given) in place of the Host header http.client would send."""
    address, port = url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(address, int(port), timeout=30)
    try:
        connection.putrequest(method, target, skip_host=host is not None, skip_accept_encoding=True)
        if host is not None:
            connection.putheader("Host", host)
        for name, value in headers:
            connection.putheader(name, value)
        if body is not None or method == "POST":
            connection.putheader("Content-Length", str(len(body or b"")))
        connection.endheaders(body)
        response = connection.getresponse()
        data = response.read()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    finally:
        connection.close()


def response_errors(
    document: dict[str, Any], api: OpenAPI, method: str, pattern: str, path: str, reply: Reply
) -> list[Any]:
    """What openapi-core finds wrong with ``reply`` as the answer of operation ``method
    pattern`` (status documented, content type, body schema, headers)."""
    request = MockRequest("http://127.0.0.1", method, path, path_pattern=pattern)
    content_type = reply.header("content-type") or ""
    response = MockResponse(reply.body, reply.status, reply.headers, content_type)
    if reply.body:
        return list(api.iter_response_errors(request, response))
    # A HEAD answer has no body, and openapi-core takes an empty body (a tombstone's payload)
    # for a missing one: check its status, headers and content type, and that an empty body
    # is possible in that type.
    errors: list[Any] = list(V31ResponseHeadersValidator(api.spec).iter_errors(request, response))
    documented = document["paths"][pattern][method.lower()]["responses"].get(str(reply.status))
    if documented is None:
        errors.append(f"status {reply.status} is not documented")
    elif content_type not in _resolve(document, documented).get("content", {}):
        errors.append(f"content type {content_type!r} is not documented")
    elif method != "HEAD" and content_type.startswith("application/json"):
        errors.append("an empty JSON body")
    return errors


@dataclass(frozen=True)
class Row:
    """One request of the table, ``"METHOD target"``, and the status the contract answers.

    ``check`` looks further at the answer; ``server`` names the server it goes to (see
    ``servers``); ``host`` replaces the Host header.
    """

    name: str
    request: str
    status: int
    headers: list[tuple[str, str | bytes]] = field(default_factory=list)
    body: bytes | None = None
    check: Callable[[Reply], Any] | None = None
    host: str | None = None
    server: str = "main"

    @property
    def method(self) -> str:
        return self.request.split(" ", 1)[0]

    @property
    def target(self) -> str:
        return self.request.split(" ", 1)[1]

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


def documented_pattern(path: str) -> str | None:
    """The path of the description that ``path`` is an instance of; None when there is none
    (an unknown path), so the answer is checked by hand."""
    if path in ("/diary", "/healthz", "/openapi.json"):
        return path
    parts = path.split("/")[2:] if path.startswith("/diary/") else []
    if not parts or "" in parts:
        return None
    shapes = {
        1: "/diary/{key}",
        2: {"meta": "/diary/{key}/meta", "history": "/diary/{key}/history"}.get(
            parts[-1], "/diary/{key}/{version}"
        ),
        3: "/diary/{key}/{version}/meta" if parts[-1] == "meta" else None,
    }
    return shapes.get(len(parts))


def author(*headers: tuple[str, str | bytes]) -> list[tuple[str, str | bytes]]:
    return [("X-Rainer-Author", "alice"), *headers]


def json_of(reply: Reply) -> Any:
    assert reply.body.endswith(b"\r\n"), "JSON bodies end with CRLF"
    return json.loads(reply.body)


def in_order(value: Any) -> None:
    """Every metadata object in ``value`` has the original's field order."""
    if isinstance(value, list):
        for item in value:
            in_order(item)
    elif isinstance(value, dict) and "version" in value:
        assert list(value)[:6] == META_FIELDS, list(value)
    elif isinstance(value, dict):
        for item in value.values():
            in_order(item)


def meta_is(**expected: Any) -> Callable[[Reply], None]:
    def check(reply: Reply) -> None:
        meta = json_of(reply)
        in_order(meta)
        assert {name: meta[name] for name in expected} == expected

    return check


def text_is(expected: str) -> Callable[[Reply], None]:
    def check(reply: Reply) -> None:
        assert reply.text == expected

    return check


def text_starts(prefix: str) -> Callable[[Reply], None]:
    def check(reply: Reply) -> None:
        assert reply.text.startswith(prefix), reply.text

    return check


def payload_is(body: bytes, content_type: str, **headers: str) -> Callable[[Reply], None]:
    """The body, its type, and ``X-Rainer-*`` headers (``empty="Yes"``), decoded as UTF-8."""

    def check(reply: Reply) -> None:
        assert reply.body == body
        assert reply.header("content-type") == content_type
        for name, value in headers.items():
            sent = reply.header("x-rainer-" + name)
            # http.client hands header bytes over as Latin-1; the server sends UTF-8.
            assert sent is not None and sent.encode("latin-1").decode() == value, name

    return check


def history_is(versions: list[int], link: bool | None = None) -> Callable[[Reply], None]:
    def check(reply: Reply) -> None:
        page = json_of(reply)
        in_order(page)
        assert [meta["version"] for meta in page] == versions
        if link is not None:
            assert (reply.header("link") is not None) == link, reply.header("link")

    return check


def lists(present: set[str], absent: frozenset[str] = frozenset(), **fields: str) -> Callable:
    def check(reply: Reply) -> None:
        heads = json_of(reply)
        in_order(heads)
        assert present <= set(heads) and not absent & set(heads), sorted(heads)
        assert list(heads) == sorted(heads)
        for name, value in fields.items():
            assert heads["web.json"].get(name) == value, name

    return check


def conflict_is(expected: int, provided: int) -> Callable[[Reply], None]:
    def check(reply: Reply) -> None:
        conflict = json_of(reply)["conflict"]
        assert (conflict["expectedVersion"], conflict["providedVersion"]) == (expected, provided)

    return check


def allows(*methods: str) -> Callable[[Reply], None]:
    def check(reply: Reply) -> None:
        allow = {method.strip() for method in (reply.header("allow") or "").split(",")}
        # HEAD goes with GET: listing it or leaving it out are both right.
        assert allow - {"HEAD"} == set(methods), reply.header("allow")

    return check


WEB = [b'{"workers": 1}', b'{"workers": 2}', b'{"workers": 3}']
BINARY = b"\xff\x00\xfe"
OCTETS = "application/octet-stream"
UNICODE_KEY = "ключ naïve+plus"

BAD_KEYS = {
    "slash": "a%2Fb",
    "dot": "%2E",
    "dot-dot": "%2E%2E",
    "raw-dot-dot": "..",
    "tab": "tab%09key",
    "delete": "a%7F",
    "c1-control": "a%C2%85",
    "surrogate": "a%ED%A0%80",
    "256-bytes": "x" * 256,
    "256-bytes-in-128-characters": "%C3%A9" * 128,
    "malformed-escape": "a%zz",
    "not-utf8": "%FF%FE",
}
# Keys a commit refuses (they make different keys look alike) but reads accept, so that keys an
# older server wrote stay readable: a read of one that does not exist is a 404.
LOOKALIKE_KEYS = {
    "cf-right-to-left-override": "a%E2%80%AE",
    "cf-zero-width-space": "a%E2%80%8B",
    "cf-byte-order-mark": "a%EF%BB%BF",
    "cf-astral-language-tag": "a%F3%A0%80%81",
    "line-separator": "a%E2%80%A8",
    "paragraph-separator": "a%E2%80%A9",
}
BAD_VERSIONS = [
    "one",
    "1.5",
    "+1",
    "1e3",
    "%201",
    "0x1",
    "2147483648",
    "-2147483648",
    "99999999999",
]
BAD_HISTORY_QUERIES = [
    "limit=0",
    "limit=1001",
    "limit=x",
    "limit=",
    "limit=%2B5",
    "limit=%D9%A1",  # ARABIC-INDIC DIGIT ONE: a digit, but not ASCII
    "limit=%C2%B2",  # SUPERSCRIPT TWO
    "before=0",
    "before=-1",
    "before=2147483648",
    "payload_utf8=maybe",
    "limit=1&limit=2",
]
# Commits the contract refuses, with the status it refuses them with.
BAD_COMMITS: list[tuple[str, int, list[tuple[str, str | bytes]], bytes]] = [
    ("empty-author", 400, [("X-Rainer-Author", "")], b"x"),
    ("author-with-tab", 400, [("X-Rainer-Author", "a\tb")], b"x"),
    ("author-not-utf8", 400, [("X-Rainer-Author", b"caf\xe9")], b"x"),
    ("author-twice", 400, [("X-Rainer-Author", "a"), ("X-Rainer-Author", "b")], b"x"),
    ("comment-twice", 400, author(("X-Rainer-Comment", "a"), ("X-Rainer-Comment", "b")), b"x"),
    ("comment-not-utf8", 400, author(("X-Rainer-Comment", b"\xff")), b"x"),
    ("empty-maybe", 400, author(("X-Rainer-Empty", "maybe")), b""),
    ("tombstone-with-body", 400, author(("X-Rainer-Empty", "yes")), b"x"),
    ("mtime-not-a-time", 400, author(("X-Rainer-Modified-Time", "yesterday")), b"x"),
    ("mtime-date-only", 400, author(("X-Rainer-Modified-Time", "2014-02-11")), b"x"),
    (
        "mtime-offset-seconds",
        400,
        author(("X-Rainer-Modified-Time", "2014-02-11T14:01+05:30:15")),
        b"x",
    ),
    ("mtime-year-0", 400, author(("X-Rainer-Modified-Time", "0000-12-31T00:00:00Z")), b"x"),
    ("mtime-month-13", 400, author(("X-Rainer-Modified-Time", "2014-13-01T00:00:00Z")), b"x"),
    ("key-header-differs", 400, author(("X-Rainer-Key", "other")), b"x"),
    ("version-header-differs", 400, author(("X-Rainer-Version", "2")), b"x"),
    ("version-header-with-plus", 400, author(("X-Rainer-Version", "+1")), b"x"),
    ("author-too-long", 431, [("X-Rainer-Author", "a" * 1025)], b"x"),
    ("comment-too-long", 431, author(("X-Rainer-Comment", "c" * 16385)), b"x"),
]
WRONG_METHODS = [
    ("PUT /diary", "GET, POST"),
    ("DELETE /diary/web.json", "GET"),
    ("POST /diary/web.json", "GET"),
    ("POST /diary/web.json/meta", "GET"),
    ("PUT /diary/web.json/1", "GET, POST"),
    ("PATCH /diary/web.json/1", "GET, POST"),
    ("DELETE /diary/web.json/1/meta", "GET"),
    ("POST /diary/web.json/history", "GET"),
    ("POST /healthz", "GET"),
    ("PUT /openapi.json", "GET"),
]
UNKNOWN_PATHS = [
    "/",
    "/other",
    "/diaryx",
    "/diary/k/1/meta/x",
    "/diary/k/1/x",
    "/diary/k/",
    "/healthz/x",
]


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text).strip("-") or "root"


ROWS = [
    # -- the list
    Row("list", "GET /diary", 200, check=lists({"web.json", "bin"}, frozenset({"gone"}))),
    Row("list-all", "GET /diary?all=YES", 200, check=lists({"web.json", "gone"})),
    Row(
        "list-payloads",
        "GET /diary?payload_utf8=true&payload_base64=1",
        200,
        check=lists(
            {"web.json"},
            payload_utf8=WEB[2].decode(),
            payload_base64=base64.b64encode(WEB[2]).decode(),
        ),
    ),
    Row("list-flags-off", "GET /diary?all=No&payload_utf8=0&payload_base64=false", 200),
    Row("list-bad-flag", "GET /diary?all=maybe", 400),
    Row("list-empty-flag", "GET /diary?payload_utf8=", 400),
    Row("list-flag-with-space", "GET /diary?all=%20yes", 400),
    Row("list-parameter-twice", "GET /diary?all=yes&all=no", 400),
    Row("head-list", "HEAD /diary", 200),
    Row("head-list-bad-flag", "HEAD /diary?payload_base64=2", 400),
    # -- a key's newest commit
    Row(
        "payload",
        "GET /diary/web.json",
        200,
        check=payload_is(WEB[2], TEXT, key="web.json", version="3", author="carol", empty="No"),
    ),
    Row("payload-binary", "GET /diary/bin", 200, check=payload_is(BINARY, OCTETS)),
    Row("payload-tombstone", "GET /diary/gone", 200, check=payload_is(b"", TEXT, empty="Yes")),
    Row(
        "payload-unicode-key",
        "GET /diary/" + quote(UNICODE_KEY, safe=""),
        200,
        check=payload_is(b"x", TEXT, key=UNICODE_KEY, author="Zoë", comment="naïve"),
    ),
    Row("payload-missing", "GET /diary/nothing-here", 404, check=text_is("Key not found")),
    Row("payload-key-of-255-bytes", "GET /diary/" + "x" * 255, 404),
    Row("payload-key-of-254-bytes-in-127-characters", "GET /diary/" + "%C3%A9" * 127, 404),
    Row("payload-key-of-three-dots", "GET /diary/...", 404),
    *(Row(f"payload-key-{name}", f"GET /diary/{key}", 400) for name, key in BAD_KEYS.items()),
    *(Row(f"payload-key-{n}", f"GET /diary/{key}", 404) for n, key in LOOKALIKE_KEYS.items()),
    Row("head-payload", "HEAD /diary/web.json", 200),
    Row("head-payload-missing", "HEAD /diary/nothing-here", 404),
    Row("head-payload-bad-key", "HEAD /diary/a%zz", 400),
    Row("meta", "GET /diary/web.json/meta", 200, check=meta_is(version=3, author="carol")),
    Row("meta-tombstone", "GET /diary/gone/meta", 200, check=meta_is(version=2, empty=True)),
    Row("meta-missing", "GET /diary/nothing-here/meta", 404, check=text_is("Key not found")),
    Row("meta-bad-key", "GET /diary/a%C2%85/meta", 400),
    Row("meta-lookalike-key", "GET /diary/a%E2%80%8B/meta", 404),
    Row("head-meta", "HEAD /diary/web.json/meta", 200),
    Row("head-meta-missing", "HEAD /diary/nothing-here/meta", 404),
    # -- one version
    Row("version", "GET /diary/web.json/1", 200, check=payload_is(WEB[0], TEXT, version="1")),
    Row("version-tombstone", "GET /diary/gone/2", 200, check=payload_is(b"", TEXT, empty="Yes")),
    Row("version-missing", "GET /diary/web.json/4", 404, check=text_is("Key not found")),
    Row("version-zero", "GET /diary/web.json/0", 404),
    Row("version-negative", "GET /diary/web.json/-1", 404),
    Row("version-lowest", "GET /diary/web.json/-2147483647", 404),
    Row("version-highest", "GET /diary/web.json/2147483647", 404),
    *(Row(f"version-{_slug(v)}", f"GET /diary/web.json/{v}", 400) for v in BAD_VERSIONS),
    Row("version-bad-key", "GET /diary/a%2Fb/1", 400),
    Row("head-version", "HEAD /diary/web.json/2", 200),
    Row("head-version-missing", "HEAD /diary/web.json/9", 404),
    Row("version-meta", "GET /diary/web.json/2/meta", 200, check=meta_is(version=2, author="bob")),
    Row("version-meta-missing", "GET /diary/web.json/9/meta", 404),
    Row("version-meta-zero", "GET /diary/web.json/0/meta", 404),
    Row("version-meta-bad-version", "GET /diary/web.json/x/meta", 400),
    Row("version-meta-bad-key", "GET /diary/%2E/1/meta", 400),
    Row("head-version-meta", "HEAD /diary/web.json/1/meta", 200),
    # -- history
    Row("history", "GET /diary/web.json/history", 200, check=history_is([3, 2, 1], False)),
    Row("history-page", "GET /diary/web.json/history?limit=2", 200, check=history_is([3, 2], True)),
    Row(
        "history-next-page",
        "GET /diary/web.json/history?limit=2&before=2",
        200,
        check=history_is([1]),
    ),
    Row(
        "history-past-the-oldest", "GET /diary/web.json/history?before=1", 200, check=history_is([])
    ),
    Row(
        "history-default-limit",
        "GET /diary/long/history",
        200,
        check=history_is(list(range(101, 1, -1)), True),
    ),
    Row("history-largest-limit", "GET /diary/long/history?limit=1000", 200),
    Row("history-highest-before", "GET /diary/long/history?before=2147483647&limit=1", 200),
    Row("history-payloads", "GET /diary/web.json/history?payload_utf8=yes&payload_base64=yes", 200),
    Row("history-tombstone", "GET /diary/gone/history?payload_base64=yes", 200),
    Row("history-year-1", "GET /diary/ancient/history", 200, server="strict"),
    Row("history-missing", "GET /diary/nothing-here/history", 404),
    *(
        Row(f"history-{_slug(query)}", f"GET /diary/web.json/history?{query}", 400)
        for query in BAD_HISTORY_QUERIES
    ),
    Row("history-bad-key", "GET /diary/a%zz/history", 400),
    Row("head-history", "HEAD /diary/web.json/history?limit=1", 200),
    Row("head-history-missing", "HEAD /diary/nothing-here/history", 404),
    # -- commits
    Row("post", "POST /diary/post/1", 200, author(), b"one", meta_is(key="post", version=1)),
    Row(
        "post-every-header",
        "POST /diary/post-every-header/1",
        200,
        author(
            ("X-Rainer-Comment", "first cut"),
            ("X-Rainer-Modified-Time", "2014-02-11T14:01:28.839-08:00"),
            ("X-Rainer-Key", "post-every-header"),
            ("X-Rainer-Version", "1"),
            ("X-Rainer-Empty", "no"),
            ("Content-Type", "application/json"),
        ),
        b'{"workers": 2}',
        meta_is(comment="first cut", mtime="2014-02-11T14:01:28.839-08:00", empty=False),
    ),
    Row(
        "post-tombstone",
        "POST /diary/to-bury/2",
        200,
        author(("X-Rainer-Empty", "TRUE")),
        b"",
        meta_is(version=2, empty=True),
    ),
    Row("post-binary", "POST /diary/post-binary/1", 200, author(), bytes(range(256))),
    Row("post-empty-payload", "POST /diary/post-empty-payload/1", 200, author(), b""),
    Row(
        "post-utf8-author",
        "POST /diary/" + quote("post-ключ", safe="") + "/1",
        200,
        [("X-Rainer-Author", "Zoë".encode()), ("X-Rainer-Comment", "naïve".encode())],
        b"x",
        meta_is(key="post-ключ", author="Zoë", comment="naïve"),
    ),
    Row(
        "post-year-1",
        "POST /diary/post-year-1/1",
        200,
        author(("X-Rainer-Modified-Time", "0001-01-01T00:00:00Z")),
        b"1",
        meta_is(mtime="0001-01-01T00:00:00.000Z"),
        server="strict",
    ),
    Row(
        "post-year-9999",
        "POST /diary/post-year-9999/1",
        200,
        author(("X-Rainer-Modified-Time", "9999-12-31T23:59:59.9999+14:00")),
        b"x",
        meta_is(mtime="9999-12-31T23:59:59.999+14:00"),
    ),
    Row(
        "post-longest-author-and-comment",
        "POST /diary/post-longest/1",
        200,
        [("X-Rainer-Author", ("é" * 512).encode()), ("X-Rainer-Comment", "c" * 16384)],
        b"x",
    ),
    Row("post-conflict", "POST /diary/web.json/2", 409, author(), b"x", conflict_is(4, 2)),
    Row("post-conflict-new-key", "POST /diary/post-new/2", 409, author(), b"x", conflict_is(1, 2)),
    Row("post-version-zero", "POST /diary/web.json/0", 409, author(), b"x", conflict_is(4, 0)),
    Row(
        "post-version-negative", "POST /diary/web.json/-1", 409, author(), b"x", conflict_is(4, -1)
    ),
    Row(
        "post-missing-author",
        "POST /diary/post-missing-author/1",
        400,
        [("X-Rainer-Comment", "c")],
        b"x",
        text_is("Missing header: X-Rainer-Author"),
    ),
    *(
        Row(f"post-{name}", f"POST /diary/post-{name}/1", status, headers, body)
        for name, status, headers, body in BAD_COMMITS
    ),
    Row("post-bad-key", "POST /diary/a%E2%80%AE/1", 400, author(), b"x"),
    *(
        Row(f"post-key-{name}", f"POST /diary/{key}/1", 400, author(), b"x")
        for name, key in LOOKALIKE_KEYS.items()
    ),
    Row("post-bad-version", "POST /diary/post-bad-version/1.0", 400, author(), b"x"),
    Row("post-version-too-large", "POST /diary/post-x/2147483648", 400, author(), b"x"),
    Row(
        "post-too-large",
        "POST /diary/big/1",
        413,
        author(),
        b"[" + b"1," * 40 + b"1]",
        server="strict",
    ),
    Row(
        "post-malformed-json",
        "POST /diary/json/1",
        400,
        author(),
        b"{not json",
        text_starts("Malformed input: "),
        server="strict",
    ),
    Row("post-valid-json", "POST /diary/json/1", 200, author(), b'{"ok": true}', server="strict"),
    # -- the service
    Row(
        "healthz",
        "GET /healthz",
        200,
        check=lambda r: (
            json_of(r)
            == {"status": "ok", "database": "ok", "watchers": {"waiting": 0, "limit": 10_000}}
        ),
    ),
    Row("head-healthz", "HEAD /healthz", 200),
    Row("openapi", "GET /openapi.json", 200),
    Row("head-openapi", "HEAD /openapi.json", 200),
    # -- what any route may answer
    Row("host-not-allowed", "GET /diary", 421, host="example.com"),
    Row(
        "host-not-allowed-post", "POST /diary/post-host/1", 421, author(), b"x", host="evil.test:80"
    ),
    Row("host-localhost", "GET /diary/web.json/meta", 200, host="localhost"),
    Row("host-ipv6-loopback", "GET /healthz", 200, host="[::1]:8080"),
    Row("too-many-headers", "GET /diary", 431, [(f"X-Filler-{n}", "x") for n in range(120)]),
    Row("header-too-large", "GET /diary/web.json", 431, [("X-Filler", "x" * 70_000)]),
    Row(
        "header-too-large-post",
        "POST /diary/post-header/1",
        431,
        author(("X-Filler", "x" * 70_000)),
        b"x",
    ),
    # -- outside the description: checked by hand
    *(
        Row(f"method-{_slug(request)}", request, 405, author(), b"", allows(*allowed.split(", ")))
        for request, allowed in WRONG_METHODS
    ),
    *(Row(f"unknown-path-{_slug(target)}", f"GET {target}", 404) for target in UNKNOWN_PATHS),
]


class SlowHead(threading.Thread):
    """A client that sends half a request head and waits for whatever the server says."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(daemon=True)
        self.address = (host, port)
        self.answer = b""

    def run(self) -> None:
        with socket.create_connection(self.address, timeout=HEAD_TIMEOUT) as sock:
            sock.sendall(b"GET /diary HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Rainer-Slow: ")
            try:
                while chunk := sock.recv(65536):
                    self.answer += chunk
            except OSError:  # timed out, or reset after the answer
                pass

    def reply(self) -> Reply | None:
        self.join(HEAD_TIMEOUT + 5)
        if not self.answer:
            return None
        head, _, body = self.answer.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(":", 1) for line in lines)
        return Reply(
            int(status_line.split()[1]),
            {name.lower(): value.strip() for name, value in headers.items()},
            body,
        )


@dataclass
class Servers:
    main: RainerServer
    strict: RainerServer
    slow_head: SlowHead

    def __getitem__(self, name: str) -> RainerServer:
        return {"main": self.main, "strict": self.strict}[name]


def seed(main: str, strict: str) -> None:
    """The commits the table reads."""
    for version, (payload, who) in enumerate(zip(WEB, ["alice", "bob", "carol"], strict=True), 1):
        assert post_commit(main, "web.json", version, payload, author=who).status == 200
    assert post_commit(main, "bin", 1, BINARY, author="a").status == 200
    assert post_commit(main, "gone", 1, b"x", author="a").status == 200
    assert post_commit(main, "gone", 2, b"", author="a", empty="yes").status == 200
    assert post_commit(main, "to-bury", 1, b"x", author="a").status == 200
    headers = {"X-Rainer-Author": "Zoë".encode(), "X-Rainer-Comment": "naïve".encode()}
    assert call("POST", f"{main}/{quote(UNICODE_KEY, safe='')}/1", b"x", headers).status == 200
    for version in range(1, 102):
        assert post_commit(main, "long", version, b"x", author="a").status == 200
    # Kept apart: a year-1 commit in the main server's list would fail every list row if the
    # server printed its year wrongly.
    old = post_commit(strict, "ancient", 1, b"1", author="a", modified_time="0001-01-01T00:00:00Z")
    assert old.status == 200


@pytest.fixture(scope="module")
def servers(tmp_path_factory) -> Iterator[Servers]:
    folder = tmp_path_factory.mktemp("openapi")
    main = RainerServer(["--database", f"sqlite:///{folder / 'main.db'}"])
    # A payload limit small enough for a 413 of a few bytes.
    strict_args = ["--validate", "json", "--max-payload-bytes", "64"]
    strict = RainerServer(["--database", f"sqlite:///{folder / 'strict.db'}", *strict_args])
    with main, strict:
        # Started first, so its wait for a 408 overlaps the rest of the module.
        slow_head = SlowHead(main.host, main.port)
        slow_head.start()
        seed(main.diary_url, strict.diary_url)
        yield Servers(main, strict, slow_head)


@pytest.fixture(scope="module")
def api(document) -> OpenAPI:
    return OpenAPI.from_dict(document)


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.name)
def test_answer_matches_the_description(row: Row, servers: Servers, document, api) -> None:
    reply = send(servers[row.server].url, row.method, row.target, row.headers, row.body, row.host)
    shown = f"{row.request} -> {reply.status} {reply.body[:300]!r}"
    assert reply.status == row.status, f"expected {row.status}: {shown}"
    pattern = documented_pattern(row.path) if row.status != 405 else None
    if pattern is None:
        assert reply.header("content-type") == TEXT, shown
        assert reply.body and b"\n" not in reply.body, shown
    else:
        assert_conforms(document, api, f"{row.method} {row.path}", reply)
    if row.check is not None:
        assert row.check(reply) is not False, shown


def _explain(error: Any) -> str:
    """openapi-core's error with the schema errors it wraps, which say what was wrong."""
    cause = getattr(error, "__cause__", None)
    details = getattr(cause, "schema_errors", None)
    if details:
        return f"{type(error).__name__}: " + "; ".join(detail.message for detail in details)
    if cause is not None and str(cause) not in str(error):
        return f"{error}: {cause}"
    return str(error)


def assert_conforms(document: dict[str, Any], api: OpenAPI, request: str, reply: Reply) -> None:
    """``reply`` is what the description documents for ``request`` ("METHOD path")."""
    method, path = request.split(" ", 1)
    errors = response_errors(document, api, method, documented_pattern(path), path, reply)
    shown = f"{request} -> {reply.status} {reply.header('content-type')} {reply.body[:300]!r}"
    assert not errors, f"{shown}\n" + "\n".join(map(_explain, errors))


def test_history_links_lead_through_every_page(servers: Servers, document, api) -> None:
    """Following ``Link: <…>; rel="next"`` from the first page reads the whole history once."""
    target: str | None = "/diary/long/history?limit=40"
    versions: list[int] = []
    while target is not None and len(versions) <= 101:
        reply = send(servers.main.url, "GET", target)
        assert reply.status == 200, (target, reply)
        assert_conforms(document, api, "GET " + target.split("?", 1)[0], reply)
        versions += [meta["version"] for meta in json_of(reply)]
        link = reply.header("link")
        target = link.split(">", 1)[0].removeprefix("<") if link else None
        if target is not None and target.startswith("http"):  # an absolute URL: keep the path
            target = "/" + target.split("/", 3)[3]
    assert versions == list(range(101, 0, -1))


def test_request_head_too_slow_is_408(servers: Servers, document, api) -> None:
    reply = servers.slow_head.reply()
    assert reply is not None, f"no answer within {HEAD_TIMEOUT:g} s to a request head never ended"
    assert reply.status == 408, reply
    assert_conforms(document, api, "GET /diary", reply)


def test_unreadable_commit_is_500_for_that_commit_only(tmp_path, document, api) -> None:
    database = tmp_path / "rainer.db"
    args = ["--database", f"sqlite:///{database}"]
    with RainerServer(args) as server:
        assert post_commit(server.diary_url, "fine", 1, b"x", author="a").status == 200
        assert post_commit(server.diary_url, "damaged", 1, b"x", author="a").status == 200
    with sqlite3.connect(database) as connection:  # what a damaged disk or a bad migration leaves
        connection.execute("UPDATE rainer SET payload = ? WHERE name = 'damaged'", (b"\x00junk",))
    with RainerServer(args) as server:
        damaged = send(server.url, "GET", "/diary/damaged/1/meta")
        fine = send(server.url, "GET", "/diary/fine")
    assert (damaged.status, fine.status) == (500, 200), (damaged, fine)
    assert damaged.text.startswith("Unreadable commit"), damaged.text
    assert_conforms(document, api, "GET /diary/damaged/1/meta", damaged)


def test_the_checker_catches_answers_that_break_the_description(document, api) -> None:
    """The table is only as good as response_errors: answers that break the description in each
    way it checks must be caught (a check that passes everything would pass the table too)."""
    meta = b'{"key":"k","version":1,"author":"a","comment":"","mtime":"2014-02-11T14:01:28.839Z",'
    good_headers = {
        "x-rainer-key": "k",
        "x-rainer-version": "1",
        "x-rainer-author": "a",
        "x-rainer-comment": "",
        "x-rainer-modified-time": "2014-02-11T14:01:28.839Z",
        "x-rainer-empty": "No",
        "content-type": TEXT,
    }
    good = [
        ("GET", "/diary/k/meta", Reply(200, {"content-type": JSON}, meta + b'"empty":false}\r\n')),
        ("GET", "/diary/k", Reply(200, good_headers, b"x")),
        ("HEAD", "/diary/k", Reply(200, good_headers, b"")),
    ]
    bad = [
        ("GET", "/diary/k/meta", Reply(200, {"content-type": JSON}, meta + b'"empty":"no"}\r\n')),
        ("GET", "/diary/k/meta", Reply(200, {"content-type": TEXT}, meta + b'"empty":false}\r\n')),
        ("GET", "/diary/k/meta", Reply(418, {"content-type": TEXT}, b"teapot")),
        ("GET", "/diary/k", Reply(200, {**good_headers, "x-rainer-version": "+1"}, b"x")),
        ("GET", "/diary/k", Reply(200, {**good_headers, "x-rainer-empty": "yes"}, b"x")),
        ("GET", "/diary/k", Reply(404, {"content-type": TEXT}, b"two\nlines")),
        ("HEAD", "/diary/k", Reply(200, {**good_headers, "content-type": JSON}, b"")),
        ("HEAD", "/diary/k", Reply(200, {"content-type": TEXT}, b"")),
        ("GET", "/diary/k/history", Reply(200, {"content-type": JSON, "link": "next"}, b"[]\r\n")),
    ]
    for method, path, reply in good + bad:
        errors = response_errors(document, api, method, documented_pattern(path), path, reply)
        assert bool(errors) == ((method, path, reply) in bad), (method, path, reply, errors)


def test_too_many_connections_is_503(tmp_path, document, api) -> None:
    args = ["--database", f"sqlite:///{tmp_path / 'rainer.db'}", "--max-connections", "2"]
    with RainerServer(args) as server:
        held = [socket.create_connection((server.host, server.port)) for _ in range(2)]
        try:
            for sock in held:  # a whole request each, so the server has surely taken them
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                sock.recv(65536)
            refused = send(server.url, "GET", "/diary")
        finally:
            for sock in held:
                sock.close()
    assert refused.status == 503, refused
    assert_conforms(document, api, "GET /diary", refused)
