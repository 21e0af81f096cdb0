"""One wire contract, two clients: ``rainer.client`` (the package's, on urllib3) and the
collection's ``plugins/module_utils/_client.py`` (on ``ansible.module_utils.urls``), each
against a real ``rainer serve`` on SQLite.

Both must answer every behaviour here alike: the same commit attributes, the same error
classes with the same attributes, the same defaults, retry rules and history paging. The
clients keep their own method names (the package's are pyrainer's), so each test goes through
a thin adapter, ``Package`` or ``Collection``, that only renames calls.
"""

from __future__ import annotations

import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from client_fixtures import collection_client_module
from client_servers import ForwardProxy, Relay, Scripted, closed_port_url

import rainer.client
from harness.rainer import RainerServer

MAX_PAYLOAD = 64 * 1024
MTIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)$")
META_FIELDS = ["key", "version", "author", "comment", "mtime", "empty"]
ERROR_NAMES = [
    "RainerError",
    "RainerHTTPError",
    "RainerBadRequestError",
    "RainerNotFoundError",
    "RainerConflictError",
    "RainerPayloadTooLargeError",
    "RainerHeaderTooLargeError",
    "RainerServerError",
    "RainerUnreachableError",
    "RainerTLSError",
    "RainerProtocolError",
    "RainerAccessError",
    "RainerUnauthorizedError",
    "RainerForbiddenError",
    "RainerRateLimitedError",
    "RainerChangeSetConflictError",
]


class Package:
    """``rainer.client.RainerClient`` (pyrainer's method names)."""

    name = "package"

    def __init__(self, url: str, **options: Any) -> None:
        self.module = rainer.client
        self.client = rainer.client.RainerClient(url, **options)

    def listing(self, all: bool = False) -> dict[str, dict]:
        return self.client.list(all=all)

    def heads(self, all: bool = False) -> dict[str, Any]:
        return self.client.list_full(all=all)

    def read(self, key: str, version: int | None = None) -> Any:
        return self.client.get_commit(key, version)

    def meta(self, key: str, version: int | None = None) -> dict:
        return self.client.get_metadata(key, version)

    def commit(self, key, version, payload=b"", author="contract", comment="", empty=False):
        metadata = {"key": key, "version": version, "author": author, "comment": comment}
        return self.client.post_commit({**metadata, "empty": empty}, None if empty else payload)

    def history(self, key: str, limit: int | None = None, before: int | None = None) -> list:
        return self.client.history(key, limit, before)


class Collection:
    """The collection's ``RainerClient`` (its own method names)."""

    name = "collection"

    def __init__(self, url: str, **options: Any) -> None:
        self.module = collection_client_module()
        self.client = self.module.RainerClient(url, **options)

    def listing(self, all: bool = False) -> dict[str, dict]:
        return {key: c.meta for key, c in self.client.list(all=all, payload=False).items()}

    def heads(self, all: bool = False) -> dict[str, Any]:
        return self.client.list(all=all, payload=True)

    def read(self, key: str, version: int | None = None) -> Any:
        return self.client.get(key, version)

    def meta(self, key: str, version: int | None = None) -> dict:
        return self.client.meta(key, version)

    def commit(self, key, version, payload=b"", author="contract", comment="", empty=False):
        return self.client.commit_once(
            key, version, payload, comment=comment, empty=empty, author=author
        )

    def history(self, key: str, limit: int | None = None, before: int | None = None) -> list:
        return self.client.history(key, limit, before, payload=True)


Client = Package | Collection


@pytest.fixture(scope="module")
def server():
    with RainerServer(["--max-payload-bytes", str(MAX_PAYLOAD)]) as running:
        yield running


@pytest.fixture(params=[Package, Collection], ids=["package", "collection"])
def make(request) -> Callable[..., Client]:
    """A factory of one client kind: ``make(url, **options)``."""
    return request.param


@pytest.fixture
def client(make, server) -> Client:
    return make(server.diary_url, timeout=10, retry_delay=0)


@pytest.fixture
def key(request) -> str:
    return f"contract-{uuid.uuid4().hex[:10]}"


def errors(made: Client) -> Any:
    """The module holding the client's error classes."""
    return made.module


# -- the vocabulary itself -------------------------------------------------------------------


