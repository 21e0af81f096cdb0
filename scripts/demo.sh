#!/usr/bin/env bash
# `make demo`: start `rainer serve` on a fresh embedded SQLite database and walk through it with
# curl (commits, reads, history, a conflict and a tombstone), then run the example playbook of the
# rainer.rainer collection against it (examples/). The server stops when the demo ends.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=.venv/bin
WORK=$(mktemp -d /tmp/rainer-demo.XXXXXX)
PORT=$("$BIN/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"
DIARY="$URL/diary"

"$BIN/rainer" serve --port "$PORT" --database "sqlite:///$WORK/rainer.db" >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do
  curl -fs "$URL/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "$URL/healthz" >/dev/null || { cat "$WORK/server.log"; exit 1; }

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() {
  # Print the command as one would type it (quoting only words that need it), then run it.
  local line='$' word
  for word in "$@"; do
    if [[ $word =~ [^A-Za-z0-9_./:=@%+-] ]]; then line+=" '$word'"; else line+=" $word"; fi
  done
  printf '%s\n' "$line"
  "$@"
  echo
}

echo "rainer serve is running on $URL with the database $WORK/rainer.db"

step "Commit version 1 of the key 'web.json' (the server answers with its metadata)"
show curl -s -X POST -H 'X-Rainer-Author: alice' -H 'X-Rainer-Comment: first cut' \
  --data-binary '{"workers": 4, "timeout": 30}' "$DIARY/web.json/1"

step "Commit version 2: every version names the one before it plus one"
show curl -s -X POST -H 'X-Rainer-Author: bob' -H 'X-Rainer-Comment: more workers' \
  --data-binary '{"workers": 8, "timeout": 30}' "$DIARY/web.json/2"

step "Read the newest payload, with its metadata in X-Rainer-* headers"
show curl -s -i "$DIARY/web.json"

step "Read an older version, and its metadata alone"
show curl -s "$DIARY/web.json/1"
show curl -s "$DIARY/web.json/1/meta"

step "The history of the key, newest first, in one request"
show curl -s "$DIARY/web.json/history"

step "A conflict: carol still thinks version 1 is the newest, so she posts version 2 again"
show curl -s -w 'HTTP %{http_code}\n' -X POST -H 'X-Rainer-Author: carol' \
  --data-binary '{"workers": 2}' "$DIARY/web.json/2"

step "Another key, then a tombstone (an empty commit) that deletes it"
show curl -s -X POST -H 'X-Rainer-Author: alice' --data-binary 'debug' "$DIARY/log-level/1"
show curl -s -X POST -H 'X-Rainer-Author: alice' -H 'X-Rainer-Comment: back to default' \
  -H 'X-Rainer-Empty: yes' "$DIARY/log-level/2"

step "List the heads: tombstones are left out unless ?all=yes"
show curl -s "$DIARY"
show curl -s "$DIARY?all=yes&payload_utf8=yes"

step "Bad input is refused with a reason and changes nothing"
show curl -s -w ' (HTTP %{http_code})\n' -X POST --data-binary 'x' "$DIARY/web.json/3"
show curl -s -w ' (HTTP %{http_code})\n' "$DIARY/web.json/two"

step "The Ansible collection: a playbook commits configuration, then renders a template"
RAINER_URL="$DIARY" bash examples/demo.sh

echo
echo "Done. The server is stopped and its temporary database removed."
