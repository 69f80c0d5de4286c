//! Fast session start: the prebuilt forja build every new kernel starts
//! from, how forja is added to a session, and the warm-up of evcxr's
//! analyzer.
//!
//! Cargo decides freshness by comparing modification times inside the
//! target dir (a build script's output must be older than the crates built
//! on it). A plain copy gives every file a new mtime, in directory order, so
//! cargo saw "dependency on `build_script_build` is newer than we are" and
//! rebuilt forja and all its dependencies in every kernel (12–25 s). [`seed`]
//! copies the tree keeping each file's mtime, so the copy is exactly as
//! fresh as the original; the absolute path of the target dir does not
//! matter (cargo rewrites build-script output paths itself).
//!
//! Cargo also hashes, per unit, the absolute path of each registry crate's
//! sources (under `CARGO_HOME`), the rustc version and every flag that
//! reaches rustc. A prebuild made with another `CARGO_HOME` or toolchain is
//! therefore useless: the [`Stamp`] records what it was made with so the
//! kernel can say why a first cell is slow, and [`verify`] asks cargo itself
//! whether a copy is fresh.

use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// The file, inside the prebuilt dir, that says how it was built.
pub const STAMP: &str = "forja-prebuilt.json";

/// What a prebuilt dir was built with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// The forja crate it was built from.
    pub forja_dir: PathBuf,
    /// The cargo home whose registry sources it was compiled from.
    pub cargo_home: PathBuf,
    /// `rustc --version` of the toolchain used.
    pub rustc: String,
    /// The evcxr version that drove the build.
    pub evcxr: String,
}

impl Stamp {
    /// The stamp a build made now, from `forja_dir`, would get.
    pub fn current(forja_dir: &Path, rustc: String) -> Stamp {
        Stamp {
            forja_dir: forja_dir.to_path_buf(),
            cargo_home: cargo_home(),
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

    /// Why a session adding `forja_dir` cannot reuse this build, if it
    /// cannot (cheap checks only: no subprocess).
    pub fn mismatch(&self, forja_dir: &Path) -> Option<String> {
        if self.forja_dir != forja_dir {
            return Some(format!(
                "it was built for the forja crate in {}, this session uses {}",
                self.forja_dir.display(),
                forja_dir.display()
            ));
        }
        let home = cargo_home();
        if self.cargo_home != home {
            return Some(format!(
                "it was compiled from the crate sources in CARGO_HOME={}, this user's is {}",
                self.cargo_home.display(),
                home.display()
            ));
        }
        if self.evcxr != EVCXR_VERSION {
            return Some(format!(
                "it was built by evcxr {}, this kernel uses {EVCXR_VERSION}",
                self.evcxr
            ));
        }
        None
    }
}

/// The evcxr version this kernel is built with (pinned in Cargo.toml).
const EVCXR_VERSION: &str = "0.22.0";

/// Cargo's home, as cargo finds it: `$CARGO_HOME`, else `~/.cargo`.
pub fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from(".cargo"))
}

