"""The wire contract, row by row, against a real `rainer serve` on loopback.

Most tests run on the embedded default (SQLite); ``test_round_trip_on_every_backend`` runs the
contract's core on PostgreSQL and MariaDB too.
"""

from __future__ import annotations

import base64

import pytest
from http_util import call, post_commit

from harness.rainer import RainerServer

META_FIELDS = ["key", "version", "author", "comment", "mtime", "empty"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    database = tmp_path_factory.mktemp("api") / "rainer.db"
    with RainerServer(["--database", f"sqlite:///{database}"]) as running:
        yield running


@pytest.fixture
def diary(server):
    return server.diary_url


@pytest.fixture
def key(request):
    return "k-" + "".join(ch if ch.isalnum() else "-" for ch in request.node.name)[:100]


def heads(diary, **flags):
    query = "&".join(f"{name}={value}" for name, value in flags.items())
    reply = call("GET", f"{diary}?{query}" if query else diary)
    assert reply.status == 200
    assert reply.header("content-type").startswith("application/json")
    return reply.json()


# -- POST ------------------------------------------------------------------------------------


def test_post_answers_the_metadata(diary, key):
    reply = post_commit(diary, key, 1, b'{"s": "hey"}', author="dude", comment="stuff")
    assert reply.status == 200
    meta = reply.json()
    assert list(meta) == META_FIELDS
    assert meta["key"] == key and meta["version"] == 1
    assert (meta["author"], meta["comment"], meta["empty"]) == ("dude", "stuff", False)
    assert meta["mtime"].endswith("Z") and len(meta["mtime"]) == len("2024-01-01T00:00:00.000Z")


def test_comment_defaults_to_empty(diary, key):
    assert post_commit(diary, key, 1, b"x", author="a").json()["comment"] == ""


def test_missing_author_is_400_and_changes_nothing(diary, key):
    reply = post_commit(diary, key, 1, b"x", comment="no author")
    assert (reply.status, reply.text) == (400, "Missing header: X-Rainer-Author")
    assert call("GET", f"{diary}/{key}").status == 404


def test_wrong_version_is_409_with_the_conflict(diary, key):
    assert post_commit(diary, key, 1, b"one", author="a").status == 200
    for version in (1, 3, 0, -1):
        reply = post_commit(diary, key, version, b"other", author="b")
        assert reply.status == 409
        assert reply.json() == {
            "conflict": {"key": key, "expectedVersion": 2, "providedVersion": version}
        }
    assert call("GET", f"{diary}/{key}").body == b"one"


def test_first_commit_must_be_version_one(diary, key):
    reply = post_commit(diary, key, 2, b"x", author="a")
    assert reply.status == 409
    assert reply.json()["conflict"]["expectedVersion"] == 1


def test_modified_time_is_taken_from_the_header(diary, key):
    reply = post_commit(
        diary, key, 1, b"x", author="a", modified_time="2014-02-11T14:01:28.839-08:00"
    )
    assert reply.json()["mtime"] == "2014-02-11T14:01:28.839-08:00"
    got = call("GET", f"{diary}/{key}")
    assert got.header("x-rainer-modified-time") == "2014-02-11T14:01:28.839-08:00"


@pytest.mark.parametrize("value", ["yesterday", "2014-13-45T00:00:00Z", ""])
def test_malformed_modified_time_is_400(diary, key, value):
    reply = post_commit(diary, key, 1, b"x", author="a", modified_time=value)
    assert reply.status == 400
    assert reply.text.startswith("Malformed header: X-Rainer-Modified-Time")
    assert call("GET", f"{diary}/{key}").status == 404


def test_key_and_version_headers_must_match_the_url(diary, key):
    reply = post_commit(diary, key, 1, b"x", author="a", key="other")
    assert (reply.status, reply.text) == (400, "X-Rainer-Key must match URL key, or be omitted")
    reply = post_commit(diary, key, 1, b"x", author="a", version="2")
    assert reply.status == 400
    assert reply.text == "X-Rainer-Version must match URL version, or be omitted"
    assert call("GET", f"{diary}/{key}").status == 404
    assert post_commit(diary, key, 1, b"x", author="a", key=key, version="1").status == 200


def test_tombstone_is_an_empty_commit_left_out_of_the_list(diary, key):
    post_commit(diary, key, 1, b"alive", author="a")
    reply = post_commit(diary, key, 2, b"", author="a", empty="yes")
    assert reply.status == 200 and reply.json()["empty"] is True
    assert key not in heads(diary)
    assert heads(diary, all="yes")[key]["empty"] is True
    got = call("GET", f"{diary}/{key}")
    assert (got.status, got.body, got.header("x-rainer-empty")) == (200, b"", "Yes")
    assert call("GET", f"{diary}/{key}/1").body == b"alive"
    assert post_commit(diary, key, 3, b"back", author="a").status == 200
    assert heads(diary)[key]["version"] == 3


@pytest.mark.parametrize("value", ["True", "YES", "1", "true"])
def test_empty_header_takes_any_yes(diary, key, value):
    post_commit(diary, key, 1, b"x", author="a")
    assert post_commit(diary, key, 2, b"", author="a", empty=value).json()["empty"] is True


@pytest.mark.parametrize("value", ["False", "no", "0"])
def test_empty_header_takes_any_no(diary, key, value):
    assert post_commit(diary, key, 1, b"x", author="a", empty=value).json()["empty"] is False


def test_empty_commit_with_a_body_is_400(diary, key):
    reply = post_commit(diary, key, 1, b"not empty", author="a", empty="yes")
    assert (reply.status, reply.text) == (400, "Empty payload required with X-Rainer-Empty")
    assert call("GET", f"{diary}/{key}").status == 404


def test_malformed_empty_header_is_400(diary, key):
    reply = post_commit(diary, key, 1, b"", author="a", empty="maybe")
    assert reply.status == 400 and reply.text.startswith("Malformed header: X-Rainer-Empty")


def test_non_ascii_author_and_comment_round_trip(diary, key):
    headers = {"X-Rainer-Author": "Zoë".encode(), "X-Rainer-Comment": "naïve ünïcode".encode()}
    reply = call("POST", f"{diary}/{key}/1", b"x", headers)
    assert reply.status == 200
    assert (reply.json()["author"], reply.json()["comment"]) == ("Zoë", "naïve ünïcode")
    assert call("GET", f"{diary}/{key}/meta").json()["author"] == "Zoë"


# -- GET payloads ----------------------------------------------------------------------------


def test_get_answers_payload_and_headers(diary, key):
    post_commit(diary, key, 1, b'{"s": "hey"}', author="dude", comment="stuff")
    for url in (f"{diary}/{key}", f"{diary}/{key}/1"):
        got = call("GET", url)
        assert got.status == 200 and got.body == b'{"s": "hey"}'
        assert got.header("content-type") == "text/plain; charset=UTF-8"
        assert got.header("x-rainer-key") == key
        assert got.header("x-rainer-version") == "1"
        assert got.header("x-rainer-author") == "dude"
        assert got.header("x-rainer-comment") == "stuff"
        assert got.header("x-rainer-empty") == "No"
        assert got.header("x-rainer-modified-time").endswith("Z")


def test_binary_payload_is_octet_stream_and_verbatim(diary, key):
    payload = bytes(range(256))
    post_commit(diary, key, 1, payload, author="a")
    got = call("GET", f"{diary}/{key}")
    assert got.body == payload
    assert got.header("content-type") == "application/octet-stream"


def test_older_versions_stay_readable(diary, key):
    for version in (1, 2, 3):
        post_commit(diary, key, version, f"v{version}".encode(), author="a")
    assert call("GET", f"{diary}/{key}").body == b"v3"
    assert [call("GET", f"{diary}/{key}/{v}").body for v in (1, 2, 3)] == [b"v1", b"v2", b"v3"]


@pytest.mark.parametrize("suffix", ["", "/1", "/meta", "/1/meta"])
def test_missing_key_is_404_key_not_found(diary, key, suffix):
    got = call("GET", f"{diary}/{key}{suffix}")
    assert (got.status, got.text) == (404, "Key not found")


@pytest.mark.parametrize("version", ["2", "0", "-1", "99999"])
def test_missing_version_is_404(diary, key, version):
    post_commit(diary, key, 1, b"x", author="a")
    assert call("GET", f"{diary}/{key}/{version}").status == 404
    assert call("GET", f"{diary}/{key}/{version}/meta").status == 404


def test_head_request_has_headers_and_no_body(diary, key):
    post_commit(diary, key, 1, b"payload", author="a")
    got = call("HEAD", f"{diary}/{key}")
    assert got.status == 200 and got.body == b""
    assert got.header("x-rainer-version") == "1"


# -- metadata and the list -------------------------------------------------------------------


def test_meta_is_the_commit_metadata(diary, key):
    posted = post_commit(diary, key, 1, b"x", author="a", comment="c").json()
    post_commit(diary, key, 2, b"y", author="b", comment="d")
    assert call("GET", f"{diary}/{key}/1/meta").json() == posted
    head = call("GET", f"{diary}/{key}/meta").json()
    assert list(head) == META_FIELDS and head["version"] == 2 and head["author"] == "b"


def test_list_with_payloads(diary, key):
    post_commit(diary, key, 1, b'{"s": "hey"}', author="a")
    plain = heads(diary)[key]
    assert list(plain) == META_FIELDS
    assert heads(diary, payload_utf8="yes")[key]["payload_utf8"] == '{"s": "hey"}'
    assert heads(diary, payload_base64="yes")[key]["payload_base64"] == "eyJzIjogImhleSJ9"
    both = heads(diary, payload_utf8="true", payload_base64="1")[key]
    assert set(both) == {*META_FIELDS, "payload_utf8", "payload_base64"}
    assert "payload_utf8" not in heads(diary, payload_utf8="no")[key]


def test_list_payloads_leave_tombstones_without_payload_fields(diary, key):
    post_commit(diary, key, 1, b"x", author="a")
    post_commit(diary, key, 2, b"", author="a", empty="yes")
    listed = heads(diary, all="YES", payload_base64="yes", payload_utf8="yes")[key]
    assert listed["empty"] is True and "payload_base64" not in listed


def test_binary_payload_in_list_base64_is_exact(diary, key):
    payload = b"\xff\x00\xfe"
    post_commit(diary, key, 1, payload, author="a")
    listed = heads(diary, payload_base64="yes")[key]
    assert base64.b64decode(listed["payload_base64"]) == payload


@pytest.mark.parametrize("flag", ["all", "payload_utf8", "payload_base64"])
@pytest.mark.parametrize("value", ["maybe", "", "2"])
def test_malformed_list_flag_is_400(diary, flag, value):
    got = call("GET", f"{diary}?{flag}={value}")
    assert (got.status, got.text) == (400, f"Invalid '{flag}' parameter (should be boolean)")


def test_list_url_takes_a_trailing_slash(diary):
    assert call("GET", f"{diary}/").status == 200


# -- history (beyond the original) -----------------------------------------------------------


def test_history_is_newest_first_with_paging(diary, key):
    for version in range(1, 6):
        post_commit(diary, key, version, f"v{version}".encode(), author=f"a{version}")
    got = call("GET", f"{diary}/{key}/history")
    assert got.status == 200
    assert [m["version"] for m in got.json()] == [5, 4, 3, 2, 1]
    assert list(got.json()[0]) == META_FIELDS
    assert [m["version"] for m in call("GET", f"{diary}/{key}/history?limit=2").json()] == [5, 4]
    page = call("GET", f"{diary}/{key}/history?limit=2&before=4").json()
    assert [m["version"] for m in page] == [3, 2]
    assert call("GET", f"{diary}/{key}/history?before=1").json() == []
    with_payloads = call("GET", f"{diary}/{key}/history?payload_utf8=yes&limit=1").json()
    assert with_payloads[0]["payload_utf8"] == "v5"
    b64 = call("GET", f"{diary}/{key}/history?payload_base64=yes&limit=1").json()
    assert b64[0]["payload_base64"] == base64.b64encode(b"v5").decode()


def test_history_of_missing_key_is_404(diary, key):
    assert call("GET", f"{diary}/{key}/history").status == 404


@pytest.mark.parametrize("query", ["limit=0", "limit=x", "before=-1", "limit=", "payload_utf8=x"])
def test_history_bad_parameters_are_400(diary, key, query):
    post_commit(diary, key, 1, b"x", author="a")
    got = call("GET", f"{diary}/{key}/history?{query}")
    assert got.status == 400 and "parameter" in got.text


# -- bad input never changes anything --------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("a%2Fb", "'/'"),
        ("%2E", "'.'"),
        ("..", "'..'"),
        ("tab%09key", "control character"),
        ("x" * 256, "255 bytes"),
        ("%FF%FE", "percent-encoded UTF-8"),
    ],
)
def test_invalid_keys_are_400_with_the_reason(diary, path, reason):
    for method, url in (("GET", f"{diary}/{path}"), ("POST", f"{diary}/{path}/1")):
        got = call(method, url, b"x", {"X-Rainer-Author": "a"})
        assert got.status == 400, (method, url, got.text)
        assert reason in got.text


