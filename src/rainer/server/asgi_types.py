"""The ASGI interface as this server types it, in one place: the application (``app.py``), the
web console and the HTTP protocol all use these names.

A scope and a message are dicts whose keys depend on their ``type`` (``http``,
``http.request``, ``http.response.start``, ...); they are typed as mappings of names to values,
as most ASGI code types them, and each handler reads the keys of the kind it was given. What
the aliases pin down is the shape of every callable: an application takes a scope, a
``receive`` and a ``send``, and a handler that forgets one, or awaits ``send`` with something
other than a message, is an error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol, TypeAlias

#: The connection: ``type``, ``method``, ``path``, ``raw_path``, ``query_string``,
#: ``headers`` (a list of ``(name, value)`` byte pairs), ``client``, ``extensions``, ...; the
#: application may add keys of its own.
Scope: TypeAlias = MutableMapping[str, Any]
#: One event received or sent: ``{"type": "http.request", "body": ..., "more_body": ...}``.
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
#: An ASGI 3 application.
App: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]

#: A scope extension of this server's HTTP protocol: ``{"callbacks": set}``, a set the
#: application may add callbacks to (and discard them from), each called once when the client's
#: connection is lost. A request
#: that waits (a blocking read, a feed) ends then, instead of holding its place until its wait
#: runs out; under other servers the application reads ``receive`` for ``http.disconnect``.
HANG_UP = "rainer.hang_up"


class HangUps(Protocol):
    """Where to hear that a request's client hung up: a set of callbacks, or one like it."""

    def add(self, callback: Callable[[], None], /) -> None: ...

    def discard(self, callback: Callable[[], None], /) -> None: ...
