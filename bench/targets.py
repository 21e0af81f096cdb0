"""What the loads run against: seeded Rainer servers (uvicorn or granian) and the anchors.

Every server runs on loopback in a temporary folder (tests/harness launchers) on a fresh
database, and is stopped by the caller (``with``).
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The benchmarks start their servers with the tests' launchers (tests/harness).
sys.path.insert(0, str(ROOT / "tests"))

from anchors import EtcdServer  # noqa: E402

# Re-exported: the other benchmarks take harness from here, once the path is set.
import harness  # noqa: E402, F401
from harness import RainerServer, http_request  # noqa: E402

KEYS = 100
PAYLOAD = b"x" * 99 + b"\n"  # 100 bytes, like nginx's static file
READ_KEY = "key000"  # head reads and versioned reads hit this key; it has 2 versions
ETCD_KEY = "key000"


def key_name(index: int) -> str:
    return f"key{index:03d}"


class BenchRainerServer(RainerServer):
    """``rainer serve``, from ``src`` (a patched copy of src/) when one is given."""

    def __init__(self, *args: Any, src: Path | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.src = src

    def _environment(self) -> dict[str, str]:
        env = super()._environment()
        if self.src is not None:  # ahead of the src/ the launcher put first
            env["PYTHONPATH"] = str(self.src) + os.pathsep + env["PYTHONPATH"]
        return env


class GranianRainerServer(BenchRainerServer):
    """The same app on granian (one worker, uvloop, HTTP/1), through bench/asgi_factory.py."""

    name = "rainer-granian"

    def _environment(self) -> dict[str, str]:
        env = super()._environment()
        env["PYTHONPATH"] = str(ROOT / "bench") + ":" + env.get("PYTHONPATH", "")
        return env

    def _command(self) -> list[str]:
        granian = str(Path(self.python).parent / "granian")
        return [
            granian,
            "--interface",
            "asgi",
            "--factory",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--loop",
            "uvloop",
            "--http",
            "1",
            "--no-ws",
            "--log-level",
            "warning",
            "--no-access-log",
            "asgi_factory:create_app",
        ]


def rainer_server(
    database_url: str | None,
    stack: str = "uvicorn",
    zookeeper: str | None = None,
    src: Path | None = None,
) -> RainerServer:
    """A server on ``database_url`` (None: SQLite in its temporary folder); not started yet.
    ``src``: serve the rainer package from this folder (a patched copy of src/) instead."""
    url = database_url or "sqlite:///rainer.db"
    env = {"RAINER_DATABASE": url, "RAINER_LOG_LEVEL": "warning"}
    if stack == "granian":
        return GranianRainerServer(env=env, src=src)
    zk = ["--zookeeper", zookeeper] if zookeeper else []
    return BenchRainerServer(["--database", url, "--log-level", "warning", *zk], env=env, src=src)


def wait_for_mirror(diary_url: str, timeout: float = 30) -> None:
    """Wait until head reads of READ_KEY's newest version come from the ZooKeeper mirror."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while True:
        with opener.open(f"{diary_url}/{READ_KEY}", timeout=5) as answer:
            headers = answer.headers
            if headers.get("X-Rainer-Cached") == "Yes" and headers.get("X-Rainer-Version") == "2":
                return
        if time.monotonic() > deadline:
            raise RuntimeError("the ZooKeeper mirror did not catch up with the seeded keys")
        time.sleep(0.1)


def _post(diary_url: str, key: str, version: int) -> None:
    status, body = http_request(
        f"{diary_url}/{key}/{version}",
        PAYLOAD,
        headers={"X-Rainer-Author": "bench", "Content-Type": "text/plain"},
        timeout=30,
    )
    if status != 200:
        raise RuntimeError(f"seeding {key}/{version} answered {status}: {body[:200]!r}")


def seed_rainer(diary_url: str) -> None:
    """KEYS keys of 100-byte payloads; READ_KEY gets a second version so /1 is a journal read."""
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: _post(diary_url, key_name(i), 1), range(KEYS)))
    _post(diary_url, READ_KEY, 2)
    status, body = http_request(f"{diary_url}?payload_base64=yes")
    if status != 200 or len(json.loads(body)) != KEYS:
        raise RuntimeError(f"the seeded list is wrong: {status} {body[:200]!r}")


def b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode("ascii")


def etcd_bodies() -> tuple[str, str]:
    """JSON bodies of etcd's range (of the seeded key) and put (a 100-byte value)."""
    range_body = json.dumps({"key": b64(ETCD_KEY)})
    put_body = json.dumps({"key": b64(ETCD_KEY), "value": b64(PAYLOAD)})
    return range_body, put_body


def seed_etcd(etcd: EtcdServer) -> None:
    etcd.put(ETCD_KEY, PAYLOAD)
    if etcd.get(ETCD_KEY) != PAYLOAD:
        raise RuntimeError("etcd did not keep the seeded value")
