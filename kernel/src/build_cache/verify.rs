//! Checking a prebuilt build's freshness: asks cargo, in a scratch dir laid
//! out like a new session's (links to the build), whether it would rebuild anything.

use super::copy::copy_tree;
use super::layout::{CARGO_CONFIG, CRATE};
use super::link::link_tree;
use super::prune::unit_hash;
use crate::toolchain::{host_triple, tool};
use std::collections::HashSet;
use std::path::Path;

/// What [`verify`] found.
#[derive(Debug, Default)]
pub struct Freshness {
    /// Units cargo reused.
    pub fresh: Vec<String>,
    /// Units cargo had to build again (should be empty).
    pub rebuilt: Vec<String>,
    /// The unit hashes (`nix-<hash>`) of every file and dir cargo used.
    pub used: HashSet<String>,
}

/// Asks cargo whether a kernel starting from `prebuilt` would reuse all of
/// forja's build: lays out a scratch work dir the way
/// [`seed`](super::seed::seed) does, with an empty `CARGO_HOME` (a user who
/// never downloaded a crate), and runs `cargo build` and `cargo check` of
/// forja there, offline and locked, with the environment evcxr gives cargo.
/// Nothing in `prebuilt` changes.
pub fn verify(prebuilt: &Path) -> anyhow::Result<Freshness> {
    use anyhow::Context;
    let scratch = std::env::temp_dir().join(format!("forja-verify-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let result = (|| {
        let from = prebuilt.join(CRATE);
        let to = scratch.join(CRATE);
        std::fs::create_dir_all(scratch.join(".cargo"))?;
        std::fs::copy(prebuilt.join(CARGO_CONFIG), scratch.join(CARGO_CONFIG))
            .context("copying the prebuilt cargo config")?;
        std::fs::create_dir_all(&to)?;
        for f in ["Cargo.toml", "Cargo.lock"] {
            std::fs::copy(from.join(f), to.join(f))
                .with_context(|| format!("copying {f} from {}", from.display()))?;
        }
        copy_tree(&from.join("src"), &to.join("src"))?;
        link_tree(
            &std::path::absolute(from.join("target"))?,
            &to.join("target"),
        )?;
        std::fs::create_dir_all(scratch.join("cargo-home"))?;
        let rustc = tool("rustc");
        let host = host_triple(&rustc).context("asking rustc for its host triple")?;
        let mut freshness = Freshness::default();
        // evcxr builds each cell and, when it cannot infer a variable's type,
        // checks it: both must find forja's units fresh.
        for mode in ["build", "check"] {
            let out = std::process::Command::new(tool("cargo"))
                .args([mode, "--offline", "--locked", "-p", "forja", "--lib"])
                .args(["--target", &host, "--message-format=json"])
                .current_dir(&to)
                .env("CARGO_HOME", scratch.join("cargo-home"))
                // As evcxr's Config::cargo_command sets them.
                .env("CARGO_TARGET_DIR", "target")
                .env("CARGO_BUILD_BUILD_DIR", "target")
                .env("RUSTC", &rustc)
                .env("RUSTFLAGS", "-Cprefer-dynamic")
                .output()
                .context("running cargo")?;
            if !out.status.success() {
                anyhow::bail!(
                    "cargo {mode} failed in a scratch copy:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue;
                };
                let paths = msg["filenames"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .chain([&msg["out_dir"], &msg["executable"]]);
                for path in paths.filter_map(|p| p.as_str()) {
                    for part in Path::new(path).components() {
                        if let Some(hash) = unit_hash(&part.as_os_str().to_string_lossy()) {
                            freshness.used.insert(hash.to_owned());
                        }
                    }
                }
                if msg["reason"] != "compiler-artifact" {
                    continue;
                }
                let unit = format!("{mode} {}", msg["package_id"].as_str().unwrap_or("?"));
                if msg["fresh"] == true {
                    freshness.fresh.push(unit);
                } else {
                    freshness.rebuilt.push(unit);
                }
            }
        }
        Ok(freshness)
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result
}
