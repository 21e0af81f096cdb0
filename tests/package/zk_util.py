"""Helpers for the ZooKeeper tests: wait with a deadline, make a client, expire a session.

Plain functions, imported by the test modules; the fixtures are in zk_fixtures.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from rainer.commit import Commit
    from rainer.keeper.keeper import Keeper

#: Short sessions keep the expiry and take-over tests fast; the test ZooKeeper ticks every
#: 500 ms, so it accepts sessions from 1 s up.
SESSION_TIMEOUT = 3.0


def wait_until(check: Callable[[], object], timeout: float = 15.0, what: str = "") -> None:
    """Poll ``check`` until it returns something true; fail with ``what`` after ``timeout``.

    Tests wait with deadlines like this one and never assert on timing: a slow machine makes
    them slower, not red.
    """
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:g} s: {what or check}")
        time.sleep(0.02)


def new_client(hosts: str, **kwargs):
    """A started kazoo client with the project's retry settings and a short session."""
    from rainer.keeper.link import make_client

    client = make_client(hosts, kwargs.pop("session_timeout", SESSION_TIMEOUT))
    client.start(timeout=15)
    return client


def expire_session(client, hosts: str) -> None:
    """Make ZooKeeper expire ``client``'s session now.

    A second client joins the same session (same id and password) and closes it; ZooKeeper then
    ends the session for good, and ``client`` learns it is expired on its next contact. This is
    the method ZooKeeper's and kazoo's own tests use.
    """
    from kazoo.client import KazooClient, KazooState

    lost = []

    def listener(state: str) -> None:
        if state == KazooState.LOST:
            lost.append(state)

    client.add_listener(listener)
    try:
        twin = KazooClient(hosts=hosts, client_id=client.client_id, timeout=SESSION_TIMEOUT)
        twin.start(timeout=15)
        twin.stop()
        twin.close()
        wait_until(lambda: lost, 30, "the client to see its session expire")
    finally:
        client.remove_listener(listener)


def tree_heads(keeper: Keeper) -> dict[str, Commit]:
    """Every commit the nodes under ``keeper``'s path hold, by key (corrupt nodes left out):
    what the mirror of that tree should hold."""
    from kazoo.exceptions import NoNodeError

    from rainer.errors import CorruptCommitError
    from rainer.keeper.keeper import decode_node

    found = {}
    names = keeper.keys()  # a list of node names, not a dict's keys
    for key in names:
        try:
            data, _ = keeper.client.get(keeper.znode(key))
            found[key] = decode_node(key, data)
        except (NoNodeError, CorruptCommitError):
            continue
    return found
