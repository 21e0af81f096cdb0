"""Journaled commit storage: the interface and its implementations."""

from rainer.storage.base import Storage
from rainer.storage.cached import HeadCache
from rainer.storage.memory import MemoryStorage

__all__ = ["HeadCache", "MemoryStorage", "Storage", "open_storage"]


def open_storage(url: str, table: str = "rainer") -> Storage:
    """The storage a URL names: ``memory:``, a SQLite, PostgreSQL or MySQL URL, or the
    ``http://`` or ``https://`` base URL of another Rainer diary (``table`` is then unused)."""
    if url in ("memory", "memory:", "memory://"):
        return MemoryStorage()
    if url.startswith(("http://", "https://")):
        from rainer.storage.http import HttpStorage

        return HttpStorage(url)
    from rainer.storage.sql import SqlStorage

    return SqlStorage(url, table)
