#!/usr/bin/env bash
# Test-only: what the browser tests need, on top of ./install.sh --no-lab.
# Debian's Chromium (/usr/bin/chromium) and a pinned Playwright in .venv.
# Never `playwright install`: the tests drive the system Chromium, and that
# command downloads a browser build of its own. Idempotent; students never run
# this (./install.sh does not call it), ./test.sh does.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "tests/browser/install.sh: /usr/bin/chromium is missing; install Debian's" >&2
    echo "  chromium package as root (apt-get install -y chromium) and run again" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
/usr/bin/chromium --version 2>/dev/null  # (Debian's wrapper script warns on stderr)

REQ=tests/browser/requirements.txt
STAMP=.venv/.forja-browser-requirements
if [ ! -x .venv/bin/python ]; then
  echo "tests/browser/install.sh: no .venv; run ./install.sh --no-lab first" >&2
  exit 1
fi
if ! cmp -s "$REQ" "$STAMP" 2>/dev/null; then
  .venv/bin/python -m pip install --quiet -r "$REQ"
  cp "$REQ" "$STAMP"
fi
"$ROOT/.venv/bin/python" -c "import playwright, importlib.metadata as m; print('playwright', m.version('playwright'))"
