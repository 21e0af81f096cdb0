# shellcheck shell=bash
# shellcheck disable=SC2154  # python, work and serve are set by the sourcing script
# Copyright: Rainer for Python and Ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Shared by scripts/collection-test.sh and scripts/collection-bench.sh (source it):
# start a real `rainer serve` on a free loopback port with a temporary SQLite
# database, wait for /healthz, and stop it again.
#
# Needs: $python (a Python to probe with), $work (a temp directory), $serve (the
# command, e.g. ".venv/bin/rainer serve"). Sets: $rainer_url, $server_pid.
#
# start_secured_server starts a second one with --auth for the unit tests (principals ci-bot,
# viewer and root, each with a fresh token). Sets: $rainer_auth_url, $rainer_auth_tokens (a
# JSON object, principal -> token), $secured_pid.

server_pid=""
secured_pid=""

free_port() {
  "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start_server() {
  local port url serve_cmd
  read -r -a serve_cmd <<< "$serve"
  if ! command -v "${serve_cmd[0]}" >/dev/null 2>&1; then
    echo "'${serve_cmd[0]}' not found: run 'make venv' first or set RAINER_SERVE" >&2
    exit 1
  fi
  port="$(free_port)"
  url="http://127.0.0.1:$port"
  "${serve_cmd[@]}" --host 127.0.0.1 --port "$port" --database "sqlite:///$work/rainer.db" --prefix /diary \
    > "$work/server.log" 2>&1 &
  server_pid=$!
  wait_healthy "$url" "$server_pid" "$work/server.log"
  rainer_url="$url/diary"
  echo "rainer serve (pid $server_pid) answers at $rainer_url"
}

# wait_healthy URL PID LOG: until URL/healthz answers; fail when the process is gone
wait_healthy() {
  local url="$1" pid="$2" log="$3"
  for _ in $(seq 1 150); do
    if "$python" -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=1)" "$url/healthz" 2>/dev/null; then
      return
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "rainer serve exited:" >&2
      cat "$log" >&2
      exit 1
    fi
    sleep 0.2
  done
  echo "rainer serve did not become healthy in 30 s" >&2
  exit 1
}

start_secured_server() {
  local port dir serve_cmd
  read -r -a serve_cmd <<< "$serve"
  dir="$work/secured"
  mkdir -p "$dir"
  # ci-bot reads everything and writes app.*; viewer reads app.*; root is an admin
  rainer_auth_tokens="$("$python" - "$dir/auth.yaml" <<'EOF'
import hashlib, json, secrets, sys
tokens = {name: secrets.token_urlsafe(24) for name in ("ci-bot", "viewer", "root")}
line = {name: "sha256:" + hashlib.sha256(token.encode()).hexdigest() for name, token in tokens.items()}
with open(sys.argv[1], "w") as handle:
    handle.write("roles:\n  deployer: {read: ['*'], write: ['app.*']}\n  reader: {read: ['app.*']}\n"
                 "principals:\n  ci-bot: {roles: [deployer], tokens: ['%s']}\n"
                 "  viewer: {roles: [reader], tokens: ['%s']}\n  root: {roles: [admin], tokens: ['%s']}\n"
                 "anonymous: {roles: []}\n" % (line["ci-bot"], line["viewer"], line["root"]))
print(json.dumps(tokens))
EOF
)"
  port="$(free_port)"
  "${serve_cmd[@]}" --host 127.0.0.1 --port "$port" --database "sqlite:///$dir/rainer.db" --prefix /diary \
    --auth "$dir/auth.yaml" > "$dir/server.log" 2>&1 &
  secured_pid=$!
  wait_healthy "http://127.0.0.1:$port" "$secured_pid" "$dir/server.log"
  rainer_auth_url="http://127.0.0.1:$port/diary"
  echo "rainer serve --auth (pid $secured_pid) answers at $rainer_auth_url"
}

stop_server() {
  local pid
  for pid in "$server_pid" "$secured_pid"; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  server_pid=""
  secured_pid=""
}

# Make a checkout importable as rainer.rainer without building it: prints a
# directory to use as ANSIBLE_COLLECTIONS_PATH.
link_checkout() {
  local dir="$1" checkout="$2"
  mkdir -p "$dir/ansible_collections/rainer"
  ln -sfn "$checkout" "$dir/ansible_collections/rainer/rainer"
  echo "$dir"
}
