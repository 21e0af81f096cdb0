"""ZooKeeper security for real: digest credentials, the ACLs of every node the servers create,
and TLS to ZooKeeper — servers as subprocesses (and a few in-process links), a real ZooKeeper
with digest ACLs, and a real ZooKeeper with a TLS client port wanting client certificates."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from http_util import call, post_commit
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import ACL, Id, Permissions, make_digest_acl
from kazoo.security import ANYONE_ID_UNSAFE as ANYONE
from zk_util import SESSION_TIMEOUT, new_client, wait_until

from harness.certs import TestCA
from harness.ports import free_port
from harness.rainer import SRC_DIR, RainerServer
from harness.zookeeper import ZooKeeperServer, ZooKeeperTls
from rainer.commit import Commit
from rainer.errors import StorageUnavailableError
from rainer.keeper.link import ZooKeeperLink, make_client
from rainer.keeper.security import (
    DigestCredentials,
    TlsSettings,
    ZooKeeperSecurityError,
    find_credentials,
    node_acl,
    parse_credentials,
    private_file_problem,
)
from rainer.storage.memory import MemoryStorage

pytest_plugins = ["zk_fixtures"]

USER, PASSWORD = "rainer", "pw-Zk-7f3a"
CREDENTIALS = DigestCredentials(USER, PASSWORD)
CACHED = "x-rainer-cached"
#: Every environment variable of these options: a test sets the ones it means.
ZK_ENV = (
    "RAINER_ZK_AUTH",
    "RAINER_ZK_AUTH_FILE",
    "RAINER_ZK_ACL_READ",
    "RAINER_ZK_TLS_CA",
    "RAINER_ZK_TLS_CERT",
    "RAINER_ZK_TLS_KEY",
    "RAINER_ZK_TLS_CHECK_HOSTNAME",
)


def secret_file(folder: Path, text: str = f"{USER}:{PASSWORD}\n", mode: int = 0o600) -> Path:
    path = folder / "zk-auth"
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def server_env(**values: str) -> dict[str, str | None]:
    env: dict[str, str | None] = dict.fromkeys(ZK_ENV)
    env.update(values)
    return env


def zk_args(hosts: str, path: str, *extra: str) -> list[str]:
    return [
        "--zookeeper",
        hosts,
        "--zk-path",
        path,
        "--publish-period",
        "1",
        "--zk-session-timeout",
        str(SESSION_TIMEOUT),
        *extra,
    ]


def run_serve(args: list[str], env: dict[str, str] | None = None, timeout: float = 60):
    """``rainer serve`` expected to refuse to start: (exit status, stderr)."""
    environment = {k: v for k, v in os.environ.items() if k not in ZK_ENV}
    environment["PYTHONPATH"] = os.pathsep.join([str(SRC_DIR), environment.get("PYTHONPATH", "")])
    environment.update(env or {})
    done = subprocess.run(
        [sys.executable, "-m", "rainer", "serve", "--port", str(free_port()), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
        check=False,
    )
    return done.returncode, done.stderr


def assert_one_line_error(code: int, stderr: str, *fragments: str) -> None:
    assert code == 1, stderr
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("rainer serve: error: "), stderr
    for fragment in fragments:
        assert fragment in last, last
    assert PASSWORD not in stderr


def protected(acl: list[ACL]) -> bool:
    """The servers' ACL: everything for the digest user, reading for anyone."""
    return sorted((a.perms, a.id.scheme, a.id.id.split(":")[0]) for a in acl) == [
        (Permissions.READ, "world", "anyone"),
        (Permissions.ALL, "digest", USER),
    ]


@pytest.fixture
def servers(tmp_path) -> Callable[..., RainerServer]:
    """A factory of running servers, closed after the test; each on a SQLite file of its own
    unless ``database`` names one (one at a time: SQLite serves one process)."""
    made: list[RainerServer] = []

    def make(
        args: list[str], env: dict[str, str | None] | None = None, database: str | None = None
    ) -> RainerServer:
        database = database or f"sqlite:///{tmp_path / f'r{len(made)}.db'}"
        server = RainerServer(["--database", database, *args], env=env or server_env())
        made.append(server)
        return server.start()

    yield make
    for server in made:
        server.close()


