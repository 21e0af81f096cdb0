"""The web console, served by ``rainer serve`` at ``/ui/``: browse keys, read a key's history,
compare any two versions, revert. Server-rendered HTML (Jinja2) with a little plain JavaScript;
every asset ships in this package. See docs/console.md."""

from rainer.server.console.asgi import Console

__all__ = ["Console"]
