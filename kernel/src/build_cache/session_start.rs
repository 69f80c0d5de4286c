//! Starting an evcxr session with forja: the lock file put back, forja added
//! from the first compile (offline first), the prelude, and the warm-up of
//! evcxr's analyzer.
//!
//! evcxr's first compile (in `CommandContext::new`) has no dependencies, so
//! cargo pruned the copied `Cargo.lock` to the `ctx` crate alone, and
//! `:dep forja` then resolved forja's dependencies afresh: the newest
//! versions in the local cache, or on crates.io when online — not the ones
//! prebuilt (nor the workspace's). [`start_with_forja`] puts the prebuilt
//! lock file back and starts the session with forja, so rust-analyzer also
//! loads the crate graph only once. Its first type inference costs ~2 s of
//! CPU, which the patched evcxr (see `vendor/evcxr/FORJA_PATCHES.md`) pays on
//! a second thread while the session's first compile runs; [`warm_up`] pays
//! the first completion's cost while the kernel is idle.

use super::layout::{CARGO_CONFIG, CRATE};
use crate::config::Config;
use std::path::Path;
use std::time::{Duration, Instant};

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

#[cfg(test)]
mod tests {
    use super::*;

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
