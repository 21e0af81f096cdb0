"""``rainer serve``: the HTTP server. Every option also reads ``RAINER_<OPTION>`` from the
environment, so a service manager can configure it without a command line."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
from typing import TYPE_CHECKING

from rainer import defaults
from rainer.cli.common import EXIT_ERROR, EXIT_USAGE, Subparsers
from rainer.errors import MissingDependencyError, RainerError
from rainer.wire import parse_yes_no

if TYPE_CHECKING:
    from rainer.keeper.link import ZooKeeperLink
    from rainer.storage.base import Storage
    from rainer.storage.head_view import HeadView


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


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {text!r}")
    return int(text)


def _addresses(text: str) -> str:
    """Comma-separated IP addresses or networks, or ``*``: whom to believe X-Forwarded-* from."""
    items = [item.strip() for item in text.split(",")]
    for item in items:
        if item != "*":
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"not an IP address or network: {item!r} (use 10.0.0.5,10.1.0.0/16 or *)"
                ) from None
    return ",".join(items)


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


def register(subparsers: Subparsers) -> None:
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
    zookeeper.add_argument(
        "--zk-auth",
        metavar="FILE",
        help="authenticate to ZooKeeper as the digest identity USER:PASSWORD held in FILE "
        "(only its owner may read it), and make every node the servers create writable by "
        "that identity only. Or set RAINER_ZK_AUTH to USER:PASSWORD itself, or "
        "RAINER_ZK_AUTH_FILE to the file; never give the password on a command line",
    )
    zookeeper.add_argument(
        "--zk-acl-read",
        choices=("world", "servers"),
        default=_env("ZK_ACL_READ", defaults.ZK_ACL_READ),
        help="with --zk-auth, who may read the nodes: anyone (world), or only the servers' "
        "identity (%(default)s)",
    )
    zookeeper.add_argument(
        "--zk-tls-ca",
        default=_env("ZK_TLS_CA", "") or None,
        metavar="FILE",
        help="connect to ZooKeeper's secure client port over TLS (zk1:2281, say), verifying "
        "its certificate against the CA certificates in FILE (PEM)",
    )
    zookeeper.add_argument(
        "--zk-tls-cert",
        default=_env("ZK_TLS_CERT", "") or None,
        metavar="FILE",
        help="connect over TLS presenting this client certificate (PEM), for an ensemble "
        "that asks for one; without --zk-tls-ca, ZooKeeper's certificate is verified against "
        "the system's CAs",
    )
    zookeeper.add_argument(
        "--zk-tls-key",
        default=_env("ZK_TLS_KEY", "") or None,
        metavar="FILE",
        help="the client certificate's private key (PEM, unencrypted)",
    )
    zookeeper.add_argument(
        "--zk-tls-check-hostname",
        action=argparse.BooleanOptionalAction,
        # Anything but a clear "no" keeps the check: a typo must not turn it off.
        default=parse_yes_no(
            _env("ZK_TLS_CHECK_HOSTNAME", "yes" if defaults.ZK_TLS_CHECK_HOSTNAME else "no")
        )
        is not False,
        help="over TLS, require ZooKeeper's certificate to name the host as the connection "
        "string spells it (on by default)",
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
        type=_count,
        default=_env("MAX_CONNECTIONS", str(defaults.MAX_CONNECTIONS)),
        metavar="N",
        help="open connections served at once; requests beyond them get 503 (%(default)s)",
    )
    parser.add_argument(
        "--max-watchers",
        type=_count,
        default=_env("MAX_WATCHERS", "") or None,
        metavar="N",
        help="requests waiting at once (blocking reads, feeds); more get 503 (default: "
        f"{defaults.MAX_WATCHERS}, at most nine in ten of --max-connections)",
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
        "--forwarded-allow-ips",
        type=_addresses,
        default=_env("FORWARDED_ALLOW_IPS", "") or None,
        metavar="ADDRESSES",
        help="reverse proxies whose X-Forwarded-For/-Proto to believe, comma-separated "
        "addresses or networks, or * (default: nobody's; the connection's own address counts)",
    )
    security = parser.add_argument_group(
        "security", "who may read and commit what, TLS, and an audit trail (docs/security.md)"
    )
    security.add_argument(
        "--auth",
        default=_env("AUTH", "") or None,
        metavar="FILE",
        help="the auth file: roles, principals and their token hashes or certificate names; "
        "re-read on SIGHUP",
    )
    security.add_argument(
        "--no-auth",
        action="store_true",
        help="serve everyone, even on an address other machines reach (the default refuses)",
    )
    security.add_argument(
        "--audit-log",
        default=_env("AUDIT_LOG", "") or None,
        metavar="PATH",
        help="one JSON line per write attempt and failed authentication ('-': standard error); "
        "reopened on SIGHUP",
    )
    security.add_argument(
        "--tls-cert",
        default=_env("TLS_CERT", "") or None,
        metavar="FILE",
        help="serve HTTPS with this certificate (PEM, chain included); re-read on SIGHUP",
    )
    security.add_argument(
        "--tls-key",
        default=_env("TLS_KEY", "") or None,
        metavar="FILE",
        help="the certificate's private key (PEM)",
    )
    security.add_argument(
        "--tls-client-ca",
        default=_env("TLS_CLIENT_CA", "") or None,
        metavar="FILE",
        help="verify client certificates against these CAs; a certificate's subject CN names "
        "its principal (clients without one may still use tokens)",
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
    # -- the web console (issue 13) --
    parser.add_argument(
        "--ui",
        action=argparse.BooleanOptionalAction,
        default=parse_yes_no(_env("UI", "yes")) is not False,
        help="serve the web console at /ui/ (on by default; --no-ui turns it off)",
    )
    parser.set_defaults(handler=run)

    auth = subparsers.add_parser(
        "auth", help="tools for the server's auth file", description="Tools for --auth FILE."
    )
    tools = auth.add_subparsers(
        dest="auth_command", metavar="TOOL", required=True, help="the tool to run"
    )
    token = tools.add_parser(
        "token",
        help="print a new random token and the line for the auth file",
        description="Print a new random token (give it to the client: RAINER_TOKEN, or the "
        "collection's token option) and, on the next line, the sha256: line to put in the "
        "principal's tokens in the auth file, which keeps only the hash.",
    )
    token.set_defaults(handler=_new_token)
    check = tools.add_parser(
        "check", help="check an auth file", description="Check an auth file as the server would."
    )
    check.add_argument("file", metavar="FILE", help="the auth file")
    check.set_defaults(handler=_check_auth_file)


def _new_token(args: argparse.Namespace) -> int:
    from rainer.server.auth import new_token

    token, digest = new_token()
    print(token)
    print(digest)
    return 0


def _check_auth_file(args: argparse.Namespace) -> int:
    from rainer.server.auth import PolicyError, load_policy

    try:
        policy = load_policy(args.file)
    except PolicyError as exc:
        print(f"rainer auth check: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(
        f"{args.file}: {len(policy.principals)} principals; anonymous may read "
        f"{policy.anonymous.read.shown() or 'nothing'}, write "
        f"{policy.anonymous.write.shown() or 'nothing'}"
    )
    return 0


def run(args: argparse.Namespace) -> int:
    from rainer.server.app import RainerApp, ServerConfig
    from rainer.server.audit import AuditLog
    from rainer.server.auth import Guard, PolicyError
    from rainer.server.request import LOOPBACK_NAMES, is_loopback
    from rainer.server.runner import Tls, run_server
    from rainer.storage import open_storage

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not is_loopback(args.host) and args.auth is None and not args.no_auth:
        print(
            f"rainer serve: error: --host {args.host} can be reached from other machines, and "
            "without --auth FILE anyone reaching it could commit anything; give --auth FILE "
            "(see docs/security.md), or --no-auth to serve everyone anyway",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.auth is not None and args.no_auth:
        print("rainer serve: error: --auth and --no-auth contradict each other", file=sys.stderr)
        return EXIT_USAGE
    if bool(args.tls_cert) != bool(args.tls_key) or (args.tls_client_ca and not args.tls_cert):
        print(
            "rainer serve: error: --tls-cert and --tls-key go together (and --tls-client-ca "
            "needs them)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    tls = Tls(args.tls_cert, args.tls_key, args.tls_client_ca) if args.tls_cert else None
    max_watchers = args.max_watchers
    if max_watchers is None:
        max_watchers = min(defaults.MAX_WATCHERS, args.max_connections * 9 // 10)
    elif max_watchers >= args.max_connections:
        print(
            f"rainer serve: error: --max-watchers {max_watchers} would leave no connection of "
            f"--max-connections {args.max_connections} for reads and commits; give fewer",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        guard = Guard(args.auth) if args.auth else None
        audit = AuditLog(args.audit_log) if args.audit_log else None
    except PolicyError as exc:
        print(f"rainer serve: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"rainer serve: error: cannot open the audit log: {exc}", file=sys.stderr)
        return EXIT_USAGE
    default_hosts = LOOPBACK_NAMES if is_loopback(args.host) else ("*",)
    config = ServerConfig(
        prefix=args.prefix,
        validate=args.validate,
        max_payload_bytes=args.max_payload_bytes,
        cache_bytes=args.cache_bytes,
        allowed_hosts=default_hosts + args.allowed_hosts,
        max_watchers=max_watchers,
    )
    try:
        storage = open_storage(args.database, args.table)
        view: HeadView | None = None
        if args.zookeeper:
            link = _with_zookeeper(storage, args)
            storage, view = link, link.mirror
        app = RainerApp(storage, config, view=view, guard=guard, audit=audit)
        if args.ui:  # the web console (issue 13)
            from rainer.server.console import Console

            app.console = Console(app)
        app.start()
    except MissingDependencyError as exc:
        print(f"rainer serve: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (RainerError, ValueError) as exc:
        print(f"rainer serve: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    try:
        return run_server(
            app,
            args.host,
            args.port,
            args.log_level,
            args.access_log,
            args.max_connections,
            tls,
            args.forwarded_allow_ips,
        )
    finally:
        app.stop()


def _with_zookeeper(database: Storage, args: argparse.Namespace) -> ZooKeeperLink:
    try:
        from rainer.keeper.link import ZooKeeperLink
    except ImportError as exc:
        if exc.name is None or not exc.name.startswith("kazoo"):
            raise
        raise MissingDependencyError("--zookeeper", "kazoo", "zookeeper") from None
    from rainer.keeper.security import TlsSettings, find_credentials

    # Credentials come from a file or the environment only, and never reach a log line.
    credentials = find_credentials(args.zk_auth)
    tls = None
    if args.zk_tls_ca or args.zk_tls_cert or args.zk_tls_key:
        tls = TlsSettings(
            args.zk_tls_ca, args.zk_tls_cert, args.zk_tls_key, args.zk_tls_check_hostname
        )
    return ZooKeeperLink(
        database,
        args.zookeeper,
        args.zk_path,
        publish_period=args.publish_period,
        session_timeout=args.zk_session_timeout,
        max_node_bytes=args.zk_max_node_bytes,
        credentials=credentials,
        read_access=args.zk_acl_read,
        tls=tls,
    )