@pytest.fixture
def anonymous(zk_clients) -> KazooClient:
    """A client without credentials."""
    return zk_clients()


# -- credentials, without ZooKeeper --------------------------------------------------------------


def test_credentials_never_show_the_password():
    credentials = parse_credentials("rainer:pa:ss\n", "RAINER_ZK_AUTH")
    assert (credentials.user, credentials.password) == ("rainer", "pa:ss")
    assert "pa:ss" not in repr(credentials) and "pa:ss" not in str(credentials)
    assert credentials.auth_data == ("digest", "rainer:pa:ss")
    assert credentials.identity == Id("digest", make_digest_acl("rainer", "pa:ss").id.id)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "must hold USER:PASSWORD"),
        ("just-a-password", "must hold USER:PASSWORD itself"),
        (":password", "must hold USER:PASSWORD"),
        ("rainer:", "must hold USER:PASSWORD"),
        ("rainer:pass\nword", "one line"),
    ],
)
def test_malformed_credentials_are_refused_without_quoting_them(text, message):
    with pytest.raises(ZooKeeperSecurityError, match=message) as caught:
        parse_credentials(text, "RAINER_ZK_AUTH")
    for secret in ("password", "pass", "word"):
        assert secret not in str(caught.value).replace("PASSWORD", "")


@pytest.mark.parametrize(
    ("mode", "owner", "refused"),
    [
        (0o600, 1000, False),
        (0o400, 1000, False),
        (0o640, 1000, True),
        (0o604, 1000, True),
        (0o660, 1000, True),
        (0o640, 0, False),  # root:group 0640, as configuration management deploys secrets
        (0o660, 0, True),
        (0o644, 0, True),
    ],
)
def test_who_may_read_the_credentials_file(mode, owner, refused):
    problem = private_file_problem(stat.S_IFREG | mode, owner)
    assert (problem is not None) == refused, problem


def test_credentials_come_from_the_option_then_the_environment(tmp_path):
    path = secret_file(tmp_path)
    other = tmp_path / "other"
    other.write_text("someone:else")
    other.chmod(0o600)
    assert find_credentials(None, {}) is None
    assert find_credentials(str(path), {"RAINER_ZK_AUTH": "x:y"}).user == USER
    assert find_credentials(None, {"RAINER_ZK_AUTH": "x:y"}).password == "y"
    assert find_credentials(None, {"RAINER_ZK_AUTH_FILE": str(other)}).user == "someone"
    with pytest.raises(ZooKeeperSecurityError, match="both set"):
        find_credentials(None, {"RAINER_ZK_AUTH": "x:y", "RAINER_ZK_AUTH_FILE": str(other)})
    path.chmod(0o644)
    with pytest.raises(ZooKeeperSecurityError, match=r"mode 0644 lets others read"):
        find_credentials(str(path), {})
    with pytest.raises(ZooKeeperSecurityError, match="cannot read"):
        find_credentials(str(tmp_path / "missing"), {})


def test_an_unsafe_or_missing_credentials_file_refuses_the_start(tmp_path):
    path = secret_file(tmp_path, mode=0o644)
    hosts = f"127.0.0.1:{free_port()}"  # never reached: the file is checked first
    args = ["--database", "memory", *zk_args(hosts, "/x"), "--zk-auth", str(path)]
    assert_one_line_error(*run_serve(args), f"--zk-auth {path}", "0644", "0600")
    args[-1] = str(tmp_path / "missing")
    assert_one_line_error(*run_serve(args), "cannot read --zk-auth")
    del args[-2:]
    env = {"RAINER_ZK_AUTH": "no-colon-here"}
    assert_one_line_error(*run_serve(args, env), "RAINER_ZK_AUTH must hold USER:PASSWORD")
    env = {"RAINER_ZK_ACL_READ": "servers"}
    assert_one_line_error(*run_serve(args, env), "--zk-acl-read servers needs")


