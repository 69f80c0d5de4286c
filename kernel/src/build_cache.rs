//! Fast session start: the prebuilt forja build every new kernel starts
//! from, how forja is added to a session, and the warm-up of evcxr's
//! analyzer.
//!
//! Three things made cargo rebuild forja and all its dependencies in every
//! kernel (12–25 s), each fixed here:
//!
//! 1. **Modification times.** Cargo decides freshness by comparing mtimes in
//!    the target dir (a build script's output must be older than the crates
//!    built on it). A plain copy gives every file a new mtime, in directory
//!    order, so cargo saw "dependency on `build_script_build` is newer than we
//!    are". [`copy_tree`] keeps each file's mtime, so a copy is exactly as
//!    fresh as the original; its absolute path does not matter (cargo
//!    rewrites build-script output paths itself).
//! 2. **The lock file.** evcxr's first compile (in `CommandContext::new`)
//!    has no dependencies, so cargo prunes the copied `Cargo.lock` to the
//!    `ctx` crate alone, and `:dep forja` then resolved forja's dependencies
//!    afresh: the newest versions in the local cache, or on crates.io when
//!    online — not the ones prebuilt (nor the workspace's). [`add_forja`]
//!    puts the prebuilt lock file back just before the prelude.
//! 3. **Per-user paths.** Cargo hashes the absolute path of every registry
//!    crate's sources, which live under each user's `CARGO_HOME`, so another
//!    user (JupyterHub) could never reuse the build — nor build it offline
//!    without their own download. The prebuild copies forja's dependencies
//!    into a shared *vendor* dir and a cargo config (`[patch.crates-io]`)
//!    points to them; every kernel puts that config in its work dir (the
//!    parent of evcxr's crate dir), so every user compiles, and finds fresh,
//!    the very same sources, with no registry and no network.
//!
//! Two more things a session needs to start fast and offline: evcxr's
//! rust-analyzer resolves the standard library's own workspace with cargo,
//! which for a user who never downloaded those crates fails offline (after
//! ~12 s of retries) and leaves every `let` untyped, so the prebuild keeps a
//! copy of those index entries and archives ([`snapshot_std_registry`]) that
//! kernels add to the user's cargo home ([`seed_registry`]); and its first
//! type inference costs ~2 s of CPU, which the patched evcxr (see
//! `vendor/evcxr/FORJA_PATCHES.md`) pays on a second thread while the
//! session's first compile runs, and [`start_with_forja`] starts the session
//! with forja so rust-analyzer loads the crate graph only once.
//!
//! Layout of the prebuilt dir (`forja-kernel prebuild`):
//! `forja-prebuilt.json` (the [`Stamp`]), `.cargo/config.toml` (the patch),
//! `crate/` (evcxr's crate dir: `Cargo.toml`, `Cargo.lock`, `src/`,
//! `target/`), `registry/` (the standard library's crates); the vendored
//! sources are in a sibling dir ([`vendor_dir`]), one immutable dir per crate
//! version, shared by successive prebuilds.

use crate::session::Config;
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// The file, inside the prebuilt dir, that says how it was built.
pub const STAMP: &str = "forja-prebuilt.json";
/// The cargo config (vendored sources, profile), relative to the prebuilt dir
/// and to a kernel's work dir.
pub const CARGO_CONFIG: &str = ".cargo/config.toml";
/// evcxr's crate dir inside the prebuilt dir.
pub const CRATE: &str = "crate";
/// Bumped when the layout above changes.
const LAYOUT: u32 = 2;

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

/// Prepares a new session's crate dir from the prebuilt build: copies the
/// target dir (keeping mtimes) and puts the prebuild's cargo config in the
/// crate dir's parent, which must be the session's own work dir. Does
/// nothing if the crate dir already has a target dir.
///
/// Returns a note for the user when the prebuilt build is missing, does not
/// fit or could not be copied; the session then still works, but its first
/// forja cell compiles forja's dependencies. Nothing is left half-copied.
pub fn seed(config: &Config) -> Option<String> {
    start_seed(config).finish()
}

/// A [`seed`] whose copy of the target dir runs on a thread of its own.
pub struct Seed {
    note: Option<String>,
    copy: Option<Copy>,
}

struct Copy {
    thread: std::thread::JoinHandle<io::Result<u64>>,
    target: PathBuf,
    work_config: PathBuf,
    prebuilt: PathBuf,
}

const SLOW: &str =
    "so this session compiles forja and its dependencies first (about half a minute)";
const FIX: &str = "Run `forja-kernel prebuild` to make new kernels start fast.";

