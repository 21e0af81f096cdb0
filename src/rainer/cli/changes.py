"""``rainer plan`` and ``rainer apply``: many keys changed together, shown first, committed at
once as one change set (``POST /diary``), or not at all.

A file's name is its key (every file directly in a folder, names starting with ``.`` left out),
or a manifest maps keys to files. ``plan`` compares them with the heads read in one request and
prints what would change; ``--out`` keeps that as a plan file holding each change with the
version it expects. ``apply`` commits exactly that: a key that moved since is a conflict, and
nothing is written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

from rainer import commit as commits
from rainer.cli import common
from rainer.cli.common import EXIT_CONFLICT, EXIT_ERROR, CommandError, command
from rainer.cli.diffs import GREEN, RED, YELLOW, paint, path_diff, structured, unified_diff
from rainer.cli.prompt import confirm
from rainer.client import RainerClient, RainerCommit, payload_from_json, payload_json
from rainer.errors import BadRequestError, ChangeSetConflictError

EXIT_CHANGES = 2
PLAN_FORMAT = "rainer-plan"
PLAN_FORMAT_VERSION = 1
DEFAULT_COMMENT = "rainer apply"

_MARKS = {"new": ("+", GREEN), "change": ("~", YELLOW), "delete": ("-", RED), "same": ("=", "")}


@dataclass(frozen=True)
class Wanted:
    """What a key should hold: a file's bytes (``source`` names the file)."""

    key: str
    payload: bytes
    source: str


@dataclass(frozen=True)
class Step:
    """What the plan does to one key: ``new``, ``change``, ``delete`` or ``same``. ``head`` is
    the key's newest commit when the plan was made; ``payload`` the bytes it gets (None to
    delete it)."""

    key: str
    action: str
    head: RainerCommit | None
    payload: bytes | None
    source: str = ""

    @property
    def version(self) -> int:
        """The version this step commits: the head it expects, plus one."""
        return (self.head.version if self.head is not None else 0) + 1

    def change(self) -> dict[str, Any]:
        """The step as a change of ``RainerClient.commit_changes``."""
        if self.payload is None:
            return {"key": self.key, "version": self.version, "empty": True}
        return {"key": self.key, "version": self.version, "payload": self.payload}


def register(subparsers: common.Subparsers) -> None:
    parent = common.global_parent()
    parser = subparsers.add_parser(
        "plan",
        parents=[parent],
        help="show what committing files would change; exit 2 when something would",
        description="Compare files with the keys' newest commits (read in one request) and print, "
        "per key, whether it is new, changed (with a diff, and a diff by path for JSON and YAML), "
        "unchanged or to delete. Exit status: 0 no changes, 2 changes, 1 an error (a usage error "
        "included, so that 2 always means changes), 3 a conflict, 4 refused by the server.",
    )
    parser.usage_status = EXIT_ERROR
    parser.set_defaults(usage_status=EXIT_ERROR)
    _add_source_options(parser)
    parser.add_argument(
        "--out",
        metavar="PLAN",
        help="write the plan to this file, for 'rainer apply PLAN' (it holds the payloads: "
        "only you may read it)",
    )
    parser.add_argument("-m", "--message", help="the comment 'rainer apply PLAN' will commit with")
    parser.set_defaults(handler=plan)

    parser = subparsers.add_parser(
        "apply",
        parents=[parent],
        help="commit a plan, or files, as one change set: all or nothing",
        description="Commit the change set of a plan file made by 'rainer plan --out', exactly: "
        "if a key moved since, nothing is written and the exit status is 3. Or, given files, "
        "plan and commit them in one go (asking first, unless --yes).",
    )
    common.add_author_option(parser)
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PLAN|PATH",
        help="a plan file, or files and folders as for 'rainer plan'",
    )
    parser.add_argument(
        "--manifest",
        action="append",
        default=[],
        metavar="FILE",
        help="as for 'rainer plan'",
    )
    parser.add_argument("--prefix", help="as for 'rainer plan'")
    parser.add_argument("--delete-missing", action="store_true", help="as for 'rainer plan'")
    parser.add_argument("-y", "--yes", action="store_true", help="commit files without asking")
    parser.add_argument(
        "-m", "--message", help=f"the comment (default: the plan's, else {DEFAULT_COMMENT!r})"
    )
    parser.add_argument("--json", action="store_true", help="print each new commit as JSON")
    parser.set_defaults(handler=apply)


def _add_source_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="a file (its name is its key) or a folder (each file directly in it)",
    )
    parser.add_argument(
        "--manifest",
        action="append",
        default=[],
        metavar="FILE",
        help="a YAML or JSON mapping of keys to files (paths relative to the manifest); "
        "may be given more than once",
    )
    parser.add_argument(
        "--prefix",
        help="every planned key must start with this; the scope of --delete-missing",
    )
    parser.add_argument(
        "--delete-missing",
        action="store_true",
        help="uncommit (tombstone) the keys under --prefix that no file names",
    )


