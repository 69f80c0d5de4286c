//! How a pool's result thread is woken (an eventfd) and how a thread knows
//! it is one: what the scheduler and the result thread both need.

use std::cell::Cell;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

thread_local! {
    static ON_RESULT_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Whether the calling thread is a pool's result thread (a callback is
/// running): waiting for a pool result here would wait for itself.
pub(super) fn on_result_thread() -> bool {
    ON_RESULT_THREAD.with(|c| c.get())
}

/// The eventfd that wakes the result thread from its poll.
pub(super) struct Wake(OwnedFd);

impl Wake {
    pub(super) fn new() -> std::io::Result<Wake> {
        // SAFETY: eventfd returns a new fd or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a fresh fd, ours.
        Ok(Wake(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Wakes the thread (a no-op if it is already due to wake).
    pub(super) fn wake(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writing 8 bytes from a live buffer to our eventfd.
        let _ = unsafe { libc::write(self.0.as_raw_fd(), one.as_ptr().cast(), 8) };
    }

    pub(super) fn drain(&self) {
        let mut buf = [0u8; 8];
        // SAFETY: reading 8 bytes into a live buffer from our eventfd.
        let _ = unsafe { libc::read(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
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
