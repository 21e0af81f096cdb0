"""RainerClient against a real server: what only the package's client has — pyrainer's
shapes, field by field, errors that are also Rainer's meanings, shared kept-alive connections.
What both clients share is in test_client_contract.py."""

from __future__ import annotations

import socket
import threading

import pytest
from cli_helpers import commit, rainer
from client_fixtures import client_fixture, key_fixture, server_fixture  # noqa: F401
from client_servers import ForwardProxy

from rainer.client import (
    RainerBadRequestError,
    RainerClient,
    RainerCommit,
    RainerConflictError,
    RainerNotFoundError,
    RainerServerError,
    RainerUnreachableError,
)
from rainer.errors import (
    BadRequestError,
    CommitOrderingError,
    NotFoundError,
    StorageUnavailableError,
)

META_FIELDS = ["key", "version", "author", "comment", "mtime", "empty"]


def test_get_commit_carries_meta_and_value_like_pyrainer(client, key):
    posted = client.post_commit(
        {"key": key, "version": 1, "author": "Zoë", "comment": "naïve"}, b"\x00\xffbinary"
    )
    assert list(posted) == META_FIELDS
    got = client.get_commit(key)
    assert isinstance(got, RainerCommit)
    assert got.meta == posted
    assert got.value == got.payload == b"\x00\xffbinary"
    assert got.text is None  # not UTF-8
    assert client.get_value(key) == b"\x00\xffbinary"
    assert client.get_value(key, 1) == b"\x00\xffbinary"
    assert client.get_metadata(key, 1) == posted
    assert client.get_commit(key, 1) == got


def test_an_empty_commits_value_is_none_as_in_pyrainer(client, key):
    commit(client, key, "one")
    gone = commit(client, key, None)
    assert gone["empty"] is True and gone["version"] == 2
    head = client.get_commit(key)
    assert (head.value, head.payload, head.text) == (None, b"", "")
    assert client.get_value(key) == b""
    assert client.list_full(all=True)[key].value is None


def test_pyrainer_metadata_dict_with_string_empty_flag(client, key):
    commit(client, key, "x")
    # pyrainer sent str(metadata["empty"]): "True" makes a tombstone, "False" does not.
    meta = client.post_commit(
        {"key": key, "version": 2, "author": "a", "comment": "", "empty": "True"}, ""
    )
    assert meta["empty"] is True
    meta = client.post_commit({"key": key, "version": 3, "author": "a", "empty": "False"}, b"back")
    assert meta["empty"] is False and meta["comment"] == ""
    with pytest.raises(RainerBadRequestError, match="cannot carry"):
        client.post_commit({"key": key, "version": 4, "author": "a", "empty": True}, "data")
    with pytest.raises(RainerBadRequestError, match="yes or no"):
        client.post_commit({"key": key, "version": 4, "author": "a", "empty": "perhaps"}, "")


def test_list_is_metadata_and_list_full_commits(client, key):
    commit(client, key, "alpha")
    listed = client.list()
    assert listed[key] == client.get_metadata(key)
    full = client.list_full()
    assert full[key].value == b"alpha" and full[key].meta == listed[key]


def test_commit_uri_and_base_uri(client):
    assert client.commit_uri("a b&c?", 2).endswith("/diary/a%20b%26c%3F/2")
    assert client.base_uri == client.url  # pyrainer's attribute


def test_errors_are_also_rainers_meanings(client, key):
    with pytest.raises(NotFoundError) as caught:
        client.get_commit(key)
    assert isinstance(caught.value, RainerNotFoundError)
    assert caught.value.code == 404  # urllib's HTTPError name, which pyrainer raised
    commit(client, key, "x")
    with pytest.raises(CommitOrderingError) as conflict:
        client.post_commit({"key": key, "version": 1, "author": "late"}, "z")
    assert isinstance(conflict.value, RainerConflictError)
    assert issubclass(RainerServerError, StorageUnavailableError)
    assert issubclass(RainerUnreachableError, StorageUnavailableError)
    # Refused before sending: a key that can never exist; no status, as no answer came.
    with pytest.raises(BadRequestError, match="Invalid key") as refused:
        client.get_commit("")
    assert isinstance(refused.value, RainerBadRequestError) and refused.value.status is None


def test_wrong_base_url_says_so(server):
    with pytest.raises(RainerNotFoundError, match="base URL"):
        RainerClient(server.url + "/nothing-here").list()


def test_one_connection_is_kept_alive_and_reused(client, key):
    commit(client, key, "x")
    client.get_value(key)
    pool = client._pool.connection_from_url(client.url)
    opened = pool.num_connections
    for _ in range(5):
        client.get_commit(key)
    assert pool.num_connections == opened


def test_threads_share_a_client(client, key):
    commit(client, key, "shared")
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for _ in range(20):
                assert client.get_value(key) == b"shared"
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_a_restarted_server_is_reconnected_to(tmp_path):
    from harness.rainer import RainerServer

    with RainerServer(["--database", f"sqlite:///{tmp_path / 'r.db'}"]) as own:
        made = RainerClient(own.diary_url, retries=0)
        made.post_commit({"key": "k", "version": 1, "author": "a"}, "v")
        own.restart()  # the kept-alive connection is now dead: no retry is needed
        assert made.get_value("k") == b"v"
        own.restart()
        made.post_commit({"key": "k", "version": 2, "author": "a"}, "w")
        assert made.get_value("k") == b"w"


def test_rainer_commit_checks_empty_against_value():
    with pytest.raises(ValueError):
        RainerCommit({"key": "k", "version": 1, "empty": True}, b"x")
    with pytest.raises(ValueError):
        RainerCommit({"key": "k", "version": 1}, None)
    assert RainerCommit({"key": "k", "version": 1}, "text").value == b"text"
    assert RainerCommit({"key": "k", "version": 1, "empty": True}, b"").value is None


def test_constructor_checks_the_url_and_keeps_pyrainers_positional_argument():
    with pytest.raises(ValueError):
        RainerClient("")
    with pytest.raises(ValueError):
        RainerClient("ftp://host/diary")
    with pytest.raises(ValueError):
        RainerClient("http://h/diary?x=1")
    made = RainerClient("http://h:1/diary/")
    assert (made.url, made.base_uri, made.timeout, made.retries) == (
        "http://h:1/diary",
        "http://h:1/diary",
        30.0,
        2,
    )


def test_a_refused_commit_is_not_posted_again_without_reading_back():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        made = RainerClient(f"http://127.0.0.1:{port}/diary", retries=2, sleep=lambda _: None)
        with pytest.raises(RainerUnreachableError, match="may or may not have been saved"):
            made.post_commit({"key": "k", "version": 1, "author": "a"}, "x")


def test_the_command_line_goes_through_a_proxy_unless_no_proxy_names_the_host(server, key):
    commit(RainerClient(server.diary_url), key, "x")
    clean = {name: None for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    clean.update({name.upper(): None for name in clean})
    with ForwardProxy() as proxy:
        clean["HTTP_PROXY"] = proxy.url
        run = rainer("list", url=server.diary_url, **clean)
        assert run.code == 0 and key in run.out, run.stderr
        assert proxy.seen == [("GET", server.diary_url)]
        run = rainer("list", url=server.diary_url, **{**clean, "NO_PROXY": "*"})
        assert run.code == 0 and key in run.out, run.stderr
        assert len(proxy.seen) == 1
