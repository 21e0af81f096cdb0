"""Many writers racing for the next version of one key, for a few seconds, through real servers.

Exactly one writer wins each version: the key ends with versions 1..N, no gap, no duplicate, N
answers of 200, and every other attempt was a 409. On PostgreSQL and MariaDB the writers are split
over two server processes sharing the database, where only the primary key can settle the race.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

from http_util import call, post_commit

from harness.rainer import RainerServer

WRITERS = 8
SECONDS = 3.0


def race(diaries: list[str], key: str) -> tuple[Counter, list[int]]:
    statuses: Counter = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + SECONDS

    def writer(n: int) -> None:
        diary = diaries[n % len(diaries)]
        while time.monotonic() < deadline:
            meta = call("GET", f"{diary}/{key}/meta")
            head = meta.json()["version"] if meta.status == 200 else 0
            reply = post_commit(diary, key, head + 1, f"writer {n}".encode(), author=f"w{n}")
            with lock:
                statuses[reply.status] += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Every version, a page at a time (a fast machine makes more than one page).
    versions: list[int] = []
    page = call("GET", f"{diaries[0]}/{key}/history?limit=1000").json()
    while page:
        versions += [meta["version"] for meta in page]
        url = f"{diaries[0]}/{key}/history?limit=1000&before={versions[-1]}"
        page = call("GET", url).json()
    return statuses, versions


def test_racing_writers_leave_no_gap_and_no_duplicate(database_url):
    servers = [RainerServer(["--database", database_url])]
    if not database_url.startswith("sqlite"):
        servers.append(RainerServer(["--database", database_url]))
    try:
        for server in servers:
            server.start()
        statuses, versions = race([server.diary_url for server in servers], "contended")
    finally:
        for server in servers:
            server.close()
    assert set(statuses) <= {200, 409}, statuses
    assert statuses[409] > 0, "the writers never collided; the test proved nothing"
    assert versions == list(range(len(versions), 0, -1))
    assert statuses[200] == len(versions)
