//! The prebuilt build cache: how `forja-kernel prebuild` makes it and how a
//! new kernel starts from it without cargo rebuilding anything.
//!
//! Cargo decides freshness by comparing modification times inside the target
//! dir (a build script's output must be older than the crates built on it).
//! A plain copy gives every file a new mtime, in directory order, so cargo
//! saw "dependency on `build_script_build` is newer than we are" and rebuilt
//! forja and all its dependencies in every kernel. [`seed`] copies the tree
//! keeping each file's mtime, so the copy is as fresh as the original.
//!
//! Cargo also hashes the absolute paths of the registry sources (under
//! `CARGO_HOME`) and every setting that reaches rustc (opt level, linker,
//! `RUSTFLAGS`), so the prebuild and the kernel must run with the same ones:
//! both call [`configure`].

use std::io;
use std::path::Path;
use std::time::SystemTime;

/// The file, inside the prebuilt dir, that describes how it was built.
pub const STAMP: &str = "forja-prebuilt.txt";

/// evcxr settings shared by `prebuild` and every kernel session; they are
/// part of cargo's fingerprints, so changing one here changes both sides.
pub const SESSION_SETTINGS: &[&str] = &[];

/// Applies [`SESSION_SETTINGS`] to a fresh evcxr context.
pub fn configure(ctx: &mut evcxr::CommandContext) -> Result<(), evcxr::Error> {
    for cmd in SESSION_SETTINGS {
        ctx.execute(cmd)?;
    }
    Ok(())
}

/// Copies the prebuilt target dir into a new evcxr crate dir, keeping
/// mtimes so that cargo finds every prebuilt unit fresh. Does nothing if the
/// prebuilt dir has no target or the crate dir already has one. Returns the
/// number of bytes copied.
pub fn seed(prebuilt: &Path, crate_dir: &Path) -> io::Result<u64> {
    let from = prebuilt.join("target");
    let to = crate_dir.join("target");
    if !from.is_dir() || to.exists() {
        return Ok(0);
    }
    copy_tree(&from, &to)
}

/// Recursively copies `from` to `to` like `cp -a` does for what cargo looks
/// at: contents, permission bits, symlinks and modification times.
pub fn copy_tree(from: &Path, to: &Path) -> io::Result<u64> {
    std::fs::create_dir_all(to)?;
    let mut bytes = 0;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let ty = entry.file_type()?;
        let src = entry.path();
        let dest = to.join(entry.file_name());
        if ty.is_dir() {
            bytes += copy_tree(&src, &dest)?;
        } else if ty.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dest)?;
        } else if ty.is_file() {
            bytes += std::fs::copy(&src, &dest)?;
            let mtime = entry.metadata()?.modified()?;
            set_mtime(&dest, mtime)?;
        }
    }
    Ok(bytes)
}

fn set_mtime(path: &Path, mtime: SystemTime) -> io::Result<()> {
    // A copied file may be read-only (its mode is copied too), so open it
    // without asking for write access: futimens only needs ownership.
    let f = std::fs::File::open(path)?;
    f.set_modified(mtime)
}

/// Makes `dir` readable (and its directories searchable) by every user, so
/// one prebuild serves every user of a shared machine.
pub fn make_readable_by_all(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(dir)?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.permissions().mode();
    let extra = if meta.is_dir() || mode & 0o100 != 0 {
        0o555
    } else {
        0o444
    };
    if mode & extra != extra {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | extra))?;
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(dir)? {
            make_readable_by_all(&entry?.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn copy_keeps_mtimes_and_contents() {
        let base = std::env::temp_dir().join(format!("forja-bc-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let src = base.join("src");
        std::fs::create_dir_all(src.join("a/b")).unwrap();
        std::fs::write(src.join("a/b/f"), "hello").unwrap();
        std::fs::write(src.join("g"), "world").unwrap();
        std::os::unix::fs::symlink("g", src.join("link")).unwrap();
        let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        std::fs::File::options()
            .write(true)
            .open(src.join("a/b/f"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        let dst = base.join("dst");
        let n = copy_tree(&src, &dst).unwrap();
        assert_eq!(n, 10);
        assert_eq!(std::fs::read_to_string(dst.join("a/b/f")).unwrap(), "hello");
        let m = std::fs::metadata(dst.join("a/b/f"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(m, old);
        let m2 = std::fs::metadata(dst.join("g"))
            .unwrap()
            .modified()
            .unwrap();
        let m2src = std::fs::metadata(src.join("g"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(m2, m2src);
        assert_eq!(
            std::fs::read_link(dst.join("link")).unwrap(),
            Path::new("g")
        );
        std::fs::remove_dir_all(&base).unwrap();
    }
}
