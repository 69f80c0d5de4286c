//! The process-wide interrupt flag, consulted by every blocking wait.
//!
//! Blocking waits in forja (locks, semaphores, queues, events...) wake at
//! least every ~100 ms and call [`check`], so a kernel interrupt (or a
//! `terminate` of the waiting process) is not stuck behind a wait.

use crate::error::Result;

/// Returns `Err(Error::Interrupted)` once the process-wide interrupt flag is
/// raised, `Ok(())` otherwise.
///
/// The flag lives in the process registry (one shared place per process
/// that every notebook cell's copy of forja finds): see
/// [`registry::check_interrupt`](crate::registry::check_interrupt).
#[allow(dead_code)]
pub(crate) fn check() -> Result<()> {
    crate::registry::check_interrupt()
}
