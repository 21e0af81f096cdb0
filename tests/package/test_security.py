"""``rainer serve --auth``: who may read and commit what, proven authors, TLS with client
certificates, the audit log and SIGHUP — against real servers, with tokens made by
``rainer auth token`` and certificates from a throwaway CA."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest
from http_util import call, post_commit

from harness.certs import TestCA
from harness.rainer import SRC_DIR, RainerServer
from rainer.server.auth import PolicyError, load_policy, new_token

ALL_CHALLENGES = ['Basic realm="rainer", charset="UTF-8"', 'Bearer realm="rainer"']


def rainer(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(SRC_DIR))
    return subprocess.run(
        [sys.executable, "-m", "rainer", *args], capture_output=True, text=True, env=env, timeout=60
    )


class Tokens:
    """Tokens made by ``rainer auth token``: the secret and the line for the auth file."""

    def __init__(self) -> None:
        self.secret: dict[str, str] = {}
        self.line: dict[str, str] = {}

    def make(self, name: str) -> str:
        """The auth file's line for ``name``'s token, made the first time it is asked for."""
        if name not in self.line:
            out = rainer("auth", "token")
            assert out.returncode == 0, out.stderr
            self.secret[name], self.line[name] = out.stdout.split()
        return self.line[name]

    def bearer(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret[name]}"}

    def basic(self, name: str, user: str | None = None) -> dict[str, str]:
        pair = f"{user or name}:{self.secret[name]}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


def auth_file(folder: Path, tokens: Tokens, *more: str) -> Path:
    """The auth file of these tests; ``more`` names further readers, each with a token."""
    readers = "".join(
        f'  {name}: {{roles: [reader], tokens: ["{tokens.make(name)}"]}}\n' for name in more
    )
    path = folder / "auth.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            roles:
              deployer: {{read: ["*"], write: ["app.*", "web.*"]}}
              reader: {{read: ["app.*", "web.*", "public"]}}
            principals:
              ci-bot: {{roles: [deployer], tokens: ["{tokens.make("ci-bot")}"]}}
              viewer: {{roles: [reader], tokens: ["{tokens.make("viewer")}"]}}
              root: {{roles: [admin], tokens: ["{tokens.make("root")}"]}}
              alice: {{roles: [admin], certificates: ["alice"]}}
            """
        )
        + readers
        + "anonymous: {roles: []}\n"
    )
    return path


@pytest.fixture(scope="module")
def tokens() -> Tokens:
    return Tokens()


@pytest.fixture(scope="module")
def secured(tmp_path_factory, tokens):
    folder = tmp_path_factory.mktemp("secured")
    args = [
        "--database", f"sqlite:///{folder / 'r.db'}",
        "--auth", str(auth_file(folder, tokens)),
        "--audit-log", str(folder / "audit.log"),
    ]  # fmt: skip
    with RainerServer(args) as server:
        server.audit_path = folder / "audit.log"
        server.auth_path = folder / "auth.yaml"
        yield server


def audit_lines(server) -> list[dict]:
    return [json.loads(line) for line in server.audit_path.read_text().splitlines()]


# -- the auth file ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("roles: [a]\n", 1, "roles must be a mapping"),
        ("roles:\n  r: {read: [x], wrte: [y]}\n", 2, "unknown field 'wrte'"),
        ("principals:\n  bob: {roles: [nope]}\n", 2, "no role 'nope'"),
        ("principals:\n  bob: {tokens: [hunter2]}\n", 2, "'sha256:' and 64 hex digits"),
        ("roles:\n  admin: {read: ['*']}\n", 2, "'admin' is built in"),
        ("roles:\n  r: {read: ['a*b']}\n", 2, "not a key or a prefix ending in *"),
        ("anonymous: {roles: [admin]}\n", 1, "anonymous cannot be admin"),
        (
            "principals:\n  a: {certificates: [x]}\n  b: {certificates: [x]}\n",
            3,
            "already names 'a'",
        ),
        ("roles: {r: {read: [a]}\nx", 2, "not YAML"),
    ],
)
def test_a_bad_auth_file_says_the_line_and_the_reason(tmp_path, text, line, reason):
    path = tmp_path / "auth.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError, match=reason) as refused:
        load_policy(path)
    assert f"line {line}:" in str(refused.value)
    out = rainer("auth", "check", str(path))
    assert out.returncode == 1 and f"line {line}: " in out.stderr and reason in out.stderr
    server = RainerServer(["--database", f"sqlite:///{tmp_path / 'r.db'}", "--auth", str(path)])
    with pytest.raises(Exception, match="exited with code 2"):
        server.start()
    server.close()


