//! `forja-kernel prebuild`: compiles forja and its dependencies once, into a
//! build cache every new kernel copies, so the first forja cell is fast.

use anyhow::{Result, anyhow};

/// Builds the cache in [`crate::paths::prebuilt`].
pub fn run() -> Result<()> {
    let dir = crate::paths::prebuilt();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    std::fs::copy(crate::paths::lockfile(), dir.join("Cargo.lock"))?;
    // SAFETY: single-threaded at this point.
    unsafe { std::env::set_var("EVCXR_TMPDIR", &dir) };
    let start = std::time::Instant::now();
    let (mut ctx, _outputs) = evcxr::CommandContext::new().map_err(|e| anyhow!("{e}"))?;
    ctx.execute(&crate::session::forja_prelude(&crate::paths::forja_dir()))
        .map_err(|e| anyhow!("building forja: {e}"))?;
    ctx.execute("let _forja_check = forja::display::in_kernel();")
        .map_err(|e| anyhow!("running a forja cell: {e}"))?;
    println!(
        "prebuilt forja for the kernel in {:.1} s: {}",
        start.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(())
}
