"""Debian's Chromium, driven through Playwright for Python: the browser the console's tests use.

Playwright is only ever pointed at ``/usr/bin/chromium`` (``scripts/install-system-packages.sh``
installs it); it never downloads a browser of its own.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

PATH = "/usr/bin/chromium"
#: Headless, no sandbox (tests run as root), and nothing that reaches out to the network.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
]


class Chromium:
    """``available()`` in the launchers' manner, for ``harness.require``."""

    name = "chromium"

    @classmethod
    def available(cls) -> str | None:
        if not os.access(PATH, os.X_OK):
            return f"{PATH} not found (Debian's chromium: make system-packages)"
        if importlib.util.find_spec("playwright") is None:
            return "the Python package playwright is not installed (make venv)"
        return None


def launch(playwright: Any) -> Any:
    """A headless Debian Chromium from a started ``sync_playwright()``."""
    return playwright.chromium.launch(executable_path=PATH, headless=True, args=ARGS)
