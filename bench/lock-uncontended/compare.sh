#!/usr/bin/env bash
# Builds this benchmark twice — against forja at BASE (default HEAD, i.e. the
# last commit; pass the commit before a change) and against the work tree —
# and runs the two binaries alternately, so both see the same machine load.
# Usage: bench/lock-uncontended/compare.sh [BASE] [ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
base=${1:-HEAD}
rounds=${2:-15}
tmp=${TMPDIR:-/tmp}/lock-uncontended.$$
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/old/bench"
git -C "$repo" archive "$base" Cargo.toml forja | tar -x -C "$tmp/old"
# A workspace of forja alone (its manifest inherits the workspace's fields).
sed -i 's/^members = .*/members = ["forja"]/; s/^exclude = .*/exclude = ["bench"]/; /^\[patch/,$d' \
    "$tmp/old/Cargo.toml"
cp -r "$here" "$tmp/old/bench/lock-uncontended"
rm -rf "$tmp/old/bench/lock-uncontended/target"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$here/target}
cargo build --release --offline --manifest-path "$tmp/old/bench/lock-uncontended/Cargo.toml"
cp "$CARGO_TARGET_DIR/release/lock-uncontended" "$tmp/old.bin"
cargo build --release --offline --manifest-path "$here/Cargo.toml"
cp "$CARGO_TARGET_DIR/release/lock-uncontended" "$tmp/new.bin"
for i in 1 2 3; do
    echo "== base ($base), run $i"; taskset -c 0 "$tmp/old.bin" "$rounds"
    echo "== work tree, run $i"; taskset -c 0 "$tmp/new.bin" "$rounds"
done
