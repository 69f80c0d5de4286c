#!/usr/bin/env bash
# vendor/evcxr is evcxr as published on crates.io plus forja's patch series
# (patches/NNNN-*.patch, applied in order; FORJA_PATCHES.md says why each).
#
#   vendor/evcxr/revendor.sh VERSION   re-vendors evcxr VERSION from crates.io
#       (needs the network; a developer's step, not CI's): downloads the crate
#       through cargo, leaves out what forja does not vendor, writes the
#       pristine files' checksums to pristine.sha256, applies the series and
#       fails loudly on the first patch that does not apply.
#   vendor/evcxr/revendor.sh --check   checks OFFLINE (./test.sh runs it) that
#       vendor/evcxr is exactly the pristine crate plus the series (reverse-
#       applying the series to a copy gives back pristine.sha256's files), that
#       every place repeating evcxr's version agrees with vendor/evcxr/Cargo.toml
#       and that FORJA_PATCHES.md lists the series.
#
# Any change to vendor/evcxr outside forja's own files (below) is a new
# numbered patch: make it in a copy of the pristine tree plus the series, then
# `git diff` it into patches/NNNN-name.patch with a few lines saying why first.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# forja's own files in vendor/evcxr, not part of the crate.
OWN=(FORJA_PATCHES.md revendor.sh pristine.sha256 patches)
# What the published crate has and forja does not vendor.
DROPPED=(.cargo_vcs_info.json Cargo.lock Cargo.toml.orig examples tests)

die() {
  echo "revendor.sh: $*" >&2
  exit 1
}

patches() { find "$HERE/patches" -maxdepth 1 -name '[0-9][0-9][0-9][0-9]-*.patch' | sort; }

# The version in vendor/evcxr/Cargo.toml: the one source of truth.
vendored_version() {
  sed -n '/^\[package\]/,/^\[/s/^version = "\(.*\)"$/\1/p' "$HERE/Cargo.toml" | head -n1
}

# Copies vendor/evcxr without forja's own files into $1.
copy_crate_files() {
  mkdir -p "$1"
  (cd "$HERE" && tar -cf - --exclude=./target "${OWN[@]/#/--exclude=./}" .) | tar -xf - -C "$1"
}

# Applies (or with -R reverses) one patch in directory $1, strictly (no fuzz).
apply() {
  local dir=$1 patch=$2
  shift 2
  (cd "$dir" && GIT_DIR=/nonexistent git apply --whitespace=nowarn "$@" "$patch")
}