def test_both_clients_have_the_same_error_classes_and_defaults(client):
    module = client.module
    for name in ERROR_NAMES:
        assert issubclass(getattr(module, name), module.RainerError), name
    for name in ERROR_NAMES[2:8]:
        assert issubclass(getattr(module, name), module.RainerHTTPError), name
    assert issubclass(module.RainerTLSError, module.RainerUnreachableError)
    assert not issubclass(module.RainerUnreachableError, module.RainerHTTPError)
    assert module.DEFAULT_TIMEOUT == rainer.client.DEFAULT_TIMEOUT == 30
    assert module.DEFAULT_RETRIES == rainer.client.DEFAULT_RETRIES == 2
    assert module.RETRY_DELAY == rainer.client.RETRY_DELAY == 0.5
    assert module.RETRY_DELAY_MAX == rainer.client.RETRY_DELAY_MAX == 5.0
    assert set(module.RETRYABLE_STATUSES) == set(rainer.client.RETRYABLE_STATUSES)
    assert module.HISTORY_PAGE == rainer.client.HISTORY_PAGE == 1000
    made = module.RainerClient("http://127.0.0.1:1/diary/")
    assert (made.url, made.timeout, made.retries) == ("http://127.0.0.1:1/diary", 30, 2)
    with pytest.raises(ValueError):
        module.RainerClient("")
    with pytest.raises(ValueError):
        module.RainerClient("ftp://host/diary")


# -- reads and commits -------------------------------------------------------------------------


def test_commit_answers_the_metadata_of_the_wire_contract(client, key):
    meta = client.commit(key, 1, b"a: 1\n", author="ann", comment="first")
    assert list(meta) == META_FIELDS
    assert (meta["key"], meta["version"], meta["author"], meta["comment"]) == (
        key,
        1,
        "ann",
        "first",
    )
    assert MTIME.match(meta["mtime"]) and meta["empty"] is False


def test_read_newest_a_version_and_metadata(client, key):
    first = client.commit(key, 1, b"one\n", author="ann", comment="c1")
    second = client.commit(key, 2, b"two\n", author="bob", comment="c2")
    head = client.read(key)
    # One commit shape in both clients.
    assert (head.key, head.version, head.author, head.comment, head.mtime, head.empty) == (
        key,
        2,
        "bob",
        "c2",
        second["mtime"],
        False,
    )
    assert (head.payload, head.text) == (b"two\n", "two\n")
    assert head.meta == second
    old = client.read(key, 1)
    assert (old.version, old.payload, old.meta) == (1, b"one\n", first)
    assert client.meta(key) == second
    assert client.meta(key, 1) == first


def test_list_with_and_without_tombstones(client, key):
    client.commit(key + "-a", 1, b"alpha")
    client.commit(key + "-gone", 1, b"x")
    client.commit(key + "-gone", 2, empty=True)
    listed = client.listing()
    assert listed[key + "-a"] == client.meta(key + "-a")
    assert key + "-gone" not in listed
    every = client.listing(all=True)
    assert every[key + "-gone"]["empty"] is True and every[key + "-gone"]["version"] == 2
    heads = client.heads()
    assert heads[key + "-a"].payload == b"alpha" and heads[key + "-a"].meta == listed[key + "-a"]
    gone = client.heads(all=True)[key + "-gone"]
    assert gone.empty and gone.payload == b"" and gone.text == ""


def test_tombstones(client, key):
    client.commit(key, 1, b"x")
    meta = client.commit(key, 2, empty=True, comment="gone")
    assert meta["empty"] is True and meta["version"] == 2 and meta["comment"] == "gone"
    head = client.read(key)
    assert (head.empty, head.payload, head.text, head.version) == (True, b"", "", 2)
    assert client.read(key, 1).payload == b"x"
    assert [(c.version, c.empty) for c in client.history(key)] == [(2, True), (1, False)]
    back = client.commit(key, 3, b"back")
    assert back["empty"] is False and client.read(key).payload == b"back"


