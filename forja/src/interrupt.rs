//! The process-wide interrupt flag, consulted by every blocking wait.
//!
//! Blocking waits in forja (locks, semaphores, queues, events...) wake at
//! least every ~100 ms and call [`check`], so a kernel interrupt (or a
//! `terminate` of the waiting process) is not stuck behind a wait.

use crate::error::Result;

/// Returns `Err(Error::Interrupted)` once the process-wide interrupt flag is
/// raised, `Ok(())` otherwise.
///
/// For now this is a stub that always returns `Ok(())`; it will consult the
/// process-wide interrupt flag kept with the process registry (one shared
/// place per process that every notebook cell's copy of forja finds).
#[allow(dead_code)]
pub(crate) fn check() -> Result<()> {
    Ok(())
}
