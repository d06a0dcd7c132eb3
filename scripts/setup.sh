#!/usr/bin/env bash
# Create the project's virtualenv (.venv) and install conductor_nb into it.
#   scripts/setup.sh          -> the package with its runtime extras (demo)
#   scripts/setup.sh test     -> everything the test suite needs, Chromium included
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
if [ "${1:-}" = "test" ]; then
  "$VENV/bin/python" -m pip install -q -e '.[dev]'
  if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ]; then
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null
    else
      echo "note: install Debian's chromium (sudo apt-get install chromium) for the browser tests" >&2
    fi
  fi
else
  "$VENV/bin/python" -m pip install -q -e '.[all]'
fi