# -- what the files say ------------------------------------------------------------------------


def wanted_from(paths: Iterable[str], manifests: Iterable[str]) -> dict[str, Wanted]:
    """Key → what it should hold, from files, folders and manifests; CommandError for a key
    named twice, a key that cannot exist, or a file that cannot be read."""
    found: dict[str, Wanted] = {}

    def add(key: str, path: Path) -> None:
        try:
            commits.validate_key(key, new=True)
        except BadRequestError as exc:
            raise CommandError(f"{path}: not a key: {exc}") from None
        if key in found:
            raise CommandError(f"key {key!r} is named twice: by {found[key].source} and {path}")
        try:
            found[key] = Wanted(key, path.read_bytes(), str(path))
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror or exc}") from None

    for text in paths:
        path = Path(text)
        if path.is_dir():
            for entry in sorted(path.iterdir()):
                if entry.name.startswith("."):
                    continue
                if entry.is_dir():
                    raise CommandError(
                        f"{entry} is a folder: a folder's files are its keys, not its folders' "
                        "(name them in a manifest)"
                    )
                add(entry.name, entry)
        else:
            add(path.name, path)
    for manifest in manifests:
        for key, path in _manifest(Path(manifest)).items():
            add(key, path)
    return found


def _manifest(path: Path) -> dict[str, Path]:
    """A manifest's keys and their files (relative paths are from the manifest's folder)."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))  # JSON is YAML too
    except OSError as exc:
        raise CommandError(f"cannot read the manifest {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = " ".join(str(exc).split())
        raise CommandError(f"the manifest {path} is not YAML or JSON: {reason}") from None
    if not isinstance(document, dict) or not all(
        isinstance(key, str) and isinstance(file, str) for key, file in document.items()
    ):
        raise CommandError(f"the manifest {path} must map keys to file names, as 'key: file'")
    return {key: path.parent / file for key, file in document.items()}


# -- planning ----------------------------------------------------------------------------------


def make_plan(
    client: RainerClient, wanted: dict[str, Wanted], prefix: str | None, delete_missing: bool
) -> list[Step]:
    """Each key's step, against the heads read in one request (a request per thousand keys
    when there are more), keys in order."""
    if delete_missing and prefix is None:
        raise CommandError("--delete-missing needs --prefix: the keys it may uncommit")
    if prefix is not None:
        outside = sorted(key for key in wanted if not key.startswith(prefix))
        if outside:
            raise CommandError(f"{outside[0]!r} is outside the prefix {prefix!r}")
    if delete_missing:
        heads = client.list_full(all=True, prefix=prefix)
    else:
        heads = client.list_full(all=True, keys=list(wanted)) if wanted else {}
    steps = []
    for key in sorted(set(wanted) | set(heads)):
        head = heads.get(key)
        if key not in wanted:
            if head is not None and not head.empty:
                steps.append(Step(key, "delete", head, None, "no file names it"))
            continue
        want = wanted[key]
        if head is None or head.empty:
            steps.append(Step(key, "new", head, want.payload, want.source))
        elif head.payload == want.payload:
            steps.append(Step(key, "same", head, want.payload, want.source))
        else:
            steps.append(Step(key, "change", head, want.payload, want.source))
    return steps


def print_plan(steps: list[Step], color: bool, out: TextIO = sys.stdout) -> None:
    for step in steps:
        mark, tint = _MARKS[step.action]
        head = step.head.version if step.head is not None else None
        if step.action == "new":
            what = f"new (version {step.version})"
        elif step.action == "change":
            what = f"changed (version {head} → {step.version})"
        elif step.action == "delete":
            what = f"to delete (version {head} → {step.version}, an empty commit)"
        else:
            what = f"unchanged (version {head})"
        out.write(paint(f"{mark} {step.key}", tint, color and bool(tint)) + f": {what}\n")
        if step.action in ("new", "change"):
            old = step.head.value if step.head is not None else None
            before, after = structured(old), structured(step.payload)
            if step.action == "change" and before is not None and after is not None:
                for line in path_diff(before, after, color):
                    out.write(f"    {line}\n")
            label = f"{step.key} {head}" if head else f"{step.key} (none)"
            diff = unified_diff(old, step.payload, label, f"{step.key} ({step.source})", color)
            out.write("".join(f"    {line}\n" for line in diff.splitlines()))
    counts = {action: sum(step.action == action for step in steps) for action in _MARKS}
    out.write(
        f"Plan: {counts['new']} new, {counts['change']} to change, {counts['delete']} to "
        f"delete, {counts['same']} unchanged.\n"
    )


# -- the plan file -----------------------------------------------------------------------------


def write_plan(path: str, client: RainerClient, steps: list[Step], comment: str | None) -> None:
    """The plan file: the server's URL, the comment, and every change with its version; only
    its owner may read it, as it holds the payloads."""
    changes = []
    for step in steps:
        if step.action == "same":
            continue
        item: dict[str, Any] = {"key": step.key, "version": step.version, "action": step.action}
        if step.payload is None:
            item["empty"] = True
        else:
            item.update(payload_json(step.payload))
        changes.append(item)
    document = {
        "format": PLAN_FORMAT,
        "format_version": PLAN_FORMAT_VERSION,
        "url": client.url,
        "created": commits.format_mtime(commits.now()),
        "comment": comment,
        "changes": changes,
    }
    data = json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8") + b"\n"
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
    except OSError as exc:
        raise CommandError(f"cannot write the plan {path}: {exc.strerror or exc}") from None


def read_plan(path: str) -> dict[str, Any] | None:
    """The plan in the file at ``path``; None when the file is not a plan (but, say, a file
    to commit). CommandError for a plan that is damaged."""
    try:
        with open(path, "rb") as file:
            start = file.read(64)
            if not start.lstrip().startswith(b"{") or PLAN_FORMAT.encode() not in (
                start + file.read(256)
            ):
                return None
            file.seek(0)
            document = json.loads(file.read())
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or document.get("format") != PLAN_FORMAT:
        return None
    if document.get("format_version") != PLAN_FORMAT_VERSION:
        raise CommandError(f"{path}: a plan of another format version; plan again")
    changes = document.get("changes")
    if not isinstance(changes, list) or not isinstance(document.get("url"), str):
        raise CommandError(f"{path}: a damaged plan (no url or changes); plan again")
    return document


def _changes_of(path: str, document: dict[str, Any]) -> list[dict[str, Any]]:
    """The plan's changes as ``commit_changes`` takes them."""
    found = []
    for item in document["changes"]:
        try:
            change: dict[str, Any] = {"key": item["key"], "version": item["version"]}
            if item.get("empty"):
                change["empty"] = True
            else:
                change["payload"] = payload_from_json(item)
        except (KeyError, TypeError, AttributeError, ValueError):
            raise CommandError(f"{path}: a damaged change in the plan: {item!r:.80}") from None
        found.append(change)
    return found


