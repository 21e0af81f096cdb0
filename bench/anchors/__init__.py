"""The anchors the benchmarks measure Rainer against, started as the tests' services are (with
``tests/harness``'s launcher): nginx serving a static file, and a single-member etcd."""

from anchors.etcd import EtcdServer
from anchors.nginx import NginxServer

__all__ = ["EtcdServer", "NginxServer"]
