//! Futex wait/wake on a 32-bit word in shared memory, and who-is-who helpers
//! (cached pid/tid, "is that process dead?") shared by every primitive.
//!
//! The futexes are *shared* (no `FUTEX_PRIVATE_FLAG`): the word lives in a
//! `MAP_SHARED` mapping and the waiters are in different processes.

use crate::error::{Error, Result};
use nix::libc;
use std::cell::Cell;
use std::sync::Once;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long one futex sleep lasts at most: waiters wake this often to check
/// the interrupt flag and whether a lock's owner died.
pub(crate) const SLICE: Duration = Duration::from_millis(50);

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
    // Safety: `word` is a valid, aligned u32 for the duration of the call.
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
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::EAGAIN) => Woke::Changed,
        _ => Woke::TimedOut, // ETIMEDOUT, EINTR
    }
}

/// Wakes up to `n` waiters sleeping on `word`.
pub(crate) fn wake(word: &AtomicU32, n: u32) {
    let n = n.min(i32::MAX as u32);
    // Safety: `word` is a valid, aligned u32.
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
        None => Ok(SLICE),
        Some(d) => {
            let now = Instant::now();
            if now >= d {
                Err(Error::Timeout {
                    what,
                    pid: my_pid() as i32,
                })
            } else {
                Ok((d - now).min(SLICE))
            }
        }
    }
}

static PID: AtomicI32 = AtomicI32::new(0);
static ATFORK: Once = Once::new();

thread_local! {
    static TID: Cell<u32> = const { Cell::new(0) };
}

extern "C" fn after_fork_in_child() {
    PID.store(0, Ordering::Relaxed);
    // Only written if set: a write would copy the page in the child.
    let _ = TID.try_with(|t| {
        if t.get() != 0 {
            t.set(0)
        }
    });
}

fn register_atfork() {
    ATFORK.call_once(|| {
        // Safety: the handler only touches atomics and a thread-local cell.
        unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
    });
}

/// This process's pid, cached (reset in the child after every `fork`).
#[inline]
pub(crate) fn my_pid() -> u32 {
    let p = PID.load(Ordering::Relaxed);
    if p != 0 {
        return p as u32;
    }
    register_atfork();
    let p = std::process::id() as i32;
    PID.store(p, Ordering::Relaxed);
    p as u32
}

/// This thread's kernel thread id (same number space as pids), cached.
#[inline]
pub(crate) fn my_tid() -> u32 {
    TID.with(|t| {
        let v = t.get();
        if v != 0 {
            return v;
        }
        register_atfork();
        let v = nix::unistd::gettid().as_raw() as u32;
        t.set(v);
        v
    })
}

/// The pid of the process thread `tid` belongs to (`tid` itself if that
/// cannot be read, for instance because the thread ended).
pub(crate) fn pid_of_thread(tid: u32) -> u32 {
    if tid == my_tid() {
        return my_pid();
    }
    std::fs::read_to_string(format!("/proc/{tid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Tgid:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(tid)
}

/// `true` when the process (or thread) `id` no longer runs: it does not
/// exist, or it is a zombie waiting to be reaped.
pub(crate) fn is_dead(id: u32) -> bool {
    if id == 0 || id > i32::MAX as u32 {
        return false;
    }
    // Safety: signal 0 only checks for existence.
    if unsafe { libc::kill(id as i32, 0) } != 0
        && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
    {
        return true;
    }
    match std::fs::read_to_string(format!("/proc/{id}/stat")) {
        Ok(stat) => matches!(
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next()),
            Some('Z' | 'X')
        ),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}