# -- digest ACLs against a real ZooKeeper ----------------------------------------------------


def test_a_protected_server_publishes_nodes_only_it_may_change(
    servers, zookeeper, zk_path, anonymous, zk_clients, tmp_path
):
    path = secret_file(tmp_path)
    server = servers([*zk_args(zookeeper.hosts, zk_path), "--zk-auth", str(path)])
    assert post_commit(server.diary_url, "app.json", 1, b'{"a": 1}', author="a").status == 200
    wait_until(lambda: call("GET", server.url + "/healthz").json()["zookeeper"]["leader"])

    election = f"{zk_path}/election"
    nodes = [zk_path, f"{zk_path}/data", election, f"{zk_path}/data/app.json"]
    nodes += [f"{election}/{name}" for name in anonymous.get_children(election)]
    assert len(nodes) == 5  # the leader's lock node too
    for node in nodes:
        assert protected(anonymous.get_acls(node)[0]), node

    # Anyone may read (and watch) ...
    data, _ = anonymous.get(f"{zk_path}/data/app.json")
    assert data.endswith(b'{"a": 1}\n')
    # ... but nothing else.
    key = f"{zk_path}/data/app.json"
    attempts = {
        "set": lambda: anonymous.set(key, b"forged"),
        "delete": lambda: anonymous.delete(key),
        "create a key": lambda: anonymous.create(f"{zk_path}/data/new", b"x"),
        "create in the election": lambda: anonymous.create(f"{election}/x", ephemeral=True),
        "create under the base": lambda: anonymous.create(f"{zk_path}/other"),
        "change ACLs": lambda: anonymous.set_acls(key, [make_digest_acl("me", "x", all=True)]),
    }
    for what, attempt in attempts.items():
        with pytest.raises(NoAuthError):
            attempt()
            pytest.fail(f"an unauthenticated client could {what}")
    # Another password is another identity: refused the same way.
    intruder = zk_clients()
    intruder.add_auth("digest", f"{USER}:guessed")
    with pytest.raises(NoAuthError):
        intruder.set(key, b"forged")

    # The server itself still publishes updates and tombstones.
    assert post_commit(server.diary_url, "app.json", 2, b'{"a": 2}', author="a").status == 200
    assert anonymous.get(key)[0].endswith(b'{"a": 2}\n')
    assert post_commit(server.diary_url, "app.json", 3, b"", author="a", empty="yes").status == 200
    assert anonymous.exists(key) is None


def test_reads_can_be_closed_to_everyone_but_the_servers(servers, zookeeper, zk_path, anonymous):
    env = server_env(RAINER_ZK_AUTH=f"{USER}:{PASSWORD}", RAINER_ZK_ACL_READ="servers")
    server = servers(zk_args(zookeeper.hosts, zk_path), env)
    assert post_commit(server.diary_url, "secret", 1, b"s3", author="a").status == 200
    got = call("GET", f"{server.diary_url}/secret")
    assert (got.body, got.header(CACHED)) == (b"s3", "Yes")
    for node in (f"{zk_path}/data/secret", f"{zk_path}/data"):
        with pytest.raises(NoAuthError):
            anonymous.get(node)
    with pytest.raises(NoAuthError):
        anonymous.get_children(f"{zk_path}/data")
    insider = new_client(zookeeper.hosts)
    try:
        insider.add_auth("digest", f"{USER}:{PASSWORD}")
        acl, _ = insider.get_acls(f"{zk_path}/data/secret")
        assert [(a.perms, a.id.scheme) for a in acl] == [(Permissions.ALL, "digest")]
        assert insider.get(f"{zk_path}/data/secret")[0].endswith(b"s3\n")
    finally:
        insider.stop()
        insider.close()


