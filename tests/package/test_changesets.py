"""Change sets (``POST /diary``) and bulk reads (``?key=``, ``?prefix=``) against real servers:
all or nothing, every stale key named, and atomic under racing writers on every database."""

from __future__ import annotations

import base64
import json
import threading
from urllib.parse import quote

import pytest
from http_util import call

from harness.rainer import RainerServer

pytest_plugins = ["zk_fixtures"]

JSON = {"Content-Type": "application/json", "X-Rainer-Author": "ann"}


def post_changes(diary: str, changes: list[dict], **headers) -> object:
    body = json.dumps({"changes": changes})
    return call("POST", diary, body, {**JSON, **headers})


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    database = tmp_path_factory.mktemp("changesets") / "rainer.db"
    with RainerServer(["--database", f"sqlite:///{database}"]) as running:
        yield running


@pytest.fixture
def diary(server):
    return server.diary_url


@pytest.fixture
def k(request):
    base = "cs-" + "".join(ch if ch.isalnum() else "-" for ch in request.node.name)[:80]
    return lambda suffix: f"{base}.{suffix}"


def test_a_change_set_commits_every_key_and_answers_in_order(diary, k):
    reply = post_changes(
        diary,
        [
            {"key": k("a"), "version": 1, "payload_utf8": "añ"},
            {"key": k("b"), "version": 1, "payload_base64": base64.b64encode(b"\xff\x00").decode()},
            {"key": k("c"), "version": 1, "payload_utf8": "c", "comment": "its own"},
        ],
        **{"X-Rainer-Comment": "release 7"},
    )
    assert reply.status == 200, reply.text
    metas = reply.json()
    assert [(m["key"], m["version"], m["comment"]) for m in metas] == [
        (k("a"), 1, "release 7"),
        (k("b"), 1, "release 7"),
        (k("c"), 1, "its own"),
    ]
    assert len({m["mtime"] for m in metas}) == 1 and {m["author"] for m in metas} == {"ann"}
    assert call("GET", f"{diary}/{k('a')}").body == "añ".encode()
    assert call("GET", f"{diary}/{k('b')}").body == b"\xff\x00"
    tomb = post_changes(diary, [{"key": k("c"), "version": 2, "empty": True}])
    assert tomb.status == 200 and tomb.json()[0]["empty"] is True


def test_a_stale_key_refuses_the_whole_set_and_every_stale_key_is_named(diary, k):
    assert post_changes(diary, [{"key": k("a"), "version": 1, "payload_utf8": "1"}]).status == 200
    assert post_changes(diary, [{"key": k("b"), "version": 1, "payload_utf8": "1"}]).status == 200
    reply = post_changes(
        diary,
        [
            {"key": k("a"), "version": 1, "payload_utf8": "late"},
            {"key": k("new"), "version": 1, "payload_utf8": "would be new"},
            {"key": k("b"), "version": 9, "payload_utf8": "far"},
        ],
    )
    assert reply.status == 409
    assert reply.json() == {
        "conflicts": [
            {"key": k("a"), "expectedVersion": 2, "providedVersion": 1},
            {"key": k("b"), "expectedVersion": 2, "providedVersion": 9},
        ]
    }
    assert call("GET", f"{diary}/{k('new')}").status == 404


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{", "not JSON"),
        ('{"changes": []}', "non-empty list"),
        ('{"changes": [], "extra": 1}', "nothing else"),
        ('{"changes": [{"key": "x", "version": 1}]}', "exactly one of"),
        (
            '{"changes": [{"key": "x", "version": 1, "payload_utf8": "a", "empty": true}]}',
            "exactly one of",
        ),
        ('{"changes": [{"key": "x", "version": "1", "payload_utf8": "a"}]}', "32-bit integer"),
        ('{"changes": [{"key": "x", "version": true, "payload_utf8": "a"}]}', "32-bit integer"),
        ('{"changes": [{"key": "x", "version": 1, "payload_base64": "!!"}]}', "not base64"),
        ('{"changes": [{"key": "x", "version": 1, "empty": false}]}', "can only be true"),
        (
            '{"changes": [{"key": "x", "version": 1, "payload_utf8": "a", "whatever": 1}]}',
            "unknown field 'whatever'",
        ),
        ('{"changes": [{"key": "a/b", "version": 1, "payload_utf8": "a"}]}', "Invalid key"),
        (
            '{"changes": [{"key": "x", "version": 1, "payload_utf8": "a"}, '
            '{"key": "x", "version": 2, "payload_utf8": "b"}]}',
            "named twice",
        ),
        ("[" * 50_000 + "]" * 50_000, "Malformed change set"),
    ],
)
def test_a_malformed_change_set_is_a_400_saying_why(diary, body, reason):
    reply = call("POST", diary, body, JSON)
    assert reply.status == 400 and reason in reply.text, reply.text
    assert "x" not in call("GET", f"{diary}?all=yes").json()


def test_limits_and_content_type(diary):
    too_many = [{"key": f"many{i}", "version": 1, "payload_utf8": "x"} for i in range(1001)]
    reply = post_changes(diary, too_many)
    assert reply.status == 413 and "at most 1000" in reply.text
    big = [{"key": "big", "version": 1, "payload_utf8": "x" * (17 * 1024 * 1024)}]
    assert post_changes(diary, big).status == 413
    reply = call("POST", diary, '{"changes": []}', {"X-Rainer-Author": "ann"})
    assert reply.status == 415
    assert call("GET", f"{diary}/many0").status == 404