@pytest.mark.parametrize("version", ["one", "1.5", "1e3", "99999999999", "%201"])
def test_non_integer_version_is_400(diary, key, version):
    for method, url in (
        ("GET", f"{diary}/{key}/{version}"),
        ("GET", f"{diary}/{key}/{version}/meta"),
        ("POST", f"{diary}/{key}/{version}"),
    ):
        got = call(method, url, b"x", {"X-Rainer-Author": "a"})
        assert got.status == 400 and got.text.startswith("Invalid version"), (method, url)
    assert call("GET", f"{diary}/{key}").status == 404


@pytest.mark.parametrize(
    "path", ["/", "/other", "/diaryx", "/diary/k/1/meta/x", "/diary/k/1/other", "/diary/k/"]
)
def test_unknown_paths_are_404(server, path):
    assert call("GET", server.url + path).status == 404


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "", "GET, POST"),
        ("DELETE", "/k", "GET"),
        ("POST", "/k", "GET"),
        ("POST", "/k/meta", "GET"),
        ("PUT", "/k/1", "GET, POST"),
        ("DELETE", "/k/1/meta", "GET"),
        ("POST", "/k/history", "GET"),
    ],
)
def test_wrong_methods_are_405(diary, method, path, allowed):
    got = call(method, diary + path, b"", {"X-Rainer-Author": "a"})
    assert got.status == 405
    assert got.header("allow") == allowed


