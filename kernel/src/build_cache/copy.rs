//! Copies of build trees that cargo finds exactly as fresh as the
//! originals, and permissions that let every user read the prebuilt build.
//!
//! Cargo decides freshness by comparing mtimes in the target dir (a build
//! script's output must be older than the crates built on it). A plain copy
//! gives every file a new mtime, in directory order, so cargo saw
//! "dependency on `build_script_build` is newer than we are" and rebuilt
//! forja and all its dependencies in every kernel (12–25 s). [`copy_tree`]
//! keeps each file's mtime, so a copy is exactly as fresh as the original;
//! its absolute path does not matter (cargo rewrites build-script output
//! paths itself).

use std::io;
use std::path::Path;
use std::time::SystemTime;

/// Recursively copies `from` to `to` like `cp -a` does for what cargo looks
/// at: contents, permission bits, symlinks and modification times. Returns
/// the number of bytes copied.
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
            set_mtime(&dest, entry.metadata()?.modified()?)?;
        }
    }
    Ok(bytes)
}

pub(super) fn set_mtime(path: &Path, mtime: SystemTime) -> io::Result<()> {
    // The copy may be read-only (its mode is copied too): futimens needs
    // ownership, not write access.
    std::fs::File::open(path)?.set_modified(mtime)
}

/// Makes `path` readable (and directories searchable) by every user, so
/// one prebuild serves every user of a shared machine.
pub fn make_readable_by_all(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.permissions().mode();
    let wanted = if meta.is_dir() || mode & 0o100 != 0 {
        0o555
    } else {
        0o444
    };
    if mode & wanted != wanted {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode | wanted))?;
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            make_readable_by_all(&entry?.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build_cache::testing::scratch;
    use std::time::Duration;

    fn mtime(p: &Path) -> SystemTime {
        std::fs::metadata(p).unwrap().modified().unwrap()
    }

    #[test]
    fn copy_keeps_contents_modes_symlinks_and_mtimes() {
        use std::os::unix::fs::PermissionsExt;
        let base = scratch("copy");
        let src = base.join("src");
        std::fs::create_dir_all(src.join("a/b")).unwrap();
        std::fs::write(src.join("a/b/f"), "hello").unwrap();
        std::fs::write(src.join("g"), "world").unwrap();
        std::fs::set_permissions(src.join("g"), std::fs::Permissions::from_mode(0o444)).unwrap();
        std::os::unix::fs::symlink("g", src.join("link")).unwrap();
        let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        set_mtime(&src.join("a/b/f"), old).unwrap();

        let dst = base.join("dst");
        assert_eq!(copy_tree(&src, &dst).unwrap(), 10);
        assert_eq!(std::fs::read_to_string(dst.join("a/b/f")).unwrap(), "hello");
        assert_eq!(mtime(&dst.join("a/b/f")), old);
        assert_eq!(mtime(&dst.join("g")), mtime(&src.join("g")));
        let mode = std::fs::metadata(dst.join("g"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o444);
        assert_eq!(
            std::fs::read_link(dst.join("link")).unwrap(),
            Path::new("g")
        );
        std::fs::remove_dir_all(&base).unwrap();
    }
}
