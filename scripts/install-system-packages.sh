#!/usr/bin/env bash
# Install the Debian packages whose servers the tests and benchmarks start for real
# (tests/harness/): PostgreSQL, MariaDB, ZooKeeper (and a Java runtime for it), etcd, nginx, the
# load tool wrk, and Chromium, the headless browser the web console's tests drive (Playwright is
# pointed at /usr/bin/chromium and never downloads a browser of its own), and shellcheck, which
# ansible-test sanity runs on the collection's shell scripts (it skips that test without it).
#
# Idempotent: it installs only what is missing, runs `apt-get update` once and only then, and
# prints one line per package it installs (nothing when all is there). Debian would start some of
# these as system services on their default ports; a temporary policy-rc.d keeps them from
# starting, and any that start anyway are stopped again: our launchers run their own copies in
# temporary folders on free ports. Finally it checks that every binary the launchers use is
# there, and that ZooKeeper runs on this machine's Java. Exits non-zero on any failure.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        exec sudo -n -E bash "$0" "$@"
    fi
    echo "install-system-packages: run as root (or install sudo)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
POLICY_RC_D=${POLICY_RC_D:-/usr/sbin/policy-rc.d}

# What we need; "a|b" means either package will do (the first one apt knows is installed).
WANTED=(postgresql mariadb-server zookeeper etcd-server "nginx-light|nginx" wrk chromium shellcheck)
# The system service each package may start.
declare -A SERVICE_OF=(
    [postgresql]=postgresql [mariadb-server]=mariadb [etcd-server]=etcd
    [nginx-light]=nginx [nginx]=nginx
)

fail() {
    echo "install-system-packages: $*" >&2
    if [ -n "${LOG:-}" ] && [ -s "$LOG" ]; then
        echo "--- last lines of $LOG ---" >&2
        tail -n 30 "$LOG" >&2
    fi
    exit 1
}

installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

has_candidate() {
    local policy
    policy=$(apt-cache policy "$1" 2>/dev/null || true)
    # (not a pipe into grep -q: under pipefail, apt-cache's SIGPIPE would fail the test)
    grep -Eq '^ +Candidate: [^(]' <<<"$policy"
}

java_works() {
    command -v java >/dev/null 2>&1 && java -version >/dev/null 2>&1
}

missing=()
for entry in "${WANTED[@]}"; do
    IFS='|' read -r -a choices <<<"$entry"
    found=no
    for package in "${choices[@]}"; do
        if installed "$package"; then
            found=yes
            break
        fi
    done
    [ "$found" = yes ] || missing+=("$entry")
done
if ! java_works; then
    missing+=(default-jre-headless)
fi

if [ "${#missing[@]}" -gt 0 ]; then
    LOG=$(mktemp /tmp/install-system-packages.XXXXXX.log)
    added_policy=no
    cleanup() {
        if [ "$added_policy" = yes ]; then
            rm -f "$POLICY_RC_D"
        fi
    }
    trap cleanup EXIT
    if [ ! -e "$POLICY_RC_D" ]; then
        printf '#!/bin/sh\n# added by install-system-packages.sh while it runs\nexit 101\n' \
            >"$POLICY_RC_D"
        chmod 755 "$POLICY_RC_D"
        added_policy=yes
    fi

    apt-get update -qq >>"$LOG" 2>&1 || fail "apt-get update failed"
    started=()
    for entry in "${missing[@]}"; do
        IFS='|' read -r -a choices <<<"$entry"
        package=""
        for choice in "${choices[@]}"; do
            if has_candidate "$choice"; then
                package=$choice
                break
            fi
        done
        [ -n "$package" ] || fail "no installable package among: ${choices[*]}"
        echo "installing $package"
        apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 \
            "$package" >>"$LOG" 2>&1 || fail "apt-get install $package failed"
        if [ -n "${SERVICE_OF[$package]:-}" ]; then
            started+=("${SERVICE_OF[$package]}")
        fi
    done

    # A service that started despite the policy would hold its default port: stop it.
    for service in "${started[@]}"; do
        if command -v service >/dev/null 2>&1; then
            service "$service" stop >>"$LOG" 2>&1 || true
        fi
    done
    rm -f "$LOG"
    LOG=""
fi

# ----- check what the launchers need -------------------------------------------------------------
find_sbin() {
    local name
    for name in "$@"; do
        if command -v "$name" >/dev/null 2>&1; then
            return 0
        fi
        if [ -x "/usr/sbin/$name" ] || [ -x "/sbin/$name" ]; then
            return 0
        fi
    done
    return 1
}

compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null ||
    fail "PostgreSQL's initdb not found under /usr/lib/postgresql/*/bin"
find_sbin mariadbd mysqld || fail "mariadbd not found"
find_sbin mariadb-install-db mysql_install_db || fail "mariadb-install-db not found"
find_sbin etcd || fail "etcd not found"
find_sbin nginx || fail "nginx not found"
find_sbin wrk || fail "wrk not found"
[ -x /usr/bin/chromium ] || fail "/usr/bin/chromium not found (Debian's chromium package)"
find_sbin runuser || fail "runuser not found (util-linux)"
getent passwd postgres >/dev/null || fail "the postgres system user is missing"
java_works || fail "java does not run"
[ -f /usr/share/java/zookeeper.jar ] || fail "/usr/share/java/zookeeper.jar not found"
# Loads ZooKeeper's classes (and the dependencies its manifest names) on this Java.
zk_version=$(java -cp /usr/share/java/zookeeper.jar \
    org.apache.zookeeper.version.VersionInfoMain 2>&1) ||
    fail "ZooKeeper does not run on $(command -v java): $zk_version"
