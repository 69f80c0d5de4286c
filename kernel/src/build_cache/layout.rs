//! The prebuilt dir's layout and its [`Stamp`], which says what built it
//! (a build made by another forja-kernel or for another forja crate is not
//! used).
//!
//! Layout of the prebuilt dir (`forja-kernel prebuild`):
//! `forja-prebuilt.json` (the [`Stamp`]), `.cargo/config.toml` (the patch
//! that points to the vendored sources), `crate/` (evcxr's crate dir:
//! `Cargo.toml`, `Cargo.lock`, `src/`, `target/`), `registry/` (the
//! standard library's crates);
//! the vendored sources are in a sibling dir ([`vendor_dir`]), one immutable
//! dir per crate version, shared by successive prebuilds.

use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};

/// The file, inside the prebuilt dir, that says how it was built.
pub const STAMP: &str = "forja-prebuilt.json";

/// The cargo config (vendored sources, profile), relative to the prebuilt dir
/// and to a kernel's work dir.
pub const CARGO_CONFIG: &str = ".cargo/config.toml";

/// evcxr's crate dir inside the prebuilt dir.
pub const CRATE: &str = "crate";

/// Dir, inside the prebuilt dir, with the crates.io index entries and crate
/// archives of the standard library's own dependencies.
pub const REGISTRY_SEED: &str = "registry";

/// Bumped when the layout above changes, or the build profile evcxr writes
/// (3: cells without local ThinLTO, evcxr patch 0019), which cargo's
/// freshness check of an existing build does not see.
pub(super) const LAYOUT: u32 = 3;

/// What a prebuilt dir was built with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// Version of this layout.
    pub layout: u32,
    /// The forja crate it was built from.
    pub forja_dir: PathBuf,
    /// `rustc --version` of the toolchain used.
    pub rustc: String,
    /// The evcxr version that drove the build.
    pub evcxr: String,
}

impl Stamp {
    /// The stamp a build made now from `forja_dir` with `rustc` would get.
    pub fn current(forja_dir: &Path, rustc: String) -> Stamp {
        Stamp {
            layout: LAYOUT,
            forja_dir: forja_dir.to_path_buf(),
            rustc,
            evcxr: EVCXR_VERSION.to_owned(),
        }
    }

    /// Reads the stamp of `prebuilt`, if it has a readable one.
    pub fn read(prebuilt: &Path) -> Option<Stamp> {
        let text = std::fs::read_to_string(prebuilt.join(STAMP)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Writes the stamp into `prebuilt`.
    pub fn write(&self, prebuilt: &Path) -> io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(io::Error::other)?;
        std::fs::write(prebuilt.join(STAMP), text + "\n")
    }

    /// Why a session adding `forja_dir` cannot use this build, if it cannot
    /// (cheap checks only: no subprocess).
    pub fn mismatch(&self, forja_dir: &Path) -> Option<String> {
        if self.layout != LAYOUT || self.evcxr != EVCXR_VERSION {
            return Some("it was made by another version of forja-kernel".to_owned());
        }
        if self.forja_dir != forja_dir {
            return Some(format!(
                "it was built for the forja crate in {}, this session uses {}",
                self.forja_dir.display(),
                forja_dir.display()
            ));
        }
        None
    }
}

/// The evcxr version this kernel is built with (pinned in Cargo.toml).
const EVCXR_VERSION: &str = "0.22.0";

/// Where the prebuild keeps the vendored sources of forja's dependencies:
/// next to the prebuilt dir, e.g. `target/forja-prebuilt-vendor`.
pub fn vendor_dir(prebuilt: &Path) -> PathBuf {
    let name = prebuilt
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "forja-prebuilt".to_owned());
    prebuilt.with_file_name(format!("{name}-vendor"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build_cache::testing::scratch;

    #[test]
    fn stamp_round_trips_and_names_the_mismatch() {
        let base = scratch("stamp");
        std::fs::create_dir_all(&base).unwrap();
        let mut stamp = Stamp::current(Path::new("/w/forja"), "rustc 1.95.0".into());
        stamp.write(&base).unwrap();
        assert_eq!(Stamp::read(&base), Some(stamp.clone()));
        assert_eq!(stamp.mismatch(Path::new("/w/forja")), None);
        assert!(
            stamp
                .mismatch(Path::new("/x/forja"))
                .unwrap()
                .contains("/x/forja")
        );
        stamp.layout = 0;
        assert!(stamp.mismatch(Path::new("/w/forja")).is_some());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
