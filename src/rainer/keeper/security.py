"""Who the servers are to ZooKeeper, what the nodes they create let others do, and TLS.

- ``DigestCredentials``: the servers' ``user:password`` for ZooKeeper's ``digest`` scheme, read
  from a file (``--zk-auth FILE``) or the environment (``RAINER_ZK_AUTH``), never from a
  command line, and never shown: its ``repr`` and ``str`` leave the password out.
- ``node_acl``: the ACL of every node a server creates: everything for the servers' identity,
  and reading for everyone (``world``) or for nobody else (``servers``).
- ``TlsSettings``: the files kazoo's TLS connection uses, checked before the first connection.

ZooKeeper never refuses a digest identity: ``user:password`` only names one (the user and a
SHA-1 of both), and a wrong password names another identity that the ACLs do not let in. So a
wrong password shows only when the server tries to change a node (``Keeper.secure_base``).
"""

from __future__ import annotations

import os
import ssl
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from kazoo.security import ACL, ANYONE_ID_UNSAFE, Id, Permissions, make_digest_acl_credential

from rainer import defaults
from rainer.errors import RainerError

ReadAccess = Literal["world", "servers"]
READ_ACCESS: tuple[ReadAccess, ...] = ("world", "servers")

#: The environment variables that carry the credentials (the command line never does).
ENV_CREDENTIALS = "RAINER_ZK_AUTH"
ENV_CREDENTIALS_FILE = "RAINER_ZK_AUTH_FILE"


class ZooKeeperSecurityError(RainerError):
    """ZooKeeper's security settings cannot work as given: an unreadable or unsafe credentials
    file, TLS files that do not load, or ACLs that keep this server from writing. The message
    is one line meant for the operator; it never holds a password."""


@dataclass(frozen=True)
class DigestCredentials:
    """A ZooKeeper ``digest`` identity. ``source`` says where it came from, for messages."""

    user: str
    password: str = field(repr=False)
    source: str = ""

    def __str__(self) -> str:
        return f"digest user {self.user!r}"

    @property
    def auth_data(self) -> tuple[str, str]:
        """What kazoo sends to authenticate: ``("digest", "user:password")``."""
        return ("digest", f"{self.user}:{self.password}")

    @property
    def identity(self) -> Id:
        """The identity ACLs name: ``digest:user:base64(sha1(user:password))``."""
        return Id("digest", make_digest_acl_credential(self.user, self.password))


def parse_credentials(text: str, source: str) -> DigestCredentials:
    """``user:password`` (one line; a final line break is dropped) as credentials. The user may
    not hold ':' (ZooKeeper splits at the first one); the password may. Messages never quote
    the text: it may be a password."""
    line = text.removesuffix("\n").removesuffix("\r")
    user, colon, password = line.partition(":")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in line):
        raise ZooKeeperSecurityError(f"{source} must hold one line, USER:PASSWORD")
    if not colon or not user or not password:
        hint = ""
        if source == ENV_CREDENTIALS and not colon:
            hint = f" itself (to name a file, use --zk-auth FILE or {ENV_CREDENTIALS_FILE})"
        raise ZooKeeperSecurityError(f"{source} must hold USER:PASSWORD{hint}")
    return DigestCredentials(user, password, source)


def private_file_problem(mode: int, owner: int) -> str | None:
    """Why a credentials file with this mode and owner is unsafe, or None.

    Nobody but its owner may read or write it, as ssh and libpq demand of private keys and
    password files. One exception, PostgreSQL's for its key file: a file owned by root may also
    be read by its group (``root:rainer 0640``, as configuration management deploys secrets
    for a service running in group ``rainer``).
    """
    others = stat.S_IRWXO
    group = stat.S_IWGRP | stat.S_IXGRP if owner == 0 else stat.S_IRWXG
    if mode & (others | group):
        allowed = "0600, or 0640 when owned by root" if owner == 0 else "0600"
        return f"its mode {stat.S_IMODE(mode):04o} lets others read or change it (use {allowed})"
    return None


