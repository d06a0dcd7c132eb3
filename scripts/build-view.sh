#!/usr/bin/env bash
# Rebuild the view's bundled front end (conductor_nb/widgets/static/view.{js,css}) from js/src,
# with the exact dependency versions of js/package-lock.json.
#   scripts/build-view.sh          rebuild
#   scripts/build-view.sh --check  fail when the committed bundle differs from the sources (CI)
# Needs node >= 18 and npm; installs them with apt-get when absent and running as root (CI).
set -euo pipefail
cd "$(dirname "$0")/../js"
if ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
  else
    echo "build-view: node and npm are needed (apt-get install nodejs npm)" >&2
    exit 2
  fi
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
node build.mjs "$@"
