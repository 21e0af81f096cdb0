"""Every bound and default of the server, in one place (docs/limits.md explains each).

Imported by the command line for its defaults, so it imports nothing heavy.
"""

from __future__ import annotations

# -- requests (server.protocol, server.app) -------------------------------------------------
#: A request line and its headers, in bytes, and how many headers; beyond either: 431.
MAX_HEAD_BYTES = 64 * 1024
MAX_HEADERS = 100
#: Seconds to send a whole request head (from the connection, or the previous response): 408.
HEAD_TIMEOUT = 10.0
#: Seconds without a byte of a request body: 408.
BODY_TIMEOUT = 30.0
#: Seconds a client may leave a response unread before its connection is dropped.
WRITE_TIMEOUT = 60.0
#: Seconds an idle kept-alive connection stays open.
KEEP_ALIVE_TIMEOUT = 5.0
#: Seconds a stop waits for requests in flight before it closes their connections.
GRACEFUL_SHUTDOWN = 10.0
#: Connections served at once (--max-connections); requests beyond them: 503.
MAX_CONNECTIONS = 10_000

# -- commits (server.app, wire) ---------------------------------------------------------------
#: The largest payload (--max-payload-bytes): the original's MEDIUMBLOB column. Beyond: 413.
MAX_PAYLOAD_BYTES = 16 * 1024 * 1024

# -- memory (server.commit_cache) -------------------------------------------------------------
#: Payloads and rendered answers kept in memory (--cache-bytes).
CACHE_BYTES = 256 * 1024 * 1024

# -- validation (server.validation) -----------------------------------------------------------
#: Deepest nesting and most YAML aliases a validated payload may have.
VALIDATE_MAX_DEPTH = 200
VALIDATE_MAX_ALIASES = 100
#: Payloads up to this size are parsed in a thread; larger ones in a worker process.
VALIDATE_INLINE_BYTES = 64 * 1024
#: Seconds a worker process may spend on one payload, and the address space it may use.
VALIDATE_TIMEOUT = 10.0
VALIDATE_WORKER_MEMORY_BYTES = 2 * 1024**3
#: Worker processes (each started when first needed).
VALIDATE_WORKERS = 2
