"""Read commands: list, show, log, diff, prepare and whoami."""

from __future__ import annotations

import argparse

from rainer.cli import common, pager
from rainer.cli.common import command
from rainer.cli.diffs import YELLOW, paint, unified_diff
from rainer.cli.prepared import PreparedCommit, render
from rainer.cli.versions import starting_point
from rainer.errors import NotFoundError


def register(subparsers: common.Subparsers) -> None:
    parent = common.global_parent()

    parser = subparsers.add_parser(
        "list", parents=[parent], help="list keys and their newest versions"
    )
    parser.add_argument("-A", "--all", action="store_true", help="include uncommitted keys")
    parser.add_argument("--json", action="store_true", help="key -> metadata as JSON")
    parser.set_defaults(handler=list_keys)

    parser = subparsers.add_parser("show", parents=[parent], help="print a payload")
    parser.add_argument("key")
    parser.add_argument("version", type=common.version_number, nargs="?")
    parser.add_argument("--meta", action="store_true", help="print the metadata as JSON instead")
    parser.set_defaults(handler=show)

    parser = subparsers.add_parser(
        "log", parents=[parent], help="history of a key, with a diff per version"
    )
    parser.add_argument("key")
    parser.add_argument("version", type=common.version_number, nargs="?", help="start here")
    parser.add_argument("--no-pager", action="store_true", help="do not page the output")
    parser.set_defaults(handler=log)

    parser = subparsers.add_parser("diff", parents=[parent], help="diff two versions of a key")
    parser.add_argument("key")
    parser.add_argument("version1", type=common.version_number)
    parser.add_argument(
        "version2", type=common.version_number, nargs="?", help="default: the newest"
    )
    parser.set_defaults(handler=diff)

    parser = subparsers.add_parser(
        "prepare", parents=[parent], help="print a prepared commit of the next version"
    )
    common.add_author_option(parser)
    parser.add_argument("key")
    parser.add_argument(
        "version", type=common.version_number, nargs="?", help="start from this version's payload"
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
    found = client.list(all=args.all)
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
    if args.meta:
        common.print_json(client.get_metadata(args.key, args.version), pretty=True)
        return common.EXIT_OK
    commit = client.get_commit(args.key, args.version)
    if commit.value is not None:
        common.write_bytes(commit.value)
    return common.EXIT_OK


@command
def log(args: argparse.Namespace) -> int:
    client = common.client_from(args)
    before = None if args.version is None else args.version + 1
    # The whole history with payloads in one request, newest first.
    history = client.history(args.key, before=before)
    if args.version is not None and (not history or history[0].version != args.version):
        raise NotFoundError(f"{args.key!r} has no version {args.version}")
    color = common.use_color(args)
    with pager.paged(enabled=not args.no_pager) as out:
        for index, commit in enumerate(history):
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
    return common.EXIT_OK


@command
def prepare(args: argparse.Namespace) -> int:
    client = common.client_from(args)
    base, head = starting_point(client, args.key, args.version)
    payload = base.value if base is not None and base.value is not None else b""
    common.write_bytes(
        render(PreparedCommit(head + 1, common.author_from(args, client), "", payload))
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