def test_unicode_keys_authors_and_comments(client, key):
    odd = key + " ключ ü sp%ce & ?#☃"
    meta = client.commit(odd, 1, "täxt ☃\n".encode(), author="Zoë Жуков", comment="naïve ☃")
    assert (meta["key"], meta["author"], meta["comment"]) == (odd, "Zoë Жуков", "naïve ☃")
    head = client.read(odd)
    assert (head.key, head.author, head.comment, head.text) == (
        odd,
        "Zoë Жуков",
        "naïve ☃",
        "täxt ☃\n",
    )
    assert client.meta(odd) == meta
    assert odd in client.listing()
    assert [c.version for c in client.history(odd)] == [1]


def test_binary_payloads(client, key):
    data = bytes(range(256)) * 4
    client.commit(key, 1, data)
    head = client.read(key)
    assert head.payload == data and head.text is None
    assert client.heads()[key].payload == data
    assert client.history(key)[0].payload == data


# -- history, a page at a time ----------------------------------------------------------------


@pytest.fixture(scope="module")
def long_key(server) -> str:
    """A key with 130 versions: more than the server's default page of 100."""
    name = f"long-{uuid.uuid4().hex[:8]}"
    with rainer.client.RainerClient(server.diary_url) as seed:
        for version in range(1, 131):
            seed.post_commit({"key": name, "version": version, "author": "a"}, b"v%d" % version)
    return name


def test_history_pages_through_every_version(make, server, long_key, monkeypatch):
    with Relay(server.url) as relay:
        made = make(relay.url + "/diary", retry_delay=0)
        everything = made.history(long_key)
        assert [c.version for c in everything] == list(range(130, 0, -1))
        assert everything[-1].payload == b"v1" and everything[0].text == "v130"
        assert len(relay.seen) == 1  # 130 < the 1,000 asked for
        # Smaller pages, as a server with a lower bound would give: page after page.
        monkeypatch.setattr(made.module, "HISTORY_PAGE", 50)
        relay.seen.clear()
        assert [c.version for c in made.history(long_key)] == list(range(130, 0, -1))
        queries = [path.partition("?")[2] for _, path in relay.seen]
        assert len(queries) == 3 and "before=81" in queries[1] and "before=31" in queries[2]
        relay.seen.clear()
        assert [c.version for c in made.history(long_key, limit=120)] == list(range(130, 10, -1))
        assert len(relay.seen) == 3 and "limit=20" in relay.seen[2][1]
        assert [c.version for c in made.history(long_key, before=31)] == list(range(30, 0, -1))
        five = made.history(long_key, limit=5, before=100)
        assert [c.version for c in five] == [99, 98, 97, 96, 95]
        assert made.history(long_key, before=1) == []


# -- errors ------------------------------------------------------------------------------------


def test_conflict_carries_key_expected_and_provided(client, key):
    client.commit(key, 1, b"x")
    client.commit(key, 2, b"y")
    with pytest.raises(errors(client).RainerConflictError) as caught:
        client.commit(key, 2, b"late")
    error = caught.value
    assert (error.key, error.expected_version, error.provided_version) == (key, 3, 2)
    assert (error.status, error.method) == (409, "POST") and error.url.endswith("/2")
    assert "expectedVersion" in error.body
    assert str(error) == f"Conflict on key {key!r}: expected version 3, got 2"
    assert isinstance(error, errors(client).RainerHTTPError)


def test_not_found(client, key):
    with pytest.raises(errors(client).RainerNotFoundError) as caught:
        client.read(key)
    error = caught.value
    assert (error.status, error.body, error.method) == (404, "Key not found", "GET")
    assert str(error) == f"not found: {key!r}"
    with pytest.raises(errors(client).RainerNotFoundError):
        client.meta(key)
    client.commit(key, 1, b"x")
    with pytest.raises(errors(client).RainerNotFoundError) as caught:
        client.read(key, 7)
    assert str(caught.value) == f"not found: {key!r} version 7"


def test_bad_request_carries_the_servers_reason(client, key):
    with pytest.raises(errors(client).RainerBadRequestError) as caught:
        client.commit(key, 1, b"x", comment="a\u0085b")  # a C1 control character
    error = caught.value
    assert error.status == 400
    assert error.body == "Invalid header: X-Rainer-Comment contains control character U+0085"
    assert str(error) == f"refused (400): {error.body}"
    with pytest.raises(errors(client).RainerBadRequestError, match="one line"):
        client.commit(key, 1, b"x", comment="two\nlines")  # refused before it is sent
    with pytest.raises(errors(client).RainerNotFoundError):
        client.read(key)  # nothing was committed


