#!/usr/bin/env bash
# Copyright: (c) 2026, Rainer for Python and Ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Create (or refresh) .venv-ansible: the tool chain that builds and tests the
# rainer.rainer collection (ansible-core, ansible-lint, molecule, yamllint,
# antsibull-docs, pytest and what `ansible-test units` needs).
#
# The newest ansible-core needs Python >= 3.12, so a Python 3.12 is preferred
# (pyenv's is found even when it is not the global pyenv version); without
# one, Python 3.11 is used and pip picks the newest ansible-core that supports
# it. Set RAINER_ANSIBLE_PYTHON to force an interpreter.
#
# RAINER_ANSIBLE_CORE pins ansible-core (default: the newest, ">=2.16"); with
# RAINER_ANSIBLE_MINIMAL=1 only what ansible-test units and integration need is
# installed (the run on the oldest ansible-core the collection claims uses that).
#
# Idempotent: when the venv exists and its requirement stamp matches, it only
# prints where it is.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${RAINER_ANSIBLE_VENV:-$root/.venv-ansible}"

core="${RAINER_ANSIBLE_CORE:-ansible-core>=2.16}"
requirements=("$core" "pytest>=8" "pytest-mock" "pytest-xdist" "pytest-forked" "mock")
if [ "${RAINER_ANSIBLE_MINIMAL:-0}" != 1 ]; then
  requirements+=("ansible-lint>=24" "molecule>=24" "yamllint>=1.35" "antsibull-changelog" "antsibull-docs")
fi
stamp_text="v1 ${requirements[*]}"

runs() { "$1" -c 'import sys; sys.exit(0)' >/dev/null 2>&1; }

find_python() {
  if [ -n "${RAINER_ANSIBLE_PYTHON:-}" ]; then
    echo "$RAINER_ANSIBLE_PYTHON"; return
  fi
  local minor candidate pyenv_root
  pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
  for minor in 3.12 3.13 3.11; do
    # a pyenv shim exists for every installed version but only runs the
    # selected one, so try the versions directory first
    for candidate in "$pyenv_root"/versions/"$minor".*/bin/python"$minor" \
                     "/usr/local/bin/python$minor" "/usr/bin/python$minor"; do
      if [ -x "$candidate" ] && runs "$candidate"; then
        echo "$candidate"; return
      fi
    done
    if candidate="$(command -v "python$minor" 2>/dev/null)" && runs "$candidate"; then
      echo "$candidate"; return
    fi
  done
  echo "collection-venv.sh: no Python 3.11+ found" >&2
  exit 1
}

if [ -x "$venv/bin/python" ] && [ -f "$venv/.rainer-stamp" ] \
   && [ "$(cat "$venv/.rainer-stamp")" = "$stamp_text" ] \
   && [ -x "$venv/bin/ansible-test" ]; then
  echo "collection-venv.sh: $venv is ready (ansible-core $("$venv/bin/python" -c 'import ansible.release; print(ansible.release.__version__)'))"
  exit 0
fi

python="$(find_python)"
echo "collection-venv.sh: creating $venv with $python"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet --upgrade "${requirements[@]}"
echo "$stamp_text" > "$venv/.rainer-stamp"
echo "collection-venv.sh: $venv is ready (ansible-core $("$venv/bin/python" -c 'import ansible.release; print(ansible.release.__version__)'))"
