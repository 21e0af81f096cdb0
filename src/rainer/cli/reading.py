"""Read commands: list, show, log, diff, prepare and whoami."""

from __future__ import annotations

import argparse
import json
import sys

import yaml

from rainer.cli import common, pager
from rainer.cli.common import CommandError, command
from rainer.cli.diffs import YELLOW, paint, unified_diff
from rainer.cli.prepared import PreparedCommit, render
from rainer.cli.versions import starting_point
from rainer.client import METADATA_FIELDS
from rainer.errors import NotFoundError

#: ``diff --exit-code``: the versions differ. An error then exits 2, as diff(1)'s "trouble",
#: so that 1 always means differences.
EXIT_DIFFERENCES = 1
EXIT_DIFF_TROUBLE = 2

SHOW_FORMATS = ("raw", "json", "yaml")


def register(subparsers: common.Subparsers) -> None:
    parent = common.global_parent()

    parser = subparsers.add_parser(
        "list", parents=[parent], help="list keys and their newest versions"
    )
    parser.add_argument(
        "prefix", nargs="?", metavar="PREFIX", help="only keys that start with this"
    )
    parser.add_argument("-A", "--all", action="store_true", help="include uncommitted keys")
    parser.add_argument("--json", action="store_true", help="key -> metadata as JSON")
    parser.set_defaults(handler=list_keys)

    parser = subparsers.add_parser(
        "show",
        parents=[parent],
        help="print a payload, or its metadata",
        description="Print a commit's payload byte for byte, or its metadata. An uncommitted "
        "(empty) commit has no payload: showing it is an error, like a missing key; --meta and "
        "--field still describe it.",
    )
    parser.add_argument("key", metavar="KEY", help="the key to show")
    parser.add_argument(
        "version",
        metavar="VERSION",
        type=common.version_number,
        nargs="?",
        help="this version (default: the newest)",
    )
    what = parser.add_mutually_exclusive_group()
    what.add_argument(
        "--format",
        choices=SHOW_FORMATS,
        default="raw",
        help="raw: the payload byte for byte (the default); json or yaml: the metadata and the "
        "payload (payload_utf8, or payload_base64) as one document",
    )
    what.add_argument("--meta", action="store_true", help="print the metadata as JSON instead")
    what.add_argument(
        "--field",
        choices=METADATA_FIELDS,
        metavar="NAME",
        help=f"print one field of the metadata: {', '.join(METADATA_FIELDS)}",
    )
    parser.set_defaults(handler=show)

    parser = subparsers.add_parser(
        "log", parents=[parent], help="history of a key, with a diff per version"
    )
    parser.add_argument("key", metavar="KEY", help="the key whose history to show")
    parser.add_argument(
        "version",
        metavar="VERSION",
        type=common.version_number,
        nargs="?",
        help="start here and go back (default: the newest)",
    )
    parser.add_argument(
        "-n",
        "--max-count",
        type=common.count,
        metavar="N",
        help="show the newest N versions only (from VERSION down, when given)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print each version's metadata as one line of JSON, newest first, without diffs",
    )
    parser.add_argument(
        "--payload",
        action="store_true",
        help="with --json, add each payload (payload_utf8, or payload_base64)",
    )
    parser.add_argument("--no-pager", action="store_true", help="do not page the output")
    parser.set_defaults(handler=log)

    parser = subparsers.add_parser("diff", parents=[parent], help="diff two versions of a key")
    parser.add_argument("key", metavar="KEY", help="the key to compare versions of")
    parser.add_argument("version1", metavar="V1", type=common.version_number, help="the older side")
    parser.add_argument(
        "version2",
        metavar="V2",
        type=common.version_number,
        nargs="?",
        help="the newer side (default: the newest)",
    )
    parser.add_argument(
        "--exit-code",
        action="store_true",
        help="exit 1 when the versions differ and 0 when they do not, as git diff --exit-code "
        "(an error then exits 2)",
    )
    parser.set_defaults(handler=diff)

    parser = subparsers.add_parser(
        "prepare", parents=[parent], help="print a prepared commit of the next version"
    )
    common.add_author_option(parser)
    parser.add_argument("key", metavar="KEY", help="the key to prepare a commit of")
    parser.add_argument(
        "version",
        metavar="VERSION",
        type=common.version_number,
        nargs="?",
        help="start from this version's payload",
    )
    parser.set_defaults(handler=prepare)

    parser = subparsers.add_parser(
        "whoami",
        parents=[parent],
        help="who the server takes your credentials for, and what they may do",
        description="Print the principal the server proves from your credentials (RAINER_TOKEN, "
        "--token-file, a client certificate, or user:token@ in the URL), its roles and the key "
        "patterns it may read and write.",
    )
    parser.add_argument("--json", action="store_true", help="the server's answer as JSON")
    parser.set_defaults(handler=whoami)


@command
def list_keys(args: argparse.Namespace) -> int:
    client = common.client_from(args)
    found = client.list(all=args.all, prefix=args.prefix or None)
    if args.json:
        common.print_json(found, pretty=True)
        return common.EXIT_OK
    for key in sorted(found):
        version = found[key]["version"]
        print(f"{key}\t{version}\t{client.commit_uri(key, version)}")
    return common.EXIT_OK


