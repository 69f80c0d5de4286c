#!/usr/bin/env bash
# Installs forja for every user of a machine (a JupyterHub host or a container
# image) under one prefix that any user can read (default /opt/forja):
#   (FORJA_TOOLCHAIN, default /usr/local/lib/forja-toolchain, outside the
#   prefix): a copy of the active Rust toolchain (rustc, cargo, rust-src);
#               rustup's own dirs usually sit in root's home, which students
#               cannot enter. It must share no directory but / with the
#               prebuilt build: a cell's library finds libstd through a
#               relative rpath computed from target/.../deps/ but loaded from
#               one level up, which only lands right when the path climbs to /.
#   src/        forja's sources and the workspace Cargo.lock (FORJA_CRATE_DIR,
#               FORJA_LOCKFILE)
#   bin/        forja-kernel
#   forja-prebuilt/, forja-prebuilt-vendor/
#               the prebuilt forja every kernel uses in place (FORJA_PREBUILT)
#   venv/       Python with JupyterLab, jupyterhub-singleuser and the forja
#               kernelspec, whose kernel.json sets the variables above and a
#               PATH with toolchain/bin first
#   notebooks/  the lessons, read-only (copy them to each student's home)
# Run it as root from a checkout after ./install.sh --no-lab (which builds the
# kernel); the Dockerfile and CI (test.sh's hub phase) run it the same way.
# Idempotent: a second run only redoes what changed.
#
# Options (environment): FORJA_PREFIX (default /opt/forja), FORJA_PYTHON (the
# interpreter for venv/, default python3 as for ./install.sh, so that
# requirements.txt's pins fit it), FORJA_KERNEL_LANG (es, en or auto; default
# es: the language of the students' messages, written into the kernelspec, so
# a hub whose locale is C.UTF-8 still speaks Spanish). If user `nobody` cannot run it (a pyenv
# Python in /root), it is copied to $PREFIX/python first, its library path
# rewritten with patchelf.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PREFIX=${FORJA_PREFIX:-/opt/forja}
TOOLCHAIN=${FORJA_TOOLCHAIN:-/usr/local/lib/forja-toolchain}
PY=$(command -v "${FORJA_PYTHON:-python3}")
KERNEL_BUILT="$ROOT/target/release/forja-kernel"
T0=$(date +%s)
phase() { echo "==> setup-system [$(( $(date +%s) - T0 ))s] $*"; }

[ -x "$KERNEL_BUILT" ] || { echo "no $KERNEL_BUILT: run ./install.sh --no-lab first" >&2; exit 1; }
umask 022
top() { echo "$1" | cut -d/ -f2; }
if [ "$(top "$TOOLCHAIN")" = "$(top "$PREFIX")" ]; then
  echo "FORJA_TOOLCHAIN ($TOOLCHAIN) and FORJA_PREFIX ($PREFIX) must not share a top-level directory (see the comment at the top)" >&2
  exit 2
fi
mkdir -p "$PREFIX/bin" "$(dirname "$TOOLCHAIN")"

phase "Rust toolchain -> $TOOLCHAIN"
SYSROOT=$(rustc --print sysroot)
VERSION=$(rustc --version)
if [ "$(cat "$TOOLCHAIN/.forja-rustc" 2>/dev/null)" != "$VERSION" ]; then
  rm -rf "$TOOLCHAIN.new"
  # Hard links when on the same file system (instant, no extra space), else a copy.
  cp -al "$SYSROOT" "$TOOLCHAIN.new" 2>/dev/null || { rm -rf "$TOOLCHAIN.new"; cp -a "$SYSROOT" "$TOOLCHAIN.new"; }
  rm -rf "$TOOLCHAIN.new/share/doc"
  echo "$VERSION" > "$TOOLCHAIN.new/.forja-rustc"
  rm -rf "$TOOLCHAIN"
  mv "$TOOLCHAIN.new" "$TOOLCHAIN"
fi
"$TOOLCHAIN/bin/rustc" --version
[ -d "$TOOLCHAIN/lib/rustlib/src" ] || echo "note: no rust-src in the toolchain: completion of std items will not work"