/// Copies the prebuilt target dir into a new evcxr crate dir (keeping
/// mtimes, see the module docs), unless the crate dir already has one.
///
/// Returns a note for the user when the prebuilt build is missing, does not
/// match this session or could not be copied; the session then works, but
/// its first forja cell compiles forja's dependencies. A failed copy is
/// removed, never left half-done.
pub fn seed(prebuilt: &Path, crate_dir: &Path, forja_dir: Option<&Path>) -> Option<String> {
    let from = prebuilt.join("target");
    let to = crate_dir.join("target");
    if to.exists() {
        return None;
    }
    let fix = "Run `forja-kernel prebuild` (as this user) so new kernels start fast.";
    if !from.is_dir() {
        return forja_dir.map(|_| {
            format!(
                "forja-kernel: there is no prebuilt forja build in {}, so this session compiles \
                 forja and its dependencies first (about half a minute). {fix}\n",
                prebuilt.display()
            )
        });
    }
    if let Err(e) = copy_tree(&from, &to) {
        let _ = std::fs::remove_dir_all(&to);
        return Some(format!(
            "forja-kernel: could not copy the prebuilt forja build from {} ({e}), so this \
             session compiles forja and its dependencies first (about half a minute).\n",
            from.display()
        ));
    }
    let why = match (Stamp::read(prebuilt), forja_dir) {
        (_, None) => None,
        (None, Some(_)) => Some("it has no readable stamp".to_owned()),
        (Some(stamp), Some(dir)) => stamp.mismatch(dir),
    };
    why.map(|why| {
        format!(
            "forja-kernel: the prebuilt forja build in {} does not fit this session ({why}), \
             so the first forja cell may compile forja's dependencies (about half a minute). {fix}\n",
            prebuilt.display()
        )
    })
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

/// Removes from a prebuilt target dir what only the prebuild session itself
/// could use: the `ctx` crate's outputs (their hash includes the crate dir's
/// path, so no other session reuses them) and evcxr's per-cell libraries.
pub fn prune_session_outputs(target: &Path) -> io::Result<()> {
    // `debug` holds host artefacts (build scripts, proc macros); evcxr's
    // `--target <host>` puts the rest under `<triple>/debug`.
    let mut profile_dirs = vec![target.join("debug")];
    for entry in std::fs::read_dir(target)? {
        let path = entry?.path().join("debug");
        if path.is_dir() {
            profile_dirs.push(path);
        }
    }
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

/// The host target triple of `rustc` (evcxr passes it to cargo as `--target`).
pub fn host_triple(rustc: &Path) -> Option<String> {
    let out = std::process::Command::new(rustc).arg("-vV").output().ok()?;
    String::from_utf8(out.stdout)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
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
}

/// Asks cargo whether a kernel starting from `prebuilt` would reuse all of
/// forja's build: seeds a scratch crate dir from it the way a kernel does and
/// runs `cargo build -p forja --offline` there with the environment evcxr
/// gives cargo. Nothing in `prebuilt` changes.
pub fn verify(prebuilt: &Path) -> anyhow::Result<Freshness> {
    use anyhow::Context;
    let scratch = std::env::temp_dir().join(format!("forja-verify-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)?;
    let result = (|| {
        for f in ["Cargo.toml", "Cargo.lock"] {
            std::fs::copy(prebuilt.join(f), scratch.join(f))
                .with_context(|| format!("copying {f} from {}", prebuilt.display()))?;
        }
        copy_tree(&prebuilt.join("src"), &scratch.join("src"))?;
        copy_tree(&prebuilt.join("target"), &scratch.join("target"))?;
        let rustc = tool("rustc");
        let host = host_triple(&rustc).context("asking rustc for its host triple")?;
        let out = std::process::Command::new(tool("cargo"))
            .args(["build", "--offline", "--locked", "-p", "forja", "--lib"])
            .args(["--target", &host, "--message-format=json"])
            .current_dir(&scratch)
            // As evcxr's Config::cargo_command sets them.
            .env("CARGO_TARGET_DIR", "target")
            .env("CARGO_BUILD_BUILD_DIR", "target")
            .env("RUSTC", &rustc)
            .env("RUSTFLAGS", "-Cprefer-dynamic")
            .output()
            .context("running cargo")?;
        if !out.status.success() {
            anyhow::bail!(
                "cargo build failed in the scratch copy:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mut freshness = Freshness::default();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if msg["reason"] != "compiler-artifact" {
                continue;
            }
            let unit = msg["package_id"].as_str().unwrap_or("?").to_owned();
            if msg["fresh"] == true {
                freshness.fresh.push(unit);
            } else {
                freshness.rebuilt.push(unit);
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

/// Runs `prelude` (which adds forja) in offline mode first, so a machine
/// without network still gets forja from the lock file and the local crate
/// cache; only if cargo says it needs the network does it try again online.
/// Later cells run online again, so `:dep` of new crates keeps working.
pub fn add_forja(
    ctx: &mut evcxr::CommandContext,
    prelude: &str,
) -> Result<evcxr::EvalOutputs, evcxr::Error> {
    let offline = ctx.execute(&format!(":offline 1\n{prelude}"));
    ctx.execute(":offline 0")?;
    match offline {
        Err(e) if needs_network(&e.to_string()) => ctx.execute(prelude),
        other => other,
    }
}

/// Whether a cargo failure in offline mode means "this needs the network".
fn needs_network(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("offline") || m.contains("no matching package") || m.contains("failed to download")
}

/// Gets evcxr's analyzer (rust-analyzer, which infers the type of every
/// variable a cell defines) through its expensive first type inference
/// (~1.5–2 s of CPU), so that the first cell with a `let` does not pay it.
/// Asks for completions only: nothing is compiled or run and the session's
/// variables are untouched. Returns how long it took.
pub fn warm_up(ctx: &mut evcxr::CommandContext) -> Duration {
    let start = Instant::now();
    let code = "let forja_warm_up = 1u32; forja_warm_up.";
    let _ = ctx.completions(code, code.len());
    start.elapsed()
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
        let mode = std::fs::metadata(dst.join("g")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o444);
        assert_eq!(std::fs::read_link(dst.join("link")).unwrap(), Path::new("g"));
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn seed_copies_once_and_explains_what_is_missing() {
        let base = scratch("seed");
        let pre = base.join("pre");
        let crate_dir = base.join("crate");
        let forja = Path::new("/somewhere/forja");
        // No prebuilt dir at all: a note that says how to make one.
        let note = seed(&pre, &crate_dir, Some(forja)).unwrap();
        assert!(note.contains("forja-kernel prebuild"), "{note}");
        assert!(!crate_dir.join("target").exists());

        std::fs::create_dir_all(pre.join("target/debug")).unwrap();
        std::fs::write(pre.join("target/debug/x"), "1").unwrap();
        Stamp::current(forja, "rustc test".into()).write(&pre).unwrap();
        assert_eq!(seed(&pre, &crate_dir, Some(forja)), None);
        assert_eq!(std::fs::read_to_string(crate_dir.join("target/debug/x")).unwrap(), "1");

        // A crate dir that already has a target is left alone.
        std::fs::write(pre.join("target/debug/x"), "2").unwrap();
        assert_eq!(seed(&pre, &crate_dir, Some(forja)), None);
        assert_eq!(std::fs::read_to_string(crate_dir.join("target/debug/x")).unwrap(), "1");

        // Built for another forja: copied, but the user is told why it is slow.
        let other = base.join("crate2");
        let note = seed(&pre, &other, Some(Path::new("/elsewhere/forja"))).unwrap();
        assert!(note.contains("/elsewhere/forja"), "{note}");
        assert!(other.join("target/debug/x").exists());
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
        assert!(stamp.mismatch(Path::new("/x/forja")).unwrap().contains("/x/forja"));
        stamp.cargo_home = PathBuf::from("/home/someone-else/.cargo");
        assert!(stamp.mismatch(Path::new("/w/forja")).unwrap().contains("CARGO_HOME"));
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn prune_removes_only_session_outputs() {
        let base = scratch("prune");
        let d = base.join("x86_64-unknown-linux-gnu").join("debug");
        for sub in ["deps", ".fingerprint/ctx-1", ".fingerprint/nix-2", "incremental/ctx-3"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        for f in ["libcode_1.so", "libctx.d", "deps/libctx-1.so", "deps/libnix-2.rlib"] {
            std::fs::write(d.join(f), "").unwrap();
        }
        prune_session_outputs(&base).unwrap();
        assert!(d.join("deps/libnix-2.rlib").exists());
        assert!(d.join(".fingerprint/nix-2").exists());
        for gone in ["libcode_1.so", "libctx.d", "deps/libctx-1.so", ".fingerprint/ctx-1"] {
            assert!(!d.join(gone).exists(), "{gone}");
        }
        assert!(!d.join("incremental/ctx-3").exists());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn offline_failures_are_recognised() {
        assert!(needs_network(
            "error: failed to download `x`\nattempting to make an HTTP request, but --offline was specified"
        ));
        assert!(!needs_network("error[E0425]: cannot find value `y` in this scope"));
    }
}
