#!/usr/bin/env bash
# Copyright: Rainer for Python and Ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The collection's fast-loop benchmark: against one real `rainer serve` on
# loopback, in one ansible-playbook run, time
#   - a loop of 100 unchanged rainer_commit items on localhost (the action plugin
#     runs the module's code in the controller process),
#   - the same loop forced through real module execution (rainer_run_on_controller=false),
#   - a loop of 100 ansible.builtin.uri GETs,
# and print the times and the ratio rainer_commit / uri (target: at most 0.1).
# Then, against the same server, what the lookup puts on the wire: 2 keys in a store of
# 10,000 keys of 10 KB, bytes and requests counted by a relay (scripts/collection-wire-bench.py;
# goal: under 2 KB and one request).
#
# Environment: RAINER_SERVE (default <repo>/.venv/bin/rainer serve), BENCH_ITEMS (default 100),
# WIRE_KEYS (default 10000), WIRE_PAYLOAD_BYTES (default 10240).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/collection-venv.sh" >/dev/null
venv="${RAINER_ANSIBLE_VENV:-$root/.venv-ansible}"
python="$venv/bin/python"
serve="${RAINER_SERVE:-$root/.venv/bin/rainer serve}"
work="$(mktemp -d "${TMPDIR:-/tmp}/rainer-collection-bench.XXXXXX")"
# shellcheck source=scripts/collection-lib.sh
. "$root/scripts/collection-lib.sh"
trap 'stop_server; rm -rf "$work"' EXIT

start_server >/dev/null
export ANSIBLE_COLLECTIONS_PATH
ANSIBLE_COLLECTIONS_PATH="$(link_checkout "$work/collections" "$root")"
export RAINER_URL="$rainer_url" BENCH_ITEMS="${BENCH_ITEMS:-100}"
export ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false ANSIBLE_NOCOLOR=1
# modules run with the venv's Python, as ansible-test and molecule do
"$venv/bin/ansible-playbook" -e "ansible_python_interpreter=$python" \
  "$root/scripts/collection-bench.yml" > "$work/bench.log" 2>&1 || { cat "$work/bench.log"; exit 1; }

line="$(grep -o 'BENCH items=[^"]*' "$work/bench.log" | tail -n 1)"
"$python" - "$line" "$("$python" -c 'import ansible.release; print(ansible.release.__version__)')" <<'PY'
import sys
fields = dict(part.split("=", 1) for part in sys.argv[1].split()[1:])
items = int(fields["items"])
controller, module, uri = (float(fields[k]) for k in ("rainer_commit_controller", "rainer_commit_module", "uri"))
print("rainer.rainer fast-loop benchmark (ansible-core %s, %d items, one rainer serve on loopback)" % (sys.argv[2], items))
print("%-52s %8s %10s" % ("loop", "total s", "per item"))
for name, value in (("rainer_commit, unchanged (controller, action plugin)", controller),
                    ("rainer_commit, unchanged (module execution)", module),
                    ("ansible.builtin.uri GET", uri)):
    print("%-52s %8.2f %8.1f ms" % (name, value, 1000 * value / items))
ratio = controller / uri
print("ratio rainer_commit (controller) / uri: %.3f (target <= 0.1: %s)" % (ratio, "met" if ratio <= 0.1 else "NOT met"))
print("ratio rainer_commit (module) / uri:     %.3f" % (module / uri))
PY

echo
PATH="$venv/bin:$PATH" "$python" "$root/scripts/collection-wire-bench.py" "$rainer_url"