/// Starts a [`seed`]: checks the prebuilt build and writes the cargo config
/// now, and copies the target dir in the background, so the copy overlaps
/// evcxr's start (its analyzer loads for ~2 s before the first cargo run,
/// which builds only evcxr's own crate, whose files the prebuilt build
/// does not contain). Call [`Seed::finish`] before adding forja.
pub fn start_seed(config: &Config) -> Seed {
    let nothing = Seed {
        note: None,
        copy: None,
    };
    let (Some(prebuilt), Some(forja)) = (&config.prebuilt, &config.forja_dir) else {
        return nothing;
    };
    let to = config.crate_dir.join("target");
    if to.exists() {
        return nothing;
    }
    let note = |text: String| Seed {
        note: Some(text),
        copy: None,
    };
    let from = prebuilt.join(CRATE).join("target");
    let Some(stamp) = Stamp::read(prebuilt).filter(|_| from.is_dir()) else {
        return note(format!(
            "forja-kernel: there is no prebuilt forja build in {}, {SLOW}. {FIX}\n",
            prebuilt.display()
        ));
    };
    if let Some(why) = stamp.mismatch(forja) {
        return note(format!(
            "forja-kernel: the prebuilt forja build in {} does not fit this session ({why}), \
             {SLOW}. {FIX}\n",
            prebuilt.display()
        ));
    }
    let Some(work) = config.crate_dir.parent() else {
        return note(format!(
            "forja-kernel: the crate dir has no parent, {SLOW}.\n"
        ));
    };
    let work_config = work.join(CARGO_CONFIG);
    let configured = (|| -> anyhow::Result<()> {
        let text = std::fs::read_to_string(prebuilt.join(CARGO_CONFIG))?;
        for path in patched_paths(&text) {
            if !path.join("Cargo.toml").is_file() {
                anyhow::bail!("its vendored sources are missing ({})", path.display());
            }
        }
        std::fs::create_dir_all(work.join(".cargo"))?;
        std::fs::write(&work_config, text)?;
        Ok(())
    })();
    if let Err(e) = configured {
        let _ = std::fs::remove_file(&work_config);
        return note(format!(
            "forja-kernel: could not use the prebuilt forja build in {} ({e}), {SLOW}. {FIX}\n",
            prebuilt.display()
        ));
    }
    // Before evcxr starts: its analyzer resolves the standard library's
    // workspace with cargo while it loads. Best effort (see seed_registry).
    let _ = seed_registry(&prebuilt.join(REGISTRY_SEED), &cargo_home());
    let (src, dst) = (from.clone(), to.clone());
    let thread = std::thread::Builder::new()
        .name("forja-seed".into())
        .spawn(move || copy_tree(&src, &dst));
    match thread {
        Ok(thread) => Seed {
            note: None,
            copy: Some(Copy {
                thread,
                target: to,
                work_config,
                prebuilt: prebuilt.clone(),
            }),
        },
        Err(e) => {
            let _ = std::fs::remove_file(&work_config);
            note(format!(
                "forja-kernel: could not start copying the prebuilt build ({e}), {SLOW}.\n"
            ))
        }
    }
}

impl Seed {
    /// Waits for the copy; returns the note for the user, if any. A failed
    /// copy is removed with the cargo config, never left half-done.
    pub fn finish(self) -> Option<String> {
        let Some(copy) = self.copy else {
            return self.note;
        };
        let result = copy
            .thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the copying thread panicked")));
        match result {
            Ok(_) => None,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&copy.target);
                let _ = std::fs::remove_file(&copy.work_config);
                Some(format!(
                    "forja-kernel: could not copy the prebuilt forja build in {} ({e}), {SLOW}. {FIX}\n",
                    copy.prebuilt.display()
                ))
            }
        }
    }
}

macro_rules! flusher_start {
    () => {
        "let _ = forja::display::start_output_flusher();"
    };
}

/// Starts forja's stdout flusher in the runner (again in each fresh runner).
pub const FLUSHER_START: &str = flusher_start!();

/// The Rust code every forja session runs first: the prelude import (kept by
/// evcxr for every later cell) and [`FLUSHER_START`].
pub const FORJA_PRELUDE: &str = concat!("use forja::prelude::*;\n", flusher_start!());

