//! Pruning a prebuilt target dir: what only the prebuild session could use,
//! and the units of earlier builds that no build uses any more.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

/// The profile dirs of a target dir: `debug` holds host artefacts (build
/// scripts, proc macros); evcxr's `--target <host>` puts the rest under
/// `<triple>/debug`.
fn profile_dirs(target: &Path) -> io::Result<Vec<PathBuf>> {
    let mut dirs = vec![target.join("debug")];
    for entry in std::fs::read_dir(target)? {
        let path = entry?.path().join("debug");
        if path.is_dir() {
            dirs.push(path);
        }
    }
    Ok(dirs)
}

/// Removes from a prebuilt target dir what only the prebuild session itself
/// could use: the `ctx` crate's outputs (their hash includes the crate dir's
/// path, so no other session reuses them) and evcxr's per-cell libraries.
pub fn prune_session_outputs(target: &Path) -> io::Result<()> {
    let profile_dirs = profile_dirs(target)?;
    for profile_dir in profile_dirs {
        let Ok(entries) = std::fs::read_dir(&profile_dir) else {
            continue;
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("libcode_") || name.starts_with("libctx") {
                std::fs::remove_file(entry.path())?;
            }
        }
        for sub in ["deps", ".fingerprint", "incremental"] {
            let Ok(entries) = std::fs::read_dir(profile_dir.join(sub)) else {
                continue;
            };
            for entry in entries {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with("ctx-") || name.starts_with("libctx") {
                    if entry.file_type()?.is_dir() {
                        std::fs::remove_dir_all(entry.path())?;
                    } else {
                        std::fs::remove_file(entry.path())?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// The cargo unit hash in a target-dir entry's name: `0123456789abcdef` in
/// `libnix-0123456789abcdef.rlib`, `nix-0123456789abcdef.d` or the
/// `.fingerprint`/`build` dir `nix-0123456789abcdef`.
pub fn unit_hash(name: &str) -> Option<&str> {
    let stem = name.split('.').next()?;
    let (_, hash) = stem.rsplit_once('-')?;
    (hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hash)
}

/// Removes from a target dir the units no longer used (a prebuild that
/// starts from the previous build keeps the old copies of whatever
/// changed): every entry of `deps`, `.fingerprint` and `build` whose unit
/// hash is not in `used`. Returns how many entries it removed.
pub fn prune_stale_units(target: &Path, used: &HashSet<String>) -> io::Result<usize> {
    let mut removed = 0;
    let profile_dirs = profile_dirs(target)?;
    for profile_dir in profile_dirs {
        for sub in ["deps", ".fingerprint", "build"] {
            let Ok(entries) = std::fs::read_dir(profile_dir.join(sub)) else {
                continue;
            };
            for entry in entries {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let Some(hash) = unit_hash(&name) else {
                    continue;
                };
                if used.contains(hash) {
                    continue;
                }
                if entry.file_type()?.is_dir() {
                    std::fs::remove_dir_all(entry.path())?;
                } else {
                    std::fs::remove_file(entry.path())?;
                }
                removed += 1;
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build_cache::testing::scratch;

    #[test]
    fn prune_removes_only_session_outputs() {
        let base = scratch("prune");
        let d = base.join("x86_64-unknown-linux-gnu").join("debug");
        for sub in [
            "deps",
            ".fingerprint/ctx-1",
            ".fingerprint/nix-2",
            "incremental/ctx-3",
        ] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        for f in [
            "libcode_1.so",
            "libctx.d",
            "deps/libctx-1.so",
            "deps/libnix-2.rlib",
        ] {
            std::fs::write(d.join(f), "").unwrap();
        }
        prune_session_outputs(&base).unwrap();
        assert!(d.join("deps/libnix-2.rlib").exists());
        assert!(d.join(".fingerprint/nix-2").exists());
        for gone in [
            "libcode_1.so",
            "libctx.d",
            "deps/libctx-1.so",
            ".fingerprint/ctx-1",
        ] {
            assert!(!d.join(gone).exists(), "{gone}");
        }
        assert!(!d.join("incremental/ctx-3").exists());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn stale_units_are_pruned_by_hash() {
        const OLD: &str = "00000000000000aa";
        const NEW: &str = "00000000000000bb";
        const RUN: &str = "00000000000000cc";
        assert_eq!(unit_hash(&format!("libnix-{NEW}.rlib")), Some(NEW));
        assert_eq!(unit_hash(&format!("nix-{NEW}")), Some(NEW));
        assert_eq!(unit_hash("libcode_1.so"), None);
        assert_eq!(unit_hash("build-script-build"), None);
        let base = scratch("stale");
        let d = base.join("x86_64-unknown-linux-gnu").join("debug");
        let host = base.join("debug");
        for dir in [
            d.join("deps"),
            d.join(format!(".fingerprint/nix-{OLD}")),
            d.join(format!(".fingerprint/nix-{NEW}")),
            host.join(format!("build/serde-{RUN}/out")),
            host.join(format!("build/serde-{OLD}")),
        ] {
            std::fs::create_dir_all(dir).unwrap();
        }
        for f in [
            format!("deps/libnix-{OLD}.rlib"),
            format!("deps/libnix-{NEW}.rlib"),
            format!("deps/nix-{NEW}.d"),
            "deps/unhashed.txt".to_owned(),
        ] {
            std::fs::write(d.join(f), "").unwrap();
        }
        let used = [NEW, RUN].map(str::to_owned).into_iter().collect();
        assert_eq!(prune_stale_units(&base, &used).unwrap(), 3);
        for kept in [
            d.join(format!("deps/libnix-{NEW}.rlib")),
            d.join(format!("deps/nix-{NEW}.d")),
            d.join("deps/unhashed.txt"),
            d.join(format!(".fingerprint/nix-{NEW}")),
            host.join(format!("build/serde-{RUN}/out")),
        ] {
            assert!(kept.exists(), "{}", kept.display());
        }
        for gone in [
            d.join(format!("deps/libnix-{OLD}.rlib")),
            d.join(format!(".fingerprint/nix-{OLD}")),
            host.join(format!("build/serde-{OLD}")),
        ] {
            assert!(!gone.exists(), "{}", gone.display());
        }
        std::fs::remove_dir_all(&base).unwrap();
    }
}
