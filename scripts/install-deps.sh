#!/usr/bin/env bash
# Installs everything Orbiter needs on a fresh Debian machine (run as root):
# the Debian packages the tests talk to for real, then the Python package
# with its test extras. Safe to run again: it skips what is already there.
set -euo pipefail

# Debian packages and the command each provides. Add a package here when a
# test starts using its server; the tests fail (never skip) when it is missing.
DEBS=(prometheus:promtool)

missing=()
for entry in "${DEBS[@]}"; do
    pkg=${entry%%:*}
    cmd=${entry##*:}
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "==> apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Debian's postinst scripts try to start services; tests start their own.
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    rm -f /usr/sbin/policy-rc.d
fi

PYTHON=${PYTHON:-python3}
echo "==> pip install -e .[test,satellite]"
"$PYTHON" -m pip install -q --disable-pip-version-check -e '.[test,satellite]' 2>&1 \
    | grep -v -e '^WARNING: Running pip as' -e 'is ignored: it is neither' || true