def test_an_open_tree_is_protected_once_protected_servers_take_over(
    servers, zookeeper, zk_path, anonymous, tmp_path
):
    # A server without credentials made the tree, as every server did before --zk-auth.
    database = f"sqlite:///{tmp_path / 'shared.db'}"
    open_server = servers(zk_args(zookeeper.hosts, zk_path), database=database)
    for key in ("one", "two"):
        assert post_commit(open_server.diary_url, key, 1, b"old", author="a").status == 200
    assert anonymous.get_acls(f"{zk_path}/data/one")[0][0].id == Id("world", "anyone")
    open_server.close()

    # RAINER_ZK_AUTH_FILE, the environment's way to name the file.
    env = server_env(RAINER_ZK_AUTH_FILE=str(secret_file(tmp_path)))
    server = servers(zk_args(zookeeper.hosts, zk_path), env, database=database)
    # The base nodes at start, every key node once the new server leads.
    for node in (zk_path, f"{zk_path}/data", f"{zk_path}/election"):
        assert protected(anonymous.get_acls(node)[0]), node
    for key in ("one", "two"):
        node = f"{zk_path}/data/{key}"
        wait_until(lambda node=node: protected(anonymous.get_acls(node)[0]), what=node)
        with pytest.raises(NoAuthError):
            anonymous.set(node, b"forged")
    assert post_commit(server.diary_url, "one", 2, b"new", author="a").status == 200
    assert call("GET", f"{server.diary_url}/one").body == b"new"

    # A server that lost its credentials now refuses to start, naming the option.
    code, stderr = run_serve(["--database", "memory", *zk_args(zookeeper.hosts, zk_path)])
    assert_one_line_error(code, stderr, f"{zk_path}/data", "--zk-auth FILE")


@pytest.fixture
def protected_tree(zookeeper, zk_path) -> str:
    """A tree whose base nodes belong to the servers' identity (as a protected server leaves
    them), made directly."""
    client = make_client(zookeeper.hosts, SESSION_TIMEOUT, credentials=CREDENTIALS)
    client.start(timeout=15)
    try:
        for node in ("", "/data", "/election"):
            client.ensure_path(zk_path + node)
    finally:
        client.stop()
        client.close()
    return zk_path


@pytest.mark.parametrize("read", ["world", "servers"])
def test_wrong_credentials_refuse_to_start(zookeeper, protected_tree, tmp_path, read):
    if read == "servers":  # reads closed too: the ACLs cannot even be read
        client = make_client(zookeeper.hosts, SESSION_TIMEOUT, credentials=CREDENTIALS)
        client.start(timeout=15)
        for node in ("", "/data", "/election"):
            client.set_acls(protected_tree + node, node_acl(CREDENTIALS, "servers"))
        client.stop()
        client.close()
    wrong = secret_file(tmp_path, f"{USER}:not-the-password")
    args = ["--database", "memory", *zk_args(zookeeper.hosts, protected_tree)]
    code, stderr = run_serve([*args, "--zk-auth", str(wrong), "--zk-acl-read", read])
    assert_one_line_error(
        code, stderr, f"digest user '{USER}' (--zk-auth {wrong})", protected_tree, "wrong password"
    )
    assert "not-the-password" not in stderr
    code, stderr = run_serve(args)  # and without credentials at all
    assert_one_line_error(code, stderr, "--zk-auth FILE")


