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

server_pid=""

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
  for _ in $(seq 1 150); do
    if "$python" -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=1)" "$url/healthz" 2>/dev/null; then
      rainer_url="$url/diary"
      echo "rainer serve (pid $server_pid) answers at $rainer_url"
      return
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
      echo "rainer serve exited:" >&2
      cat "$work/server.log" >&2
      exit 1
    fi
    sleep 0.2
  done
  echo "rainer serve did not become healthy in 30 s" >&2
  exit 1
}

stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
}

# Make a checkout importable as rainer.rainer without building it: prints a
# directory to use as ANSIBLE_COLLECTIONS_PATH.
link_checkout() {
  local dir="$1" checkout="$2"
  mkdir -p "$dir/ansible_collections/rainer"
  ln -sfn "$checkout" "$dir/ansible_collections/rainer/rainer"
  echo "$dir"
}
