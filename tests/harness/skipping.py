"""Skip or fail a test whose service is missing: skip normally, fail when ``CI=true``, so that CI
can never pass by skipping."""

from __future__ import annotations

import os
from typing import Protocol


class _HasAvailable(Protocol):
    def available(self) -> str | None: ...


def in_ci() -> bool:
    """True when the environment variable CI is exactly ``true``."""
    return os.environ.get("CI") == "true"


def require(service_cls: type[_HasAvailable] | _HasAvailable) -> None:
    """Call at the top of a test or fixture: ``pytest.skip`` with the service's ``available()``
    reason when it cannot run here, or ``pytest.fail`` instead under ``CI=true``."""
    import pytest  # imported here: benchmark scripts import harness without pytest

    reason = service_cls.available()
    if reason is None:
        return
    name = getattr(service_cls, "name", None) or getattr(service_cls, "__name__", "service")
    if in_ci():
        pytest.fail(f"{name} is required under CI=true: {reason}", pytrace=False)
    pytest.skip(f"{name} unavailable: {reason}")