def test_tokens_are_random_and_only_their_hash_is_kept():
    first, second = new_token(), new_token()
    assert first[0] != second[0] and len(first[0]) >= 40
    assert first[1].startswith("sha256:") and first[0] not in first[1]


# -- who may do what ----------------------------------------------------------------------------


def test_without_credentials_the_answer_is_a_401_with_both_challenges(secured):
    for method, url in [
        ("GET", secured.diary_url),
        ("GET", f"{secured.diary_url}/app.x"),
        ("GET", f"{secured.diary_url}/app.x/history"),
        ("POST", f"{secured.diary_url}/app.x/1"),
    ]:
        got = call(method, url, b"x" if method == "POST" else None, {"X-Rainer-Author": "a"})
        assert got.status == 401, (method, url, got.text)
        assert got.text.startswith("Authentication required")
    # Both challenges, as two header fields (http_util keeps one value per name).
    import http.client

    connection = http.client.HTTPConnection(secured.host, secured.port, timeout=10)
    connection.request("GET", "/diary")
    answer = connection.getresponse()
    assert answer.msg.get_all("WWW-Authenticate") == ALL_CHALLENGES
    connection.close()
    assert call("GET", f"{secured.url}/healthz").status == 200  # health stays open


def test_a_token_proves_the_author(secured, tokens):
    diary = secured.diary_url
    reply = post_commit(diary, "app.web", 1, b"one", auth=tokens.bearer("ci-bot"), comment="c")
    assert reply.status == 200, reply.text
    assert reply.json()["author"] == "ci-bot"  # no X-Rainer-Author needed
    same = post_commit(diary, "app.web", 2, b"two", auth=tokens.bearer("ci-bot"), author="ci-bot")
    assert same.status == 200
    other = post_commit(diary, "app.web", 3, b"3", auth=tokens.bearer("ci-bot"), author="alice")
    assert (other.status, other.text) == (403, "Forbidden: ci-bot may not commit as 'alice'")
    # An admin commits on behalf of a person (a release tool).
    behalf = post_commit(diary, "app.web", 3, b"3", auth=tokens.bearer("root"), author="alice")
    assert behalf.status == 200 and behalf.json()["author"] == "alice"
    got = call("GET", f"{diary}/app.web/meta", headers=tokens.bearer("viewer"))
    assert (got.status, got.json()["author"]) == (200, "alice")


def test_basic_credentials_name_the_principal(secured, tokens):
    got = call("GET", f"{secured.diary_url}?all=yes", headers=tokens.basic("viewer"))
    assert got.status == 200
    wrong_user = call("GET", secured.diary_url, headers=tokens.basic("viewer", user="root"))
    assert (wrong_user.status, wrong_user.text) == (401, "Invalid credentials")


def test_permissions_are_by_key_pattern(secured, tokens):
    diary = secured.diary_url
    assert post_commit(diary, "db.password", 1, b"s3cret", auth=tokens.bearer("root")).status == 200
    assert post_commit(diary, "public", 1, b"hello", auth=tokens.bearer("root")).status == 200
    refused = post_commit(diary, "db.password", 2, b"x", auth=tokens.bearer("ci-bot"))
    assert (refused.status, refused.text) == (403, "Forbidden: ci-bot may not write 'db.password'")
    viewer = tokens.bearer("viewer")
    assert post_commit(diary, "app.web", 9, b"x", auth=viewer).text == (
        "Forbidden: viewer may not write 'app.web'"
    )
    for url in (
        f"{diary}/db.password",
        f"{diary}/db.password/1/meta",
        f"{diary}/db.password/history",
    ):
        got = call("GET", url, headers=viewer)
        assert (got.status, got.text) == (403, "Forbidden: viewer may not read 'db.password'")
    # Lists show only what the caller may read, payloads included.
    listed = call("GET", f"{diary}?payload_utf8=yes", headers=viewer).json()
    assert "db.password" not in listed and "public" in listed
    assert "s3cret" not in json.dumps(listed)
    assert "db.password" in call("GET", diary, headers=tokens.bearer("root")).json()


def test_whoami(secured, tokens):
    got = call("GET", f"{secured.url}/whoami", headers=tokens.bearer("ci-bot")).json()
    assert got == {
        "principal": "ci-bot",
        "roles": ["deployer"],
        "admin": False,
        "read": ["*"],
        "write": ["app.*", "web.*"],
    }
    assert call("GET", f"{secured.url}/whoami").json()["principal"] == "anonymous"