def test_payload_too_large(client, key):
    with pytest.raises(errors(client).RainerPayloadTooLargeError) as caught:
        client.commit(key, 1, b"x" * (MAX_PAYLOAD + 1))
    assert caught.value.status == 413
    assert str(caught.value) == f"refused (413): Payload too large: more than {MAX_PAYLOAD} bytes"
    client.commit(key, 1, b"x" * MAX_PAYLOAD)


def test_author_and_comment_over_their_bounds(client, key):
    with pytest.raises(errors(client).RainerHeaderTooLargeError) as caught:
        client.commit(key, 1, b"x", author="ü" * 513)  # 1,026 bytes of UTF-8
    assert caught.value.status == 431 and "X-Rainer-Author" in caught.value.body
    with pytest.raises(errors(client).RainerHeaderTooLargeError) as caught:
        client.commit(key, 1, b"x", comment="c" * (16 * 1024 + 1))
    assert caught.value.status == 431 and "X-Rainer-Comment" in caught.value.body
    meta = client.commit(key, 1, b"x", author="ü" * 512, comment="é" * (8 * 1024))
    assert client.read(key).comment == meta["comment"] == "é" * (8 * 1024)


# -- no answer: timeouts, refused connections, retries ---------------------------------------


def test_timeout_when_the_server_never_answers(make):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/diary"
        made = make(url, timeout=0.3, retries=0)
        started = time.monotonic()
        with pytest.raises(errors(made).RainerUnreachableError) as caught:
            made.read("k")
    assert time.monotonic() - started < 3
    error = caught.value
    assert str(error) == f"cannot reach {url.removesuffix('/diary')}: no answer within 0.3 s"
    assert (error.status, error.body, error.method) == (None, "", "GET")
    assert not isinstance(error, errors(made).RainerTLSError)


def test_unreachable_reads_are_retried_with_a_growing_pause(make):
    url = closed_port_url()
    pauses: list[float] = []
    made = make(url, retries=3, sleep=pauses.append)
    with pytest.raises(errors(made).RainerUnreachableError) as caught:
        made.meta("k")
    assert str(caught.value).endswith(": connection refused")
    assert pauses == [0.5, 1.0, 2.0]
    pauses.clear()
    made = make(url, retries=5, retry_delay=2, sleep=pauses.append)
    with pytest.raises(errors(made).RainerUnreachableError):
        made.listing()
    assert pauses == [2, 4, 5.0, 5.0, 5.0]  # the cap


def test_a_read_is_retried_until_a_restarted_server_answers(make, tmp_path):
    with RainerServer(["--database", f"sqlite:///{tmp_path / 'r.db'}"]) as own:
        made = make(own.diary_url, retries=8, retry_delay=0.25)
        made.commit("k", 1, b"v")
        own.stop()
        restart = threading.Timer(0.5, own.start)
        restart.start()
        try:
            assert made.read("k").payload == b"v"  # refused until the restart, then answered
        finally:
            restart.join()
        assert made.commit("k", 2, b"w")["version"] == 2


def test_502_503_504_are_retried_and_500_is_not(make):
    meta = {"key": "k", "version": 1, "author": "a", "comment": "", "mtime": "x", "empty": False}
    with Scripted([(503, b"Database unavailable"), (502, b""), (200, meta)]) as stub:
        made = make(stub.url, retries=2, retry_delay=0)
        assert made.meta("k") == meta
        assert len(stub.seen) == 3
    with Scripted([(500, b"Internal server error")]) as stub:
        made = make(stub.url, retries=3, retry_delay=0)
        with pytest.raises(errors(made).RainerServerError) as caught:
            made.meta("k")
        assert (caught.value.status, caught.value.body) == (500, "Internal server error")
        assert len(stub.seen) == 1
    with Scripted([(503, b"Database unavailable")]) as stub:
        made = make(stub.url, retries=1, retry_delay=0)
        with pytest.raises(errors(made).RainerServerError, match="Database unavailable"):
            made.meta("k")
        assert len(stub.seen) == 2


