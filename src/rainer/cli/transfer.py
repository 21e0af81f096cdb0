"""``rainer export`` and ``rainer import``: a store, or the keys under a prefix, as JSON lines,
one commit a line, keeping versions, authors, comments and times::

    {"key": "web.json", "version": 3, "author": "alice", "comment": "more workers",
     "mtime": "2026-11-28T02:08:49.711Z", "empty": false, "payload_utf8": "..."}

(``payload_base64`` for a payload that is not UTF-8; none for an empty commit.) Either end is a
server (``--url``, ``RAINER_URL``) or a database (``--database URL``), so a migration from SQLite
to PostgreSQL is ``rainer export --history --database sqlite:///rainer.db | rainer import
--database postgresql://...``.

Import checks everything before it writes anything: each key's commits must continue the
target's history (versions the target has already must be the very same commits, and are
skipped, so an import can be run again), and the first version it writes must be the target's
newest plus one. Any difference refuses the whole import.
"""

from __future__ import annotations

import argparse
import binascii
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from typing import IO, Any

from rainer.cli import common
from rainer.cli.common import EXIT_CONFLICT, CommandError, command
from rainer.client import payload_from_json, payload_json
from rainer.commit import Commit, parse_mtime, validate_key
from rainer.errors import BadRequestError, CommitOrderingError
from rainer.storage import Storage, open_storage
from rainer.storage.http import HttpStorage, to_commit

#: Commits written per save_batch call (one transaction, one sync), and their most bytes.
IMPORT_BATCH = 1000
IMPORT_BATCH_BYTES = 16 * 1024 * 1024
#: Heads fetched per request when exporting the heads of a server.
EXPORT_HEADS_BATCH = 100
#: Differences named in a refusal, at most.
SHOWN_PROBLEMS = 5


def register(subparsers: common.Subparsers) -> None:
    parent = common.global_parent()
    parser = subparsers.add_parser(
        "export",
        parents=[parent],
        help="print a store, or the keys under a prefix, as JSON lines",
        description="Print each key's newest commit (with --history, every commit, oldest "
        "first), one JSON line each, keeping versions, authors, comments and times: for "
        "'rainer import', backups, or jq. Reads the server at --url, or a database.",
    )
    parser.add_argument("--prefix", help="only keys that start with this")
    parser.add_argument("--history", action="store_true", help="every commit, not just the newest")
    _add_database_options(parser, "read this database instead of a server")
    parser.set_defaults(handler=export)

    parser = subparsers.add_parser(
        "import",
        parents=[parent],
        help="write the JSON lines of 'rainer export' into a server or a database",
        description="Write the commits of 'rainer export' (from FILE or stdin) with their "
        "versions, authors, comments and times into the server at --url, or a database. "
        "Everything is checked first: versions the target has must be the same commits (they "
        "are skipped), and each key must continue where the target stands; any difference "
        "refuses the whole import, and nothing is written.",
    )
    parser.add_argument("file", nargs="?", metavar="FILE", help="default: stdin")
    parser.add_argument("--prefix", help="only keys that start with this")
    _add_database_options(parser, "write into this database instead of a server")
    parser.set_defaults(handler=import_)


def _add_database_options(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--database",
        metavar="URL",
        help=f"{what}: sqlite:///PATH, postgresql://USER:PASSWORD@HOST/DB, "
        "mysql://USER:PASSWORD@HOST/DB or http(s)://HOST:PORT/diary (not $RAINER_DATABASE: "
        "that is the server's)",
    )
    parser.add_argument("--table", default="rainer", help="the database's table (%(default)s)")


def _storage(args: argparse.Namespace) -> Storage:
    """The database of --database, else the server of --url as a storage, started."""
    url = args.database
    if url is None or url.startswith(("http://", "https://")):
        storage: Storage = HttpStorage(url or "", client=common.client_from(args, url))
    else:
        storage = open_storage(url, args.table)
    storage.start()
    return storage


# -- export ------------------------------------------------------------------------------------


def commit_line(commit: Commit) -> str:
    """One commit as a JSON line (without its newline)."""
    line: dict[str, Any] = commit.meta()
    if commit.payload is not None:
        line.update(payload_json(commit.payload))
    return json.dumps(line, ensure_ascii=False)


def _keys(storage: Storage, prefix: str | None) -> list[str]:
    if isinstance(storage, HttpStorage):  # the server filters, and sends no payloads
        return sorted(storage.client.list(all=True, prefix=prefix))
    infos = storage.head_infos(include_empty=True)
    return sorted(info.key for info in infos if prefix is None or info.key.startswith(prefix))


def _heads(storage: Storage, keys: list[str]) -> Iterator[Commit]:
    if isinstance(storage, HttpStorage):
        for start in range(0, len(keys), EXPORT_HEADS_BATCH):
            found = storage.client.list_full(
                all=True, keys=keys[start : start + EXPORT_HEADS_BATCH]
            )
            for key in sorted(found):
                yield to_commit(found[key])
        return
    for key in keys:
        head = storage.get(key)
        if head is not None:
            yield head


@command
def export(args: argparse.Namespace) -> int:
    storage = _storage(args)
    try:
        keys = _keys(storage, args.prefix)
        out = sys.stdout
        if args.history:
            for key in keys:
                for commit in reversed(storage.history(key)):
                    out.write(commit_line(commit) + "\n")
        else:
            for commit in _heads(storage, keys):
                out.write(commit_line(commit) + "\n")
        out.flush()
    finally:
        storage.stop()
    return common.EXIT_OK


