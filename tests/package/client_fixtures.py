"""Fixtures of the client and command-line tests: a real server on loopback (``server``), a
client of it (``client``) and a fresh key (``key``); and the collection's client module, which
lives in the Ansible collection at the repository root (``collection_client_module``).

Test modules import the functions; fixtures defined in a module take precedence over any
conftest fixture of the same name, so these stay what these tests expect.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
import uuid
from pathlib import Path
from types import ModuleType

import pytest

from harness import in_ci
from harness.rainer import RainerServer
from rainer.client import RainerClient

REPOSITORY = Path(__file__).resolve().parents[2]
COLLECTION_CLIENT = "ansible_collections.rainer.rainer.plugins.module_utils._client"


@pytest.fixture(scope="module", name="server")
def server_fixture():
    """One server per test module; tests keep apart by using fresh keys."""
    with RainerServer() as running:
        yield running


@pytest.fixture(name="client")
def client_fixture(server):
    with RainerClient(server.diary_url, timeout=10) as made:
        yield made


@pytest.fixture(name="key")
def key_fixture(request) -> str:
    """A key no other test uses."""
    return f"{request.node.name[:40]}-{uuid.uuid4().hex[:8]}".replace("[", "-").replace("]", "")


_collections_root: tempfile.TemporaryDirectory[str] | None = None


def collection_client_module() -> ModuleType:
    """The collection's ``plugins/module_utils/_client.py``, imported under its collection name.

    The repository root is the collection, so a temporary ``ansible_collections/rainer/rainer``
    link to it goes on ``sys.path``. It needs ansible-core (the package's ``test`` extra has
    it); without it the test is skipped, or fails under ``CI=true``.
    """
    global _collections_root
    try:
        importlib.import_module("ansible.module_utils.urls")
    except ImportError as exc:
        reason = f"the collection's client needs ansible-core: {exc}"
        if in_ci():
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    if COLLECTION_CLIENT not in sys.modules and _collections_root is None:
        _collections_root = tempfile.TemporaryDirectory(prefix="rainer-collections-")
        namespace = Path(_collections_root.name) / "ansible_collections" / "rainer"
        namespace.mkdir(parents=True)
        (namespace / "rainer").symlink_to(REPOSITORY, target_is_directory=True)
        sys.path.insert(0, _collections_root.name)
    return importlib.import_module(COLLECTION_CLIENT)