def test_other_statuses_and_answers_that_are_not_rainers(make):
    with Scripted([(421, b"Misdirected request: host 'x' is not served here")]) as stub:
        made = make(stub.url, retries=0)
        with pytest.raises(errors(made).RainerHTTPError) as caught:
            made.meta("k")
        assert type(caught.value).__name__ == "RainerHTTPError"
        assert caught.value.status == 421 and "Misdirected" in str(caught.value)
    with Scripted([(200, b"<html>not a diary</html>"), (409, b"busy")]) as stub:
        made = make(stub.url, retries=0)
        with pytest.raises(errors(made).RainerProtocolError, match="not a JSON answer"):
            made.meta("k")
        with pytest.raises(errors(made).RainerProtocolError, match="409 without a Rainer"):
            made.commit("k", 1, b"x")


def test_a_tls_failure_is_not_retried(make):
    with Scripted([(200, b"plain text, not TLS")]) as stub:
        made = make(stub.url.replace("http://", "https://"), retries=3, retry_delay=0)
        with pytest.raises(errors(made).RainerTLSError, match="TLS failed"):
            made.meta("k")
        assert stub.connections == 1


# -- a commit is never repeated blindly -------------------------------------------------------


def test_a_commit_whose_answer_is_lost_is_read_back_not_posted_again(make, server, key):
    with Relay(server.url, drop_answers=1) as relay:
        made = make(relay.url + "/diary", retry_delay=0)
        meta = made.commit(key, 1, b"landed", comment="c")
    assert meta["version"] == 1 and meta["comment"] == "c"
    posts = [path for method, path in relay.seen if method == "POST"]
    assert posts == [f"/diary/{key}/1"]  # posted once; the read back found it
    assert [c.version for c in make(server.diary_url).history(key)] == [1]


def test_a_commit_that_did_not_land_is_posted_again(make, server, key):
    with Relay(server.url, refuse_posts=1) as relay:
        made = make(relay.url + "/diary", retry_delay=0)
        assert made.commit(key, 1, b"second try")["version"] == 1
    posts = [path for method, path in relay.seen if method == "POST"]
    assert posts == [f"/diary/{key}/1", f"/diary/{key}/1"]


def test_another_writers_commit_at_our_version_is_not_ours(make, server, key):
    """Our post gets a 503 while another writer takes the version: the read back finds
    someone else's commit, so ours is reported as not saved (or, with retries left, the
    post is sent again and the server answers the conflict)."""
    other = Package(server.diary_url)
    with Relay(server.url, refuse_posts=1) as relay:
        relay.before_post = lambda: other.commit(key, 1, b"theirs", author="other")
        made = make(relay.url + "/diary", retries=0, retry_delay=0)
        with pytest.raises(errors(made).RainerServerError) as caught:
            made.commit(key, 1, b"ours")
        assert "this commit was not saved: version 1 of" in str(caught.value)
        relay.refuse_posts = 1
        relay.before_post = lambda: other.commit(key, 2, b"theirs again", author="other")
        made = make(relay.url + "/diary", retries=1, retry_delay=0)
        with pytest.raises(errors(made).RainerConflictError) as conflict:
            made.commit(key, 2, b"ours")
        assert (conflict.value.expected_version, conflict.value.provided_version) == (3, 2)
    assert other.read(key).payload == b"theirs again"


def test_an_unanswered_commit_that_cannot_be_read_back_says_so(make):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        made = make(f"http://127.0.0.1:{sock.getsockname()[1]}/diary", timeout=0.3, retries=0)
        with pytest.raises(errors(made).RainerUnreachableError) as caught:
            made.commit("k", 1, b"x")
    assert "the commit may or may not have been saved" in str(caught.value)
    assert caught.value.method == "POST"


# -- proxies from the environment -------------------------------------------------------------


def test_proxies_from_the_environment_and_no_proxy(make, server, key, monkeypatch):
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        made = make(server.diary_url, retries=0)
        made.commit(key, 1, b"via the proxy")
        assert made.read(key).payload == b"via the proxy"
        assert ("POST", f"{server.diary_url}/{key}/1") in proxy.seen
        seen = len(proxy.seen)
        monkeypatch.setenv("NO_PROXY", f"example.com,{server.host}")
        made = make(server.diary_url, retries=0)
        assert made.read(key).payload == b"via the proxy"
        assert len(proxy.seen) == seen