def test_failed_authentications_are_rate_limited_per_address(tmp_path, tokens):
    args = [
        "--database",
        f"sqlite:///{tmp_path / 'r.db'}",
        "--auth",
        str(auth_file(tmp_path, tokens)),
    ]
    with RainerServer(args) as server:
        wrong = {"Authorization": "Bearer not-a-token"}
        statuses = [call("GET", server.diary_url, headers=wrong).status for _ in range(12)]
        assert statuses[:10] == [401] * 10 and statuses[10:] == [429, 429]
        limited = call("GET", server.diary_url, headers=tokens.bearer("viewer"))
        assert limited.status == 429 and int(limited.header("retry-after")) > 0
        assert limited.text.startswith("Too many failed authentications")
        # Requests without credentials are not held up.
        assert call("GET", f"{server.url}/whoami").status == 200


@pytest.mark.parametrize("trusted", [False, True])
def test_forwarded_addresses_are_believed_only_from_named_proxies(tmp_path, tokens, trusted):
    """Without --forwarded-allow-ips, an X-Forwarded-For cannot spread failed sign-ins over
    made-up addresses (nor write them into the audit log); from a named proxy it is believed."""
    args = [
        "--database",
        f"sqlite:///{tmp_path / 'r.db'}",
        "--auth",
        str(auth_file(tmp_path, tokens)),
    ]
    args += ["--audit-log", str(tmp_path / "audit.log")]
    args += ["--forwarded-allow-ips", "127.0.0.1"] if trusted else []
    with RainerServer(args) as server:
        wrong = {"Authorization": "Bearer not-a-token"}
        statuses = [
            call("GET", server.diary_url, headers={**wrong, "X-Forwarded-For": f"203.0.113.{n}"})
            for n in range(12)
        ]
        server.audit_path = tmp_path / "audit.log"
        addresses = {line["address"] for line in audit_lines(server)}
    if trusted:
        assert [reply.status for reply in statuses] == [401] * 12
        assert addresses == {f"203.0.113.{n}" for n in range(12)}
    else:
        assert [reply.status for reply in statuses] == [401] * 10 + [429] * 2
        assert addresses == {"127.0.0.1"}


@pytest.mark.parametrize("bad", ["10.0.0.300", "proxy.example.com", "10.0.0.0/33"])
def test_forwarded_allow_ips_takes_addresses_and_networks_only(tmp_path, bad):
    out = rainer(
        "serve", "--database", f"sqlite:///{tmp_path / 'r.db'}", "--forwarded-allow-ips", bad
    )
    assert out.returncode == 2 and f"not an IP address or network: {bad!r}" in out.stderr


def test_pyrainer_works_through_urllibs_basic_auth_handler(secured, tokens):
    """pyrainer is built on urllib.request: three lines give it credentials."""
    handler = urllib.request.HTTPBasicAuthHandler()
    handler.add_password("rainer", secured.url, "ci-bot", tokens.secret["ci-bot"])
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), handler)
    with opener.open(f"{secured.diary_url}/app.web/meta", timeout=10) as answer:
        assert json.loads(answer.read())["key"] == "app.web"


# -- the audit log ------------------------------------------------------------------------------


def test_every_write_attempt_is_audited_without_payloads_or_tokens(secured, tokens):
    diary = secured.diary_url
    before = len(audit_lines(secured))
    payload = b"audited payload"
    attempts = [
        (200, post_commit(diary, "web.audit", 1, payload, auth=tokens.bearer("ci-bot"))),
        (409, post_commit(diary, "web.audit", 1, payload, auth=tokens.bearer("ci-bot"))),
        (400, post_commit(diary, "web.audit", 2, payload, auth=tokens.bearer("ci-bot"), empty="x")),
        (403, post_commit(diary, "db.audit", 1, payload, auth=tokens.bearer("ci-bot"))),
        (401, post_commit(diary, "web.audit", 2, payload, author="mallory")),
        (401, post_commit(diary, "web.audit", 2, payload, auth={"Authorization": "Bearer nope"})),
        (
            431,
            post_commit(
                diary, "web.audit", 2, b"x", auth=tokens.bearer("ci-bot"), comment="c" * 17000
            ),
        ),
    ]
    assert [reply.status for _, reply in attempts] == [status for status, _ in attempts]
    lines = audit_lines(secured)[before:]
    assert [line["status"] for line in lines] == [status for status, _ in attempts]
    first = lines[0]
    assert first["principal"] == "ci-bot" and first["outcome"] == "committed"
    assert (first["key"], first["version"], first["method"]) == ("web.audit", "1", "POST")
    assert first["size"] == len(payload)
    import hashlib

    assert first["sha256"] == hashlib.sha256(payload).hexdigest()
    assert first["address"] == "127.0.0.1" and first["time"].endswith("+00:00")
    assert lines[4]["principal"] == "anonymous" and lines[4]["outcome"] == "refused"
    assert lines[5]["outcome"] == "authentication failed" and lines[5]["principal"] is None
    text = secured.audit_path.read_text()
    assert "audited payload" not in text
    assert not any(secret in text for secret in tokens.secret.values())


