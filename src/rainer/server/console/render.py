"""Templates, static files and the small formatting helpers the templates use.

Jinja2 escapes everything it inserts (``autoescape``): keys, authors, comments and payloads are
attacker-controlled. The only unescaped insertions are ``Markup`` values built by ``payloads``
and ``compare`` from escaped pieces.
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime
from importlib import resources
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined

from rainer.commit import format_mtime

#: Where the console is served; app.py hands it every path under this.
MOUNT = "/ui"

_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}


class StaticFile:
    __slots__ = ("body", "content_type", "version")

    def __init__(self, body: bytes, content_type: str) -> None:
        self.body = body
        self.content_type = content_type
        #: in every URL of the file, so a browser may keep it for good (?v=...)
        self.version = hashlib.sha256(body).hexdigest()[:12]


def load_static() -> dict[str, StaticFile]:
    """The files of ``static/``, read once, by name."""
    folder = resources.files("rainer.server.console") / "static"
    found = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in _TYPES:
            found[entry.name] = StaticFile(entry.read_bytes(), _TYPES[suffix])
    return found


def ui_url(*parts: object, **params: object) -> str:
    """``/ui/keys/KEY/compare?from=1&to=2``: parts are percent-encoded path segments; params
    that are None or False are left out, True is ``yes``; a trailing ``_`` is dropped from a
    name (``from_``)."""
    path = MOUNT + "/" + "/".join(quote(str(part), safe="") for part in parts)
    query = []
    for name, value in params.items():
        if value is None or value is False:
            continue
        text = "yes" if value is True else str(value)
        query.append(f"{quote(name.rstrip('_'), safe='')}={quote(text, safe='')}")
    return path + ("?" + "&".join(query) if query else "")


def exact_time(mtime: datetime) -> str:
    """``2024-05-01 12:03:04.123 UTC``: the exact time, in one zone for every row."""
    utc = mtime.astimezone(UTC)
    return utc.strftime("%Y-%m-%d %H:%M:%S.") + f"{utc.microsecond // 1000:03d} UTC"


_UNITS = (
    ("year", 365 * 86400),
    ("month", 30 * 86400),
    ("day", 86400),
    ("hour", 3600),
    ("minute", 60),
    ("second", 1),
)


def relative_time(mtime: datetime, now: datetime) -> str:
    """``3 minutes ago``, ``in 2 hours`` (the same words console.js writes)."""
    seconds = (now - mtime).total_seconds()
    if abs(seconds) < 10:
        return "just now"
    for unit, length in _UNITS:
        if abs(seconds) >= length:
            count = math.floor(abs(seconds) / length)
            words = f"{count} {unit}{'' if count == 1 else 's'}"
            return f"{words} ago" if seconds > 0 else f"in {words}"
    return "just now"


def human_size(size: int) -> str:
    """``812 bytes``, ``1.5 KiB``, ``16.0 MiB``."""
    if size < 1024:
        return f"{size} byte{'' if size == 1 else 's'}"
    scaled = float(size)
    for unit in ("KiB", "MiB", "GiB"):
        scaled /= 1024
        if scaled < 1024 or unit == "GiB":
            break
    return f"{scaled:.1f} {unit}"


def cut(text: str, length: int) -> str:
    """``text`` cut to ``length`` characters, with an ellipsis when cut."""
    return text if len(text) <= length else text[: length - 1] + "…"


class Templates:
    """The Jinja2 environment of the console, its templates compiled once."""

    def __init__(self, api_prefix: str, static: dict[str, StaticFile]) -> None:
        self.env = Environment(
            loader=PackageLoader("rainer.server.console", "templates"),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )
        self.env.globals.update(
            ui_url=ui_url,
            static=lambda name: f"{MOUNT}/static/{name}?v={static[name].version}",
            api_prefix=api_prefix.rstrip("/") or "/",
            mount=MOUNT,
        )
        self.env.filters.update(
            ago=relative_time,
            exact=exact_time,
            iso=format_mtime,
            size=human_size,
            cut=cut,
            thousands=lambda number: f"{number:,}",
        )
        for name in self.env.list_templates(extensions=["html"]):
            self.env.get_template(name)

    def render(self, name: str, **context: object) -> bytes:
        context.setdefault("now", datetime.now(UTC))
        return self.env.get_template(name).render(context).encode("utf-8")
