"""RainerClient against a real server: pyrainer's shapes, field by field, and the typed errors."""

from __future__ import annotations

import pickle
import re
import socket
import threading

import pytest
from cli_helpers import commit
from client_fixtures import client_fixture, key_fixture, server_fixture  # noqa: F401

from rainer.client import (
    RainerBadRequestError,
    RainerClient,
    RainerCommit,
    RainerConflictError,
    RainerNotFoundError,
)
from rainer.errors import (
    BadRequestError,
    CommitOrderingError,
    HttpStatusError,
    NotFoundError,
    UnreachableError,
)

MTIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)$")
META_FIELDS = ["key", "version", "author", "comment", "mtime", "empty"]


def test_post_commit_answers_the_metadata_of_the_wire_contract(client, key):
    meta = client.post_commit(
        {"key": key, "version": 1, "author": "ann", "comment": "first"}, "a: 1\n"
    )
    assert list(meta) == META_FIELDS
    assert meta["key"] == key
    assert meta["version"] == 1
    assert meta["author"] == "ann"
    assert meta["comment"] == "first"
    assert MTIME.match(meta["mtime"])
    assert meta["empty"] is False


def test_get_commit_carries_meta_and_value_like_pyrainer(client, key):
    posted = client.post_commit(
        {"key": key, "version": 1, "author": "Zoë", "comment": "naïve"}, b"\x00\xffbinary"
    )
    got = client.get_commit(key)
    assert isinstance(got, RainerCommit)
    assert got.meta == posted
    assert got.value == b"\x00\xffbinary"
    assert (got.key, got.version, got.author, got.comment) == (key, 1, "Zoë", "naïve")
    assert got.mtime == posted["mtime"]
    assert got.empty is False
    assert client.get_value(key) == b"\x00\xffbinary"
    assert client.get_value(key, 1) == b"\x00\xffbinary"
    assert client.get_metadata(key, 1) == posted
    assert client.get_commit(key, 1) == got


def test_versions_and_empty_commits(client, key):
    commit(client, key, "one")
    commit(client, key, "two")
    gone = commit(client, key, None)
    assert gone["empty"] is True and gone["version"] == 3
    head = client.get_commit(key)
    assert head.empty is True and head.value is None and head.text is None
    assert client.get_commit(key, 1).text == "one"
    assert client.get_value(key) == b""


def test_pyrainer_metadata_dict_with_string_empty_flag(client, key):
    commit(client, key, "x")
    # pyrainer sent str(metadata["empty"]): "True" makes a tombstone, "False" does not.
    meta = client.post_commit(
        {"key": key, "version": 2, "author": "a", "comment": "", "empty": "True"}, ""
    )
    assert meta["empty"] is True
    meta = client.post_commit({"key": key, "version": 3, "author": "a", "empty": "False"}, b"back")
    assert meta["empty"] is False and meta["comment"] == ""
    with pytest.raises(BadRequestError, match="cannot carry"):
        client.post_commit({"key": key, "version": 4, "author": "a", "empty": True}, "data")


def test_list_and_list_full(client, key):
    commit(client, key + "-a", "alpha")
    commit(client, key + "-gone", "x")
    commit(client, key + "-gone", None)
    listed = client.list()
    assert listed[key + "-a"] == client.get_metadata(key + "-a")
    assert key + "-gone" not in listed
    every = client.list(all=True)
    assert every[key + "-gone"]["empty"] is True
    full = client.list_full()
    assert full[key + "-a"].value == b"alpha"
    assert full[key + "-a"].meta == listed[key + "-a"]
    assert full_all_gone(client, key).value is None


def full_all_gone(client, key):
    return client.list_full(all=True)[key + "-gone"]


