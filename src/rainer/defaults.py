"""Every default and bound of Rainer, in one place (docs/limits.md explains the bounds).

The command line reads its defaults here, so this module imports nothing.
"""

from __future__ import annotations

# -- where the server listens, and what it serves (cli.serve) ------------------------------
HOST = "127.0.0.1"
PORT = 8080
DATABASE = "sqlite:///rainer.db"
TABLE = "rainer"
PREFIX = "/diary"

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
#: Seconds an idle kept-alive connection stays open (whole seconds, as uvicorn takes them).
KEEP_ALIVE_TIMEOUT = 5
#: Seconds a stop waits for requests in flight before it closes their connections (whole).
GRACEFUL_SHUTDOWN = 10
#: Connections served at once (--max-connections); requests beyond them: 503.
MAX_CONNECTIONS = 12_000
#: Requests waiting at once, blocking reads and feeds (--max-watchers); more: 503. Never more
#: than nine in ten of --max-connections, so reads, commits and health checks keep room.
MAX_WATCHERS = 10_000

# -- commits (server.app, wire) ---------------------------------------------------------------
#: The largest payload (--max-payload-bytes): the original's MEDIUMBLOB column. Beyond: 413.
MAX_PAYLOAD_BYTES = 16 * 1024 * 1024
#: A change set (POST /diary): at most this many commits, and this many bytes of JSON body.
MAX_CHANGES = 1000
MAX_CHANGESET_BYTES = 16 * 1024 * 1024
#: Keys a bulk read (GET /diary?key=...) may name.
MAX_LISTED_KEYS = 1000

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

# -- ZooKeeper (keeper) -----------------------------------------------------------------------
#: Base path: commits under PATH/data, the auto-publishers' election under PATH/election.
ZK_PATH = "/rainer"
ZK_SESSION_TIMEOUT = 10.0
#: Seconds one ZooKeeper request may take (kazoo would hold one for as long as it reconnects).
ZK_REQUEST_TIMEOUT = 5.0
#: A stored commit larger than this cannot be published (ZooKeeper's jute.maxbuffer is 1 MiB).
ZK_MAX_NODE_BYTES = 1_000_000
#: The elected auto-publisher republishes every head this often, each wait drawn within ±20%.
PUBLISH_PERIOD = 90.0
PUBLISH_FUZZ = 0.2
#: The longest a stop waits for ZooKeeper, the auto-publisher and the mirror to let go.
ZK_STOP_WAIT = 3.0
#: With --zk-auth, who may read the nodes besides the servers: "world" (anyone) or "servers".
ZK_ACL_READ = "world"
#: With TLS to ZooKeeper, its certificate must name the host as the connection string does.
ZK_TLS_CHECK_HOSTNAME = True
