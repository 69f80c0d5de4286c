//! `forja-kernel prebuild`: compiles forja and its dependencies once, into a
//! build every new kernel copies (see [`crate::build_cache`] for the layout
//! and why each step is needed), so the first forja cell does not compile
//! them — for every user of the machine, with or without network.
//!
//! It vendors forja's dependencies, builds in a scratch dir next to the
//! final one through an evcxr session set up exactly like a kernel's, checks
//! with cargo that a kernel would reuse every unit, then renames it into
//! place, so no kernel ever starts from half a build. When the existing build
//! is still fresh it does nothing, and when only forja changed it starts from
//! the existing build, so running it again (as `install.sh` does) is cheap.

use crate::build_cache::{self, CARGO_CONFIG, CRATE, Stamp};
use crate::config::Config;
use crate::toolchain;
use anyhow::{Context, Result, anyhow, bail};
use std::path::Path;
use std::time::Instant;

/// Builds (or confirms) the prebuilt forja in [`crate::paths::prebuilt`].
/// Arguments after `prebuild`: `--force` rebuilds even a fresh build.
pub fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(2).collect();
    let force = match args.as_slice() {
        [] => false,
        [f] if f == "--force" => true,
        _ => bail!("usage: forja-kernel prebuild [--force]"),
    };
    let dir = crate::paths::prebuilt();
    let forja = crate::paths::forja_dir();
    if !forja.join("Cargo.toml").exists() {
        bail!(
            "no forja crate in {} (set FORJA_CRATE_DIR)",
            forja.display()
        );
    }
    let start = Instant::now();
    let wanted = Stamp::current(&forja, toolchain::rustc_version());
    if !force && Stamp::read(&dir).as_ref() == Some(&wanted) {
        match build_cache::verify(&dir) {
            Ok(f) if f.rebuilt.is_empty() && !f.fresh.is_empty() => {
                println!(
                    "prebuilt forja is up to date ({} units fresh): {}",
                    f.fresh.len(),
                    dir.display()
                );
                return Ok(());
            }
            Ok(f) => println!(
                "prebuilt forja is stale ({} units to rebuild)",
                f.rebuilt.len()
            ),
            Err(e) => println!("prebuilt forja needs a rebuild: {e:#}"),
        }
    }

    let parent = dir.parent().context("the prebuilt dir has no parent")?;
    std::fs::create_dir_all(parent)?;
    let name = dir.file_name().context("the prebuilt dir has no name")?;
    let scratch = parent.join(format!(
        "{}.new-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&scratch);
    let built = (|| {
        let vendor = build_cache::vendor_dir(&dir);
        vendor_dependencies(&scratch, &forja, &vendor)?;
        // Same toolchain and same dependencies as the current build: start
        // from it, so only what changed (usually forja itself) is compiled.
        let same_deps = std::fs::read(scratch.join(CARGO_CONFIG)).ok()
            == std::fs::read(dir.join(CARGO_CONFIG)).ok();
        let old_target = dir.join(CRATE).join("target");
        if !force && same_deps && Stamp::read(&dir) == Some(wanted.clone()) && old_target.is_dir() {
            build_cache::copy_tree(&old_target, &scratch.join(CRATE).join("target"))?;
        }
        build(&scratch.join(CRATE), &forja)?;
        // After the build: its rust-analyzer has fetched the crates it needs.
        let std_files = match toolchain::sysroot_lock() {
            Some(lock) => build_cache::snapshot_std_registry(
                &lock,
                &toolchain::cargo_home(),
                &scratch.join(build_cache::REGISTRY_SEED),
            )?,
            None => 0,
        };
        if std_files == 0 {
            println!(
                "note: no standard-library crates to share (is rust-src installed?); \
                 new users without network may lack types of std values"
            );
        }
        wanted.write(&scratch)?;
        build_cache::make_readable_by_all(&scratch)?;
        build_cache::make_readable_by_all(&vendor)?;
        let f = build_cache::verify(&scratch).context("checking the new build")?;
        if f.rebuilt.is_empty() && !f.fresh.is_empty() {
            // Drop what the previous build left that this one does not use,
            // then make sure cargo still finds everything fresh.
            let target = scratch.join(CRATE).join("target");
            let removed = build_cache::prune_stale_units(&target, &f.used)?;
            if removed > 0 {
                println!("removed {removed} stale files and dirs from the previous build");
            }
        }
        let f = build_cache::verify(&scratch).context("checking the new build")?;
        if !f.rebuilt.is_empty() || f.fresh.is_empty() {
            bail!(
                "a kernel copying this build would still recompile {:?}; \
                 please report this as a forja-kernel bug",
                f.rebuilt
            );
        }
        Ok(f.fresh.len())
    })();
    let units = match built {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&scratch);
            return Err(e);
        }
    };
    swap_in(&scratch, &dir)?;
    println!(
        "prebuilt forja for the kernel in {:.1} s ({units} units, checked fresh for any user, \
         offline): {}",
        start.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(())
}