def read_credentials_file(path: str | os.PathLike[str], source: str) -> DigestCredentials:
    """The credentials in ``path``; refused when the file may be read by others (see
    ``private_file_problem``): a password anyone on the machine can read protects nothing."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block the open
            raise ZooKeeperSecurityError(f"{source}: not a regular file")
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            if os.name == "posix":
                problem = private_file_problem(info.st_mode, info.st_uid)
                if problem:
                    raise ZooKeeperSecurityError(f"{source}: {problem}")
            raw = handle.read(4097)
    except OSError as exc:
        raise ZooKeeperSecurityError(f"cannot read {source}: {exc.strerror or exc}") from None
    if len(raw) > 4096:
        raise ZooKeeperSecurityError(f"{source} is too large for USER:PASSWORD")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ZooKeeperSecurityError(f"{source} is not UTF-8 text") from None
    return parse_credentials(text, source)


def find_credentials(
    option: str | None, environ: Mapping[str, str] = os.environ
) -> DigestCredentials | None:
    """The servers' credentials: ``--zk-auth FILE`` (``option``), else the file named by
    ``RAINER_ZK_AUTH_FILE``, else ``RAINER_ZK_AUTH`` itself; None when none is given."""
    if option:
        return read_credentials_file(option, f"--zk-auth {option}")
    in_file = environ.get(ENV_CREDENTIALS_FILE, "")
    direct = environ.get(ENV_CREDENTIALS, "")
    if in_file and direct:
        raise ZooKeeperSecurityError(
            f"{ENV_CREDENTIALS} and {ENV_CREDENTIALS_FILE} are both set; keep one"
        )
    if in_file:
        return read_credentials_file(in_file, f"{ENV_CREDENTIALS_FILE}={in_file}")
    if direct:
        return parse_credentials(direct, ENV_CREDENTIALS)
    return None


def node_acl(credentials: DigestCredentials, read: str = "world") -> list[ACL]:
    """The ACL of every node the servers create: all permissions for their identity; reading
    for anyone (``world``) or for them alone (``servers``)."""
    if read not in READ_ACCESS:
        raise ValueError(f"--zk-acl-read must be {' or '.join(READ_ACCESS)}, not {read!r}")
    acl = [ACL(Permissions.ALL, credentials.identity)]
    if read == "world":
        acl.append(ACL(Permissions.READ, ANYONE_ID_UNSAFE))
    return acl


def same_acl(one: list[ACL], other: list[ACL]) -> bool:
    """True when both grant the same permissions to the same identities (order aside)."""
    return sorted((a.perms, a.id.scheme, a.id.id) for a in one) == sorted(
        (a.perms, a.id.scheme, a.id.id) for a in other
    )


def describe_acl(acl: list[ACL]) -> str:
    """Who may do what, for messages: ``digest user 'rainer': ALL; anyone: READ``. Digest hashes
    are left out: they let anyone who reads the log guess weak passwords offline."""
    parts = []
    for entry in acl:
        scheme, ident = entry.id.scheme, entry.id.id
        if (scheme, ident) == ("world", "anyone"):
            who = "anyone"
        elif scheme == "digest":
            who = f"digest user {ident.partition(':')[0]!r}"
        else:
            who = f"{scheme}:{ident}"
        parts.append(f"{who}: {'+'.join(entry.acl_list) or 'nothing'}")
    return "; ".join(parts) or "nobody"


@dataclass(frozen=True)
class TlsSettings:
    """TLS to ZooKeeper. ``ca``: the CA file to verify ZooKeeper's certificate with (None: the
    system's CAs); ``cert`` and ``key``: a client certificate, for ensembles that ask for one;
    ``check_hostname``: the certificate must name the host as the connection string spells it.
    """

    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    check_hostname: bool = defaults.ZK_TLS_CHECK_HOSTNAME

    def check(self) -> None:
        """Load every file the way kazoo will, so that a missing or bad file is one clear error
        at start rather than a connection that keeps failing."""
        if bool(self.cert) != bool(self.key):
            raise ZooKeeperSecurityError("--zk-tls-cert and --zk-tls-key go together")
        for option, name in (
            ("--zk-tls-ca", self.ca),
            ("--zk-tls-cert", self.cert),
            ("--zk-tls-key", self.key),
        ):
            if name and not Path(name).is_file():
                raise ZooKeeperSecurityError(f"{option} {name}: no such file")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if self.ca:
            try:
                context.load_verify_locations(self.ca)
            except (ssl.SSLError, OSError, ValueError) as exc:
                raise ZooKeeperSecurityError(
                    f"--zk-tls-ca {self.ca}: not a PEM CA certificate ({exc})"
                ) from None
        if self.cert and self.key:
            try:
                context.load_cert_chain(self.cert, self.key)
            except (ssl.SSLError, OSError) as exc:
                raise ZooKeeperSecurityError(
                    f"--zk-tls-cert {self.cert} with --zk-tls-key {self.key}: not a PEM "
                    f"certificate and its unencrypted key ({exc})"
                ) from None

    def kazoo_options(self) -> dict[str, object]:
        """The ``KazooClient`` arguments for this TLS."""
        return {
            "use_ssl": True,
            "verify_certs": True,
            "check_hostname": self.check_hostname,
            "ca": self.ca,
            "certfile": self.cert,
            "keyfile": self.key,
        }
