"""``rainer serve``: the HTTP server. Every option also reads ``RAINER_<OPTION>`` from the
environment, so a service manager can configure it without a command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from rainer import defaults
from rainer.cli.common import EXIT_ERROR, EXIT_USAGE
from rainer.errors import MissingDependencyError, RainerError
from rainer.wire import parse_yes_no


def _env(name: str, default: str) -> str:
    return os.environ.get("RAINER_" + name, default)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text!r}")
    return int(text)


def _size(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a positive number of bytes: {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"not a positive number of seconds: {text!r}")
    return value


def _zk_path(text: str) -> str:
    if not text.startswith("/") or "//" in text or text.rstrip("/") == "":
        raise argparse.ArgumentTypeError(f"not a ZooKeeper path like /rainer: {text!r}")
    return text.rstrip("/")


def _prefix(text: str) -> str:
    stripped = text.rstrip("/")
    if not stripped.startswith("/") or "//" in stripped or "?" in stripped:
        raise argparse.ArgumentTypeError(f"not a URL path prefix like /diary: {text!r}")
    return stripped


def _hosts(text: str) -> tuple[str, ...]:
    names = tuple(name.strip().lower().rstrip(".") for name in text.split(",") if name.strip())
    for name in names:
        if name != "*" and not all(part for part in name.removeprefix("*.").split(".")):
            raise argparse.ArgumentTypeError(f"not a host name or pattern: {name!r}")
    return names


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the HTTP server",
        description="Serve the Rainer HTTP API. Each option also reads RAINER_<OPTION>, "
        "for example RAINER_DATABASE or RAINER_MAX_PAYLOAD_BYTES.",
    )
    parser.add_argument(
        "--host", default=_env("HOST", defaults.HOST), help="address to listen on (%(default)s)"
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=_env("PORT", str(defaults.PORT)),
        help="TCP port (%(default)s)",
    )
    parser.add_argument(
        "--database",
        default=_env("DATABASE", defaults.DATABASE),
        metavar="URL",
        help="sqlite:///PATH, postgresql://USER:PASSWORD@HOST/DB, "
        "mysql://USER:PASSWORD@HOST/DB, http(s)://HOST:PORT/diary (another Rainer server "
        "to front) or memory (%(default)s)",
    )
    parser.add_argument(
        "--table", default=_env("TABLE", defaults.TABLE), help="table name (%(default)s)"
    )
    parser.add_argument(
        "--prefix",
        type=_prefix,
        default=_env("PREFIX", defaults.PREFIX),
        help="URL path the API is mounted under (%(default)s)",
    )
    parser.add_argument(
        "--validate",
        choices=("none", "json", "yaml"),
        default=_env("VALIDATE", "none"),
        help="refuse payloads that do not parse as this (%(default)s)",
    )
    parser.add_argument(
        "--max-payload-bytes",
        type=_size,
        default=_env("MAX_PAYLOAD_BYTES", str(defaults.MAX_PAYLOAD_BYTES)),
        metavar="N",
        help="refuse larger payloads with 413 (%(default)s)",
    )
    zookeeper = parser.add_argument_group(
        "ZooKeeper", "publish every commit to ZooKeeper and answer head reads from a live mirror"
    )
    zookeeper.add_argument(
        "--zookeeper",
        default=_env("ZOOKEEPER", "") or None,
        metavar="HOSTS",
        help="ZooKeeper connection string, e.g. zk1:2181,zk2:2181 (off when not given)",
    )
    zookeeper.add_argument(
        "--zk-path",
        type=_zk_path,
        default=_env("ZK_PATH", defaults.ZK_PATH),
        metavar="PATH",
        help="base path: commits under PATH/data, leader election under PATH/election "
        "(%(default)s; the original Rainer's servers used /diary-local by default)",
    )
    zookeeper.add_argument(
        "--publish-period",
        type=_seconds,
        default=_env("PUBLISH_PERIOD", f"{defaults.PUBLISH_PERIOD:g}"),
        metavar="SECONDS",
        help="the elected auto-publisher republishes every head this often, ±20%% (%(default)s)",
    )
    zookeeper.add_argument(
        "--zk-session-timeout",
        type=_seconds,
        default=_env("ZK_SESSION_TIMEOUT", f"{defaults.ZK_SESSION_TIMEOUT:g}"),
        metavar="SECONDS",
        help="ZooKeeper session timeout (%(default)s)",
    )
    zookeeper.add_argument(
        "--zk-max-node-bytes",
        type=_size,
        default=_env("ZK_MAX_NODE_BYTES", str(defaults.ZK_MAX_NODE_BYTES)),
        metavar="N",
        help="refuse with 413 a commit whose stored form is larger; keep it under the "
        "ensemble's jute.maxbuffer, 1 MiB by default (%(default)s)",
    )
    parser.add_argument(
        "--cache-bytes",
        type=_size,
        default=_env("CACHE_BYTES", str(defaults.CACHE_BYTES)),
        metavar="N",
        help="memory for payloads and rendered answers; metadata of every head is kept besides "
        "(%(default)s)",
    )
    parser.add_argument(
        "--max-connections",
        type=_size,
        default=_env("MAX_CONNECTIONS", str(defaults.MAX_CONNECTIONS)),
        metavar="N",
        help="open connections served at once; requests beyond them get 503 (%(default)s)",
    )
    parser.add_argument(
        "--allowed-hosts",
        type=_hosts,
        default=_env("ALLOWED_HOSTS", ""),
        metavar="NAMES",
        help="Host header names to answer besides the default, comma-separated: name, "
        "*.domain, or * for any (default: loopback names on a loopback address, any otherwise)",
    )
    parser.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default=_env("LOG_LEVEL", "info"),
        help="server log level (%(default)s)",
    )
    parser.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=parse_yes_no(_env("ACCESS_LOG", "no")) is True,
        help="log every request (off by default: it costs a third of the throughput)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rainer.server.app import RainerApp, ServerConfig
    from rainer.server.request import LOOPBACK_NAMES, is_loopback
    from rainer.server.runner import run_server
    from rainer.storage import open_storage

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    default_hosts = LOOPBACK_NAMES if is_loopback(args.host) else ("*",)
    config = ServerConfig(
        prefix=args.prefix,
        validate=args.validate,
        max_payload_bytes=args.max_payload_bytes,
        cache_bytes=args.cache_bytes,
        allowed_hosts=default_hosts + args.allowed_hosts,
    )
    try:
        storage = open_storage(args.database, args.table)
        view = None
        if args.zookeeper:
            storage = _with_zookeeper(storage, args)
            view = storage.mirror
        app = RainerApp(storage, config, view=view)
        app.start()
    except MissingDependencyError as exc:
        print(f"rainer serve: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (RainerError, ValueError) as exc:
        print(f"rainer serve: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    try:
        return run_server(
            app, args.host, args.port, args.log_level, args.access_log, args.max_connections
        )
    finally:
        app.stop()


def _with_zookeeper(database, args: argparse.Namespace):
    try:
        from rainer.keeper.link import ZooKeeperLink
    except ImportError as exc:
        if exc.name is None or not exc.name.startswith("kazoo"):
            raise
        raise MissingDependencyError("--zookeeper", "kazoo", "zookeeper") from None
    return ZooKeeperLink(
        database,
        args.zookeeper,
        args.zk_path,
        publish_period=args.publish_period,
        session_timeout=args.zk_session_timeout,
        max_node_bytes=args.zk_max_node_bytes,
    )