def test_a_node_shut_to_the_servers_holds_up_no_other_key(zookeeper, zk_path, caplog):
    """A key node someone gave other ACLs is logged and skipped, by the publish after a commit
    and by the auto-publisher; every other key is still published and healed."""
    caplog.set_level(logging.INFO)
    insider = make_client(zookeeper.hosts, SESSION_TIMEOUT, credentials=CREDENTIALS)
    insider.start(timeout=15)
    foreign = [make_digest_acl("someone", "else", all=True), ACL(Permissions.READ, ANYONE)]
    insider.ensure_path(f"{zk_path}/data")  # the servers' ACL (makepath would use foreign)
    insider.create(f"{zk_path}/data/shut", b"not ours", acl=foreign)
    insider.stop()
    insider.close()

    now = datetime.now(UTC).replace(microsecond=0)
    database = MemoryStorage()
    link = ZooKeeperLink(
        database, zookeeper.hosts, zk_path, 0.3, SESSION_TIMEOUT, credentials=CREDENTIALS
    )
    link.start()
    try:
        batch = [Commit(key, 1, b"x", "a", "", now) for key in ("shut", "open-1")]
        assert link.save_batch(batch) == [None, None]
        assert link.keeper.get("open-1") == batch[1]
        # Healing: a key only the database has yet.
        database.save(Commit("open-2", 1, b"y", "a", "", now))
        wait_until(lambda: link.keeper.get("open-2") is not None, what="the auto-publisher")
    finally:
        link.stop()
    assert f"ACLs on {zk_path}/data/shut do not let this server publish" in caplog.text
    assert "shut this server out of 1 key node(s)" in caplog.text
    assert "have ACLs this server may not change (first: 'shut')" in caplog.text
    assert link.keeper.client.connected is False


def test_the_password_never_reaches_the_log(zookeeper, zk_path, caplog):
    """kazoo logs every request it sends at DEBUG, the authentication included."""
    caplog.set_level(logging.DEBUG)
    link = ZooKeeperLink(
        MemoryStorage(),
        zookeeper.hosts,
        zk_path,
        session_timeout=SESSION_TIMEOUT,
        credentials=CREDENTIALS,
    )
    link.start()
    link.stop()
    assert "scheme='digest', auth='<hidden>'" in caplog.text
    assert PASSWORD not in caplog.text


def test_a_server_logging_at_debug_shows_no_password(servers, zookeeper, zk_path):
    env = server_env(RAINER_ZK_AUTH=f"{USER}:{PASSWORD}")
    server = servers([*zk_args(zookeeper.hosts, zk_path), "--log-level", "debug"], env)
    assert post_commit(server.diary_url, "k", 1, b"x", author="a").status == 200
    server.stop()
    log = server.log_text()
    assert "nodes writable by digest user 'rainer' only" in log
    assert PASSWORD not in log and PASSWORD not in " ".join(server.args)


# -- TLS to ZooKeeper ----------------------------------------------------------------------------


def tls_env(zookeeper_tls, **more: str) -> dict[str, str | None]:
    """TLS files through the environment, the way a service manager would set them."""
    return server_env(
        RAINER_ZK_TLS_CA=str(zookeeper_tls.ca.cert),
        RAINER_ZK_TLS_CERT=str(zookeeper_tls.client.cert),
        RAINER_ZK_TLS_KEY=str(zookeeper_tls.client.key),
        **more,
    )


def test_a_server_over_tls_works_end_to_end(servers, zookeeper_tls, zk_path, tmp_path):
    zk = zookeeper_tls.server
    env = tls_env(zookeeper_tls, RAINER_ZK_AUTH=f"{USER}:{PASSWORD}")
    server = servers(zk_args(zk.secure_hosts, zk_path), env)
    assert "over TLS" in server.log_text()
    assert post_commit(server.diary_url, "tls.json", 1, b'{"tls": true}', author="a").status == 200
    got = call("GET", f"{server.diary_url}/tls.json")
    assert (got.status, got.body, got.header(CACHED)) == (200, b'{"tls": true}', "Yes")
    health = call("GET", server.url + "/healthz")
    assert health.status == 200 and health.json()["zookeeper"]["connected"] is True
    wait_until(lambda: call("GET", server.url + "/healthz").json()["zookeeper"]["leader"])

    # What went over TLS is in ZooKeeper, protected (looked at through the plain port).
    plain = new_client(zk.hosts)
    try:
        data, _ = plain.get(f"{zk_path}/data/tls.json")
        assert data.endswith(b'{"tls": true}\n')
        assert protected(plain.get_acls(f"{zk_path}/data/tls.json")[0])
    finally:
        plain.stop()
        plain.close()

    # A second server, on the command line this time, sees the first one's commits.
    other = servers(
        [
            *zk_args(zk.secure_hosts, zk_path),
            "--zk-tls-ca",
            str(zookeeper_tls.ca.cert),
            "--zk-tls-cert",
            str(zookeeper_tls.client.cert),
            "--zk-tls-key",
            str(zookeeper_tls.client.key),
        ],
        server_env(RAINER_ZK_AUTH=f"{USER}:{PASSWORD}"),
    )
    wait_until(lambda: call("GET", f"{other.diary_url}/tls.json").header(CACHED) == "Yes")


