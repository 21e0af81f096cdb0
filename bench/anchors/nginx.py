"""nginx from Debian's ``nginx`` / ``nginx-light`` package, serving a static folder on a free
loopback port: the loopback HTTP ceiling the benchmarks compare against.

Our own configuration only (``-c``); /etc/nginx is never read. ``daemon off`` keeps the master
in our process group; the error log goes to stderr, hence to the log file; no access log.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness import Service, find_binary, http_request

STATIC_NAME = "static100.txt"
STATIC_BODY = b"x" * 99 + b"\n"  # exactly 100 bytes

_CONFIG = """\
# worker_processes: {workers} (the launcher's default is 1, one worker like one `rainer serve`
# process; NginxServer(workers="auto") runs one per core).
worker_processes {workers};
daemon off;
master_process on;
pid {tmp}/nginx.pid;
error_log stderr warn;

events {{
    worker_connections 4096;
}}

http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    # no cap on requests per connection, so a load tool's connections are never recycled
    keepalive_requests 1000000;
    types {{
        text/plain txt;
        text/html html;
    }}
    default_type application/octet-stream;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;

    server {{
        listen {host}:{port};
        server_name localhost;
        root {tmp}/www;
    }}
}}
"""


class NginxServer(Service):
    """nginx serving ``static_dir`` (which holds the 100-byte ``/static100.txt``)."""

    name = "nginx"

    def __init__(
        self, *, port: int | None = None, workers: int | str = 1, startup_timeout: float = 15.0
    ) -> None:
        """``workers`` is nginx's ``worker_processes``: a number or ``"auto"``."""
        super().__init__(port=port, startup_timeout=startup_timeout)
        self.workers = workers

    @classmethod
    def available(cls) -> str | None:
        if find_binary("nginx") is None:
            return "nginx not found; install Debian's nginx-light (or nginx) package"
        return None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def static_url(self) -> str:
        """URL of the 100-byte file."""
        return f"{self.url}/{STATIC_NAME}"

    @property
    def static_dir(self) -> Path:
        """The document root; put more files here if a test needs them."""
        return self.tmpdir / "www"

    def _prepare(self) -> None:
        self.static_dir.mkdir()
        (self.static_dir / STATIC_NAME).write_bytes(STATIC_BODY)
        if os.geteuid() == 0:
            # As root, workers run as the unprivileged default user: let them read the files.
            os.chmod(self.tmpdir, 0o755)
        config = _CONFIG.format(
            workers=self.workers, tmp=self.tmpdir, host=self.host, port=self.port
        )
        (self.tmpdir / "nginx.conf").write_text(config, encoding="utf-8")

    def _command(self) -> list[str]:
        return [
            find_binary("nginx") or "nginx",
            "-p",
            f"{self.tmpdir}/",
            "-c",
            str(self.tmpdir / "nginx.conf"),
            "-e",
            "stderr",
        ]

    def _wait_ready(self, deadline: float) -> None:
        self._poll_until(
            lambda: http_request(self.static_url, timeout=1.0)[0] == 200, deadline, "GET static"
        )