/// Starts an evcxr session with forja in it from the very first compile, so
/// rust-analyzer loads the crate graph once (a `:dep` after the start made it
/// load everything again, ~1.2 s). Puts back the lock file first (the
/// prebuilt one, else the workspace's: cargo would otherwise resolve forja's
/// dependencies afresh), then starts in offline mode, so a machine without
/// network still gets forja from the vendored sources or the local crate
/// cache; only if cargo says it needs the network does it try again online.
/// Later cells run online again, so `:dep` of new crates keeps working.
pub fn start_with_forja(
    config: &Config,
    forja_dir: &Path,
) -> Result<(evcxr::CommandContext, evcxr::EvalContextOutputs), evcxr::Error> {
    // The prebuilt lock names the vendored sources: only valid with the
    // cargo config that [`seed`] wrote if it used the prebuilt build.
    let seeded = config
        .crate_dir
        .parent()
        .is_some_and(|work| work.join(CARGO_CONFIG).is_file());
    let prebuilt_lock = config
        .prebuilt
        .as_ref()
        .map(|p| p.join(CRATE).join("Cargo.lock"))
        .filter(|_| seeded);
    let lock = prebuilt_lock
        .filter(|l| l.is_file())
        .or_else(|| config.lockfile.clone().filter(|l| l.is_file()));
    if let Some(lock) = lock {
        std::fs::copy(&lock, config.crate_dir.join("Cargo.lock"))?;
    }
    let dep = format!("{{ path = {:?} }}", forja_dir.display().to_string());
    let start = |offline: bool| {
        evcxr::CommandContext::new_with_init(
            |state| {
                state.set_offline_mode(offline);
                state.add_dep("forja", &dep)
            },
            FORJA_PRELUDE,
        )
    };
    let (mut ctx, outputs) = match start(true) {
        Err(e) if needs_network(&e.to_string()) => start(false)?,
        other => other?,
    };
    ctx.execute(":offline 0")?;
    Ok((ctx, outputs))
}

/// Whether a cargo failure in offline mode means "this needs the network".
fn needs_network(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("offline") || m.contains("no matching package") || m.contains("failed to download")
}

/// Pays the first completion's one-off cost (rust-analyzer's import maps
/// and the rest of the type-inference priming, ~0.5 s) while the kernel is
/// idle, so the first Tab press answers at once. Asks for completions only:
/// nothing is compiled or run and the session's variables are untouched.
/// Returns how long it took.
pub fn warm_up(ctx: &mut evcxr::CommandContext) -> Duration {
    let start = Instant::now();
    let code = "let forja_warm_up = 1u32; forja_warm_up.";
    let _ = ctx.completions(code, code.len());
    start.elapsed()
}

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

fn set_mtime(path: &Path, mtime: SystemTime) -> io::Result<()> {
    // The copy may be read-only (its mode is copied too): futimens needs
    // ownership, not write access.
    std::fs::File::open(path)?.set_modified(mtime)
}

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
fn patched_paths(config: &str) -> Vec<PathBuf> {
    config
        .lines()
        .filter_map(|l| l.split_once("path = \"")?.1.split_once('"'))
        .map(|(p, _)| PathBuf::from(p))
        .collect()
}

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

/// Dir, inside the prebuilt dir, with the crates.io index entries and crate
/// archives of the standard library's own dependencies.
pub const REGISTRY_SEED: &str = "registry";

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

/// Cargo's home, as cargo finds it: `$CARGO_HOME`, else `~/.cargo`.
pub fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from(".cargo"))
}

