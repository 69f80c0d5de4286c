//! The process-wide interrupt flag, consulted by every blocking wait, and
//! [`sleep`], a sleep that the kernel's interrupt cuts short.
//!
//! Blocking waits in forja (locks, semaphores, queues, events, joins, pools)
//! wake at least every [`POLL_INTERVAL`](crate::registry::POLL_INTERVAL) and
//! call [`check`], so a kernel interrupt is not stuck behind a wait; and every
//! call that could block or start work checks it first, so once the flag is
//! raised they all fail at once with [`Error::Interrupted`](crate::Error).

use crate::error::Result;
use crate::registry::{self, POLL_INTERVAL};
use std::time::{Duration, Instant};

/// Returns `Err(Error::Interrupted)` once the process-wide interrupt flag is
/// raised, `Ok(())` otherwise.
///
/// The flag lives in the process registry (one shared place per process
/// that every notebook cell's copy of forja finds): see
/// [`registry::check_interrupt`](crate::registry::check_interrupt).
#[inline]
pub(crate) fn check() -> Result<()> {
    registry::check_interrupt()
}

/// Sleeps for `duration`, like `std::thread::sleep`, but stops early with
/// [`Error::Interrupted`](crate::Error::Interrupted) when the cell is
/// interrupted (it looks at the flag every
/// [`POLL_INTERVAL`](crate::registry::POLL_INTERVAL)). Use it in lessons
/// instead of `std::thread::sleep`, so the stop button works at once.
///
/// ```
/// use forja::prelude::*;
/// use std::time::{Duration, Instant};
///
/// let t = Instant::now();
/// forja::sleep(Duration::from_millis(120)).unwrap();
/// assert!(t.elapsed() >= Duration::from_millis(120));
///
/// forja::registry::request_interrupt().unwrap();
/// assert!(matches!(sleep(Duration::from_secs(60)), Err(Error::Interrupted { .. })));
/// forja::registry::clear_interrupt().unwrap();
/// ```
pub fn sleep(duration: Duration) -> Result<()> {
    let deadline = Instant::now().checked_add(duration);
    loop {
        check()?;
        let left = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => POLL_INTERVAL,
        };
        if left.is_zero() {
            return Ok(());
        }
        std::thread::sleep(left.min(POLL_INTERVAL));
    }
}
