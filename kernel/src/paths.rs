//! Where the kernel keeps things: its private work dir, the forja crate, the
//! workspace lock file and the prebuilt build cache (whose vendored sources
//! sit next to it, see [`crate::build_cache::vendor_dir`]).

use crate::config::Config;
use std::path::PathBuf;

pub use crate::toolchain::path_with_toolchain_first;

/// The workspace this kernel was built from, without `..` in the path.
fn workspace() -> PathBuf {
    let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    p.canonicalize().unwrap_or(p)
}

fn env_or(var: &str, default: impl FnOnce() -> PathBuf) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(default()))
}

/// The forja crate added to every session (`FORJA_CRATE_DIR`).
pub fn forja_dir() -> PathBuf {
    env_or(forja::link::env::CRATE_DIR, || PathBuf::from("forja"))
}

/// The workspace `Cargo.lock` that pins forja's dependencies (`FORJA_LOCKFILE`).
pub fn lockfile() -> PathBuf {
    env_or(forja::link::env::LOCKFILE, || PathBuf::from("Cargo.lock"))
}

/// The prebuilt forja build made by `forja-kernel prebuild` (`FORJA_PREBUILT`);
/// see [`crate::build_cache::layout`] for its layout.
pub fn prebuilt() -> PathBuf {
    env_or(forja::link::env::PREBUILT, || {
        PathBuf::from("target/forja-prebuilt")
    })
}

/// A fresh private directory for this kernel process. First removes the
/// ones left by this user's kernels that died without cleaning up (SIGKILL,
/// a crash): each holds the session's own build (the prebuilt one is linked, not copied).
pub fn kernel_workdir() -> std::io::Result<PathBuf> {
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    remove_dead_workdirs(&base);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = base.join(format!("forja-kernel-{}-{nanos:x}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The session configuration for a kernel whose evcxr crate lives in `crate_dir`.
pub fn session_config(crate_dir: PathBuf) -> Config {
    let forja = forja_dir();
    Config {
        forja_dir: forja.join("Cargo.toml").exists().then_some(forja),
        lockfile: Some(lockfile()),
        crate_dir,
        prebuilt: Some(prebuilt()),
        child_outputs: Default::default(),
    }
}

/// Removes the `forja-kernel-<pid>-…` dirs in `base` that belong to this
/// user and whose kernel process no longer exists. A dir whose pid is alive
/// (even if reused by another program) is kept.
fn remove_dead_workdirs(base: &std::path::Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    let me = nix::unistd::geteuid().as_raw();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("forja-kernel-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        if pid <= 0
            || pid == std::process::id() as libc::pid_t
            || !meta.is_dir()
            || meta.uid() != me
        {
            continue;
        }
        // No signal: only checks that the process exists.
        let gone = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
            == Err(nix::errno::Errno::ESRCH);
        if gone {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_kernels_dirs_are_removed_live_ones_kept() {
        let base = std::env::temp_dir().join(format!("forja-paths-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        // A pid that is certainly dead: a child we started and reaped.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let live = std::process::id();
        for name in [
            format!("forja-kernel-{dead}-abc"),
            format!("forja-kernel-{live}-def"),
            "forja-kernel-notapid-x".to_owned(),
            "something-else".to_owned(),
        ] {
            std::fs::create_dir_all(base.join(&name).join("evcxr/target")).unwrap();
        }
        remove_dead_workdirs(&base);
        assert!(!base.join(format!("forja-kernel-{dead}-abc")).exists());
        assert!(base.join(format!("forja-kernel-{live}-def")).exists());
        assert!(base.join("forja-kernel-notapid-x").exists());
        assert!(base.join("something-else").exists());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