/// Resolves forja's dependencies with the workspace lock file, copies their
/// sources to `vendor` and writes the cargo config that uses them into
/// `scratch` (the parent of the crate dir, as in a kernel's work dir).
fn vendor_dependencies(scratch: &Path, forja: &Path, vendor: &Path) -> Result<()> {
    let crate_dir = scratch.join(CRATE);
    std::fs::create_dir_all(crate_dir.join("src"))?;
    std::fs::write(crate_dir.join("src/lib.rs"), "")?;
    std::fs::write(
        crate_dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"ctx\"\nversion = \"1.0.0\"\nedition = \"2024\"\n\n\
             [dependencies]\nforja = {{ path = {:?} }}\n",
            forja.display().to_string()
        ),
    )?;
    let lock = crate::paths::lockfile();
    if lock.exists() {
        std::fs::copy(&lock, crate_dir.join("Cargo.lock"))
            .with_context(|| format!("copying {}", lock.display()))?;
    }
    let metadata = |offline: bool| {
        let mut cmd = std::process::Command::new(toolchain::tool("cargo"));
        cmd.args(["metadata", "--format-version", "1"])
            .current_dir(&crate_dir);
        if offline {
            cmd.arg("--offline");
        }
        cmd.output()
    };
    // Offline first: the workspace build has usually downloaded everything.
    let mut out = metadata(true).context("running cargo metadata")?;
    if !out.status.success() {
        out = metadata(false).context("running cargo metadata")?;
    }
    if !out.status.success() {
        bail!(
            "cargo could not resolve forja's dependencies:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let packages = build_cache::registry_packages(&String::from_utf8_lossy(&out.stdout))?;
    let config = build_cache::vendor(&packages, vendor)
        .with_context(|| format!("vendoring forja's dependencies into {}", vendor.display()))?;
    std::fs::create_dir_all(scratch.join(".cargo"))?;
    std::fs::write(scratch.join(CARGO_CONFIG), config)?;
    Ok(())
}

/// Runs a session like a kernel's in `crate_dir`: same evcxr settings, same
/// way of adding forja, then a cell that calls into forja and one that makes
/// evcxr fall back to `cargo check`.
fn build(crate_dir: &Path, forja: &Path) -> Result<()> {
    let config = Config {
        forja_dir: Some(forja.to_path_buf()),
        lockfile: Some(crate::paths::lockfile()),
        crate_dir: crate_dir.to_path_buf(),
        prebuilt: None,
        child_outputs: Default::default(),
    };
    // SAFETY: `prebuild` runs single-threaded up to here.
    unsafe { std::env::set_var(forja::link::env::EVCXR_TMPDIR, crate_dir) };
    let (mut ctx, _outputs) = build_cache::start_with_forja(&config, forja)
        .map_err(|e| anyhow!("building forja: {e}"))?;
    ctx.execute("let _forja_check = forja::display::in_kernel();")
        .map_err(|e| anyhow!("running a forja cell: {e}"))?;
    // A `let` whose type evcxr cannot infer makes it `cargo check` the cell,
    // which needs forja's dependencies in check mode too (5–10 s to build):
    // students meet this with every "type annotations needed" error.
    if ctx
        .execute("let _forja_untyped = \"1\".parse().unwrap();")
        .is_ok()
    {
        bail!("a cell that cannot compile compiled: evcxr changed, check the prebuild");
    }
    drop(ctx);
    build_cache::prune_session_outputs(&crate_dir.join("target"))?;
    Ok(())
}

/// Replaces `dir` with `new` by two renames (a kernel copying the old build
/// at that moment gets an error and compiles forja itself, never a mix).
fn swap_in(new: &Path, dir: &Path) -> Result<()> {
    let old = dir.with_extension(format!("old-{}", std::process::id()));
    let had_old = dir.exists();
    if had_old {
        std::fs::rename(dir, &old).with_context(|| format!("moving {} aside", dir.display()))?;
    }
    std::fs::rename(new, dir)
        .with_context(|| format!("moving the new build to {}", dir.display()))?;
    if had_old {
        let _ = std::fs::remove_dir_all(&old);
    }
    Ok(())
}
