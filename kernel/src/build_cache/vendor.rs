//! Vendoring forja's dependencies: one shared copy of each registry crate's
//! sources and the cargo config (`[patch.crates-io]`) that points to them.
//!
//! Cargo hashes the absolute path of every registry crate's sources, which
//! live under each user's `CARGO_HOME`, so another user (JupyterHub) could
//! never reuse a build — nor build it offline without their own download.
//! The prebuild copies forja's dependencies into a shared *vendor* dir
//! ([`super::layout::vendor_dir`]) and every kernel puts the cargo config
//! in its work dir (the parent of evcxr's crate dir), so every user
//! compiles, and finds fresh, the very same sources, with no registry and no
//! network.

use super::copy::copy_tree;
use super::layout::LAYOUT;
use std::io;
use std::path::{Path, PathBuf};

/// A registry package to vendor: its name, version and extracted sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// Crate name.
    pub name: String,
    /// Exact version.
    pub version: String,
    /// The dir holding its `Cargo.toml`.
    pub dir: PathBuf,
}

/// The registry packages in `cargo metadata` output (JSON).
pub fn registry_packages(metadata: &str) -> anyhow::Result<Vec<Package>> {
    let v: serde_json::Value = serde_json::from_str(metadata)?;
    let mut out = Vec::new();
    for p in v["packages"].as_array().into_iter().flatten() {
        if !p["source"]
            .as_str()
            .is_some_and(|s| s.starts_with("registry+"))
        {
            continue;
        }
        let (Some(name), Some(version), Some(manifest)) = (
            p["name"].as_str(),
            p["version"].as_str(),
            p["manifest_path"].as_str(),
        ) else {
            anyhow::bail!("cargo metadata lists a package without name, version or manifest");
        };
        let dir = Path::new(manifest)
            .parent()
            .ok_or_else(|| anyhow::anyhow!("manifest path {manifest} has no parent"))?;
        out.push(Package {
            name: name.to_owned(),
            version: version.to_owned(),
            dir: dir.to_path_buf(),
        });
    }
    out.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    Ok(out)
}

