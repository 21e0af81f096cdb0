"""Reading a request strictly: path segments, query parameters, headers and the Host.

Everything here is attacker-controlled, so every parser is exact: ASCII digits only in numbers,
well-formed percent-escapes of UTF-8 only, one value per parameter and per ``X-Rainer-*`` header,
and a clear BadRequestError otherwise.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import unquote_to_bytes

from rainer import wire
from rainer.errors import BadRequestError

INT_MAX = 2**31 - 1  # versions are the original's Java Int
_INTEGER = re.compile(r"-?[0-9]{1,10}")
_NATURAL = re.compile(r"[0-9]{1,10}")
_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")


def parse_version(text: str) -> int:
    """A version from a URL: a 32-bit integer, as the original's Int, else BadRequestError."""
    if not _INTEGER.fullmatch(text) or abs(int(text)) > INT_MAX:
        raise BadRequestError(f"Invalid version: {text!r} is not an integer")
    return int(text)


def decode(raw: bytes, what: str, plus_is_space: bool = False) -> str:
    """Percent-decode ``raw`` into UTF-8 text; BadRequestError for malformed escapes or bytes."""
    if b"%" not in raw and b"+" not in raw and raw.isascii():
        return raw.decode("ascii")
    if _BAD_ESCAPE.search(raw):
        raise BadRequestError(f"Invalid {what}: malformed percent-escape")
    if plus_is_space:
        raw = raw.replace(b"+", b" ")
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequestError(f"Invalid {what}: not percent-encoded UTF-8") from None


class Query:
    """The query string's parameters. A parameter given twice is an error when it is read."""

    __slots__ = ("_values",)

    def __init__(self, raw: bytes) -> None:
        self._values: dict[str, list[str]] = {}
        if not raw:
            return
        for part in raw.split(b"&"):
            if not part:
                continue
            name, _, value = part.partition(b"=")
            decoded = decode(name, "query parameter name", plus_is_space=True)
            self._values.setdefault(decoded, []).append(
                decode(value, f"'{decoded}' parameter", plus_is_space=True)
            )

    def get(self, name: str) -> str | None:
        values = self._values.get(name)
        if values is None:
            return None
        if len(values) > 1:
            raise BadRequestError(f"Repeated parameter: '{name}' may be given once")
        return values[0]

    def every(self, name: str) -> list[str]:
        """Every value of a parameter that may be repeated (``?key=a&key=b``)."""
        return list(self._values.get(name, ()))

    def flag(self, name: str) -> bool:
        """A yes/no parameter, false when absent; BadRequestError when malformed."""
        text = self.get(name)
        if text is None:
            return False
        value = wire.parse_yes_no(text)
        if value is None:
            raise BadRequestError(f"Invalid '{name}' parameter (should be boolean)")
        return value

    def number(self, name: str, low: int, high: int, default: int | None = None) -> int | None:
        """A whole number in [low, high] (ASCII digits), ``default`` when absent."""
        text = self.get(name)
        if text is None:
            return default
        if not _NATURAL.fullmatch(text) or not low <= int(text) <= high:
            raise BadRequestError(
                f"Invalid '{name}' parameter (should be a whole number from {low} to {high})"
            )
        return int(text)


def rainer_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The ``X-Rainer-*`` headers and Content-Length of a request, by lower-case name.

    Each may be sent once, and ``X-Rainer-*`` values must be UTF-8: a second copy would be
    silently dropped, and Latin-1 would silently change what is recorded.
    """
    found: dict[str, str] = {}
    for name_bytes, value_bytes in raw:
        name = name_bytes.decode("latin-1").lower()
        if not (name.startswith("x-rainer-") or name == "content-length"):
            continue
        if name in found:
            raise BadRequestError(f"Repeated header: {_title(name)} may be sent once")
        try:
            found[name] = value_bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequestError(f"Malformed header: {_title(name)} is not UTF-8") from None
    return found


def _title(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))


def host_name(raw: bytes) -> str:
    """The host in a Host header, without port, brackets or trailing dot, in lower case."""
    text = raw.decode("latin-1").strip().lower()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else text[1:]
    else:
        name, colon, port = text.rpartition(":")
        if colon and port.isdigit():
            text = name
    return text.rstrip(".")


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def is_loopback(host: str) -> bool:
    """True for a loopback address or ``localhost``: a server there only its own machine sees."""
    if host.rstrip(".").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    """Whether a Host header's name is allowed: by an exact name, ``*.domain`` for any name
    under it, ``*`` for any; a loopback address is allowed wherever ``localhost`` is."""
    for pattern in allowed:
        if pattern == "*" or pattern == host:
            return True
        if pattern.startswith("*.") and host.endswith(pattern[1:]):
            return True
        if pattern == "localhost" and (host.endswith(".localhost") or _loopback_ip(host)):
            return True
    return False


def _loopback_ip(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
