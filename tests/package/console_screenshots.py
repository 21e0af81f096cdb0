"""Screenshots of the web console for docs/console/.

``python tests/package/console_screenshots.py`` remakes them.

Starts a ``rainer serve`` on a throw-away SQLite file, commits a small, plausible history through
the HTTP API, and photographs the main views with Debian's headless Chromium (the tests'
browser). Run it again after changing the console's look.
"""

from __future__ import annotations

import json
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from http_util import post_commit

from harness.chromium import Chromium, launch
from harness.rainer import RainerServer
from rainer.commit import format_mtime, now

OUT = Path(__file__).resolve().parents[2] / "docs" / "console"


def web(replicas: int, image: str, debug: bool = False) -> bytes:
    value = {
        "service": "web",
        "spec": {"replicas": replicas, "image": f"registry.example/web:{image}"},
        "limits": {"cpu": "500m", "memory": "512Mi"},
        "features": ["search", "checkout"] + (["debug-toolbar"] if debug else []),
    }
    return json.dumps(value, indent=2).encode() + b"\n"


HISTORY = [
    ("prod.web.json", web(2, "1.4.0"), "alice", "first cut"),
    ("prod.web.json", web(4, "1.4.0"), "bob", "more workers for the sale"),
    ("prod.web.json", web(4, "1.5.0"), "ci-bot", "deploy 1.5.0"),
    ("prod.web.json", web(6, "1.5.1", debug=True), "carol", "hotfix; debug toolbar for now"),
    ("prod.db.yaml", b"pool: 20\nhosts:\n  - db-1\n  - db-2\ntimeout: 30s\n", "dave", "pool"),
    ("prod.db.yaml", b"pool: 40  # sale\nhosts:\n  - db-1\n  - db-3\ntimeout: 30s\n", "dave", ""),
    ("staging.web.json", web(1, "1.6.0-rc1"), "ci-bot", "deploy 1.6.0-rc1"),
    ("staging.db.yaml", b"pool: 5\nhosts: [db-staging]\n", "erin", "staging database"),
    ("feature-flags.json", b'{"new-checkout": false, "dark-mode": true}\n', "frank", "flags"),
    ("certs.p12", bytes(range(200, 256)) + bytes(range(0, 200)), "grace", "client bundle"),
    ("motd.txt", b"Maintenance window: Sunday 02:00-04:00 UTC\n", "heidi", "announce"),
]


def seed(server: RainerServer) -> None:
    """The history, spread over the last days, so that the times read like real ones."""
    versions: dict[str, int] = {}
    start = now() - timedelta(days=9)
    for number, (key, payload, author, comment) in enumerate(HISTORY):
        versions[key] = versions.get(key, 0) + 1
        when = format_mtime(start + timedelta(hours=17 * number))
        reply = post_commit(
            server.diary_url,
            key,
            versions[key],
            payload,
            author=author,
            comment=comment,
            modified_time=when,
        )
        assert reply.status == 200, reply.text


def main() -> int:
    reason = Chromium.available()
    if reason is not None:
        print(f"console_screenshots: {reason}", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "rainer.db"
        with (
            RainerServer(["--database", f"sqlite:///{database}"]) as server,
            sync_playwright() as p,
        ):
            seed(server)
            browser = launch(p)
            page = browser.new_page(viewport={"width": 1100, "height": 760})
            base = f"{server.url}/ui"
            key = quote("prod.web.json")
            shots = [
                ("keys.png", f"{base}/", None),
                ("key.png", f"{base}/keys/{key}", None),
                ("compare.png", f"{base}/keys/{key}/compare?from=2&to=4", None),
                ("revert.png", f"{base}/keys/{key}/revert?version=2", None),
            ]
            for name, url, _ in shots:
                page.goto(url)
                page.screenshot(path=str(OUT / name))
            phone = browser.new_page(viewport={"width": 390, "height": 760}, is_mobile=True)
            phone.goto(f"{base}/keys/{key}/compare?from=2&to=4&view=unified")
            phone.screenshot(path=str(OUT / "phone.png"))
            browser.close()
    for name in ("keys.png", "key.png", "compare.png", "revert.png", "phone.png"):
        print(f"{OUT / name}: {(OUT / name).stat().st_size / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