# -- import ------------------------------------------------------------------------------------


def parse_line(text: str, number: int) -> Commit:
    """A commit from a line of ``rainer export``; CommandError naming the line otherwise."""
    try:
        line = json.loads(text)
        if not isinstance(line, dict):
            raise ValueError("not a JSON object")
        key = validate_key(line["key"], new=True)
        version = line["version"]
        if type(version) is not int or version < 1:
            raise ValueError("'version' must be a positive integer")
        payload = None if line.get("empty", False) is True else payload_from_json(line)
        return Commit(
            key,
            version,
            payload,
            str(line["author"]),
            str(line["comment"]),
            parse_mtime(str(line["mtime"])),
        )
    except KeyError as exc:
        raise CommandError(f"line {number}: no {exc.args[0]!r}") from None
    except (BadRequestError, ValueError, TypeError, binascii.Error) as exc:
        raise CommandError(f"line {number}: not a commit of 'rainer export': {exc}") from None


def _commits(file: IO[bytes], prefix: str | None) -> Iterator[Commit]:
    for number, raw in enumerate(file, start=1):
        text = raw.decode("utf-8", "replace").strip()
        if text:
            commit = parse_line(text, number)
            if prefix is None or commit.key.startswith(prefix):
                yield commit


class _Check:
    """The first pass of an import: does each key's input continue the target's history?
    Keeps one number per key (where the target stands) and one key's history at a time."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.target: dict[str, int] = {}  # key -> the target's newest version
        self.last: dict[str, int] = {}  # key -> the last version the input gave
        self.problems: list[str] = []
        self.new = 0
        self.known = 0
        self._history_key: str | None = None
        self._history: dict[int, Commit] = {}

    def see(self, commit: Commit) -> None:
        key, version = commit.key, commit.version
        if key not in self.target:
            self.target[key] = self.storage.head_version(key) or 0
        last = self.last.get(key)
        if last is not None and version != last + 1:
            self.problem(f"{key!r}: version {version} follows version {last} in the input")
            return
        self.last[key] = version
        head = self.target[key]
        if version > head:
            if last is None and version != head + 1:
                where = f"is at version {head}" if head else "has no commits"
                self.problem(
                    f"{key!r}: the input starts at version {version}, but the target {where} "
                    "(export with --history to move whole histories)"
                )
            else:
                self.new += 1
            return
        theirs = self._target_commit(key, version)
        if theirs != commit:
            self.problem(f"{key!r} version {version} is another commit in the target")
        else:
            self.known += 1

    def problem(self, text: str) -> None:
        self.problems.append(text)

    def _target_commit(self, key: str, version: int) -> Commit | None:
        if self._history_key != key:  # export groups a key's lines: one history at a time
            self._history = {commit.version: commit for commit in self.storage.history(key)}
            self._history_key = key
        return self._history.get(version)


def _spooled(path: str | None) -> IO[bytes]:
    """The input, readable twice: the file, or stdin copied to a temporary file."""
    if path is not None:
        try:
            return open(path, "rb")  # the caller closes it
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror or exc}") from None
    spool = tempfile.TemporaryFile()  # noqa: SIM115  (the caller closes it)
    shutil.copyfileobj(sys.stdin.buffer, spool)
    spool.seek(0)
    return spool


@command
def import_(args: argparse.Namespace) -> int:
    storage = _storage(args)
    try:
        with _spooled(args.file) as source:
            check = _Check(storage)
            for commit in _commits(source, args.prefix):
                check.see(commit)
            if check.problems:
                shown = "; ".join(check.problems[:SHOWN_PROBLEMS])
                more = len(check.problems) - SHOWN_PROBLEMS
                raise CommandError(
                    f"refusing to import; nothing was written: {shown}"
                    + (f"; and {more} more" if more > 0 else "")
                )
            source.seek(0)
            written = _write(
                storage,
                (c for c in _commits(source, args.prefix) if c.version > check.target[c.key]),
            )
    finally:
        storage.stop()
    print(
        f"Imported {written} commits of {len(check.target)} keys "
        f"({check.known} were there already)."
    )
    return common.EXIT_OK


def _write(storage: Storage, commits: Iterator[Commit]) -> int:
    """Save ``commits`` in batches; stop at the first one refused, saying how far it got."""
    written = 0
    batch: list[Commit] = []
    size = 0

    def flush() -> None:
        nonlocal written, batch, size
        results = storage.save_batch(batch)
        written += results.count(None)
        failed = [(c, error) for c, error in zip(batch, results, strict=True) if error is not None]
        if failed:
            commit, error = failed[0]
            code = EXIT_CONFLICT if isinstance(error, CommitOrderingError) else 1
            raise CommandError(
                f"{commit.key!r} version {commit.version} was not written: {error}; "
                f"{written} commits were (running the import again goes on from there)",
                code,
            )
        batch, size = [], 0

    for commit in commits:
        batch.append(commit)
        size += len(commit.payload or b"")
        if len(batch) >= IMPORT_BATCH or size >= IMPORT_BATCH_BYTES:
            flush()
    if batch:
        flush()
    return written
