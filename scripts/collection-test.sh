#!/usr/bin/env bash
# Copyright: Rainer for Python and Ansible contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The whole test run of the rainer.rainer collection, non-interactive, failing on
# the first failure:
#
#   yamllint -> ansible-lint -> ansible-galaxy collection build -> install the
#   tarball into <tmp>/ansible_collections/rainer/rainer -> ansible-test sanity
#   (on the controller's Python, then compile and import on every other Python
#   tests/config.yml declares for the modules) -> antsibull-docs'
#   collection docs lint -> start a real `rainer serve` (temp SQLite) ->
#   ansible-test units, integration -> molecule (extensions/molecule/default)
#
# A second server with --auth serves the unit tests' credential checks; the integration
# target rainer_security starts one of its own with TLS from a test CA, with the same command.
#
# Why test the installed tarball: the repository root also holds the Python
# server (src/, tests/package/, ...). galaxy.yml's build_ignore keeps those out
# of the artifact, and ansible-test then judges exactly what ships, in the
# directory layout it requires.
#
# Environment:
#   RAINER_SERVE       command that starts the server (default: <repo>/.venv/bin/rainer serve)
#   RAINER_TEST_STEPS  steps to run (default: "lint build sanity docs units integration molecule")
#   RAINER_KEEP_TMP=1  keep the temporary directory for inspection
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash "$root/scripts/collection-venv.sh"
venv="${RAINER_ANSIBLE_VENV:-$root/.venv-ansible}"
export PATH="$venv/bin:$PATH"
python="$venv/bin/python"
pyver="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
steps=" ${RAINER_TEST_STEPS:-lint build sanity docs units integration molecule} "
serve="${RAINER_SERVE:-$root/.venv/bin/rainer serve}"

work="$(mktemp -d "${TMPDIR:-/tmp}/rainer-collection-test.XXXXXX")"
# shellcheck source=scripts/collection-lib.sh
. "$root/scripts/collection-lib.sh"
cleanup() {
  local rc=$?
  stop_server
  if [ "${RAINER_KEEP_TMP:-0}" = 1 ] || [ $rc -ne 0 ]; then
    echo "collection-test.sh: work directory kept: $work"
    [ -f "$work/server.log" ] && { echo "--- last server log lines"; tail -n 20 "$work/server.log"; }
  else
    rm -rf "$work"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

timings=()
step_start=0
begin() { echo; echo "=== $1"; step_start=$(date +%s); step_name="$1"; }
end() { timings+=("$(printf '%-34s %5ss' "$step_name" $(( $(date +%s) - step_start )))"); }
wants() { [[ "$steps" == *" $1 "* ]]; }

# ansible-test bootstraps pip in its per-test virtual environments with a script
# it downloads; offline, it uses ~/.ansible/test/cache/get_pip_<version>.py when
# present. Provide a stand-in that installs pip from the wheel bundled with
# Python's ensurepip (the requested pip version itself then comes from the
# package index configured for pip).
install_get_pip_standin() {
  local pip_version cache
  pip_version="$("$python" - <<'EOF'
import re, pathlib, ansible_test
source = pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
match = re.search(r"default_packages = dict\(\s*pip='([^']+)'", source.read_text())
print(match.group(1) if match else "")
EOF
)"
  if [ -z "$pip_version" ]; then
    echo "collection-test.sh: cannot find ansible-test's pip version; sanity may try to download get-pip" >&2
    return
  fi
  cache="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
  mkdir -p "$(dirname "$cache")"
  cat > "$cache" <<'EOF'
# Offline stand-in for get-pip.py, written by rainer's scripts/collection-test.sh.
# It runs pip from the wheel that ships with Python (ensurepip's bundled copy)
# to install the requested pip version: `get-pip.py [pip options] pip==X`.
import glob
import os
import sys

import ensurepip

wheels = sorted(glob.glob(os.path.join(os.path.dirname(ensurepip.__file__), "_bundled", "pip-*.whl")))
if not wheels:
    sys.exit("no pip wheel bundled with this Python's ensurepip")
sys.path.insert(0, wheels[-1])

from pip._internal.cli.main import main  # noqa: E402

args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
sys.exit(main(["install", "--upgrade", "--ignore-installed"] + args))
EOF
}

if wants lint; then
  begin "yamllint"
  yamllint --strict .
  end
  begin "ansible-lint"
  ansible-lint
  end
fi

begin "build and install the collection"
ansible-galaxy collection build --force --output-path "$work/build" "$root" >/dev/null
tarball="$(ls "$work"/build/rainer-rainer-*.tar.gz)"
ansible-galaxy collection install --offline --force -p "$work/collections" "$tarball" >/dev/null
coll="$work/collections/ansible_collections/rainer/rainer"
export ANSIBLE_COLLECTIONS_PATH="$work/collections"
echo "built $(basename "$tarball"), installed at $coll"
end