@command
def show(args: argparse.Namespace) -> int:
    client = common.client_from(args)
    if args.meta or args.field:
        meta = client.get_metadata(args.key, args.version)
        if args.meta:
            common.print_json(meta, pretty=True)
        else:
            value = meta.get(args.field)
            # As `jq -r` prints it: a string as it is, anything else in JSON (true, 3).
            print(value if isinstance(value, str) else json.dumps(value))
        return common.EXIT_OK
    commit = client.get_commit(args.key, args.version)
    if commit.value is None:
        # Not an empty output and status 0, which a script cannot tell from an empty payload.
        raise CommandError(
            f"version {commit.version} of {args.key!r} is an empty commit: the key was "
            f"uncommitted, and has no payload there (see 'rainer log {args.key}')"
        )
    if args.format == "raw":
        common.write_bytes(commit.value)
        return common.EXIT_OK
    document = common.with_payload(commit.meta, commit.value)
    if args.format == "json":
        common.print_json(document, pretty=True)
    else:
        sys.stdout.write(
            yaml.dump(document, Dumper=_BlockDumper, allow_unicode=True, sort_keys=False)
        )
    return common.EXIT_OK


class _BlockDumper(yaml.SafeDumper):
    """YAML whose multi-line strings (a payload) are literal blocks, readable as they are."""


def _represent_text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    # PyYAML falls back to a quoted string where a block cannot hold the text exactly.
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_BlockDumper.add_representer(str, _represent_text)


@command
def log(args: argparse.Namespace) -> int:
    client = common.client_from(args)
    before = None if args.version is None else args.version + 1
    # The whole history (or the newest N) with payloads in one request, newest first; one more
    # than asked, for the diff of the oldest shown.
    limit = None if args.max_count is None else args.max_count + 1
    history = client.history(args.key, limit=limit, before=before)
    if args.version is not None and (not history or history[0].version != args.version):
        raise NotFoundError(f"{args.key!r} has no version {args.version}")
    shown = history if args.max_count is None else history[: args.max_count]
    if args.json:
        for commit in shown:
            common.print_json(
                common.with_payload(commit.meta, commit.value) if args.payload else commit.meta
            )
        return common.EXIT_OK
    color = common.use_color(args)
    with pager.paged(enabled=not args.no_pager) as out:
        for index, commit in enumerate(shown):
            older = history[index + 1] if index + 1 < len(history) else None
            out.write(paint(f"commit {commit.version}", YELLOW, color) + "\n")
            out.write(f"Author: {commit.author}\n")
            out.write(f"Date:   {commit.mtime}\n")
            if commit.empty:
                out.write("Empty:  yes (uncommitted)\n")
            out.write("\n")
            if commit.comment:
                for line in commit.comment.split("\n"):
                    out.write(f"    {line}\n")
                out.write("\n")
            old_label = f"{args.key} {older.version}" if older else f"{args.key} 0"
            out.write(
                unified_diff(
                    older.value if older else None,
                    commit.value,
                    old_label,
                    f"{args.key} {commit.version}",
                    color,
                )
            )
            out.write("\n")
    return common.EXIT_OK


@command
def diff(args: argparse.Namespace) -> int:
    if args.exit_code:
        args.error_status = EXIT_DIFF_TROUBLE
    client = common.client_from(args)
    old = client.get_commit(args.key, args.version1)
    new = client.get_commit(args.key, args.version2)
    text = unified_diff(
        old.value,
        new.value,
        f"{args.key} {old.version}",
        f"{args.key} {new.version}",
        common.use_color(args),
    )
    with pager.paged() as out:
        out.write(text)
    if args.exit_code and old.value != new.value:
        return EXIT_DIFFERENCES
    return common.EXIT_OK


@command
def prepare(args: argparse.Namespace) -> int:
    client = common.client_from(args)
    base, head = starting_point(client, args.key, args.version)
    payload = base.value if base is not None and base.value is not None else b""
    next_version = (head.version if head is not None else 0) + 1
    common.write_bytes(
        render(PreparedCommit(next_version, common.author_from(args, client), "", payload))
    )
    return common.EXIT_OK


@command
def whoami(args: argparse.Namespace) -> int:
    client = common.client_from(args)
    found = client.whoami()
    if found is None:
        print(
            f"{client.url} checks no credentials (it runs without --auth): anyone who reaches "
            "it may read and commit anything"
        )
        return common.EXIT_OK
    if args.json:
        common.print_json(found, pretty=True)
        return common.EXIT_OK
    print(found["principal"])
    print(f"roles: {', '.join(found.get('roles') or []) or 'none'}")
    if found.get("admin"):
        print("admin: may read and write every key, and commit on behalf of other authors")
    print(f"may read: {', '.join(found.get('read') or []) or 'nothing'}")
    print(f"may write: {', '.join(found.get('write') or []) or 'nothing'}")
    return common.EXIT_OK
