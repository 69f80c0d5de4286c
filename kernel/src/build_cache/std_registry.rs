//! The standard library's crates.io entries, kept by the prebuild and added
//! to each user's cargo home, so evcxr's rust-analyzer can resolve the
//! standard library's own workspace offline.
//!
//! rust-analyzer resolves that workspace with cargo, which for a user who
//! never downloaded those crates fails offline (after ~12 s of retries) and
//! leaves every `let` untyped: the prebuild keeps a copy of those index
//! entries and archives ([`snapshot_std_registry`]) that kernels add to the
//! user's cargo home ([`seed_registry`]).

use std::io;
use std::path::{Path, PathBuf};

/// Copies, from `cargo_home`'s registry into `seed`, what cargo needs to
/// resolve the standard library's workspace offline: rust-analyzer (inside
/// evcxr, inferring the type of each variable) runs `cargo metadata` on it,
/// and for a user who never downloaded those crates that fails without
/// network — after a dozen seconds of retries — and leaves every `let`
/// without a type. Returns the number of files copied.
pub fn snapshot_std_registry(
    sysroot_lock: &str,
    cargo_home: &Path,
    seed: &Path,
) -> io::Result<usize> {
    let packages = lock_registry_packages(sysroot_lock);
    let mut copied = 0;
    let index_root = cargo_home.join("registry/index");
    let Ok(indexes) = std::fs::read_dir(&index_root) else {
        return Ok(0);
    };
    for index in indexes {
        let index = index?.file_name();
        let mut files = vec![PathBuf::from("index").join(&index).join("config.json")];
        for (name, version) in &packages {
            files.push(
                PathBuf::from("index")
                    .join(&index)
                    .join(".cache")
                    .join(index_prefix(name))
                    .join(name),
            );
            files.push(
                PathBuf::from("cache")
                    .join(&index)
                    .join(format!("{name}-{version}.crate")),
            );
        }
        for rel in files {
            let from = cargo_home.join("registry").join(&rel);
            if from.is_file() {
                let to = seed.join(&rel);
                std::fs::create_dir_all(to.parent().unwrap_or(seed))?;
                std::fs::copy(&from, &to)?;
                copied += 1;
            }
        }
    }
    Ok(copied)
}

/// Copies into `cargo_home`'s registry each file of `seed` it lacks (see
/// [`snapshot_std_registry`]); never overwrites. Errors (a read-only cargo
/// home, say) only mean rust-analyzer may lack the standard library offline.
pub fn seed_registry(seed: &Path, cargo_home: &Path) -> io::Result<usize> {
    fn walk(seed: &Path, rel: &Path, home: &Path, n: &mut usize) -> io::Result<()> {
        for entry in std::fs::read_dir(seed.join(rel))? {
            let entry = entry?;
            let rel = rel.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                walk(seed, &rel, home, n)?;
            } else {
                let to = home.join("registry").join(&rel);
                if !to.exists() {
                    // Copy then rename: a cargo reading it meanwhile (another
                    // kernel starting) never sees half a file.
                    let dir = to.parent().unwrap_or(home);
                    std::fs::create_dir_all(dir)?;
                    let tmp = dir.join(format!(".forja-seed-{}", std::process::id()));
                    std::fs::copy(entry.path(), &tmp)?;
                    std::fs::rename(&tmp, &to)?;
                    *n += 1;
                }
            }
        }
        Ok(())
    }
    let mut n = 0;
    if seed.is_dir() {
        walk(seed, Path::new(""), cargo_home, &mut n)?;
    }
    Ok(n)
}

/// The `(name, version)` of the registry packages in a `Cargo.lock`.
fn lock_registry_packages(lock: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for block in lock.split("[[package]]").skip(1) {
        let field = |key: &str| {
            block.lines().find_map(|l| {
                let v = l.strip_prefix(key)?.trim_start().strip_prefix('=')?.trim();
                Some(v.trim_matches('"').to_owned())
            })
        };
        if let (Some(name), Some(version), Some(source)) =
            (field("name"), field("version"), field("source"))
            && source.starts_with("registry+")
        {
            out.push((name, version));
        }
    }
    out
}

/// Where the sparse crates.io index caches a crate's entry (cargo's layout).
fn index_prefix(name: &str) -> PathBuf {
    let n = name.to_lowercase();
    match n.len() {
        0 => PathBuf::new(),
        1 => PathBuf::from("1"),
        2 => PathBuf::from("2"),
        3 => PathBuf::from("3").join(&n[..1]),
        _ => PathBuf::from(&n[..2]).join(&n[2..4]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build_cache::testing::scratch;

    #[test]
    fn std_registry_snapshot_and_seed_copy_only_whats_missing() {
        let base = scratch("registry");
        let home = base.join("home");
        let idx = "index.crates.io-0123";
        let reg = home.join("registry");
        for (rel, text) in [
            (format!("index/{idx}/config.json"), "{}"),
            (format!("index/{idx}/.cache/li/bc/libc"), "libc entries"),
            (format!("index/{idx}/.cache/3/a/adl"), "adl entries"),
            (format!("index/{idx}/.cache/un/re/unrelated"), "no"),
            (format!("cache/{idx}/libc-0.2.1.crate"), "tarball"),
        ] {
            std::fs::create_dir_all(reg.join(&rel).parent().unwrap()).unwrap();
            std::fs::write(reg.join(&rel), text).unwrap();
        }
        let lock = "version = 4\n\n[[package]]\nname = \"libc\"\nversion = \"0.2.1\"\n\
                    source = \"registry+https://github.com/rust-lang/crates.io-index\"\n\n\
                    [[package]]\nname = \"adl\"\nversion = \"1.0.0\"\n\
                    source = \"registry+https://github.com/rust-lang/crates.io-index\"\n\n\
                    [[package]]\nname = \"std\"\nversion = \"0.0.0\"\n";
        let seed = base.join("seed");
        // config.json, two index entries, one archive (adl's is not cached).
        assert_eq!(snapshot_std_registry(lock, &home, &seed).unwrap(), 4);
        assert!(
            !seed
                .join(format!("index/{idx}/.cache/un/re/unrelated"))
                .exists()
        );

        let user = base.join("user");
        std::fs::create_dir_all(user.join(format!("registry/index/{idx}"))).unwrap();
        std::fs::write(
            user.join(format!("registry/index/{idx}/config.json")),
            "mine",
        )
        .unwrap();
        assert_eq!(seed_registry(&seed, &user).unwrap(), 3);
        let read = |rel: &str| std::fs::read_to_string(user.join("registry").join(rel)).unwrap();
        assert_eq!(read(&format!("index/{idx}/config.json")), "mine");
        assert_eq!(read(&format!("cache/{idx}/libc-0.2.1.crate")), "tarball");
        assert_eq!(seed_registry(&seed, &user).unwrap(), 0);
        std::fs::remove_dir_all(&base).unwrap();
    }
}
