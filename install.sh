#!/usr/bin/env bash
# One command that sets up forja on a fresh machine:
#   builds the kernel (--locked), makes a virtualenv with pinned JupyterLab and
#   the test packages, registers the kernelspec, prebuilds forja for fast first
#   cells, then opens JupyterLab on notebooks/ (skip that with --no-lab).
# Idempotent: running it again only redoes what changed.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
OPEN_LAB=1
for arg in "$@"; do
  case "$arg" in
    --no-lab) OPEN_LAB=0 ;;
    -h|--help) echo "usage: ./install.sh [--no-lab]"; exit 0 ;;
    *) echo "unknown option: $arg" >&2; exit 2 ;;
  esac
done

phase_start=$(date +%s)
phase() {
  local now; now=$(date +%s)
  echo "==> [$(( now - phase_start ))s] $*"
}

phase "checking the Rust toolchain"
command -v cargo >/dev/null || { echo "cargo not found: install Rust from https://rustup.rs" >&2; exit 1; }
rustc --version
if command -v rustup >/dev/null && ! rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
  echo "note: the rust-src component is missing; completion of std items needs it."
  echo "      add it with:  rustup component add rust-src"
fi

phase "building forja-kernel (release, --locked)"
cargo build --release --locked -p forja-kernel
KERNEL="$ROOT/target/release/forja-kernel"

phase "python virtualenv (.venv) with pinned packages"
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if ! cmp -s requirements.txt .venv/.forja-requirements 2>/dev/null; then
  .venv/bin/python -m pip install --quiet --upgrade "pip==26.3"
  .venv/bin/python -m pip install --quiet -r requirements.txt
  cp requirements.txt .venv/.forja-requirements
fi

phase "registering the kernelspec in the virtualenv"
# The students' messages in the language of this person's locale, the same
# rule as forja's (FORJA_LANG > LC_ALL > LC_MESSAGES > LANG): Spanish is
# written into the kernelspec, so it holds even when Jupyter is started
# without that locale; otherwise the kernel follows the locale it gets.
# Change it later with: target/release/forja-kernel install --sys-prefix --lang es|en|auto
LANG_OF_LOCALE=auto
for v in "${FORJA_LANG:-}" "${LC_ALL:-}" "${LC_MESSAGES:-}" "${LANG:-}"; do
  if [ -n "$v" ]; then
    case "$v" in es*|ES*|Es*) LANG_OF_LOCALE=es ;; esac
    break
  fi
done
VIRTUAL_ENV="$ROOT/.venv" "$KERNEL" install --sys-prefix --lang "$LANG_OF_LOCALE"
.venv/bin/jupyter kernelspec list

phase "prebuilding forja for the kernel"
"$KERNEL" prebuild

phase "done"
if [ "$OPEN_LAB" = 1 ]; then
  exec .venv/bin/jupyter lab --notebook-dir="$ROOT/notebooks"
fi
