"""The OpenAPI description of the HTTP API, served at ``/openapi.json``.

The description is kept as YAML beside this module (``openapi.yaml``, written for the default
prefix ``/diary``) and rendered to JSON once per server, with the server's own prefix in every
path, so that tools pointed at a server see the routes it really has.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import yaml

DOCUMENTED_PREFIX = "/diary"


@cache
def _document() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("openapi.yaml").read_text("utf-8")
    document: dict[str, Any] = yaml.safe_load(text)
    return document


def description(prefix: str = DOCUMENTED_PREFIX) -> dict[str, Any]:
    """The OpenAPI document for a server whose API is mounted under ``prefix``."""
    document = dict(_document())
    prefix = prefix.rstrip("/")
    paths = {}
    for path, item in document["paths"].items():
        if path == DOCUMENTED_PREFIX or path.startswith(DOCUMENTED_PREFIX + "/"):
            path = (prefix + path[len(DOCUMENTED_PREFIX) :]) or "/"
        paths[path] = item
    document["paths"] = paths
    return document


def description_json(prefix: str = DOCUMENTED_PREFIX) -> bytes:
    """``description(prefix)`` as compact JSON bytes."""
    return json.dumps(description(prefix), separators=(",", ":"), ensure_ascii=False).encode()
