"""``rainer plan``, ``rainer apply``, ``rainer export`` and ``rainer import`` against real
servers and databases: a plan shown and kept, applied in one request or refused whole, and a
store moved from SQLite to PostgreSQL with its history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import commit, rainer
from client_fixtures import client_fixture, key_fixture, server_fixture  # noqa: F401
from client_servers import Relay

from harness.rainer import RainerServer
from rainer.client import RainerClient, RainerNotFoundError
from rainer.commit import Commit, parse_mtime
from rainer.storage.sql import SqlStorage

EXIT_CHANGES = 2
EXIT_CONFLICT = 3


def files(folder: Path, contents: dict[str, str | bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in contents.items():
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return folder


# -- plan ---------------------------------------------------------------------------------------


def test_plan_shows_each_key_and_exits_2_for_changes(server, client, key, tmp_path):
    p = f"{key}."
    commit(client, p + "web.json", '{"spec": {"replicas": 3, "image": "nginx"}}\n')
    commit(client, p + "flags.yaml", "beta: false\nlimits: {cpu: 1}\n")
    commit(client, p + "same", "same\n")
    commit(client, p + "old", "going\n")
    folder = files(
        tmp_path / "config",
        {
            p + "web.json": '{"spec": {"replicas": 5, "image": "nginx"}}\n',
            p + "flags.yaml": "beta: true\nlimits: {cpu: 1, memory: 2Gi}\n",
            p + "same": "same\n",
            p + "new": "hello\n",
            ".hidden": "left out",
        },
    )
    run = rainer("plan", str(folder), "--prefix", p, "--delete-missing", url=server.diary_url)
    assert run.code == EXIT_CHANGES, run.stderr
    out = run.out
    assert f"~ {p}web.json: changed (version 1 → 2)\n    spec.replicas: 3 → 5\n" in out
    assert f"~ {p}flags.yaml: changed (version 1 → 2)\n" in out
    assert '    beta: false → true\n    limits.memory: (none) → "2Gi"\n' in out
    assert "    -beta: false\n" in out and "    +beta: true\n" in out  # a unified diff too
    assert f"+ {p}new: new (version 1)\n" in out and "    +hello\n" in out
    assert f"- {p}old: to delete (version 1 → 2, an empty commit)\n" in out
    assert f"= {p}same: unchanged (version 1)\n" in out
    assert out.endswith("Plan: 1 new, 2 to change, 1 to delete, 1 unchanged.\n")
    assert ".hidden" not in out and "\033[" not in out
    assert client.get_metadata(p + "web.json")["version"] == 1  # a plan writes nothing


def test_plan_reads_the_heads_in_one_request_and_exits_0_without_changes(
    server, client, key, tmp_path
):
    folder = files(tmp_path / "c", {f"{key}.a": "a", f"{key}.b": "b"})
    client.commit_changes(
        [
            {"key": f"{key}.a", "version": 1, "payload": "a"},
            {"key": f"{key}.b", "version": 1, "payload": "b"},
        ],
        author="ann",
    )
    with Relay(server.url) as relay:
        run = rainer("plan", str(folder), url=relay.url + "/diary")
        assert run.code == 0, run.stderr
        assert len(relay.seen) == 1 and relay.seen[0][1].startswith("/diary?")
    assert "Plan: 0 new, 0 to change, 0 to delete, 2 unchanged." in run.out


def test_a_manifest_maps_keys_to_files_in_yaml_or_json(server, key, tmp_path):
    files(tmp_path / "deep" / "er", {"web.conf": "port 80\n"})
    (tmp_path / "m.yaml").write_text(f"{key}.web: deep/er/web.conf\n")
    (tmp_path / "m.json").write_text(json.dumps({f"{key}.bin": "bin"}))
    (tmp_path / "bin").write_bytes(b"\x00\xff")
    run = rainer(
        "plan", "--manifest", str(tmp_path / "m.yaml"), "--manifest", str(tmp_path / "m.json"),
        url=server.diary_url,
    )  # fmt: skip
    assert run.code == EXIT_CHANGES, run.stderr
    assert f"+ {key}.web: new" in run.out and "Binary payloads differ" in run.out


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--bogus"], "unrecognized arguments"),
        ([], "name files, folders or --manifest"),
        (["--delete-missing", "DIR"], "--delete-missing needs --prefix"),
        (["--prefix", "zzz.", "DIR"], "outside the prefix"),
        (["DIR", "DIR/k"], "named twice"),
        (["--manifest", "DIR/k"], "must map keys to file names"),
        (["DIR/missing"], "cannot read"),
    ],
)
def test_plan_errors_exit_1_so_that_2_always_means_changes(server, tmp_path, args, reason):
    folder = files(tmp_path / "d", {"k": "x"})
    argv = [arg.replace("DIR", str(folder)) for arg in args]
    run = rainer("plan", *argv, url=server.diary_url)
    assert run.code == 1 and reason in run.stderr, run.stderr


# -- apply --------------------------------------------------------------------------------------


def test_apply_commits_exactly_the_plan_in_one_request(server, client, key, tmp_path):
    commit(client, f"{key}.a", "old a")
    commit(client, f"{key}.gone", "old")
    folder = files(tmp_path / "c", {f"{key}.a": "new a", f"{key}.b": b"\x00\xffbinary"})
    plan = tmp_path / "release.plan"
    with Relay(server.url) as relay:
        diary = relay.url + "/diary"
        run = rainer(
            "plan", str(folder), "--prefix", f"{key}.", "--delete-missing", "--out", str(plan),
            "-m", "release 7", url=diary,
        )  # fmt: skip
        assert run.code == EXIT_CHANGES, run.stderr
        assert oct(plan.stat().st_mode & 0o777) == "0o600"  # it holds the payloads
        (folder / f"{key}.a").write_text("changed after the plan")  # the plan is what applies
        relay.seen.clear()
        run = rainer("apply", str(plan), url=diary)
        assert run.code == 0, run.stderr
        assert relay.seen == [("POST", "/diary")]
        again = rainer("apply", str(plan), url=diary)
        assert again.code == EXIT_CONFLICT  # applied once; a plan never applies twice
    assert run.out.splitlines() == [
        f"committed {key}.a version 2",
        f"committed {key}.b version 1",
        f"committed {key}.gone version 2 (empty)",
        "Applied 3 changes as one change set.",
    ]
    assert client.get_value(f"{key}.a") == b"new a"
    assert client.get_value(f"{key}.b") == b"\x00\xffbinary"
    assert client.get_commit(f"{key}.gone").empty
    assert client.get_metadata(f"{key}.a")["comment"] == "release 7"


def test_apply_after_a_key_moved_is_a_conflict_and_writes_nothing(server, client, key, tmp_path):
    commit(client, f"{key}.a", "1")
    folder = files(tmp_path / "c", {f"{key}.a": "2", f"{key}.new": "n"})
    plan = tmp_path / "p"
    assert rainer("plan", str(folder), "--out", str(plan), url=server.diary_url).code == 2
    commit(client, f"{key}.a", "someone else", author="bob")
    run = rainer("apply", str(plan), url=server.diary_url)
    assert run.code == EXIT_CONFLICT
    assert run.stderr == (
        f"rainer apply: conflict: 1 key(s) moved since the plan: '{key}.a' is at version 2, the "
        "plan expected version 1. Nothing was written; plan again.\n"
    )
    with pytest.raises(RainerNotFoundError):
        client.get_metadata(f"{key}.new")
    assert client.get_value(f"{key}.a") == b"someone else"


def test_apply_files_with_yes_or_after_asking(server, client, key, tmp_path):
    folder = files(tmp_path / "c", {f"{key}.a": "a"})
    declined = rainer("apply", str(folder), url=server.diary_url, stdin=b"no\n")
    assert declined.code == 5 and "not confirmed: the answer was no" in declined.stderr
    with pytest.raises(RainerNotFoundError):
        client.get_metadata(f"{key}.a")
    run = rainer("apply", str(folder), "--yes", "--json", url=server.diary_url)
    assert run.code == 0, run.stderr
    # --json: standard output is JSON lines only (the plan is on standard error), for jq.
    assert [json.loads(line)["key"] for line in run.out.splitlines()] == [f"{key}.a"]
    assert "Plan: 1 new" in run.stderr
    again = rainer("apply", str(folder), "--yes", url=server.diary_url)
    assert again.code == 0 and again.out.endswith("Nothing to apply.\n")
    quiet = rainer("apply", str(folder), "--yes", "--json", url=server.diary_url)
    assert quiet.code == 0 and quiet.out == "" and "Nothing to apply." in quiet.stderr


def test_a_plan_is_applied_only_where_it_was_made(server, key, tmp_path):
    folder = files(tmp_path / "c", {f"{key}.a": "a"})
    plan = tmp_path / "p"
    rainer("plan", str(folder), "--out", str(plan), url=server.diary_url)
    other = server.diary_url.replace("127.0.0.1", "localhost")
    run = rainer("apply", str(plan), url=other)
    assert run.code == 1 and "the plan was made for" in run.stderr


# -- export and import --------------------------------------------------------------------------


def history_of(storage) -> list[Commit]:
    return [
        found
        for info in sorted(storage.head_infos(), key=lambda info: info.key)
        for found in reversed(storage.history(info.key))
    ]


def fill(storage) -> None:
    """A store with histories, a tombstone, a binary payload, a comment with a line break
    (possible in a database, though not over HTTP) and mtimes in two zones."""
    when = parse_mtime("2014-02-11T14:01:28.839-08:00")
    for made in [
        Commit("web.json", 1, b'{"workers": 1}', "alice", "first", when),
        Commit("web.json", 2, b'{"workers": 2}', "bob", "more\nworkers", when),
        Commit("web.json", 3, None, "carol", "gone", parse_mtime("2020-01-01T00:00:00.002Z")),
        Commit("bin", 1, b"\x00\xff\n", "dave", "", when),
        Commit("ünï", 1, "ä".encode(), "eve", "", when),
        Commit("app.x", 1, b"x1", "ann", "", when),
        Commit("app.x", 2, b"x2", "ann", "", when),
    ]:
        storage.save(made)


@pytest.mark.postgresql
def test_export_history_from_sqlite_into_postgresql_and_again(postgres_server, tmp_path):
    source_url = f"sqlite:///{tmp_path / 'source.db'}"
    source = SqlStorage(source_url)
    source.start()
    fill(source)
    expected = history_of(source)
    source.stop()
    target_url = postgres_server.create_database("cli_import")
    exported = rainer("export", "--history", "--database", source_url, url=None)
    assert exported.code == 0, exported.stderr
    assert len(exported.out.splitlines()) == len(expected)
    imported = rainer("import", "--database", target_url, url=None, stdin=exported.stdout)
    assert imported.code == 0, imported.stderr
    assert imported.out == "Imported 7 commits of 4 keys (0 were there already).\n"
    target = SqlStorage(target_url)
    target.start()
    try:
        assert history_of(target) == expected
        assert [c.mtime.isoformat() for c in history_of(target)] == [
            c.mtime.isoformat() for c in expected
        ]  # the zones too
        # Again: nothing to do. A different history: refused, nothing written.
        again = rainer("import", "--database", target_url, url=None, stdin=exported.stdout)
        assert again.out == "Imported 0 commits of 4 keys (7 were there already).\n"
        changed = exported.stdout.replace(b'"bob"', b'"mallory"') + (
            b'{"key": "new", "version": 1, "author": "a", "comment": "", '
            b'"mtime": "2024-01-01T00:00:00.000Z", "empty": false, "payload_utf8": "n"}\n'
        )
        refused = rainer("import", "--database", target_url, url=None, stdin=changed)
        assert refused.code == 1
        assert "'web.json' version 2 is another commit in the target" in refused.stderr
        assert target.get("new") is None and history_of(target) == expected
        # The same lines through a file, and export from PostgreSQL gives them back.
        round_trip = rainer("export", "--history", "--database", target_url, url=None)
        assert round_trip.stdout == exported.stdout
    finally:
        target.stop()


def test_import_into_a_server_over_http_keeps_authors_and_times(tmp_path):
    source_url = f"sqlite:///{tmp_path / 'source.db'}"
    source = SqlStorage(source_url)
    source.start()
    fill(source)
    source.stop()
    lines = tmp_path / "export.jsonl"
    exported = rainer("export", "--history", "--prefix", "app.", "--database", source_url, url=None)
    lines.write_bytes(exported.stdout)
    with RainerServer(["--database", f"sqlite:///{tmp_path / 'target.db'}"]) as target:
        run = rainer("import", str(lines), url=target.diary_url)
        assert run.code == 0, run.stderr
        client = RainerClient(target.diary_url)
        assert [(c.version, c.author, c.mtime) for c in client.history("app.x")] == [
            (2, "ann", "2014-02-11T14:01:28.839-08:00"),
            (1, "ann", "2014-02-11T14:01:28.839-08:00"),
        ]
        assert list(client.list()) == ["app.x"]
        # The server's own export gives the same lines.
        served = rainer("export", "--history", url=target.diary_url)
        assert served.stdout == exported.stdout
        # A version the target holds already, as another commit: refused, nothing written.
        more = (
            b'{"key": "app.x", "version": 3, "author": "ann", "comment": "", '
            b'"mtime": "2024-01-01T00:00:00.000Z", "empty": false, "payload_utf8": "x3"}\n'
        )
        client.post_commit({"key": "app.x", "version": 3, "author": "zed"}, "raced")
        refused = rainer("import", url=target.diary_url, stdin=lines.read_bytes() + more)
        assert refused.code == 1 and "another commit in the target" in refused.stderr


def test_export_heads_and_what_import_says_of_them(server, client, key, tmp_path):
    commit(client, f"{key}.a", "1")
    commit(client, f"{key}.a", "2")
    commit(client, f"{key}.b", "only")
    heads = rainer("export", "--prefix", f"{key}.", url=server.diary_url)
    assert heads.code == 0, heads.stderr
    lines = [json.loads(line) for line in heads.out.splitlines()]
    assert [(line["key"], line["version"], line["payload_utf8"]) for line in lines] == [
        (f"{key}.a", 2, "2"),
        (f"{key}.b", 1, "only"),
    ]
    target = f"sqlite:///{tmp_path / 't.db'}"
    refused = rainer("import", "--database", target, url=None, stdin=heads.stdout)
    assert refused.code == 1
    assert f"'{key}.a': the input starts at version 2, but the target has no commits" in (
        refused.stderr
    )
    assert "export with --history" in refused.stderr
    written = SqlStorage(target)
    written.start()
    assert written.commit_count() == 0
    written.stop()
    broken = rainer("import", "--database", target, url=None, stdin=b'{"key": "k"}\n')
    assert broken.code == 1 and "line 1: no 'version'" in broken.stderr


def test_export_reads_a_sqlite_file_only_when_no_server_holds_it(tmp_path):
    database = tmp_path / "held.db"
    with RainerServer(["--database", f"sqlite:///{database}"]):
        run = rainer("export", "--database", f"sqlite:///{database}", url=None)
        assert run.code == 1 and run.stderr.count("\n") == 1, run.stderr
