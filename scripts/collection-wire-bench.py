#!/usr/bin/env python3
# Copyright: Rainer for Python and Ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the rainer lookup puts on the wire: the lookup of 2 keys in a store of 10,000 keys of
10 KB (run by scripts/collection-bench.sh, which starts the server).

Seeds the store through change sets (1000 keys per POST /diary), then runs a real
`ansible localhost` whose template calls query('rainer.rainer.rainer', KEY1, KEY2) through a
loopback relay that counts every byte in both directions and every HTTP request. For
comparison it fetches, through the same relay, the whole list with payloads, which is what the
lookup of several keys read before it asked for just those keys.

Usage: collection-wire-bench.py DIARY_URL   (with ansible on PATH and ANSIBLE_COLLECTIONS_PATH set)
Environment: WIRE_KEYS (default 10000), WIRE_PAYLOAD_BYTES (default 10240).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from urllib.parse import urlsplit

REQUEST_LINE = re.compile(rb"(?:^|\r\n)(?:GET|POST|HEAD|PUT|DELETE) \S+ HTTP/1\.[01]\r\n")


class CountingRelay:
    """A loopback TCP relay to ``upstream`` that counts bytes each way, connections and requests."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.lock = threading.Lock()
        self.reset()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self):
        with self.lock:
            self.sent = 0  # client -> server
            self.received = 0  # server -> client
            self.connections = 0
            self.requests = 0

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source, target, outgoing):
        pending = b""
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                with self.lock:
                    if outgoing:
                        self.sent += len(data)
                        pending = (pending + data)[-8192:]
                        found = REQUEST_LINE.findall(pending)
                        self.requests += len(found)
                        if found:
                            pending = pending[pending.rfind(b"\r\n\r\n") + 4:] if b"\r\n\r\n" in pending else b""
                    else:
                        self.received += len(data)
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def totals(self):
        with self.lock:
            return dict(sent=self.sent, received=self.received, connections=self.connections, requests=self.requests)


def post_changes(diary, changes):
    body = json.dumps({"changes": changes}).encode()
    request = urllib.request.Request(diary, data=body, method="POST", headers={
        "Content-Type": "application/json", "X-Rainer-Author": "wire-bench", "X-Rainer-Comment": "seed"})
    with urllib.request.urlopen(request, timeout=300) as answer:
        answer.read()


def seed(diary, keys, size):
    filler = ("x" * (size - 20))
    started = time.time()
    for start in range(0, keys, 1000):
        post_changes(diary, [{"key": "wire-%05d.json" % n, "version": 1, "payload_utf8": '{"n": %5d, "f": "%s"}' % (n, filler)}
                             for n in range(start, min(keys, start + 1000))])
    post_changes(diary, [{"key": "wire-small-1", "version": 1, "payload_utf8": "twelve bytes"},
                         {"key": "wire-small-2", "version": 1, "payload_utf8": "12 bytes too"}])
    return time.time() - started


def main(diary):
    keys = int(os.environ.get("WIRE_KEYS", "10000"))
    size = int(os.environ.get("WIRE_PAYLOAD_BYTES", "10240"))
    took = seed(diary, keys, size)
    parts = urlsplit(diary)
    relay = CountingRelay((parts.hostname, parts.port))
    relayed = "http://127.0.0.1:%d%s" % (relay.port, parts.path)

    expression = "{{ query('rainer.rainer.rainer', 'wire-small-1', 'wire-small-2', url='%s') | to_json }}" % relayed
    env = dict(os.environ, ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
               ANSIBLE_NOCOLOR="1")
    relay.reset()
    run = subprocess.run(["ansible", "localhost", "-m", "ansible.builtin.debug", "-a", "msg=" + expression],
                         env=env, capture_output=True, text=True, timeout=300)
    lookup = relay.totals()
    if run.returncode != 0 or "twelve bytes" not in run.stdout or "12 bytes too" not in run.stdout:
        sys.exit("the lookup failed:\n%s\n%s" % (run.stdout, run.stderr))

    relay.reset()
    with urllib.request.urlopen(relayed + "?all=yes&payload_base64=yes", timeout=300) as answer:
        whole = len(answer.read())
    time.sleep(0.2)
    listing = relay.totals()

    print("rainer lookup on the wire: 2 keys of 12 bytes in a store of %d keys of %d bytes (seeded in %.1f s)"
          % (keys + 2, size, took))
    print("%-58s %9s %9s %9s %8s" % ("", "sent B", "recv B", "total B", "requests"))
    print("%-58s %9d %9d %9d %8d" % ("query('rainer.rainer.rainer', key1, key2)  [?key=]",
                                       lookup["sent"], lookup["received"], lookup["sent"] + lookup["received"],
                                       lookup["requests"]))
    print("%-58s %9d %9d %9d %8d" % ("the whole list with payloads (what it read before)",
                                       listing["sent"], listing["received"], listing["sent"] + listing["received"],
                                       listing["requests"]))
    total = lookup["sent"] + lookup["received"]
    print("goal: under 2048 bytes and one request: %s (%d bytes, %d request(s); the list body alone is %d bytes)"
          % ("met" if total < 2048 and lookup["requests"] == 1 else "NOT met", total, lookup["requests"], whole))


if __name__ == "__main__":
    main(sys.argv[1])
