#!/usr/bin/env bash
# Runs the whole test suite, installing what it needs first (./install.sh
# --no-lab) but opening nothing. Idempotent. CI runs this through .ci/run.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
T0=$(date +%s)
phase() { echo "==> [$(( $(date +%s) - T0 ))s] $*"; }

phase "install (build, virtualenv, kernelspec, prebuild)"
./install.sh --no-lab

export PATH="$ROOT/.venv/bin:$PATH"
export JUPYTER_PATH="$ROOT/.venv/share/jupyter"

phase "format and lint"
cargo fmt --all -- --check
cargo clippy --locked -p forja --all-targets -- -D warnings

phase "module graph and file sizes"
python3 tools/check_modules.py
# The fork-heavy forja/tests/*.rs are `harness = false` (common/harness.rs):
# a #[test] there never runs. (ui.rs and safety_comments.rs keep libtest.)
no_harness=$(awk '/^\[\[test\]\]/ {n = ""} /^name = / {gsub(/"/, "", $3); n = $3}
  /^harness = false/ {print "forja/tests/" n ".rs"}' forja/Cargo.toml)
if grep -n '^\s*#\[test\]' $no_harness; then
  echo "forja/tests: list tests in common::tests! at the end of the file, not with #[test]" >&2
  exit 1
fi

phase "vendored evcxr = the published crate + vendor/evcxr/patches (offline)"
vendor/evcxr/revendor.sh --check

phase "kernel unit tests (release profile: reuses the release build)"
cargo test --release --locked -p forja-kernel

phase "forja tests (each test in its own process)"
cargo nextest run --locked -p forja --no-fail-fast

phase "forja doctests"
cargo test --locked -p forja --doc

phase "forja examples"
for ex in forja/examples/*.rs; do
  name=$(basename "$ex" .rs)
  echo "--- example $name"
  timeout 120 cargo run --locked -q -p forja --example "$name"
done

phase "end-to-end tests through Jupyter clients"
python -m pytest tests -v --timeout=600 --ignore=tests/browser --ignore=tests/test_hub.py

phase "browser: what a student sees in JupyterLab (Debian's Chromium through Playwright)"
tests/browser/install.sh
python -m pytest tests/browser -v --timeout=600 -rxX

phase "hub: deploy/setup-system.sh, then a real JupyterHub with two Unix users"
if [ "$(id -u)" = 0 ]; then
  deploy/setup-system.sh
  if ! cmp -s tests/hub/requirements.txt .venv/.forja-hub-requirements 2>/dev/null \
     || ! cmp -s deploy/requirements-hub.txt .venv/.forja-hub-pins 2>/dev/null; then
    python -m pip install --quiet -r tests/hub/requirements.txt
    cp tests/hub/requirements.txt .venv/.forja-hub-requirements
    cp deploy/requirements-hub.txt .venv/.forja-hub-pins
  fi
  npm ci --prefix tests/hub --no-audit --no-fund --loglevel=error
  python -m pytest tests/test_hub.py -v --timeout=600
else
  echo "skipped: the hub test creates Unix users and needs root"
fi

phase "all tests passed"
