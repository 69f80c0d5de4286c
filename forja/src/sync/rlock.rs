//! [`RLock`]: a re-entrant lock between processes (Python's
//! `multiprocessing.RLock`).
//!
//! The thread holding it may acquire it again; it is free once every
//! acquisition has been released. The owner is a thread (its kernel thread
//! id, which for a single-threaded process is its pid).

use super::futex::{deadline_after, my_tid};
use super::raw_lock::{LockWord, lock_or_report};
use crate::error::{Error, Result};
use crate::shm::ShmBox;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const WHAT: &str = "an RLock";

#[derive(Debug, Default)]
#[repr(C)]
struct RLockState {
    word: LockWord,
    /// How many times the owner holds it (touched only by the owner).
    depth: AtomicU32,
}

/// A re-entrant lock shared by processes forked after it was made.
///
/// ```
/// let rlock = forja::RLock::new().unwrap();
/// let outer = rlock.acquire().unwrap();
/// let inner = rlock.acquire().unwrap(); // same thread: fine
/// assert_eq!(rlock.depth(), 2);
/// drop(inner);
/// drop(outer);
/// assert!(!rlock.is_locked());
/// ```
#[derive(Debug, Clone)]
pub struct RLock {
    state: ShmBox<RLockState>,
}

/// One acquisition of an [`RLock`]; dropping it releases that acquisition.
///
/// ```
/// let rlock = forja::RLock::new().unwrap();
/// let g = rlock.acquire().unwrap();
/// drop(g);
/// assert_eq!(rlock.depth(), 0);
/// ```
#[derive(Debug)]
#[must_use = "the acquisition is released as soon as the guard is dropped"]
pub struct RLockGuard<'a> {
    rlock: &'a RLock,
}

impl RLock {
    /// Makes a new, free re-entrant lock in shared memory.
    ///
    /// ```
    /// assert!(!forja::RLock::new().unwrap().is_locked());
    /// ```
    pub fn new() -> Result<RLock> {
        // Safety: made of atomics.
        let state = unsafe { ShmBox::new(RLockState::default(), 0, 1)? };
        Ok(RLock { state })
    }

    fn acquire_until(&self, deadline: Option<Instant>) -> Result<RLockGuard<'_>> {
        let me = my_tid();
        if self.state.word.owner() == Some(me) && !self.state.word.recovery_pending(me) {
            self.state.depth.fetch_add(1, Ordering::Relaxed);
            return Ok(RLockGuard { rlock: self });
        }
        match lock_or_report(&self.state.word, me, deadline, WHAT) {
            Ok(()) => {
                self.state.depth.store(1, Ordering::Relaxed);
                Ok(RLockGuard { rlock: self })
            }
            Err(e) => {
                if matches!(e, Error::LockOwnerDied { .. }) {
                    self.state.depth.store(0, Ordering::Relaxed);
                }
                Err(e)
            }
        }
    }

    /// Takes the lock (again, if this thread already holds it).
    ///
    /// If its holder died, this thread takes it over and gets
    /// [`Error::LockOwnerDied`]; call [`recover`](RLock::recover) for the guard.
    ///
    /// ```
    /// let rlock = forja::RLock::new().unwrap();
    /// let _g = rlock.acquire().unwrap();
    /// assert!(rlock.is_locked());
    /// ```
    pub fn acquire(&self) -> Result<RLockGuard<'_>> {
        self.acquire_until(None)
    }

    /// Like [`acquire`](RLock::acquire), giving up with [`Error::Timeout`]
    /// after `timeout`.
    ///
    /// ```
    /// let rlock = forja::RLock::new().unwrap();
    /// let g = rlock.acquire_timeout(std::time::Duration::from_millis(10)).unwrap();
    /// # drop(g);
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<RLockGuard<'_>> {
        self.acquire_until(deadline_after(timeout))
    }

    /// Releases one acquisition held by this thread without a guard (after
    /// [`RLockGuard::forget`]). Releasing what this thread does not hold is
    /// [`Error::NotHeld`].
    ///
    /// ```
    /// let rlock = forja::RLock::new().unwrap();
    /// rlock.acquire().unwrap().forget();
    /// rlock.release().unwrap();
    /// assert!(rlock.release().is_err());
    /// ```
    pub fn release(&self) -> Result<()> {
        let me = my_tid();
        if self.state.word.owner() != Some(me) || self.state.depth.load(Ordering::Relaxed) == 0 {
            return Err(Error::NotHeld {
                what: WHAT,
                pid: me as i32,
            });
        }
        if self.state.depth.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.state.word.unlock_if_owner(me);
        }
        Ok(())
    }

    /// After [`Error::LockOwnerDied`], gives the guard of the lock this
    /// thread took over.
    ///
    /// ```
    /// let rlock = forja::RLock::new().unwrap();
    /// assert!(rlock.recover().is_err()); // nobody died
    /// ```
    pub fn recover(&self) -> Result<RLockGuard<'_>> {
        let me = my_tid();
        match self.state.word.take_recovery(me) {
            Some(_) => {
                self.state.depth.store(1, Ordering::Relaxed);
                Ok(RLockGuard { rlock: self })
            }
            None => Err(Error::NothingToRecover {
                what: WHAT,
                pid: me as i32,
            }),
        }
    }

    /// Whether some thread holds the lock.
    ///
    /// ```
    /// assert!(!forja::RLock::new().unwrap().is_locked());
    /// ```
    pub fn is_locked(&self) -> bool {
        self.state.word.owner().is_some()
    }

    /// How many times the calling thread holds the lock (0 if it does not).
    ///
    /// ```
    /// let rlock = forja::RLock::new().unwrap();
    /// assert_eq!(rlock.depth(), 0);
    /// ```
    pub fn depth(&self) -> u32 {
        if self.state.word.owner() == Some(my_tid()) {
            self.state.depth.load(Ordering::Relaxed)
        } else {
            0
        }
    }
}

impl RLockGuard<'_> {
    /// Keeps this acquisition after the guard is gone; undo it later with
    /// [`RLock::release`].
    ///
    /// ```
    /// let rlock = forja::RLock::new().unwrap();
    /// rlock.acquire().unwrap().forget();
    /// rlock.release().unwrap();
    /// ```
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        let _ = self.rlock.release();
    }
}
