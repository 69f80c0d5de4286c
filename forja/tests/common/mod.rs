//! Helpers shared by the fork-heavy integration tests.
// Each test binary uses its own subset.
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// The state letter of `/proc/PID/stat` (`R`, `S`, `Z`, ...), `None` if gone.
pub fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')')
        .next()?
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

/// Whether `pid` has ended (gone, or a zombie waiting to be reaped).
pub fn gone_or_zombie(pid: i32) -> bool {
    matches!(proc_state(pid), None | Some('Z') | Some('X'))
}

/// Polls `cond` until it holds or `limit` passes; returns its last value.
pub fn wait_for(mut cond: impl FnMut() -> bool, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cond()
}

pub mod harness;
pub(crate) use harness::tests;