def test_healthz(server):
    got = call("GET", server.url + "/healthz")
    assert got.status == 200 and got.json()["status"] == "ok"


def test_no_bad_input_changed_the_list(server, diary):
    """Runs last in this module: every key listed came from a successful POST."""
    listed = heads(diary, all="yes")
    assert all(name.startswith("k-") for name in listed)
    assert not any("invalid" in name or "malformed" in name for name in listed)


# -- options ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory):
    database = tmp_path_factory.mktemp("strict") / "rainer.db"
    args = ["--database", f"sqlite:///{database}", "--validate", "json"]
    args += ["--max-payload-bytes", "64"]
    with RainerServer(args, prefix="/config/v1") as running:
        yield running


def test_prefix_option_moves_the_api(strict_server):
    assert call("GET", strict_server.url + "/config/v1").status == 200
    assert call("GET", strict_server.url + "/diary").status == 404


def test_validate_json_refuses_what_does_not_parse(strict_server):
    diary = strict_server.diary_url
    got = post_commit(diary, "j", 1, b"{not json", author="a")
    assert got.status == 400 and got.text.startswith("Malformed input: ")
    assert "\n" not in got.text
    assert call("GET", f"{diary}/j").status == 404
    assert post_commit(diary, "j", 1, b'{"ok": true}', author="a").status == 200
    assert post_commit(diary, "j", 2, b"", author="a", empty="yes").status == 200