check_tree() {
  local tree version
  tree=$TMP/tree
  copy_crate_files "$tree"
  local list
  mapfile -t list < <(patches)
  for ((i = ${#list[@]} - 1; i >= 0; i--)); do
    apply "$tree" "${list[i]}" -R ||
      die "vendor/evcxr is not pristine evcxr plus the series: $(basename "${list[i]}") does not reverse-apply.
Put every change to vendor/evcxr in a numbered patch (see the top of this script)."
  done
  [[ -f $HERE/pristine.sha256 ]] || die "vendor/evcxr/pristine.sha256 is missing (run revendor.sh VERSION)"
  (cd "$tree" && sha256sum --quiet -c <(grep -v '^#' "$HERE/pristine.sha256")) ||
    die "with the series reversed, vendor/evcxr differs from the pristine crate (pristine.sha256): the files above"
  local extra
  extra=$(comm -23 <(cd "$tree" && find . -type f | sed 's|^\./||' | sort) \
    <(grep -v '^#' "$HERE/pristine.sha256" | sed 's/^[0-9a-f]*  //' | sort))
  [[ -z $extra ]] || die "files in vendor/evcxr that neither the crate nor a patch has: $extra"
  version=$(vendored_version)
  grep -q "^# evcxr $version " "$HERE/pristine.sha256" ||
    die "pristine.sha256 is not evcxr $version's (vendor/evcxr/Cargo.toml)"
  echo "vendor/evcxr = evcxr $version + ${#list[@]} patches"
}

# Every place that repeats evcxr's version names vendor/evcxr/Cargo.toml's.
check_versions() {
  local version mentions bad
  version=$(vendored_version)
  grep -q "^evcxr = \"=$version\"$" "$ROOT/kernel/Cargo.toml" ||
    die "kernel/Cargo.toml must pin evcxr = \"=$version\" (vendor/evcxr/Cargo.toml's version)"
  mentions=$(cd "$ROOT" && git grep -noE \
    '(evcxr(_jupyter)? (--version )?|evcxr = "=|EVCXR_VERSION: &str = ")[0-9]+\.[0-9]+(\.[0-9]+)?' \
    -- ':!vendor/evcxr/src' ':!vendor/evcxr/patches' ':!vendor/evcxr/pristine.sha256' ':!Cargo.lock')
  bad=$(grep -vE "[^0-9.]($version|${version%.*})\$" <<<"$mentions" || true)
  [[ -z $bad ]] || die "evcxr's version is $version (vendor/evcxr/Cargo.toml), but:
$bad"
  echo "every mention of evcxr's version says $version ($(wc -l <<<"$mentions") places)"
}

# FORJA_PATCHES.md names exactly the patches in patches/.
check_doc() {
  local listed present
  listed=$(grep -oE '[0-9]{4}-[a-z0-9-]+\.patch' "$HERE/FORJA_PATCHES.md" | sort -u || true)
  present=$(patches | xargs -n1 basename)
  [[ $listed == "$present" ]] || die "FORJA_PATCHES.md's list of patches is not patches/:
$(diff <(echo "$listed") <(echo "$present"))"
  echo "FORJA_PATCHES.md lists the $(wc -l <<<"$present") patches"
}

revendor() {
  local version=$1 crate tree
  local tmp=$TMP
  # A throwaway project whose only dependency is evcxr VERSION: `cargo fetch`
  # downloads its .crate (checked against the registry's checksum) into
  # cargo's cache. The workspace's lock keeps the other crates' versions.
  mkdir -p "$tmp/dl/src"
  printf '[package]\nname = "revendor-evcxr"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\nevcxr = "=%s"\n' \
    "$version" >"$tmp/dl/Cargo.toml"
  touch "$tmp/dl/src/lib.rs"
  cp "$ROOT/Cargo.lock" "$tmp/dl/"
  (cd "$tmp/dl" && cargo fetch) || die "cargo could not fetch evcxr $version"
  crate=$(find "${CARGO_HOME:-$HOME/.cargo}/registry/cache" -name "evcxr-$version.crate" | head -n1)
  [[ -n $crate ]] || die "evcxr-$version.crate is not in cargo's cache after cargo fetch"
  tree=$tmp/tree
  mkdir -p "$tree"
  tar -xzf "$crate" -C "$tree" --strip-components=1
  (cd "$tree" && rm -rf "${DROPPED[@]}")
  {
    echo "# evcxr $version $(sha256sum "$crate" | cut -d' ' -f1) (sha256 of the .crate; files as vendored, before the patches)"
    (cd "$tree" && find . -type f | sed 's|^\./||' | LC_ALL=C sort | xargs -d '\n' sha256sum)
  } >"$tmp/pristine.sha256"
  local patch
  while read -r patch; do
    echo "applying $(basename "$patch")"
    apply "$tree" "$patch" ||
      die "$(basename "$patch") does not apply to evcxr $version: port it by hand in a copy
(pristine + the patches before it), rewrite the patch, run this again. vendor/evcxr is unchanged."
  done < <(patches)
  # Replace everything but forja's own files.
  local f
  for f in "$HERE"/* "$HERE"/.[!.]*; do
    [[ -e $f ]] || continue
    [[ " ${OWN[*]} " == *" $(basename "$f") "* ]] || rm -rf "$f"
  done
  (cd "$tree" && tar -cf - .) | tar -xf - -C "$HERE"
  cp "$tmp/pristine.sha256" "$HERE/pristine.sha256"
  sed -i "s/^evcxr = \"=.*\"$/evcxr = \"=$version\"/" "$ROOT/kernel/Cargo.toml"
  echo "vendor/evcxr is now evcxr $version + the series. Next: cargo update -p evcxr,"
  echo "then fix what \`vendor/evcxr/revendor.sh --check\` reports (other places naming the version)."
}

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
case "${1:-}" in
--check)
  check_tree
  check_versions
  check_doc
  ;;
[0-9]*) revendor "$1" ;;
*)
  echo "usage: vendor/evcxr/revendor.sh VERSION | --check" >&2
  exit 2
  ;;
esac
