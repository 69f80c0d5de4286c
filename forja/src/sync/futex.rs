//! Futex wait/wake on a 32-bit word in shared memory, and the deadline
//! helpers every waiting primitive uses.
//!
//! The futexes are *shared* (no `FUTEX_PRIVATE_FLAG`): the word lives in a
//! `MAP_SHARED` mapping and the waiters are in different processes.

use crate::error::{Error, Result};
use nix::libc;
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

/// How long one futex sleep lasts at most: waiters wake this often to check
/// the interrupt flag and whether a lock's owner died.
pub(crate) const SLICE: Duration = Duration::from_millis(50);
/// How long one sleep of an untimed wait lasts at most: it also looks for a
/// deadlock (`waits/detect.rs`) this often.
pub(crate) const UNTIMED_SLICE: Duration = Duration::from_millis(25);

/// What a futex wait ended with.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub(crate) enum Woke {
    /// Woken, or the word no longer held the expected value.
    Changed,
    /// The slice ran out (or a signal arrived): re-check the world.
    TimedOut,
}

/// Sleeps while `*word == expected`, for at most `timeout`.
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Duration) -> Woke {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `word` is a valid, aligned u32 for the duration of the call;
    // `ts` lives across it. (libc: nix has no futex wrapper.)
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
            std::ptr::null::<u32>(),
            0u32,
        )
    };
    if r == 0 {
        return Woke::Changed;
    }
    match nix::errno::Errno::last() {
        nix::errno::Errno::EAGAIN => Woke::Changed,
        _ => Woke::TimedOut, // ETIMEDOUT, EINTR
    }
}

/// Wakes up to `n` waiters sleeping on `word`.
pub(crate) fn wake(word: &AtomicU32, n: u32) {
    let n = n.min(i32::MAX as u32);
    // SAFETY: `word` is a valid, aligned u32. (libc: nix has no futex wrapper.)
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            n,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// The next sleep: the shorter of [`SLICE`] and what is left before
/// `deadline`; `Err(Timeout)` once the deadline has passed.
pub(crate) fn slice_until(deadline: Option<Instant>, what: &'static str) -> Result<Duration> {
    match deadline {
        None => Ok(UNTIMED_SLICE),
        Some(d) => {
            let now = Instant::now();
            if now >= d {
                Err(Error::Timeout {
                    what,
                    pid: crate::os::pid(),
                })
            } else {
                Ok((d - now).min(SLICE))
            }
        }
    }
}