if wants sanity || wants units || wants integration || wants molecule; then
  install_get_pip_standin
fi

# The Pythons the modules declare in tests/config.yml (python_requires) that this ansible-test
# knows, other than the controller's: one "VERSION PATH" line each, PATH empty when no such
# interpreter is installed (on PATH, or in pyenv's versions directory).
declared_pythons() {
  "$python" - "$coll/tests/config.yml" "$pyver" "${PYENV_ROOT:-$HOME/.pyenv}" <<'EOF'
import glob, os, shutil, subprocess, sys
import yaml
from ansible_test._util.target.common.constants import CONTROLLER_PYTHON_VERSIONS, REMOTE_ONLY_PYTHON_VERSIONS
from packaging.specifiers import SpecifierSet
config, controller, pyenv = sys.argv[1:]
with open(config) as handle:
    declared = SpecifierSet(yaml.safe_load(handle)["modules"]["python_requires"])

def runs(path):
    # a pyenv shim is on PATH for every installed version but runs only the selected one
    return subprocess.run([path, "-c", "pass"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0

for version in REMOTE_ONLY_PYTHON_VERSIONS + CONTROLLER_PYTHON_VERSIONS:
    if version == controller or version not in declared:
        continue
    name = "python" + version
    candidates = sorted(glob.glob(os.path.join(pyenv, "versions", version + ".*", "bin", name)), reverse=True)
    candidates += [path for path in [shutil.which(name)] if path]
    print(version, next((path for path in candidates if runs(path)), ""))
EOF
}

if wants sanity; then
  begin "ansible-test sanity (python $pyver)"
  (cd "$coll" && ansible-test sanity --python "$pyver" --color no --local)
  end
  # The modules run on the managed hosts' Pythons: compile and import them on each of the
  # others the collection declares, so that nothing newer than the oldest slips in.
  shims="$work/python-shims"
  mkdir -p "$shims"
  pythons="$(declared_pythons)"  # here, not in the loop's redirection, so that a failure stops the run
  while read -r version interpreter; do
    [ -n "$version" ] || continue
    if [ -z "$interpreter" ]; then
      echo "collection-test.sh: no python$version installed: compile and import on $version skipped" >&2
      continue
    fi
    ln -sfn "$interpreter" "$shims/python$version"
    begin "ansible-test sanity compile, import (python $version)"
    (cd "$coll" && PATH="$shims:$PATH" ansible-test sanity --test compile --test import --python "$version" --color no --local \
      < /dev/null)  # not the list this loop reads
    end
  done <<< "$pythons"
fi

if wants docs; then
  begin "antsibull-docs lint-collection-docs --plugin-docs"
  (cd "$coll" && antsibull-docs lint-collection-docs --plugin-docs .)
  end
fi

if wants units || wants integration || wants molecule; then
  start_server
  start_secured_server
  # rainer_url: the shared server; rainer_auth_url and rainer_auth_tokens: one with --auth for
  # the unit tests; rainer_serve: how the target rainer_security starts its own (with TLS).
  # JSON values are YAML too.
  "$python" - "$rainer_url" "$serve" "$rainer_auth_url" "$rainer_auth_tokens" \
    > "$coll/tests/integration/integration_config.yml" <<'EOF'
import json, sys
url, serve, auth_url, tokens = sys.argv[1:]
print("---")
for name, value in (("rainer_url", url), ("rainer_serve", serve), ("rainer_auth_url", auth_url),
                    ("rainer_auth_tokens", json.loads(tokens))):
    print("%s: %s" % (name, json.dumps(value)))
EOF
  export RAINER_SERVE="$serve"
fi

if wants units; then
  begin "ansible-test units (python $pyver)"
  (cd "$coll" && ansible-test units --python "$pyver" --color no --local)
  end
fi

if wants integration; then
  begin "ansible-test integration (python $pyver)"
  (cd "$coll" && ansible-test integration --python "$pyver" --color no --local)
  end
fi

if wants molecule; then
  begin "molecule test (extensions/molecule/default)"
  # molecule finds extensions/molecule from a collection root (galaxy.yml); the
  # scenario starts its own server with $RAINER_SERVE and uses the installed
  # collection through ANSIBLE_COLLECTIONS_PATH.
  (cd "$root" && molecule test --scenario-name default)
  end
fi

echo
echo "=== collection test timings"
printf '%s\n' "${timings[@]}"
echo "collection-test.sh: all steps passed"