def test_validation_applies_to_every_payload(tmp_path):
    args = ["--database", f"sqlite:///{tmp_path / 'v.db'}", "--validate", "json"]
    with RainerServer(args) as server:
        reply = post_changes(
            server.diary_url,
            [
                {"key": "good", "version": 1, "payload_utf8": "{}"},
                {"key": "bad", "version": 1, "payload_utf8": "{nope"},
            ],
        )
        assert reply.status == 400 and reply.text.startswith("Malformed input")
        assert call("GET", f"{server.diary_url}/good").status == 404


def test_bulk_reads_fetch_just_the_keys_asked_for(diary, k):
    comma = k("with,comma")
    post_changes(
        diary,
        [
            {"key": comma, "version": 1, "payload_utf8": "c"},
            {"key": k("plain"), "version": 1, "payload_utf8": "p"},
            {"key": k("gone"), "version": 1, "empty": True},
        ],
    )
    query = "&".join(
        f"key={quote(key, safe='')}" for key in (comma, k("plain"), k("absent"), k("gone"))
    )
    found = call("GET", f"{diary}?{query}&payload_utf8=yes").json()
    assert {key: meta["payload_utf8"] for key, meta in found.items()} == {
        comma: "c",
        k("plain"): "p",
    }
    assert k("gone") in call("GET", f"{diary}?{query}&all=yes").json()
    prefixed = call("GET", f"{diary}?prefix={quote(k(''))}").json()
    assert sorted(prefixed) == sorted([comma, k("plain")])
    assert call("GET", f"{diary}?key=a%2Fb").status == 400


def race(diaries: list[str], rounds: int = 30) -> tuple[list[int], dict]:
    """Two pipelines commit overlapping change sets of the same keys as fast as they can;
    returns the statuses and the final state."""
    keys = ["shared.a", "shared.b", "only.x", "only.y"]
    statuses: list[int] = []
    lock = threading.Lock()

    def pipeline(n: int) -> None:
        mine = ["shared.a", "shared.b", "only.x" if n == 0 else "only.y"]
        for _ in range(rounds):
            heads = call("GET", f"{diaries[n]}?all=yes").json()
            changes = [
                {
                    "key": key,
                    "version": heads.get(key, {"version": 0})["version"] + 1,
                    "payload_utf8": f"pipeline {n}",
                }
                for key in mine
            ]
            reply = post_changes(diaries[n], changes)
            with lock:
                statuses.append(reply.status)

    threads = [threading.Thread(target=pipeline, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    histories = {}
    for key in keys:
        reply = call("GET", f"{diaries[0]}/{key}/history?limit=1000&payload_utf8=yes")
        # A pipeline can lose every round (its server slower to start, say): its own key was
        # then never written, which is a history of nothing, not a failure.
        histories[key] = [] if reply.status == 404 else reply.json()
    return statuses, histories


def test_racing_pipelines_win_whole_or_write_nothing(database_url):
    servers = [RainerServer(["--database", database_url])]
    if not database_url.startswith("sqlite"):
        servers.append(RainerServer(["--database", database_url]))
    try:
        for server in servers:
            server.start()
        diaries = [server.diary_url for server in servers]
        statuses, histories = race(diaries * 2 if len(diaries) == 1 else diaries)
    finally:
        for server in servers:
            server.close()
    assert set(statuses) <= {200, 409}, statuses
    assert 409 in statuses, "the pipelines never collided; the test proved nothing"
    won = statuses.count(200)
    # Every accepted set wrote all three of its keys; a refused one wrote none.
    assert len(histories["shared.a"]) == len(histories["shared.b"]) == won
    assert len(histories["only.x"]) + len(histories["only.y"]) == won
    # Versions of a and b were written together, by the same pipeline.
    for a, b in zip(histories["shared.a"], histories["shared.b"], strict=True):
        assert (a["version"], a["payload_utf8"]) == (b["version"], b["payload_utf8"])
        assert a["mtime"] == b["mtime"]


@pytest.mark.zookeeper
def test_a_change_set_reaches_zookeeper_in_one_transaction(tmp_path, request):
    """Every node a change set touches carries the same transaction id (mzxid), and a node it
    deletes was deleted in that same transaction: the tree never holds half a set."""
    zookeeper = request.getfixturevalue("zookeeper")
    zk_path = request.getfixturevalue("zk_path")
    client = request.getfixturevalue("zk_client")
    args = [
        "--database", f"sqlite:///{tmp_path / 'r.db'}",
        "--zookeeper", zookeeper.hosts, "--zk-path", zk_path,
    ]  # fmt: skip
    with RainerServer(args) as server:
        keys = ["set.a", "set.b", "set.c"]
        first = post_changes(
            server.diary_url, [{"key": k, "version": 1, "payload_utf8": k} for k in keys]
        )
        assert first.status == 200, first.text
        stats = [client.exists(f"{zk_path}/data/{k}") for k in keys]
        assert len({stat.mzxid for stat in stats}) == 1
        second = post_changes(
            server.diary_url,
            [
                {"key": "set.a", "version": 2, "payload_utf8": "a2"},
                {"key": "set.b", "version": 2, "empty": True},
                {"key": "set.c", "version": 2, "payload_utf8": "c2"},
            ],
        )
        assert second.status == 200, second.text
        a, c = (client.exists(f"{zk_path}/data/{k}") for k in ("set.a", "set.c"))
        assert client.exists(f"{zk_path}/data/set.b") is None
        _, parent = client.get_children(f"{zk_path}/data", include_data=True)
        assert a.mzxid == c.mzxid == parent.pzxid
        assert a.mzxid > stats[0].mzxid
        got = call("GET", f"{server.diary_url}?key=set.a&key=set.c&payload_utf8=yes")
        assert {k: m["payload_utf8"] for k, m in got.json().items()} == {
            "set.a": "a2",
            "set.c": "c2",
        }
