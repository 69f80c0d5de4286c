//! Laying out the prebuilt build in a new session without copying it: the
//! session's own directories, symlinks to the prebuilt build's artifacts
//! (used in place, read-only, shared by every kernel and user), and copies
//! of the small files cargo or rustc may rewrite.
//!
//! A session used to copy the whole target dir (~94 MB per kernel). Cargo
//! only reads a fresh unit's files (its fingerprint and dep-info, its
//! outputs' mtimes, which `stat` takes through a symlink), and writes only
//! what it builds: the session's own crate, under new names, or a
//! dependency a `:dep` added, under its own unit hash. So the big files (the
//! rlibs, rmeta and proc-macro libraries, 67 files, ~93 MB) are symlinks to
//! the prebuilt build, and the rest (fingerprints, dep-info, build-script
//! output: ~0.7 MB), which a rebuild of that same unit would open for
//! writing, is copied with its mtime, so such a rebuild never writes through
//! a link into the shared build. Directories are the session's own, so
//! cargo's lock file and new units land there.

use super::copy::set_mtime;
use std::io;
use std::path::Path;

/// Files at least this large are linked, smaller ones copied. Every file a
/// cargo unit rewrites in place (fingerprints, `.d` files, build-script
/// `output`) is far smaller; rustc replaces its rlib and rmeta outputs by
/// renaming a new file over them, which replaces the link, not its target.
pub const LINK_FROM: u64 = 64 * 1024;

/// What [`link_tree`] wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Linked {
    /// Bytes copied (the small files).
    pub copied: u64,
    /// Files linked to the prebuilt build.
    pub links: u64,
}

/// Lays `from` out at `to` as described in the module doc: directories
/// made, files of [`LINK_FROM`] bytes or more symlinked by absolute path,
/// smaller ones copied with their mtime and mode, symlinks re-made as they are.
/// `from` must be an absolute path; nothing under it is written.
pub fn link_tree(from: &Path, to: &Path) -> io::Result<Linked> {
    if !from.is_absolute() {
        return Err(io::Error::other(format!(
            "link_tree needs an absolute source, not {}",
            from.display()
        )));
    }
    std::fs::create_dir_all(to)?;
    let mut done = Linked::default();
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let ty = entry.file_type()?;
        let src = entry.path();
        let dest = to.join(entry.file_name());
        if ty.is_dir() {
            let sub = link_tree(&src, &dest)?;
            done.copied += sub.copied;
            done.links += sub.links;
        } else if ty.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dest)?;
        } else if ty.is_file() {
            let meta = entry.metadata()?;
            if meta.len() >= LINK_FROM {
                std::os::unix::fs::symlink(&src, &dest)?;
                done.links += 1;
            } else {
                done.copied += std::fs::copy(&src, &dest)?;
                set_mtime(&dest, meta.modified()?)?;
            }
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build_cache::testing::scratch;

    #[test]
    fn big_files_are_linked_small_ones_copied_with_their_mtime() {
        let base = scratch("link");
        let src = base.join("src");
        std::fs::create_dir_all(src.join("deps")).unwrap();
        std::fs::write(src.join("deps/big.rlib"), vec![7u8; LINK_FROM as usize]).unwrap();
        std::fs::write(src.join("deps/small.d"), "dep").unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        crate::build_cache::copy::set_mtime(&src.join("deps/small.d"), old).unwrap();
        let dst = base.join("dst");
        let done = link_tree(&src, &dst).unwrap();
        assert_eq!(
            done,
            Linked {
                copied: 3,
                links: 1
            }
        );
        assert_eq!(
            std::fs::read_link(dst.join("deps/big.rlib")).unwrap(),
            src.join("deps/big.rlib")
        );
        let small = std::fs::symlink_metadata(dst.join("deps/small.d")).unwrap();
        assert!(small.is_file());
        assert_eq!(small.modified().unwrap(), old);
        // A new file in the session's dir lands in the session, not the source.
        std::fs::write(dst.join("deps/new"), "x").unwrap();
        assert!(!src.join("deps/new").exists());
        assert!(link_tree(Path::new("relative"), &dst).is_err());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