phase "forja sources and kernel -> $PREFIX/src, $PREFIX/bin"
# Only the files the kernel reads; a stable path keeps the prebuilt fresh.
rm -rf "$PREFIX/src.new"
mkdir -p "$PREFIX/src.new"
tar -C "$ROOT" --exclude=target -cf - Cargo.toml Cargo.lock forja kernel vendor | tar -C "$PREFIX/src.new" -xf -
if ! diff -rq "$PREFIX/src.new" "$PREFIX/src" >/dev/null 2>&1; then
  rm -rf "$PREFIX/src"
  mv "$PREFIX/src.new" "$PREFIX/src"
else
  rm -rf "$PREFIX/src.new"
fi
install -m 755 "$KERNEL_BUILT" "$PREFIX/bin/forja-kernel.new"
mv "$PREFIX/bin/forja-kernel.new" "$PREFIX/bin/forja-kernel"

# What every kernel (and the prebuild) sees: the shared paths, the toolchain first.
KERNEL_ENV=(
  "FORJA_CRATE_DIR=$PREFIX/src/forja"
  "FORJA_LOCKFILE=$PREFIX/src/Cargo.lock"
  "FORJA_PREBUILT=$PREFIX/forja-prebuilt"
  "PATH=$TOOLCHAIN/bin:/usr/local/bin:/usr/bin:/bin"
)

phase "Python environment -> $PREFIX/venv"
if ! runuser -u nobody -- "$PY" -c pass 2>/dev/null; then
  BASE=$("$PY" -c 'import sys; print(sys.base_prefix)')
  VER=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  STAMP="$BASE $("$PY" --version)"
  echo "$PY cannot be run by other users: copying $BASE to $PREFIX/python"
  if [ "$(cat "$PREFIX/python/.forja-python" 2>/dev/null)" != "$STAMP" ]; then
    command -v patchelf >/dev/null || apt-get install -y -q patchelf >/dev/null \
      || { apt-get update -q >/dev/null && apt-get install -y -q patchelf >/dev/null; }
    rm -rf "$PREFIX/python.new" "$PREFIX/venv"
    cp -al "$BASE" "$PREFIX/python.new" 2>/dev/null || { rm -rf "$PREFIX/python.new"; cp -a "$BASE" "$PREFIX/python.new"; }
    for f in "bin/python$VER" "lib/libpython$VER.so.1.0"; do
      [ -f "$PREFIX/python.new/$f" ] || continue
      # A copy of its own (not a hard link into $BASE) before patching.
      cp --remove-destination "$BASE/$f" "$PREFIX/python.new/$f"
      if patchelf --print-rpath "$PREFIX/python.new/$f" | grep -q "$BASE"; then
        patchelf --set-rpath '$ORIGIN/../lib' "$PREFIX/python.new/$f"
      fi
    done
    echo "$STAMP" > "$PREFIX/python.new/.forja-python"
    rm -rf "$PREFIX/python"
    mv "$PREFIX/python.new" "$PREFIX/python"
  fi
  PY="$PREFIX/python/bin/python$VER"
fi
[ -x "$PREFIX/venv/bin/python" ] || "$PY" -m venv "$PREFIX/venv"
WANT=$(cat requirements.txt deploy/requirements-hub.txt)
if [ "$(cat "$PREFIX/venv/.forja-requirements" 2>/dev/null)" != "$WANT" ]; then
  "$PREFIX/venv/bin/python" -m pip install --quiet --upgrade "pip==26.3"
  "$PREFIX/venv/bin/python" -m pip install --quiet -r requirements.txt -r deploy/requirements-hub.txt
  printf '%s' "$WANT" > "$PREFIX/venv/.forja-requirements"
fi

phase "kernelspec -> $PREFIX/venv/share/jupyter/kernels/forja"
ENV_ARGS=()
for kv in "${KERNEL_ENV[@]}"; do ENV_ARGS+=(--env "$kv"); done
"$PREFIX/bin/forja-kernel" install --prefix "$PREFIX/venv" --lang "${FORJA_KERNEL_LANG:-es}" "${ENV_ARGS[@]}"

phase "prebuilding forja -> $PREFIX/forja-prebuilt"
env "${KERNEL_ENV[@]}" "$PREFIX/bin/forja-kernel" prebuild

phase "lessons -> $PREFIX/notebooks"
rm -rf "$PREFIX/notebooks"
cp -r "$ROOT/notebooks" "$PREFIX/notebooks"

chmod -R a+rX,go-w "$PREFIX" "$TOOLCHAIN"
phase "done: point the hub's spawner at $PREFIX/venv/bin (see deploy/README.md)"
