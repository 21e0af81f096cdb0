#!/usr/bin/env python
# Copyright: Rainer for Python and Ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Everything a secured test server needs, written into one folder (the first argument).

- ``ca.pem``: a throw-away certificate authority; ``server.pem``/``server.key``: its
  certificate for 127.0.0.1 and localhost; ``alice.pem``/``alice.key``: a client
  certificate whose subject CN is ``alice``; ``mallory.pem``/``mallory.key``: a client
  certificate from another CA, which the server must refuse.
- ``auth.yaml``: the server's auth file, with a token for ``ci-bot`` (may write ``app.*``)
  and one for ``viewer`` (may read ``app.*`` only); ``alice`` is an admin by certificate.

Prints the tokens as JSON on standard output. EC P-256 keys, valid for a day: quick to make.
Uses the ``cryptography`` package, which ansible-core needs anyway.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import json
import os
import secrets
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(folder, stem, certificate, key):
    with open(os.path.join(folder, stem + ".pem"), "wb") as handle:
        handle.write(certificate.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path = os.path.join(folder, stem + ".key")
        with open(path, "wb") as handle:
            handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        os.chmod(path, 0o600)


def _builder(subject, issuer, public_key):
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=10))
            .not_valid_after(now + datetime.timedelta(days=1)))


class Authority:
    def __init__(self, common_name):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.certificate = (_builder(_name(common_name), _name(common_name), self.key.public_key())
                            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                                         key_encipherment=False, data_encipherment=False,
                                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                                         encipher_only=False, decipher_only=False), critical=True)
                            .sign(self.key, hashes.SHA256()))

    def issue(self, common_name, usage, alt_names=None):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (_builder(_name(common_name), self.certificate.subject, key.public_key())
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if alt_names:
            builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        return builder.sign(self.key, hashes.SHA256()), key


def main(folder):
    os.makedirs(folder, exist_ok=True)
    authority = Authority("rainer.rainer integration test CA")
    _write(folder, "ca", authority.certificate, None)
    loopback = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    _write(folder, "server", *authority.issue("localhost", ExtendedKeyUsageOID.SERVER_AUTH, loopback))
    _write(folder, "alice", *authority.issue("alice", ExtendedKeyUsageOID.CLIENT_AUTH))
    _write(folder, "mallory", *Authority("another CA").issue("alice", ExtendedKeyUsageOID.CLIENT_AUTH))

    tokens = {name: secrets.token_urlsafe(32) for name in ("ci-bot", "viewer")}
    digest = {name: "sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest() for name, token in tokens.items()}
    with open(os.path.join(folder, "auth.yaml"), "w") as handle:
        handle.write(
            "roles:\n"
            "  deployer: {read: ['*'], write: ['app.*']}\n"
            "  reader: {read: ['app.*']}\n"
            "principals:\n"
            "  ci-bot: {roles: [deployer], tokens: ['%s']}\n"
            "  viewer: {roles: [reader], tokens: ['%s']}\n"
            "  alice: {roles: [admin], certificates: [alice]}\n"
            "anonymous: {roles: []}\n" % (digest["ci-bot"], digest["viewer"]))
    json.dump(tokens, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
