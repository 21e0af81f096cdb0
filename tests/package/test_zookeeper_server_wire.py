"""The whole wire-contract suite of test_http_api, against a server run with ``--zookeeper``.

Head reads then come from the mirror; every answer must be the same as without ZooKeeper (an
extra ``X-Rainer-Cached: Yes`` header aside). The tests that start servers of their own (other
options, other backends) are left out: they do not involve ZooKeeper.
"""

from __future__ import annotations

import pytest
import test_http_api

from harness.rainer import RainerServer

pytest_plugins = ["zk_fixtures"]

#: Tests (and the fixture) that start servers of their own, without ZooKeeper.
_OWN_SERVERS = {
    "strict_server",
    "test_prefix_option_moves_the_api",
    "test_validate_json_refuses_what_does_not_parse",
    "test_payload_over_the_limit_is_413_and_changes_nothing",
    "test_validate_yaml",
    "test_round_trip_on_every_backend",
}

# Every test and fixture of the suite, in definition order (its last test checks what all the
# others left behind); ``server`` is replaced below.
globals().update(
    {
        name: value
        for name, value in vars(test_http_api).items()
        if not name.startswith("_") and name not in _OWN_SERVERS
    }
)


@pytest.fixture(scope="module")
def server(tmp_path_factory, zookeeper):
    database = tmp_path_factory.mktemp("zk-api") / "rainer.db"
    args = ["--database", f"sqlite:///{database}", "--zookeeper", zookeeper.hosts]
    args += ["--zk-path", "/wire-suite", "--publish-period", "1"]
    with RainerServer(args) as running:
        yield running