# -- the commands ------------------------------------------------------------------------------


@command
def plan(args: argparse.Namespace) -> int:
    if not args.paths and not args.manifest:
        raise CommandError("name files, folders or --manifest FILE to plan")
    client = common.client_from(args)
    steps = make_plan(
        client, wanted_from(args.paths, args.manifest), args.prefix, args.delete_missing
    )
    print_plan(steps, common.use_color(args))
    if args.out:
        write_plan(args.out, client, steps, args.message)
    return EXIT_CHANGES if any(step.action != "same" for step in steps) else common.EXIT_OK


@command
def apply(args: argparse.Namespace) -> int:
    client = common.client_from(args)
    document = read_plan(args.paths[0]) if len(args.paths) == 1 else None
    if document is not None:
        if args.manifest or args.prefix or args.delete_missing:
            raise CommandError(
                "a plan is applied as it is: --manifest, --prefix and "
                "--delete-missing belong to 'rainer plan'"
            )
        if document["url"] != client.url:
            raise CommandError(
                f"the plan was made for {document['url']}, not {client.url}; plan again there"
            )
        changes = _changes_of(args.paths[0], document)
        comment = args.message or document.get("comment") or DEFAULT_COMMENT
    else:
        steps = make_plan(
            client, wanted_from(args.paths, args.manifest), args.prefix, args.delete_missing
        )
        # With --json, standard output is JSON lines only: the plan goes to standard error.
        out = sys.stderr if args.json else sys.stdout
        print_plan(steps, common.use_color(args, out), out)
        changes = [step.change() for step in steps if step.action != "same"]
        if changes and not args.yes:
            confirm(f"Commit these {len(changes)} changes to {client.url} (yes/no)? ")
        comment = args.message or DEFAULT_COMMENT
    if not changes:
        print("Nothing to apply.", file=sys.stderr if args.json else sys.stdout)
        return common.EXIT_OK
    try:
        metas = client.commit_changes(changes, common.author_from(args, client), comment)
    except ChangeSetConflictError as exc:
        raise CommandError(_moved(exc), EXIT_CONFLICT) from None
    for meta in metas:
        if args.json:
            common.print_json(meta)
        else:
            state = " (empty)" if meta.get("empty") else ""
            print(f"committed {meta['key']} version {meta['version']}{state}")
    if not args.json:
        print(f"Applied {len(metas)} changes as one change set.")
    return common.EXIT_OK


def _moved(error: ChangeSetConflictError) -> str:
    """The keys that moved since the plan, in one line."""
    parts = []
    for conflict in error.conflicts:
        now, then = conflict.expected_version - 1, conflict.provided_version - 1
        expected = f"version {then}" if then else "no commits"
        parts.append(f"{conflict.key!r} is at version {now}, the plan expected {expected}")
    return (
        f"{len(parts)} key(s) moved since the plan: {'; '.join(parts)}. Nothing was written; "
        "plan again."
    )