def test_payload_over_the_limit_is_413_and_changes_nothing(strict_server):
    diary = strict_server.diary_url
    got = post_commit(diary, "big", 1, b"[" + b"1," * 40 + b"1]", author="a")
    assert got.status == 413 and "too large" in got.text
    assert call("GET", f"{diary}/big").status == 404
    assert post_commit(diary, "big", 1, b"[" + b"1," * 20 + b"1]", author="a").status == 200


def test_validate_yaml(tmp_path):
    args = ["--database", f"sqlite:///{tmp_path / 'y.db'}", "--validate", "yaml"]
    with RainerServer(args) as running:
        diary = running.diary_url
        got = post_commit(diary, "y", 1, b"a: [unclosed", author="a")
        assert got.status == 400 and got.text.startswith("Malformed input: ")
        assert post_commit(diary, "y", 1, b"a: [1, 2]\nb: text\n", author="a").status == 200


# -- every backend ---------------------------------------------------------------------------


def test_round_trip_on_every_backend(database_url):
    with RainerServer(["--database", database_url]) as running:
        diary = running.diary_url
        assert post_commit(diary, "k", 1, b"one", author="a", comment="c").status == 200
        assert post_commit(diary, "k", 2, b"\xfftwo", author="b").status == 200
        assert post_commit(diary, "k", 2, b"late", author="c").status == 409
        assert post_commit(diary, "gone", 1, b"x", author="a").status == 200
        assert post_commit(diary, "gone", 2, b"", author="a", empty="yes").status == 200
        assert set(heads(diary)) == {"k"}
        assert set(heads(diary, all="yes")) == {"k", "gone"}
        got = call("GET", f"{diary}/k")
        assert got.body == b"\xfftwo" and got.header("content-type") == "application/octet-stream"
        assert call("GET", f"{diary}/k/1").body == b"one"
        assert call("GET", f"{diary}/k/1/meta").json()["comment"] == "c"
        assert [m["version"] for m in call("GET", f"{diary}/k/history").json()] == [2, 1]
        running.stop()
        running.start()
        assert call("GET", f"{diary}/k").body == b"\xfftwo"


def test_unicode_keys_round_trip_percent_encoded(diary):
    from urllib.parse import quote

    key = "k-ключ naïve+plus"
    assert post_commit(diary, quote(key, safe=""), 1, b"x", author="a").json()["key"] == key
    got = call("GET", f"{diary}/{quote(key, safe='')}")
    assert got.status == 200 and got.header("x-rainer-key") == key.encode().decode("latin-1")
    assert key in heads(diary)
