//! `forja-kernel prebuild`: compiles forja and its dependencies once, into a
//! build every new kernel copies (see [`crate::build_cache`]), so the first
//! forja cell does not compile them.
//!
//! It builds in a scratch dir next to the final one, checks with cargo that
//! a kernel would reuse every unit, then renames it into place, so no kernel
//! ever starts from half a build. When the existing build is still fresh it
//! does nothing, so running it again (as `install.sh` does) is cheap.

use crate::build_cache::{self, Stamp};
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
        bail!("no forja crate in {} (set FORJA_CRATE_DIR)", forja.display());
    }
    let start = Instant::now();
    let rustc = build_cache::rustc_version();
    let wanted = Stamp::current(&forja, rustc);
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
            Ok(f) => println!("prebuilt forja is stale ({} units to rebuild)", f.rebuilt.len()),
            Err(e) => println!("prebuilt forja needs a rebuild: {e:#}"),
        }
    }

    let parent = dir.parent().context("the prebuilt dir has no parent")?;
    std::fs::create_dir_all(parent)?;
    let name = dir.file_name().context("the prebuilt dir has no name")?;
    let scratch = parent.join(format!("{}.new-{}", name.to_string_lossy(), std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let built = build(&scratch, &forja).and_then(|()| {
        wanted.write(&scratch)?;
        build_cache::make_readable_by_all(&scratch)?;
        let f = build_cache::verify(&scratch).context("checking the new build")?;
        if !f.rebuilt.is_empty() || f.fresh.is_empty() {
            bail!(
                "a kernel copying this build would still recompile {:?}; \
                 please report this as a forja-kernel bug",
                f.rebuilt
            );
        }
        Ok(f.fresh.len())
    });
    let units = match built {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&scratch);
            return Err(e);
        }
    };
    swap_in(&scratch, &dir)?;
    println!(
        "prebuilt forja for the kernel in {:.1} s ({units} units, checked fresh): {}",
        start.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(())
}

/// Runs a session like a kernel's in `crate_dir`: same evcxr settings, same
/// prelude, then a cell that calls into forja.
fn build(crate_dir: &Path, forja: &Path) -> Result<()> {
    std::fs::create_dir_all(crate_dir)?;
    let lock = crate::paths::lockfile();
    if lock.exists() {
        std::fs::copy(&lock, crate_dir.join("Cargo.lock"))
            .with_context(|| format!("copying {}", lock.display()))?;
    }
    // SAFETY: `prebuild` runs single-threaded up to here.
    unsafe { std::env::set_var("EVCXR_TMPDIR", crate_dir) };
    let (mut ctx, _outputs) = evcxr::CommandContext::new().map_err(|e| anyhow!("{e}"))?;
    build_cache::add_forja(&mut ctx, &crate::session::forja_prelude(forja))
        .map_err(|e| anyhow!("building forja: {e}"))?;
    ctx.execute("let _forja_check = forja::display::in_kernel();")
        .map_err(|e| anyhow!("running a forja cell: {e}"))?;
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
    std::fs::rename(new, dir).with_context(|| format!("moving the new build to {}", dir.display()))?;
    if had_old {
        let _ = std::fs::remove_dir_all(&old);
    }
    Ok(())
}
