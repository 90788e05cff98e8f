#!/usr/bin/env bash
# Installs everything Orbiter needs on a fresh Debian machine (run as root, or
# with sudo for the Debian packages): the Debian packages the tests talk to for
# real, then a virtual environment in .venv with the package and its test
# extras (Debian's own Python refuses system-wide pip installs, PEP 668).
# Safe to run again: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# Debian packages and the command each provides (or, for a package that puts
# no command on PATH, a file it installs: an absolute path). Add a package here
# when a test starts using its server; the tests fail (never skip) in CI when it
# is missing. zookeeperd brings zookeeper and a Java runtime; tests run their own
# ZooKeeper servers, never the system service. chromium is the browser the web UI's
# tests drive through Playwright (whose own browser download is never used).
DEBS=(prometheus:promtool zookeeperd:/usr/share/zookeeper/bin/zkServer.sh
      prometheus-alertmanager:amtool influxdb:influxd
      docker.io:dockerd busybox-static:/bin/busybox chromium:/usr/bin/chromium)

apt_install() {
    echo "==> apt-get install $*"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    # Debian's postinst scripts try to start services; tests start their own.
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
    $SUDO rm -f /usr/sbin/policy-rc.d
}

missing=()
provided() {
    case "$1" in
        /*) [ -e "$1" ] ;;
        *) command -v "$1" >/dev/null 2>&1 ;;
    esac
}
for entry in "${DEBS[@]}"; do
    provided "${entry#*:}" || missing+=("${entry%%:*}")
done
if ((${#missing[@]})); then apt_install "${missing[@]}"; fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "==> $PYTHON -m venv .venv"
    if ! "$PYTHON" -m venv .venv 2>/dev/null; then
        rm -rf .venv
        apt_install python3-venv
        "$PYTHON" -m venv .venv
    fi
fi
# pymesos (a test dependency) needs http-parser, whose C extension no longer compiles
# on Python >= 3.11: scripts/install-pymesos.sh builds its pure-Python parser.
scripts/install-pymesos.sh .venv/bin/python --parser-only
echo "==> .venv: pip install -e .[test]"
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