/// The standard library workspace's lock file of `rustc`'s sysroot (part
/// of the `rust-src` component), if installed.
pub fn sysroot_lock() -> Option<String> {
    let out = std::process::Command::new(tool("rustc"))
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    let sysroot = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    std::fs::read_to_string(sysroot.join("lib/rustlib/src/rust/library/Cargo.lock")).ok()
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

/// What [`verify`] found.
#[derive(Debug, Default)]
pub struct Freshness {
    /// Units cargo reused.
    pub fresh: Vec<String>,
    /// Units cargo had to build again (should be empty).
    pub rebuilt: Vec<String>,
    /// The unit hashes (`nix-<hash>`) of every file and dir cargo used.
    pub used: std::collections::HashSet<String>,
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
pub fn prune_stale_units(
    target: &Path,
    used: &std::collections::HashSet<String>,
) -> io::Result<usize> {
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

/// Asks cargo whether a kernel starting from `prebuilt` would reuse all of
/// forja's build: lays out a scratch work dir the way [`seed`] does, with an
/// empty `CARGO_HOME` (a user who never downloaded a crate), and runs
/// `cargo build` and `cargo check` of forja there, offline and locked, with
/// the environment evcxr gives cargo. Nothing in `prebuilt` changes.
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
        copy_tree(&from.join("target"), &to.join("target"))?;
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

/// The path of a toolchain binary the way evcxr finds it (`rustup which`,
/// else plain `PATH` lookup).
pub fn tool(name: &str) -> PathBuf {
    std::process::Command::new("rustup")
        .args(["which", name])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| PathBuf::from(s.trim()))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// The host target triple of `rustc` (evcxr passes it to cargo as `--target`).
pub fn host_triple(rustc: &Path) -> Option<String> {
    let out = std::process::Command::new(rustc).arg("-vV").output().ok()?;
    String::from_utf8(out.stdout)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
}

/// `rustc --version` of the toolchain evcxr uses.
pub fn rustc_version() -> String {
    std::process::Command::new(tool("rustc"))
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let base = std::env::temp_dir().join(format!("forja-bc-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        base
    }

    fn mtime(p: &Path) -> SystemTime {
        std::fs::metadata(p).unwrap().modified().unwrap()
    }

    fn config(base: &Path, forja: &Path) -> Config {
        Config {
            forja_dir: Some(forja.to_path_buf()),
            lockfile: None,
            crate_dir: base.join("work/evcxr"),
            prebuilt: Some(base.join("pre")),
            child_outputs: Default::default(),
        }
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
        std::fs::File::options()
            .write(true)
            .open(src.join("a/b/f"))
            .unwrap()
            .set_modified(old)
            .unwrap();

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

    #[test]
    fn seed_copies_the_build_and_config_once_or_says_why_not() {
        let base = scratch("seed");
        let forja = Path::new("/somewhere/forja");
        let cfg = config(&base, forja);
        std::fs::create_dir_all(&cfg.crate_dir).unwrap();
        // No prebuilt dir at all: a note that says how to make one.
        let note = seed(&cfg).unwrap();
        assert!(note.contains("forja-kernel prebuild"), "{note}");
        assert!(!cfg.crate_dir.join("target").exists());

        let pre = base.join("pre");
        let vendored = base.join("vendor/libc-0.2.1");
        std::fs::create_dir_all(&vendored).unwrap();
        std::fs::write(vendored.join("Cargo.toml"), "").unwrap();
        let text = vendor(&[], &base.join("vendor")).unwrap()
            + &format!(
                "libc = {{ package = \"libc\", path = {:?} }}\n",
                vendored.display().to_string()
            );
        std::fs::create_dir_all(pre.join(".cargo")).unwrap();
        std::fs::write(pre.join(CARGO_CONFIG), &text).unwrap();
        std::fs::create_dir_all(pre.join("crate/target/debug")).unwrap();
        std::fs::write(pre.join("crate/target/debug/x"), "1").unwrap();
        Stamp::current(forja, "rustc test".into())
            .write(&pre)
            .unwrap();
        assert_eq!(seed(&cfg), None);
        assert_eq!(
            std::fs::read_to_string(cfg.crate_dir.join("target/debug/x")).unwrap(),
            "1"
        );
        assert_eq!(
            std::fs::read_to_string(base.join("work").join(CARGO_CONFIG)).unwrap(),
            text
        );

        // A crate dir that already has a target is left alone.
        std::fs::write(pre.join("crate/target/debug/x"), "2").unwrap();
        assert_eq!(seed(&cfg), None);
        assert_eq!(
            std::fs::read_to_string(cfg.crate_dir.join("target/debug/x")).unwrap(),
            "1"
        );

        // Built for another forja: not used, and the user is told why.
        let mut other = config(&base, Path::new("/elsewhere/forja"));
        other.crate_dir = base.join("work2/evcxr");
        let note = seed(&other).unwrap();
        assert!(note.contains("/elsewhere/forja"), "{note}");
        assert!(!other.crate_dir.join("target").exists());

        // Vendored sources gone: nothing half-copied, and a note.
        std::fs::remove_dir_all(&vendored).unwrap();
        let mut third = config(&base, forja);
        third.crate_dir = base.join("work3/evcxr");
        let note = seed(&third).unwrap();
        assert!(note.contains("vendored sources are missing"), "{note}");
        assert!(!third.crate_dir.join("target").exists());
        assert!(!base.join("work3").join(CARGO_CONFIG).exists());
        std::fs::remove_dir_all(&base).unwrap();
    }

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

    #[test]
    fn offline_failures_are_recognised() {
        assert!(needs_network(
            "error: failed to download `x`\nattempting to make an HTTP request, but --offline was specified"
        ));
        assert!(!needs_network(
            "error[E0425]: cannot find value `y` in this scope"
        ));
    }
}