/// Copies each package's sources (keeping mtimes) to `vendor/<name>-<version>`
/// unless already there — a published crate version never changes — with
/// their warnings silenced, and returns the cargo config that makes every
/// build use those copies.
pub fn vendor(packages: &[Package], vendor: &Path) -> io::Result<String> {
    std::fs::create_dir_all(vendor)?;
    let mut config = String::from(
        "# Written by `forja-kernel prebuild`: forja's dependencies come from the\n\
         # vendored copies below, the same for every user and with no network.\n\
         [patch.crates-io]\n",
    );
    let mut seen = std::collections::HashSet::new();
    for p in packages {
        let dest = vendor.join(format!("{}-{}", p.name, p.version));
        let marker = format!(".forja-vendored-{LAYOUT}");
        if !dest.join(&marker).is_file() {
            let tmp = vendor.join(format!(
                ".{}-{}.tmp-{}",
                p.name,
                p.version,
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&tmp);
            copy_tree(&p.dir, &tmp)?;
            let manifest = tmp.join("Cargo.toml");
            let text = std::fs::read_to_string(&manifest)?;
            std::fs::write(&manifest, allow_warnings(&text))?;
            std::fs::write(tmp.join(&marker), "")?;
            if dest.exists() {
                let old = vendor.join(format!(
                    ".{}-{}.old-{}",
                    p.name,
                    p.version,
                    std::process::id()
                ));
                std::fs::rename(&dest, &old)?;
                let _ = std::fs::remove_dir_all(&old);
            }
            std::fs::rename(&tmp, &dest)?;
        }
        // Two versions of one crate need two keys.
        let key = if seen.insert(p.name.clone()) {
            p.name.clone()
        } else {
            format!("{}-{}", p.name, p.version.replace(['.', '+'], "_"))
        };
        config.push_str(&format!(
            "{key} = {{ package = {:?}, path = {:?} }}\n",
            p.name,
            dest.display().to_string()
        ));
    }
    // Path dependencies are compiled incrementally by default: five times
    // the disk (and copy time) for crates nobody edits. evcxr's own crate
    // (the workspace member) keeps incremental builds for fast cells.
    config.push_str("\n[profile.dev.package.\"*\"]\nincremental = false\n");
    Ok(config)
}

/// Silences the warnings of a vendored crate. Cargo caps the lints of
/// registry crates, but the vendored copies are path crates, whose warnings
/// cargo shows — and evcxr's `cargo check` fallback (used when it cannot
/// infer a variable's type) reports every diagnostic as the cell's error.
/// Adds `warnings = "allow"` to the manifest's `[lints.rust]`; a manifest
/// with a plain `[lints]` table is left as it is.
fn allow_warnings(manifest: &str) -> String {
    let has = |header: &str| manifest.lines().any(|l| l.trim() == header);
    if has("[lints]") {
        return manifest.to_owned();
    }
    if has("[lints.rust]") {
        let mut out = String::with_capacity(manifest.len() + 32);
        for line in manifest.lines() {
            out.push_str(line);
            out.push('\n');
            if line.trim() == "[lints.rust]" {
                out.push_str("warnings = \"allow\"\n");
            }
        }
        return out;
    }
    // TOML allows defining `[lints.rust]` after its sub-tables.
    format!(
        "{}\n\n[lints.rust]\nwarnings = \"allow\"\n",
        manifest.trim_end()
    )
}

/// The `path = "…"` values of a cargo config written by [`vendor`].
pub(super) fn patched_paths(config: &str) -> Vec<PathBuf> {
    config
        .lines()
        .filter_map(|l| l.split_once("path = \"")?.1.split_once('"'))
        .map(|(p, _)| PathBuf::from(p))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build_cache::testing::scratch;

    #[test]
    fn vendor_copies_each_version_once_and_patches_them_all() {
        let base = scratch("vendor");
        let mk = |name: &str, version: &str| {
            let dir = base.join("registry").join(format!("{name}-{version}"));
            std::fs::create_dir_all(dir.join("src")).unwrap();
            std::fs::write(dir.join("Cargo.toml"), format!("# {name} {version}")).unwrap();
            Package {
                name: name.into(),
                version: version.into(),
                dir,
            }
        };
        let pkgs = [mk("libc", "0.2.1"), mk("syn", "1.0.0"), mk("syn", "2.0.0")];
        let vendor_dir = base.join("vendor");
        let text = vendor(&pkgs, &vendor_dir).unwrap();
        let paths = patched_paths(&text);
        assert_eq!(paths.len(), 3);
        for (p, path) in pkgs.iter().zip(&paths) {
            assert_eq!(path, &vendor_dir.join(format!("{}-{}", p.name, p.version)));
            let manifest = std::fs::read_to_string(path.join("Cargo.toml")).unwrap();
            assert!(manifest.starts_with(&format!("# {} {}\n", p.name, p.version)));
        }
        // One key per entry, the second syn under its own key.
        assert!(text.contains("\nsyn = { package = \"syn\""), "{text}");
        assert!(text.contains("\nsyn-2_0_0 = { package = \"syn\""), "{text}");
        assert!(text.contains("incremental = false"));
        // A version already vendored is not copied again.
        std::fs::write(pkgs[0].dir.join("Cargo.toml"), "changed").unwrap();
        vendor(&pkgs, &vendor_dir).unwrap();
        let manifest = std::fs::read_to_string(paths[0].join("Cargo.toml")).unwrap();
        assert!(manifest.starts_with("# libc 0.2.1\n"), "{manifest}");
        assert!(manifest.contains("warnings = \"allow\""), "{manifest}");
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn vendored_manifests_allow_warnings() {
        let plain = "[package]\nname = \"a\"\n";
        assert!(allow_warnings(plain).ends_with("[lints.rust]\nwarnings = \"allow\"\n"));
        let with = "[package]\nname = \"a\"\n\n[lints.rust]\nunsafe_code = \"deny\"\n";
        let out = allow_warnings(with);
        assert_eq!(out.matches("[lints.rust]").count(), 1);
        assert!(
            out.contains("[lints.rust]\nwarnings = \"allow\"\nunsafe_code"),
            "{out}"
        );
        let table = "[lints]\nworkspace = true\n";
        assert_eq!(allow_warnings(table), table);
    }

    #[test]
    fn registry_packages_skips_path_packages() {
        let json = r#"{"packages":[
            {"name":"forja","version":"0.1.0","source":null,"manifest_path":"/w/forja/Cargo.toml"},
            {"name":"libc","version":"0.2.1","source":"registry+https://github.com/rust-lang/crates.io-index",
             "manifest_path":"/h/.cargo/registry/src/x/libc-0.2.1/Cargo.toml"}]}"#;
        let pkgs = registry_packages(json).unwrap();
        assert_eq!(
            pkgs,
            vec![Package {
                name: "libc".into(),
                version: "0.2.1".into(),
                dir: PathBuf::from("/h/.cargo/registry/src/x/libc-0.2.1")
            }]
        );
    }
}
