"""A single-member etcd 3.4 from Debian's ``etcd-server`` package, on two free loopback ports.

etcd 3.4 serves its v3 API as JSON at ``/v3/...`` (the gRPC gateway): ``POST /v3/kv/put`` and
``POST /v3/kv/range`` with base64-encoded keys and values. ``put`` and ``get`` use it.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from harness import Service, ServiceError, find_binary, http_request
from harness.ports import free_port

MEMBER = "rainer-harness"


def _b64(data: str | bytes) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return base64.b64encode(raw).decode("ascii")


class EtcdServer(Service):
    """A throw-away single-member etcd cluster on 127.0.0.1 (durable defaults: fsync on)."""

    name = "etcd"

    def __init__(
        self,
        *,
        port: int | None = None,
        peer_port: int | None = None,
        extra_args: list[str] | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        """``port`` is the client port, ``peer_port`` the raft port; ``extra_args`` are added
        to the ``etcd`` command line."""
        super().__init__(port=port, startup_timeout=startup_timeout)
        self._requested_peer_port = peer_port
        self._peer_port: int | None = None
        self.extra_args = list(extra_args or [])

    @classmethod
    def available(cls) -> str | None:
        if find_binary("etcd") is None:
            return "etcd not found; install Debian's etcd-server package"
        return None

    @property
    def client_url(self) -> str:
        """``http://127.0.0.1:PORT``: the client API, the JSON gateway and ``/health``."""
        return f"http://{self.host}:{self.port}"

    @property
    def peer_url(self) -> str:
        """``http://127.0.0.1:PEER_PORT`` (raft traffic; unused by a single member)."""
        return f"http://{self.host}:{self._peer_port}"

    @property
    def data_dir(self) -> str:
        """The member's data directory."""
        return str(self.tmpdir / "data")

    # ----- the JSON gateway --------------------------------------------------------------------

    def call(self, path: str, body: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
        """POST a JSON body to the gateway (``path`` like ``/v3/kv/put``); return the JSON."""
        status, answer = http_request(
            self.client_url + path,
            json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            timeout=timeout,
        )
        if status != 200:
            raise ServiceError(f"etcd {path} answered {status}: {answer[:300]!r}")
        return dict(json.loads(answer))

    def put(self, key: str | bytes, value: str | bytes) -> None:
        """Store ``value`` under ``key`` (UTF-8 for str)."""
        self.call("/v3/kv/put", {"key": _b64(key), "value": _b64(value)})

    def get(self, key: str | bytes) -> bytes | None:
        """The value under ``key``, or None."""
        answer = self.call("/v3/kv/range", {"key": _b64(key)})
        kvs = answer.get("kvs") or []
        return base64.b64decode(kvs[0].get("value", "")) if kvs else None

    # ----- life cycle --------------------------------------------------------------------------

    def _allocate_ports(self) -> None:
        super()._allocate_ports()
        self._peer_port = self._requested_peer_port or free_port()
        while self._peer_port == self._port:
            self._peer_port = free_port()

    def _ports(self) -> list[int]:
        return [self.port, int(self._peer_port or 0)]

    def _environment(self) -> dict[str, str]:
        # etcd reads every flag from ETCD_* variables too; let only our flags count.
        return {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}

    def _command(self) -> list[str]:
        return [
            find_binary("etcd") or "etcd",
            "--name",
            MEMBER,
            "--data-dir",
            self.data_dir,
            "--listen-client-urls",
            self.client_url,
            "--advertise-client-urls",
            self.client_url,
            "--listen-peer-urls",
            self.peer_url,
            "--initial-advertise-peer-urls",
            self.peer_url,
            "--initial-cluster",
            f"{MEMBER}={self.peer_url}",
            "--initial-cluster-state",
            "new",
            "--initial-cluster-token",
            MEMBER,
            "--logger",
            "zap",
            "--log-outputs",
            "stderr",
            *self.extra_args,
        ]

    def _wait_ready(self, deadline: float) -> None:
        def healthy() -> bool:
            status, body = http_request(self.client_url + "/health", timeout=1.0)
            return status == 200 and json.loads(body).get("health") == "true"

        self._poll_until(healthy, deadline, "GET /health")
