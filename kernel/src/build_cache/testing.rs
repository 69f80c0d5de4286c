//! Scratch dirs for the build cache's tests.

use std::path::PathBuf;

/// A fresh (absent) scratch dir named after the test and this process.
pub fn scratch(name: &str) -> PathBuf {
    let base = std::env::temp_dir().join(format!("forja-bc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    base
}
