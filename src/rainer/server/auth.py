"""Who may read and commit what: the ``--auth FILE`` policy.

The file names roles (key patterns that may be read and written) and principals (who holds which
roles, proven by a token or a TLS client certificate)::

    roles:
      deployer: {read: ["*"], write: ["app.*", "web.*"]}
      reader: {read: ["*"]}
    principals:
      ci-bot: {roles: [deployer], tokens: ["sha256:<hex SHA-256 of the token>"]}
      alice: {roles: [admin], certificates: ["alice"]}   # TLS client certificate subject CN
    anonymous: {roles: []}                               # a request without credentials

A pattern is a whole key, or a prefix ending in ``*`` (``*`` alone is every key). The role
``admin`` is built in: every key, and it may commit on behalf of another author. Tokens are kept
only as SHA-256 hashes, so the file holds no secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from rainer.server.responses import Refused

ADMIN = "admin"
ANONYMOUS = "anonymous"
_HASH = re.compile(r"sha256:([0-9a-f]{64})")
_NAME = re.compile(r"[^\s:/]{1,128}")


class PolicyError(ValueError):
    """An auth file that cannot be used: says where and why."""


@dataclass(frozen=True)
class Patterns:
    """Keys matched by whole names and by prefixes (patterns ending in ``*``)."""

    names: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()

    @classmethod
    def of(cls, patterns: list[str]) -> Patterns:
        names = frozenset(p for p in patterns if not p.endswith("*"))
        prefixes = tuple(sorted({p[:-1] for p in patterns if p.endswith("*")}))
        return cls(names, prefixes)

    def __or__(self, other: Patterns) -> Patterns:
        return Patterns(
            self.names | other.names, tuple(sorted(set(self.prefixes) | set(other.prefixes)))
        )

    def match(self, key: str) -> bool:
        return key in self.names or key.startswith(self.prefixes)

    @property
    def everything(self) -> bool:
        return "" in self.prefixes

    @property
    def nothing(self) -> bool:
        return not self.names and not self.prefixes

    def shown(self) -> list[str]:
        return sorted(self.names) + [prefix + "*" for prefix in self.prefixes]


@dataclass(frozen=True)
class Principal:
    """Who a request comes from, and what its roles let it do."""

    name: str
    roles: tuple[str, ...]
    read: Patterns = field(default_factory=Patterns)
    write: Patterns = field(default_factory=Patterns)

    @property
    def admin(self) -> bool:
        return ADMIN in self.roles

    @property
    def anonymous(self) -> bool:
        return self.name == ANONYMOUS

    def can_read(self, key: str) -> bool:
        return self.read.match(key)

    def can_write(self, key: str) -> bool:
        return self.write.match(key)

    def describe(self) -> dict[str, object]:
        """What ``GET /whoami`` answers."""
        return {
            "principal": self.name,
            "roles": list(self.roles),
            "admin": self.admin,
            "read": self.read.shown(),
            "write": self.write.shown(),
        }


class Policy:
    """A loaded auth file: principals by token hash, by certificate name, and anonymous."""

    def __init__(
        self,
        principals: dict[str, Principal],
        tokens: dict[str, list[str]],
        certificates: dict[str, str],
        anonymous: Principal,
    ) -> None:
        self.principals = principals
        self._tokens = tokens  # principal -> hex digests
        self._by_digest = {digest: name for name, digests in tokens.items() for digest in digests}
        self._certificates = certificates  # CN -> principal
        self.anonymous = anonymous

    def by_token(self, token: str, user: str | None = None) -> Principal | None:
        """The principal holding ``token`` (and named ``user``, for HTTP Basic), or None."""
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()
        name = self._by_digest.get(digest)
        if name is None or (user is not None and user != name):
            return None
        # The lookup is by hash, so timing tells nothing of the token; compare anyway.
        if not any(hmac.compare_digest(digest, known) for known in self._tokens[name]):
            return None
        return self.principals[name]

    def by_certificate(self, common_name: str) -> Principal | None:
        name = self._certificates.get(common_name)
        return None if name is None else self.principals[name]


def load_policy(path: str | Path) -> Policy:
    """Read and check an auth file; PolicyError names the line and the reason."""
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: cannot read: {exc}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path} line {mark.line + 1}" if mark else str(path)
        raise PolicyError(f"{where}: not YAML: {getattr(exc, 'problem', exc)}") from None
    return _Reader(path).policy(root)


class _Reader:
    """Walks the YAML nodes, so every complaint can name its line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, node: yaml.Node | None, reason: str) -> PolicyError:
        where = f"{self.path} line {node.start_mark.line + 1}" if node is not None else self.path
        return PolicyError(f"{where}: {reason}")

    def mapping(
        self, node: yaml.Node, what: str, known: set[str] | None = None
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{what} must be a mapping")
        found: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str) or not key:
                raise self.fail(key_node, f"{what}: names must be text")
            if key in found:
                raise self.fail(key_node, f"{what}: {key!r} is given twice")
            if known is not None and key not in known:
                raise self.fail(key_node, f"{what}: unknown field {key!r} (known: {sorted(known)})")
            found[key] = (key_node, value_node)
        return found

    def strings(
        self, field: tuple[yaml.Node, yaml.Node] | None, what: str
    ) -> list[tuple[yaml.Node, str]]:
        """The items of a list of text (none when the field is absent)."""
        if field is None:
            return []
        node = field[1]
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, f"{what} must be a list")
        found: list[tuple[yaml.Node, str]] = []
        for item in node.value:
            if not isinstance(item, yaml.ScalarNode) or not item.value:
                raise self.fail(item, f"{what}: every item must be non-empty text")
            found.append((item, item.value))
        return found

    def patterns(self, field: tuple[yaml.Node, yaml.Node] | None, what: str) -> Patterns:
        found = []
        for item, pattern in self.strings(field, what):
            if "*" in pattern[:-1] or "/" in pattern:
                raise self.fail(item, f"{what}: {pattern!r} is not a key or a prefix ending in *")
            found.append(pattern)
        return Patterns.of(found)

    def policy(self, root: yaml.Node | None) -> Policy:
        if root is None:
            raise self.fail(None, "the file is empty")
        top = self.mapping(root, "the file", {"roles", "principals", "anonymous"})
        roles: dict[str, tuple[Patterns, Patterns]] = {ADMIN: (Patterns.of(["*"]),) * 2}
        if "roles" in top:
            for name, (key_node, value) in self.mapping(top["roles"][1], "roles").items():
                if name == ADMIN:
                    raise self.fail(key_node, "'admin' is built in and cannot be redefined")
                fields = self.mapping(value, f"role {name!r}", {"read", "write"})
                roles[name] = (
                    self.patterns(fields.get("read"), f"role {name!r} read"),
                    self.patterns(fields.get("write"), f"role {name!r} write"),
                )
        principals: dict[str, Principal] = {}
        tokens: dict[str, list[str]] = {}
        certificates: dict[str, str] = {}
        if "principals" in top:
            for name, (key_node, value) in self.mapping(top["principals"][1], "principals").items():
                if not _NAME.fullmatch(name) or name == ANONYMOUS:
                    raise self.fail(key_node, f"{name!r} cannot name a principal")
                known = {"roles", "tokens", "certificates"}
                fields = self.mapping(value, f"principal {name!r}", known)
                principals[name] = self.principal(name, fields, roles)
                tokens[name] = [
                    self.token(item, text, name)
                    for item, text in self.strings(fields.get("tokens"), f"{name!r} tokens")
                ]
                for item, common in self.strings(
                    fields.get("certificates"), f"{name!r} certificates"
                ):
                    if common in certificates:
                        owner = certificates[common]
                        raise self.fail(
                            item, f"certificate name {common!r} already names {owner!r}"
                        )
                    certificates[common] = name
        anonymous = Principal(ANONYMOUS, ())
        if "anonymous" in top:
            fields = self.mapping(top["anonymous"][1], "anonymous", {"roles"})
            anonymous = self.principal(ANONYMOUS, fields, roles)
            if anonymous.admin:
                raise self.fail(top["anonymous"][1], "anonymous cannot be admin")
        return Policy(principals, tokens, certificates, anonymous)

    def token(self, item: yaml.Node, text: str, name: str) -> str:
        match = _HASH.fullmatch(text)
        if match is None:
            raise self.fail(
                item, f"{name!r}: a token is 'sha256:' and 64 hex digits (see 'rainer auth token')"
            )
        return match.group(1)

    def principal(
        self,
        name: str,
        fields: dict[str, tuple[yaml.Node, yaml.Node]],
        roles: dict[str, tuple[Patterns, Patterns]],
    ) -> Principal:
        held: list[str] = []
        read = write = Patterns()
        for item, role in self.strings(fields.get("roles"), f"{name!r} roles"):
            if role not in roles:
                raise self.fail(item, f"{name!r}: no role {role!r} (roles: {sorted(roles)})")
            held.append(role)
            read, write = read | roles[role][0], write | roles[role][1]
        return Principal(name, tuple(held), read, write)