def test_a_failed_authentication_on_a_read_is_audited(secured):
    before = len(audit_lines(secured))
    assert call("GET", secured.diary_url, headers={"Authorization": "Basic !!"}).status == 401
    line = audit_lines(secured)[before]
    assert (line["method"], line["status"], line["outcome"]) == (
        "GET",
        401,
        "authentication failed",
    )


# -- SIGHUP -------------------------------------------------------------------------------------


def test_sighup_rereads_the_auth_file_and_reopens_the_audit_log(tmp_path, tokens):
    path = auth_file(tmp_path, tokens)
    audit = tmp_path / "audit.log"
    args = [
        "--database",
        f"sqlite:///{tmp_path / 'r.db'}",
        "--auth",
        str(path),
        "--audit-log",
        str(audit),
    ]
    with RainerServer(args) as server:
        import http.client

        kept = http.client.HTTPConnection(server.host, server.port, timeout=10)
        kept.request("GET", "/whoami", headers=tokens.bearer("viewer"))
        assert kept.getresponse().read()
        auth_file(tmp_path, tokens, "newcomer")
        audit.rename(tmp_path / "audit.log.1")
        os.kill(server.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while call("GET", f"{server.url}/whoami", headers=tokens.bearer("newcomer")).status != 200:
            assert time.monotonic() < deadline, server.log_tail()
            time.sleep(0.05)
        post_commit(server.diary_url, "app.after", 1, b"x", auth=tokens.bearer("ci-bot"))
        assert audit.exists() and "app.after" in audit.read_text()  # a new file after rotation
        # The kept-alive connection was not dropped.
        kept.request("GET", "/whoami", headers=tokens.bearer("viewer"))
        assert json.loads(kept.getresponse().read())["principal"] == "viewer"
        # A broken file is refused, with the line, and the last good one stays in force.
        path.write_text("principals:\n  bob: {roles: [nope]}\n")
        os.kill(server.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "line 2: 'bob': no role 'nope'" not in server.log_text():
            assert time.monotonic() < deadline, server.log_tail()
            time.sleep(0.05)
        assert call("GET", f"{server.url}/whoami", headers=tokens.bearer("newcomer")).status == 200
        kept.close()


# -- secure by default --------------------------------------------------------------------------


def test_an_open_server_on_a_network_address_refuses_to_start(tmp_path):
    out = rainer("serve", "--host", "0.0.0.0", "--database", f"sqlite:///{tmp_path / 'r.db'}")
    assert out.returncode == 2
    assert "--auth FILE" in out.stderr and "--no-auth" in out.stderr
    assert "Traceback" not in out.stderr


# -- TLS ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca(tmp_path_factory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory, ca, tokens):
    folder = tmp_path_factory.mktemp("tls")
    served = ca.server()
    args = [
        "--database", f"sqlite:///{folder / 'r.db'}",
        "--auth", str(auth_file(folder, tokens)),
        "--tls-cert", str(served.cert), "--tls-key", str(served.key),
        "--tls-client-ca", str(ca.cert),
    ]  # fmt: skip
    with RainerServer(args, tls=ca.context()) as server:
        yield server


def test_a_client_certificate_names_its_principal(tls_server, ca):
    alice = ca.context(ca.client("alice"))
    got = call("GET", f"{tls_server.url}/whoami", tls=alice)
    assert got.json()["principal"] == "alice"
    reply = post_commit(tls_server.diary_url, "tls.key", 1, b"x", tls=alice)
    assert reply.status == 200 and reply.json()["author"] == "alice"
    # A certificate naming no principal is anonymous; tokens still work without a certificate.
    stranger = ca.context(ca.client("stranger"))
    assert call("GET", f"{tls_server.url}/whoami", tls=stranger).json()["principal"] == "anonymous"


def test_tokens_work_over_tls_without_a_certificate(tls_server, ca, tokens):
    got = call("GET", f"{tls_server.url}/whoami", headers=tokens.bearer("ci-bot"), tls=ca.context())
    assert got.json()["principal"] == "ci-bot"


def test_a_certificate_from_another_ca_is_refused(tls_server, ca, tmp_path):
    forged = TestCA(tmp_path / "other", name="Another CA").client("alice")
    context = ca.context(forged)  # trusts the server; presents what our CA never issued
    with pytest.raises(OSError):  # ssl.SSLError or a reset: the handshake is refused
        call("GET", f"{tls_server.url}/whoami", tls=context)
