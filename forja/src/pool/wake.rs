//! How a pool's result thread is woken (an eventfd) and how a thread knows
//! it is one: what the scheduler and the result thread both need.

use nix::sys::eventfd::{EfdFlags, EventFd};
use std::cell::Cell;
use std::os::fd::AsRawFd;

thread_local! {
    static ON_RESULT_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Whether the calling thread is a pool's result thread (a callback is
/// running): waiting for a pool result here would wait for itself.
pub(super) fn on_result_thread() -> bool {
    ON_RESULT_THREAD.with(|c| c.get())
}

/// The eventfd that wakes the result thread from its poll.
pub(super) struct Wake(EventFd);

impl Wake {
    pub(super) fn new() -> std::io::Result<Wake> {
        let flags = EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK;
        Ok(Wake(EventFd::from_value_and_flags(0, flags)?))
    }

    /// Wakes the thread (a no-op if it is already due to wake).
    pub(super) fn wake(&self) {
        // Only fails when the counter is full (EAGAIN): it is due to wake.
        let _ = self.0.write(1);
    }

    /// Resets the counter (a no-op when it is zero).
    pub(super) fn drain(&self) {
        let _ = self.0.read();
    }
}

/// Marks the calling thread as a pool's result thread.
pub(super) fn mark_result_thread() {
    ON_RESULT_THREAD.with(|c| c.set(true));
}

impl AsRawFd for Wake {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0.as_raw_fd()
    }
}