def new_token() -> tuple[str, str]:
    """A new random token and the ``sha256:`` line that goes into the auth file."""
    token = secrets.token_urlsafe(32)
    return token, "sha256:" + hashlib.sha256(token.encode()).hexdigest()


class Credentials:
    """What a request offers to prove who sent it."""

    __slots__ = ("basic_user", "certificate", "token")

    def __init__(self, authorization: bytes | None, certificate: str | None) -> None:
        self.token: str | None = None
        self.basic_user: str | None = None
        self.certificate = certificate
        if authorization is None:
            return
        scheme, _, value = authorization.decode("latin-1").strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and value:
            self.token = value
        elif scheme.lower() == "basic" and value:
            try:
                decoded = base64.b64decode(value, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            user, colon, password = decoded.partition(":")
            if colon and user and password:
                self.basic_user, self.token = user, password
            else:
                self.token = ""  # malformed: counts as a wrong credential
        else:
            self.token = ""

    @property
    def offered(self) -> bool:
        return self.token is not None


class FailureLimiter:
    """Failed authentications per remote address: beyond ``limit`` within ``window`` seconds,
    the address gets 429 until the window has passed."""

    def __init__(self, limit: int = 10, window: float = 60.0, addresses: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self.addresses = addresses
        self._lock = threading.Lock()
        self._failures: OrderedDict[str, list[float]] = OrderedDict()

    def retry_after(self, address: str) -> int:
        """Seconds until ``address`` may try again; 0 when it may now."""
        with self._lock:
            times = self._recent(address)
            if len(times) < self.limit:
                return 0
            return max(1, int(times[0] + self.window - time.monotonic()) + 1)

    def failed(self, address: str) -> None:
        with self._lock:
            self._recent(address).append(time.monotonic())
            self._failures.move_to_end(address)
            while len(self._failures) > self.addresses:
                self._failures.popitem(last=False)

    def _recent(self, address: str) -> list[float]:
        times = self._failures.setdefault(address, [])
        cutoff = time.monotonic() - self.window
        while times and times[0] < cutoff:
            times.pop(0)
        return times


#: The challenges of a 401: Basic, which urllib's HTTPBasicAuthHandler (pyrainer's) answers,
#: and Bearer, for tokens.
CHALLENGES = [
    ("WWW-Authenticate", 'Basic realm="rainer", charset="UTF-8"'),
    ("WWW-Authenticate", 'Bearer realm="rainer"'),
]


class Guard:
    """The server's side of ``--auth FILE``: identifies each request's principal, counting
    failed attempts per address, and re-reads the file on request (SIGHUP), keeping the last
    good policy when the new file is refused."""

    def __init__(self, path: str | Path, limiter: FailureLimiter | None = None) -> None:
        self.path = Path(path)
        self.policy = load_policy(self.path)
        self.limiter = limiter or FailureLimiter()

    def reload(self) -> None:
        """Read the file again; PolicyError (and the old policy kept) when it is refused."""
        self.policy = load_policy(self.path)

    def identify(self, credentials: Credentials, address: str) -> Principal:
        """The principal behind ``credentials``; Refused with 401 for credentials that prove
        nothing, 429 for an address that failed too often."""
        policy = self.policy
        if credentials.offered:
            wait = self.limiter.retry_after(address)
            if wait:
                raise Refused(
                    429,
                    f"Too many failed authentications: try again in {wait} s",
                    [("Retry-After", str(wait))],
                )
            found = policy.by_token(credentials.token or "", credentials.basic_user)
            if found is None:
                self.limiter.failed(address)
                raise Refused(401, "Invalid credentials", CHALLENGES)
            return found
        if credentials.certificate is not None:
            found = policy.by_certificate(credentials.certificate)
            if found is not None:
                return found
        return policy.anonymous

    @staticmethod
    def refuse(principal: Principal, key: str, permission: str) -> Refused:
        """401 for anonymous (credentials could help), 403 naming what is missing otherwise."""
        if principal.anonymous:
            return Refused(401, f"Authentication required to {permission} {key!r}", CHALLENGES)
        return Refused(403, f"Forbidden: {principal.name} may not {permission} {key!r}")