@pytest.mark.parametrize(
    ("case", "fragments"),
    [
        ("untrusted CA", ["TLS failed", "certificate verify failed", "--zk-tls-ca"]),
        ("no client certificate", ["TLS failed", "refused this server's certificate"]),
        ("certificate of another CA", ["TLS failed", "refused this server's certificate"]),
        ("TLS to the plain port", ["did not answer", "secure client port"]),
        ("key without certificate", ["--zk-tls-cert and --zk-tls-key go together"]),
        ("not a CA file", ["--zk-tls-ca", "not a PEM CA certificate"]),
    ],
)
def test_tls_failures_are_one_clear_line(zookeeper_tls, tmp_path, case, fragments):
    zk, ca, client = zookeeper_tls.server, zookeeper_tls.ca, zookeeper_tls.client
    stranger = TestCA(tmp_path / "other", "Stranger CA")
    hosts = zk.secure_hosts
    tls = {"--zk-tls-ca": ca.cert, "--zk-tls-cert": client.cert, "--zk-tls-key": client.key}
    if case == "untrusted CA":
        tls["--zk-tls-ca"] = stranger.cert
    elif case == "no client certificate":
        del tls["--zk-tls-cert"], tls["--zk-tls-key"]
    elif case == "certificate of another CA":
        other = stranger.client("rainer-server")
        tls.update({"--zk-tls-cert": other.cert, "--zk-tls-key": other.key})
    elif case == "TLS to the plain port":
        hosts = zk.hosts
    elif case == "key without certificate":
        del tls["--zk-tls-cert"]
    elif case == "not a CA file":
        tls["--zk-tls-ca"] = secret_file(tmp_path, "not a certificate")
    args = ["--database", "memory", *zk_args(hosts, "/tls-failures")]
    for option, value in tls.items():
        args += [option, str(value)]
    assert_one_line_error(*run_serve(args), *fragments)


def test_the_certificate_must_name_the_host(zookeeper_tls, tmp_path):
    """Hostname verification: a ZooKeeper whose certificate names only zk.example is refused
    at 127.0.0.1, unless the check is turned off (the CA is trusted either way)."""
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    ca = zookeeper_tls.ca
    # TestCA issues loopback server certificates only; its issuing step takes any names.
    named = ca._issue(
        "zk.example", ExtendedKeyUsageOID.SERVER_AUTH, [x509.DNSName("zk.example")], "zk-name"
    )
    with ZooKeeperServer(tls=ZooKeeperTls(named.cert, named.key, ca.cert, "want")) as zk:
        tls = TlsSettings(str(ca.cert))
        refused = ZooKeeperLink(MemoryStorage(), zk.secure_hosts, "/named", tls=tls)
        with pytest.raises(StorageUnavailableError, match="does not name the host"):
            refused.start()
        unchecked = TlsSettings(str(ca.cert), check_hostname=False)
        link = ZooKeeperLink(MemoryStorage(), zk.secure_hosts, "/named", tls=unchecked)
        link.start()
        try:
            assert link.client.connected
        finally:
            link.stop()