def test_history_newest_first_with_values_in_one_request(client, key):
    commit(client, key, "1")
    commit(client, key, "2", comment="second")
    commit(client, key, None)
    history = client.history(key)
    assert [c.version for c in history] == [3, 2, 1]
    assert [c.value for c in history] == [None, b"2", b"1"]
    assert history[1].meta == client.get_metadata(key, 2)
    assert [c.version for c in client.history(key, limit=1)] == [3]
    assert [c.version for c in client.history(key, before=3)] == [2, 1]


def test_commit_uri_percent_encodes_keys(client):
    assert client.commit_uri("a b&c?", 2).endswith("/diary/a%20b%26c%3F/2")


def test_keys_with_reserved_characters_round_trip(client, key):
    odd = key + " sp%ce & ü?#"
    commit(client, odd, "odd")
    assert client.get_commit(odd).key == odd
    assert client.get_value(odd) == b"odd"
    assert odd in client.list()


def test_not_found_is_typed_and_carries_the_answer(client, key):
    with pytest.raises(RainerNotFoundError) as caught:
        client.get_commit(key)
    error = caught.value
    assert isinstance(error, NotFoundError) and isinstance(error, HttpStatusError)
    assert (error.status, error.code, error.body) == (404, 404, b"Key not found")
    assert key in str(error)
    commit(client, key, "x")
    with pytest.raises(NotFoundError):
        client.get_value(key, 2)


def test_conflict_carries_key_expected_and_provided(client, key):
    commit(client, key, "x")
    commit(client, key, "y")
    with pytest.raises(RainerConflictError) as caught:
        client.post_commit({"key": key, "version": 2, "author": "late"}, "z")
    error = caught.value
    assert isinstance(error, CommitOrderingError)
    assert (error.key, error.expected_version, error.provided_version) == (key, 3, 2)
    assert error.status == 409 and b"expectedVersion" in error.body
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.key, copy.expected_version, copy.status) == (key, 3, 409)


def test_bad_request_carries_the_servers_reason(client, key):
    with pytest.raises(RainerBadRequestError) as caught:
        client.post_commit({"key": key, "version": 1, "author": "a"}, "x", mtime="yesterday")
    assert caught.value.status == 400
    assert "X-Rainer-Modified-Time" in str(caught.value)
    with pytest.raises(BadRequestError, match="one line"):
        client.post_commit({"key": key, "version": 1, "author": "a", "comment": "a\nb"}, "x")
    with pytest.raises(BadRequestError, match="Invalid key"):
        client.get_commit("")


def test_wrong_base_url_says_so(server):
    with pytest.raises(RainerNotFoundError, match="base URL"):
        RainerClient(server.url + "/nothing-here").list()


def test_unreachable_server():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        with pytest.raises(UnreachableError, match="connection refused"):
            RainerClient(f"http://127.0.0.1:{port}/diary").list()


def test_timeout_when_the_server_never_answers():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(UnreachableError, match=r"no answer within 0\.3 s"):
            RainerClient(f"http://127.0.0.1:{port}/diary", timeout=0.3).list()


def test_one_connection_is_kept_alive_and_reused(client, key):
    commit(client, key, "x")
    client.get_value(key)
    first = client._local.connection.sock
    for _ in range(5):
        client.get_commit(key)
    assert client._local.connection.sock is first


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
        made = RainerClient(own.diary_url)
        made.post_commit({"key": "k", "version": 1, "author": "a"}, "v")
        own.restart()  # the kept-alive connection is now dead
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


def test_constructor_checks_the_url():
    with pytest.raises(ValueError):
        RainerClient("")
    with pytest.raises(ValueError):
        RainerClient("ftp://host/diary")
    assert RainerClient("http://h:1/diary/").base_uri == "http://h:1/diary"


def test_a_commit_left_unanswered_says_it_may_have_been_saved():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        made = RainerClient(f"http://127.0.0.1:{port}/diary", timeout=0.3)
        with pytest.raises(UnreachableError, match="may or may not have been saved"):
            made.post_commit({"key": "k", "version": 1, "author": "a"}, "x")
