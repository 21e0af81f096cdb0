"""The client side of ``rainer serve --auth``, against real servers: tokens made by ``rainer auth
token`` (from RAINER_TOKEN, --token-file or RAINER_TOKEN_FILE), ``rainer whoami``, refusals as
one line and exit status 4, credentials in a URL, a TLS server asking for client certificates,
a server fronting a secured one, and never a secret printed."""

from __future__ import annotations

import json
import textwrap

import pytest
from cli_helpers import rainer

from harness.certs import TestCA
from harness.rainer import RainerServer
from rainer.client import (
    RainerClient,
    RainerForbiddenError,
    RainerTLSError,
    RainerUnauthorizedError,
    redact_url,
)

EXIT_DENIED = 4


class Tokens:
    """A token per principal, made by ``rainer auth token``: the secret and its auth-file line."""

    def __init__(self, names: list[str]) -> None:
        self.secret: dict[str, str] = {}
        self.line: dict[str, str] = {}
        for name in names:
            made = rainer("auth", "token", url=None)
            assert made.code == 0, made.stderr
            self.secret[name], self.line[name] = made.out.split()


@pytest.fixture(scope="module")
def tokens() -> Tokens:
    return Tokens(["ci-bot", "viewer", "root", "rotator"])


def write_auth_file(folder, tokens: Tokens):
    path = folder / "auth.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            roles:
              deployer: {{read: ["*"], write: ["app.*"]}}
              reader: {{read: ["app.*"]}}
              rotator: {{write: ["vault.*"]}}
            principals:
              ci-bot: {{roles: [deployer], tokens: ["{tokens.line["ci-bot"]}"]}}
              viewer: {{roles: [reader], tokens: ["{tokens.line["viewer"]}"]}}
              root: {{roles: [admin], tokens: ["{tokens.line["root"]}"]}}
              rotator: {{roles: [rotator], tokens: ["{tokens.line["rotator"]}"]}}
              alice: {{roles: [deployer], certificates: ["alice"]}}
            anonymous: {{roles: []}}
            """
        )
    )
    return path


@pytest.fixture(scope="module")
def secured(tmp_path_factory, tokens):
    folder = tmp_path_factory.mktemp("secured")
    args = [
        "--database",
        f"sqlite:///{folder / 'r.db'}",
        "--auth",
        str(write_auth_file(folder, tokens)),
    ]
    with RainerServer(args) as server:
        yield server


def run(server, *args: str, token: str | None = None, **env: str | None):
    """``rainer ARGS`` against ``server``, with ``token`` in RAINER_TOKEN and no author set."""
    return rainer(*args, url=server.diary_url, RAINER_TOKEN=token, RAINER_AUTHOR=None, **env)


def no_secret_in(tokens: Tokens, *texts: str | bytes) -> bool:
    joined = "".join(t.decode("utf-8", "replace") if isinstance(t, bytes) else t for t in texts)
    return not any(secret in joined for secret in tokens.secret.values())


# -- tokens -------------------------------------------------------------------------------------


def test_whoami_prints_the_principal_its_roles_and_permissions(secured, tokens):
    got = run(secured, "whoami", token=tokens.secret["ci-bot"])
    assert got.code == 0, got.stderr
    assert got.out.splitlines() == [
        "ci-bot",
        "roles: deployer",
        "may read: *",
        "may write: app.*",
    ]
    admin = run(secured, "whoami", "--json", token=tokens.secret["root"])
    assert json.loads(admin.out)["admin"] is True
    anonymous = run(secured, "whoami")
    assert anonymous.out.splitlines()[0] == "anonymous"
    assert no_secret_in(tokens, got.out, got.stderr, admin.out)


def test_the_token_comes_from_a_file_too(secured, tokens, tmp_path):
    path = tmp_path / "token"
    path.write_text(tokens.secret["viewer"] + "\n")
    got = run(secured, "whoami", "--token-file", str(path))
    assert got.out.splitlines()[0] == "viewer", got.stderr
    got = run(secured, "whoami", RAINER_TOKEN_FILE=str(path))
    assert got.out.splitlines()[0] == "viewer", got.stderr
    # The option beats the environment.
    got = run(secured, "whoami", "--token-file", str(path), token=tokens.secret["root"])
    assert got.out.splitlines()[0] == "viewer"
    missing = run(secured, "whoami", "--token-file", str(tmp_path / "nope"))
    assert missing.code == 2 and "cannot read the --token-file" in missing.stderr


def test_a_token_is_never_taken_on_the_command_line(secured, tokens):
    for option in ("--token", "--token-f"):  # not even as an abbreviation of --token-file
        got = run(secured, "list", option, tokens.secret["ci-bot"])
        assert got.code == 2
        assert "unrecognized arguments" in got.stderr
    mistaken = run(secured, "list", "--token-file", tokens.secret["ci-bot"])
    assert mistaken.code == 2 and "cannot read the --token-file" in mistaken.stderr
    assert no_secret_in(tokens, got.stderr, mistaken.stderr)


def test_commits_are_recorded_as_the_principal(secured, tokens):
    got = run(secured, "commit-value", "app.one", "-m", "hi", token=tokens.secret["ci-bot"])
    assert got.code == 0, got.stderr
    assert json.loads(got.out)["author"] == "ci-bot"
    # An author named explicitly is sent, and only an admin may name someone else.
    other = run(
        secured, "commit-value", "app.one", "-m", "hi", "--author", "carol",
        token=tokens.secret["ci-bot"], stdin=b"carol's",
    )  # fmt: skip
    assert other.code == EXIT_DENIED
    assert other.stderr == (
        "rainer commit-value: error: refused (403): Forbidden: ci-bot may not commit as 'carol'\n"
    )
    behalf = run(
        secured, "commit-value", "app.one", "-m", "hi", "--author", "carol",
        token=tokens.secret["root"], stdin=b"carol's",
    )  # fmt: skip
    assert behalf.code == 0 and json.loads(behalf.out)["author"] == "carol"


def test_a_principal_that_may_write_but_not_read_commits_the_version_it_names(secured, tokens):
    # It cannot read the newest payload to compare with, so its commits go ahead unchecked.
    token = tokens.secret["rotator"]
    for version in ("1", "2"):
        got = run(
            secured, "commit-value", "vault.key", version, "-m", "rotate", token=token,
            stdin=b"same secret",
        )  # fmt: skip
        assert got.code == 0, got.stderr
        assert json.loads(got.out)["version"] == int(version)
    # Without a version, the newest must be read to know the next: refused, as ever.
    unnamed = run(secured, "commit-value", "vault.key", "-m", "rotate", token=token)
    assert unnamed.code == EXIT_DENIED and "may not read 'vault.key'" in unnamed.stderr


def test_plan_and_apply_with_a_token(secured, tokens, tmp_path):
    (tmp_path / "app.cfg").write_text("x: 1\n")
    token = tokens.secret["ci-bot"]
    plan = run(
        secured, "plan", str(tmp_path / "app.cfg"), "--out", str(tmp_path / "p"), token=token
    )
    assert plan.code == 2, plan.stderr
    applied = run(secured, "apply", str(tmp_path / "p"), "--json", token=token)
    assert applied.code == 0, applied.stderr
    assert json.loads(applied.out)["author"] == "ci-bot"


@pytest.mark.parametrize(
    ("args", "token", "expected"),
    [
        (
            ("show", "app.one"),
            None,
            "rainer show: error: refused (401): Authentication required to read 'app.one' "
            "(the server took this request as anonymous: set RAINER_TOKEN or --token-file)\n",
        ),
        (
            ("list",),
            "not-a-token",
            "rainer list: error: refused (401): Invalid credentials (check the token in "
            "RAINER_TOKEN or --token-file)\n",
        ),
        (
            ("show", "db.secret"),
            "viewer",
            "rainer show: error: refused (403): Forbidden: viewer may not read 'db.secret'\n",
        ),
        (
            ("commit-value", "app.two", "-m", "m"),
            "viewer",
            "rainer commit-value: error: refused (403): Forbidden: viewer may not write "
            "'app.two'\n",
        ),
    ],
)
def test_a_refusal_is_one_line_naming_what_the_server_said_and_exit_4(
    secured, tokens, args, token, expected
):
    got = run(secured, *args, token=tokens.secret.get(token, token))
    assert (got.code, got.stderr) == (EXIT_DENIED, expected)


def test_debug_shows_each_exchange_but_no_secret(secured, tokens):
    bad = "wrong-" + tokens.secret["viewer"][6:]
    got = run(secured, "--debug", "list", token=bad)
    assert got.code == EXIT_DENIED
    assert f"rainer: debug: GET {secured.diary_url} -> 401 in " in got.stderr
    assert "with credentials" in got.stderr
    assert bad not in got.stderr and no_secret_in(tokens, got.stderr, got.stdout)
    good = run(secured, "--debug", "whoami", token=tokens.secret["viewer"])
    assert good.code == 0 and no_secret_in(tokens, good.stderr, good.stdout)


def test_credentials_in_the_url_work_and_are_never_shown(secured, tokens):
    secret = tokens.secret["ci-bot"]
    url = secured.diary_url.replace("://", f"://ci-bot:{secret}@")
    committed = rainer("commit-value", "app.url", "-m", "m", url=url, RAINER_AUTHOR=None)
    assert committed.code == 0 and json.loads(committed.out)["author"] == "ci-bot"
    listed = rainer("--debug", "list", url=url)
    assert f"app.url\t1\t{secured.diary_url}/app.url/1" in listed.out
    missing = rainer("--debug", "show", "app.nothing", url=url)
    assert missing.code == 1 and "not found" in missing.stderr
    bad = rainer("list", url=url.replace("ci-bot:", "viewer:"))
    assert bad.code == EXIT_DENIED and "Invalid credentials" in bad.stderr
    for text in (listed.out, listed.stderr, missing.stderr, bad.stderr, committed.stderr):
        assert secret not in text
    assert redact_url(url) == secured.diary_url.replace("://", "://***@")
    assert secret not in repr(RainerClient(url)) and RainerClient(url).url == secured.diary_url


def test_the_client_takes_a_token_and_raises_typed_refusals(secured, tokens):
    client = RainerClient(secured.diary_url, token=tokens.secret["viewer"])
    assert client.whoami()["principal"] == "viewer"
    with pytest.raises(RainerForbiddenError) as forbidden:
        client.post_commit({"key": "app.x", "version": 1, "author": None}, "x")
    error = forbidden.value
    assert error.status == 403 and "may not write 'app.x'" in str(error)
    assert (error.principal, error.permission, error.key) == ("viewer", "write", "app.x")
    with pytest.raises(RainerForbiddenError) as forbidden:
        RainerClient(secured.diary_url, token=tokens.secret["ci-bot"]).post_commit(
            {"key": "app.x", "version": 1, "author": "carol"}, "x"
        )
    error = forbidden.value
    assert (error.principal, error.permission, error.key) == (
        "ci-bot",
        "commit as 'carol'",
        "app.x",
    )
    with pytest.raises(RainerUnauthorizedError) as unauthorized:
        RainerClient(secured.diary_url).get_value("app.x")
    error = unauthorized.value
    assert (error.principal, error.permission, error.key) == ("anonymous", "read", "app.x")
    with pytest.raises(RainerUnauthorizedError) as unauthorized:
        RainerClient(secured.diary_url, token="nope").list()
    assert unauthorized.value.principal is None
    with pytest.raises(ValueError, match="one word"):
        RainerClient(secured.diary_url, token="two words")
    with pytest.raises(ValueError, match="credentials twice"):
        RainerClient(secured.diary_url.replace("://", "://a:b@"), token="t")
    open_server = RainerClient(secured.diary_url.replace(str(secured.port), "1"))
    assert "token" not in repr(open_server)


# -- TLS with client certificates ---------------------------------------------------------------


@pytest.fixture(scope="module")
def ca(tmp_path_factory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory, ca, tokens):
    folder = tmp_path_factory.mktemp("tls")
    served = ca.server()
    args = [
        "--database", f"sqlite:///{folder / 'r.db'}",
        "--auth", str(write_auth_file(folder, tokens)),
        "--tls-cert", str(served.cert), "--tls-key", str(served.key),
        "--tls-client-ca", str(ca.cert),
    ]  # fmt: skip
    with RainerServer(args, tls=ca.context()) as server:
        yield server


def test_a_client_certificate_from_the_environment(tls_server, ca):
    alice = ca.client("alice")
    env = {
        "RAINER_CA_FILE": str(ca.cert),
        "RAINER_CLIENT_CERT": str(alice.cert),
        "RAINER_CLIENT_KEY": str(alice.key),
    }
    got = run(tls_server, "whoami", **env)
    assert got.code == 0, got.stderr
    assert got.out.splitlines()[:2] == ["alice", "roles: deployer"]
    committed = run(tls_server, "commit-value", "app.tls", "-m", "over TLS", **env)
    assert committed.code == 0 and json.loads(committed.out)["author"] == "alice"
    # The options beat the environment.
    stranger = ca.client("stranger")
    got = run(
        tls_server, "whoami", "--client-cert", str(stranger.cert), "--client-key",
        str(stranger.key), **env,
    )  # fmt: skip
    assert got.out.splitlines()[0] == "anonymous"


def test_a_token_over_tls_and_an_untrusted_server(tls_server, ca, tokens):
    got = run(tls_server, "whoami", token=tokens.secret["ci-bot"], RAINER_CA_FILE=str(ca.cert))
    assert got.out.splitlines()[0] == "ci-bot", got.stderr
    untrusted = run(tls_server, "whoami", token=tokens.secret["ci-bot"])
    assert untrusted.code == 1 and "TLS failed" in untrusted.stderr
    with pytest.raises(RainerTLSError):
        RainerClient(tls_server.diary_url, token=tokens.secret["ci-bot"]).whoami()


def test_a_server_fronts_a_secured_tls_server_with_the_same_environment(tls_server, ca, tokens):
    env = {"RAINER_TOKEN": tokens.secret["root"], "RAINER_CA_FILE": str(ca.cert)}
    with RainerServer(["--database", tls_server.diary_url], env=env) as front:
        plain = RainerClient(front.diary_url)
        meta = plain.post_commit(
            {"key": "app.fronted", "version": 1, "author": "dave", "comment": "via the front"},
            "x",
        )
        assert meta["author"] == "dave"  # root is an admin: it commits on dave's behalf
        behind = RainerClient(
            tls_server.diary_url, token=tokens.secret["viewer"], ca_path=str(ca.cert)
        )
        assert behind.get_metadata("app.fronted") == meta
        assert no_secret_in(tokens, front.log_text())
