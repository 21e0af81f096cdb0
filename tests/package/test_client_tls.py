"""Both clients over https: a private CA, a client certificate, verification off."""

from __future__ import annotations

import http.server
import json
import shutil
import ssl
import subprocess
import threading

import pytest
from client_fixtures import collection_client_module

import rainer.client

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def _openssl(*args: str, cwd) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all from the CA."""
    folder = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=Rainer test CA", cwd=folder)  # fmt: skip
    for name, extra in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "")):
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN=rainer-{name}", cwd=folder)  # fmt: skip
        ext = folder / f"{name}.ext"
        ext.write_text(extra + "\n" if extra else "basicConstraints=CA:FALSE\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", ext.name,
                 cwd=folder)  # fmt: skip
    return folder


class _Diary(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        peer = self.connection.getpeercert() or {}
        subject = dict(pair[0] for pair in peer.get("subject", ()))
        meta = {
            "key": "who",
            "version": 1,
            "author": subject.get("commonName", "nobody"),
            "comment": "",
            "mtime": "2024-01-01T00:00:00.000Z",
            "empty": False,
        }
        body = json.dumps({"who": meta}).encode() + b"\r\n"
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def https_url(pki):
    """An https server that asks for (but does not require) a client certificate."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Diary)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki / "server.pem", pki / "server.key")
    context.load_verify_locations(pki / "ca.pem")
    context.verify_mode = ssl.CERT_OPTIONAL
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}/diary"
    server.shutdown()
    server.server_close()


@pytest.fixture(params=["package", "collection"])
def module(request):
    """The module of one client: the package's or the collection's."""
    return rainer.client if request.param == "package" else collection_client_module()


def test_an_unknown_ca_is_refused(https_url, module):
    with pytest.raises(module.RainerTLSError, match="TLS failed"):
        module.RainerClient(https_url, timeout=5).list()


def test_a_private_ca_is_trusted_with_ca_path(https_url, pki, module):
    client = module.RainerClient(https_url, timeout=5, ca_path=str(pki / "ca.pem"))
    assert "who" in client.list()
    assert "who" in client.list()  # the package's: the same connection, kept alive


def test_a_client_certificate_is_presented(https_url, pki, module):
    client = module.RainerClient(
        https_url,
        timeout=5,
        ca_path=str(pki / "ca.pem"),
        client_cert=str(pki / "client.pem"),
        client_key=str(pki / "client.key"),
    )
    assert author(client.list()["who"]) == "rainer-client"
    anonymous = module.RainerClient(https_url, timeout=5, ca_path=str(pki / "ca.pem"))
    assert author(anonymous.list()["who"]) == "nobody"


# urllib3 warns about every unverified request; the command line's --insecure silences it.
@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_verification_can_be_turned_off(https_url, module):
    assert "who" in module.RainerClient(https_url, timeout=5, validate_certs=False).list()


def author(entry) -> str:
    """The author of a list entry: a metadata dict (package) or a commit (collection)."""
    return entry["author"] if isinstance(entry, dict) else entry.author
