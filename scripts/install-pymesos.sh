#!/usr/bin/env bash
# Installs pymesos (a Mesos framework and executor library) into a Python
# environment on Python >= 3.11, where its dependency http-parser 0.9.0 no longer
# compiles: builds http-parser from PyPI's sdist without its C extension (it then
# uses its own pure-Python parser, as on PyPy), then installs pymesos as it is.
#
#   scripts/install-pymesos.sh PYTHON [--parser-only]
#   e.g. scripts/install-pymesos.sh ~/venvs/myframework/bin/python
set -euo pipefail
PY=${1:?usage: install-pymesos.sh PYTHON [--parser-only]}
if ! "$PY" -c "import http_parser" 2>/dev/null; then
    echo "==> http-parser (pure Python, for pymesos)"
    tmp=$(mktemp -d)
    "$PY" -m pip download -q --disable-pip-version-check --no-deps \
        --no-binary :all: -d "$tmp" 'http-parser==0.9.0'
    tar -xzf "$tmp"/http-parser-0.9.0.tar.gz -C "$tmp"
    # Its setup.py: no C extension, and no `imp` (gone from Python 3.12).
    "$PY" - "$tmp"/http-parser-0.9.0/setup.py <<'PY'
import re, sys
path = sys.argv[1]
text = open(path).read()
text = text.replace("from imp import load_source\n", "")
text = re.sub(r"http_parser = load_source\([^)]*\)\)", "", text)
text = text.replace("VERSION = http_parser.__version__", "VERSION = '0.9.0'")
text = text.replace("run_setup(not IS_PYPY)", "run_setup(False)")
open(path, "w").write(text)
PY
    rm -f "$tmp"/http-parser-0.9.0/http_parser/*.so
    # A fresh venv's setuptools (65) cannot build a wheel without the wheel package.
    "$PY" -m pip install -q --disable-pip-version-check -U 'setuptools>=70.1' wheel
    "$PY" -m pip install -q --disable-pip-version-check --no-build-isolation \
        "$tmp"/http-parser-0.9.0
    rm -rf "$tmp"
fi
if [ "${2:-}" != "--parser-only" ]; then
    echo "==> pymesos"
    "$PY" -m pip install -q --disable-pip-version-check 'pymesos==0.3.15'
fi
