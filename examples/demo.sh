#!/usr/bin/env bash
# Copyright: Rainer for Python and Ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Run the example playbook against a running Rainer server, twice, and show the
# rendered template:
#   RAINER_URL=http://127.0.0.1:8080/diary bash examples/demo.sh
# Uses .venv-ansible (created by scripts/collection-venv.sh) and this checkout of
# the collection (no build or install needed).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
: "${RAINER_URL:?set RAINER_URL to the server URL including the prefix, e.g. http://127.0.0.1:8080/diary}"
export RAINER_URL

bash "$root/scripts/collection-venv.sh" >/dev/null
venv="${RAINER_ANSIBLE_VENV:-$root/.venv-ansible}"

# Make this checkout importable as rainer.rainer.
collections="$(mktemp -d "${TMPDIR:-/tmp}/rainer-demo.XXXXXX")"
trap 'rm -rf "$collections"' EXIT
mkdir -p "$collections/ansible_collections/rainer"
ln -s "$root" "$collections/ansible_collections/rainer/rainer"
export ANSIBLE_COLLECTIONS_PATH="$collections"
export ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false
export RAINER_EXAMPLE_OUTPUT="${RAINER_EXAMPLE_OUTPUT:-$collections/app.conf}"

echo "### 1. Commit the example configuration to $RAINER_URL"
"$venv/bin/ansible-playbook" "$here/playbook.yml" --diff

echo "### 2. Run it again: Rainer already holds all of it, so nothing changes"
"$venv/bin/ansible-playbook" "$here/playbook.yml" | tee "$collections/second-run.log"
if ! grep -Eq 'changed=0 ' "$collections/second-run.log"; then
  echo "demo: the second run changed something, which it should not" >&2
  exit 1
fi

echo "### 3. The template rendered from Rainer through the lookup ($RAINER_EXAMPLE_OUTPUT)"
cat "$RAINER_EXAMPLE_OUTPUT"
